//! Retention, driven by `SCHOOLSIGNAL_NOW`: the service started at later instants
//! purges the personal data of notices past their retention, and keeps the rest.

mod support;

use diesel::prelude::*;
use schoolsignal::db::schema::{audit_log, notices};
use std::time::Duration;
use support::*;

const LONG: Duration = Duration::from_secs(90);

#[derive(Debug, Queryable)]
struct Kept {
    incident_id: String,
    school_brin: String,
    given_name: Option<String>,
    family_name: Option<String>,
    date_of_birth: Option<chrono::NaiveDate>,
    group: Option<String>,
    bsn_hash: String,
    purged: bool,
}

fn notices_now(pool: &schoolsignal::db::Pool) -> Vec<Kept> {
    let mut conn = pool.get().unwrap();
    notices::table
        .order((notices::incident_id, notices::school_brin))
        .select((
            notices::incident_id,
            notices::school_brin,
            notices::child_given_name,
            notices::child_family_name,
            notices::child_date_of_birth,
            notices::child_group,
            notices::child_bsn_hash,
            notices::purged_at.is_not_null(),
        ))
        .load(&mut *conn)
        .unwrap()
}

fn escalations(pool: &schoolsignal::db::Pool) -> i64 {
    use schoolsignal::db::schema::outbox_messages as om;
    let mut conn = pool.get().unwrap();
    om::table
        .filter(om::routing_key.eq("notice.escalated.v1"))
        .count()
        .get_result(&mut *conn)
        .unwrap()
}

fn purged_count(pool: &schoolsignal::db::Pool) -> usize {
    notices_now(pool).iter().filter(|n| n.purged).count()
}

/// Runs the service with its clock at `now` until `done` holds, then `settle` longer.
async fn run_at(env: &[(String, String)], now: &str, done: impl FnMut() -> bool, settle: Duration) {
    let mut env = env.to_vec();
    env.retain(|(k, _)| k != "SCHOOLSIGNAL_NOW");
    env.push(("SCHOOLSIGNAL_NOW".into(), now.into()));
    env.push(("SCHOOLSIGNAL_FOLLOW_UP_INTERVAL_SECONDS".into(), "1".into()));
    let mut service = ServiceProcess::start(&env, &format!("retention-{}", unique()));
    eventually(&format!("the service at {now}"), LONG, done).await;
    tokio::time::sleep(settle).await;
    assert_no_personal_data(&service.logs(), "schoolsignal listening");
    service.kill9();
}

backend_tests!(purge_follows_the_clock, audit_log_is_append_only);

async fn purge_follows_the_clock(backend: Backend) {
    let db = TestDb::create(backend);
    let pool = db.pool();
    seed(&pool);
    let prefix = format!("t{}.", unique());
    let env = service_env(&db.url, &prefix, &amqp_url());
    let names = schoolsignal::config::AmqpNames::with_prefix(&prefix);
    let broker = Broker::connect(&amqp_url(), names).await;
    broker.declare().await;
    for file in [
        "valid-basic.json",
        "valid-siblings.json",
        "valid-withdrawn.json",
    ] {
        broker.publish(&example(file)).await;
    }
    // 2026-11-23: the basic incident is withdrawn; the siblings' two notices are open.
    let decided = || count_rows(&pool, "inbox_events") == 3;
    run_at(&env, NOW, decided, Duration::ZERO).await;
    let before = notices_now(&pool);
    assert_eq!(before.len(), 3);
    assert!(before.iter().all(|n| !n.purged && n.given_name.is_some()));
    // Closing comes with the portal; until then the test closes one notice itself.
    {
        let mut conn = pool.get().unwrap();
        let closed_at = chrono::DateTime::parse_from_rfc3339(NOW)
            .unwrap()
            .naive_utc();
        diesel::update(
            notices::table
                .filter(notices::incident_id.eq("2026-GV-004219"))
                .filter(notices::school_brin.eq("12AB00")),
        )
        .set((
            notices::closed_at.eq(Some(closed_at)),
            notices::close_outcome.eq(Some("support_offered")),
        ))
        .execute(&mut *conn)
        .unwrap();
    }

    // 29 days on: nothing is due for purging yet. The escalations show that the
    // follow-up ran; a few more rounds give the purge its chance to go wrong.
    let escalated = || escalations(&pool) == 2;
    let at_29_days = "2026-12-22T08:00:00+01:00";
    run_at(&env, at_29_days, escalated, Duration::from_secs(3)).await;
    assert_eq!(purged_count(&pool), 0, "nothing before its time");

    // 31 days on: the withdrawn and the closed notice lose their personal data.
    let two_purged = || purged_count(&pool) == 2;
    run_at(
        &env,
        "2026-12-24T08:00:00+01:00",
        two_purged,
        Duration::ZERO,
    )
    .await;
    let after = notices_now(&pool);
    let open: Vec<&Kept> = after.iter().filter(|n| !n.purged).collect();
    assert_eq!(open.len(), 1);
    assert_eq!(
        (open[0].incident_id.as_str(), open[0].school_brin.as_str()),
        ("2026-GV-004219", "34CD01"),
        "an open notice is kept for 90 days"
    );
    assert!(open[0].given_name.is_some());
    for n in after.iter().filter(|n| n.purged) {
        assert_eq!(
            (&n.given_name, &n.family_name, &n.date_of_birth, &n.group),
            (&None, &None, &None, &None)
        );
        assert!(
            before.iter().all(|b| b.bsn_hash != n.bsn_hash),
            "the keyed BSN is gone too"
        );
    }

    // 91 days on: the open notice goes as well. Decisions and counts remain.
    let all_purged = || purged_count(&pool) == 3;
    run_at(
        &env,
        "2027-02-23T08:00:00+01:00",
        all_purged,
        Duration::ZERO,
    )
    .await;
    assert_eq!(count_rows(&pool, "notices"), 3);
    assert_eq!(count_rows(&pool, "decisions"), 4);
    broker.cleanup().await;
}

async fn audit_log_is_append_only(backend: Backend) {
    let db = TestDb::create(backend);
    let pool = db.pool();
    seed(&pool);
    let mut conn = pool.get().unwrap();
    let at = chrono::Utc::now().naive_utc();
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::at.eq(at),
            audit_log::actor.eq("zorg@regenboog.example.nl"),
            audit_log::action.eq("view"),
            audit_log::notice_id.eq(Some("n-1")),
            audit_log::result.eq("ok"),
        ))
        .execute(&mut *conn)
        .unwrap();
    let update = diesel::update(audit_log::table)
        .set(audit_log::result.eq("changed"))
        .execute(&mut *conn);
    assert!(update.is_err(), "an update of the audit log is refused");
    let delete = diesel::delete(audit_log::table).execute(&mut *conn);
    assert!(delete.is_err(), "a delete from the audit log is refused");
    assert_eq!(count_rows(&pool, "audit_log"), 1);
    let result: String = audit_log::table
        .select(audit_log::result)
        .first(&mut *conn)
        .unwrap();
    assert_eq!(result, "ok");
}
