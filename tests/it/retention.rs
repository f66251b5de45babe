//! Retention, driven by `SCHOOLSIGNAL_NOW`: the service started at later instants
//! purges the personal data of notices past their retention, and keeps the rest.

use crate::support::*;
use diesel::prelude::*;
use schoolsignal::db::schema::{audit_log, notices};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(90);

#[derive(Debug, Queryable)]
struct Kept {
    incident_id: String,
    school_brin: String,
    given_name: Option<String>,
    family_name: Option<String>,
    date_of_birth: Option<String>,
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
    // ...and the siblings' emails, with their links, are out.
    let decided =
        || count_rows(&pool, "inbox_events") == 3 && count_rows(&pool, "access_tokens") >= 2;
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
    let closed_id = notice_id(&pool, "2026-GV-004219", "12AB00");
    let open_id = notice_id(&pool, "2026-GV-004219", "34CD01");
    follow_up_of(&pool, &closed_id, "closed");
    follow_up_of(&pool, &open_id, "open");
    assert!(
        tokens_of(&pool, &open_id) > 0,
        "the open notice's email has a link"
    );

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
    // The closed notice's note, signal text and published signal message are gone,
    // and so are the links to the purged notices; the open notice keeps all of its.
    assert_eq!(texts_of(&pool, &closed_id), (vec![None], vec![None]));
    assert_eq!(
        signal_messages(&pool),
        vec![("open-msg".to_string(), false)],
        "the closed notice's published signal message is erased; an unsent one stays"
    );
    assert_eq!(
        texts_of(&pool, &open_id),
        (
            vec![Some("note open".into())],
            vec![Some("signal open".into())]
        )
    );
    assert!(tokens_of(&pool, &open_id) > 0);
    for purged in after.iter().filter(|n| n.purged) {
        let id = notice_id(&pool, &purged.incident_id, &purged.school_brin);
        assert_eq!(tokens_of(&pool, &id), 0, "no link to a purged notice");
    }
    assert_eq!(count_rows(&pool, "audit_log"), 2, "the audit log stays");
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

fn notice_id(pool: &schoolsignal::db::Pool, incident: &str, brin: &str) -> String {
    let mut conn = pool.get().unwrap();
    notices::table
        .filter(notices::incident_id.eq(incident))
        .filter(notices::school_brin.eq(brin))
        .select(notices::id)
        .first(&mut *conn)
        .unwrap()
}

/// A note, a signal with its outbox message, and an audit row for a notice, as the
/// portal writes them. The closed notice's message was published; the open one's not.
fn follow_up_of(pool: &schoolsignal::db::Pool, notice: &str, tag: &str) {
    use schoolsignal::db::schema::{notice_notes, outbox_messages, school_signals};
    let mut conn = pool.get().unwrap();
    let at = chrono::DateTime::parse_from_rfc3339(NOW)
        .unwrap()
        .naive_utc();
    let message_id = format!("{tag}-msg");
    diesel::insert_into(notice_notes::table)
        .values((
            notice_notes::notice_id.eq(notice),
            notice_notes::author.eq("zorg@regenboog.example.nl"),
            notice_notes::body.eq(Some(format!("note {tag}"))),
            notice_notes::created_at.eq(at),
        ))
        .execute(&mut *conn)
        .unwrap();
    diesel::insert_into(school_signals::table)
        .values((
            school_signals::signal_id.eq(format!("{tag}-signal")),
            school_signals::notice_id.eq(notice),
            school_signals::category.eq("other"),
            school_signals::urgency.eq("routine"),
            school_signals::description.eq(Some(format!("signal {tag}"))),
            school_signals::reporter_email.eq("zorg@regenboog.example.nl"),
            school_signals::reported_at.eq(at),
            school_signals::outbox_message_id.eq(&message_id),
        ))
        .execute(&mut *conn)
        .unwrap();
    // Far in the future, so that the relay leaves the unpublished one alone.
    let published = (tag == "closed").then_some(at);
    diesel::insert_into(outbox_messages::table)
        .values((
            outbox_messages::message_id.eq(&message_id),
            outbox_messages::exchange.eq("none"),
            outbox_messages::routing_key.eq("school_signal.v1"),
            outbox_messages::message_type.eq("school_signal.v1"),
            outbox_messages::body.eq(format!("{{\"description\":\"signal {tag}\"}}")),
            outbox_messages::created_at.eq(at),
            outbox_messages::attempts.eq(0),
            outbox_messages::next_attempt_at.eq(at + chrono::Duration::days(3650)),
            outbox_messages::published_at.eq(published),
        ))
        .execute(&mut *conn)
        .unwrap();
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::at.eq(at),
            audit_log::actor.eq("zorg@regenboog.example.nl"),
            audit_log::action.eq("signal"),
            audit_log::notice_id.eq(Some(notice)),
            audit_log::result.eq("ok"),
        ))
        .execute(&mut *conn)
        .unwrap();
}

/// The note and signal texts of a notice.
fn texts_of(
    pool: &schoolsignal::db::Pool,
    notice: &str,
) -> (Vec<Option<String>>, Vec<Option<String>>) {
    use schoolsignal::db::schema::{notice_notes, school_signals};
    let mut conn = pool.get().unwrap();
    let notes = notice_notes::table
        .filter(notice_notes::notice_id.eq(notice))
        .select(notice_notes::body)
        .load(&mut *conn)
        .unwrap();
    let signals = school_signals::table
        .filter(school_signals::notice_id.eq(notice))
        .select(school_signals::description)
        .load(&mut *conn)
        .unwrap();
    (notes, signals)
}

/// The signal messages in the outbox: (message id, published).
fn signal_messages(pool: &schoolsignal::db::Pool) -> Vec<(String, bool)> {
    use schoolsignal::db::schema::outbox_messages as om;
    let mut conn = pool.get().unwrap();
    om::table
        .filter(om::routing_key.eq("school_signal.v1"))
        .select((om::message_id, om::published_at.is_not_null()))
        .load(&mut *conn)
        .unwrap()
}

fn tokens_of(pool: &schoolsignal::db::Pool, notice: &str) -> i64 {
    use schoolsignal::db::schema::access_tokens as at;
    let mut conn = pool.get().unwrap();
    at::table
        .filter(at::notice_id.eq(notice))
        .count()
        .get_result(&mut *conn)
        .unwrap()
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
