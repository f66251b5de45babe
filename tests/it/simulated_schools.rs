//! Simulated schools: addresses at @simulator.schoolsignal.invalid never reach a mail
//! server; their local part picks the result, and everything else (the email worker,
//! retries, the deputy fallback, the `undeliverable` escalation, reminders) runs for
//! real.

use crate::support::*;
use diesel::prelude::*;
use schoolsignal::db::Pool;
use schoolsignal::registry::schools::{self, Simulated};
use smtp_sink::SmtpSink;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);
const HEADER: &str = "brin,name,holiday_region,locale,school_day_start,coordinator_name,\
    coordinator_email,deputy_name,deputy_email,participating";

fn sim(local: &str) -> String {
    format!("{local}@{}", schoolsignal::registry::simulated::DOMAIN)
}

/// Gives the two test schools simulated addresses: De Regenboog (12AB00) a
/// coordinator and a deputy, Het Anker (34CD01) a coordinator and no deputy.
fn simulate(pool: &Pool, regenboog: (&str, &str), anker: &str) {
    let csv = format!(
        "{HEADER}\n\
         12AB00,OBS De Regenboog,midden,nl,08:30,Coordinator,{},Deputy,{},true\n\
         34CD01,Montessorischool Het Anker,noord,en,08:15,Coordinator,{},,,true\n",
        sim(regenboog.0),
        sim(regenboog.1),
        sim(anker)
    );
    let mut conn = pool.get().unwrap();
    let now = schoolsignal::db::ts(chrono::Utc::now());
    schools::import(&mut conn, csv.as_bytes(), now, Simulated::Allowed).unwrap();
}

/// The notice emails (not reminders or withdrawals).
fn notice_emails(pool: &Pool) -> Vec<Delivery> {
    let mut rows = deliveries(pool);
    rows.retain(|d| d.kind == "notice");
    rows
}

/// The notice of each school, by brin.
fn notice_of_school(pool: &Pool, brin: &str) -> Vec<(String, String)> {
    use schoolsignal::db::schema::notices as n;
    let mut conn = pool.get().unwrap();
    n::table
        .filter(n::school_brin.eq(brin))
        .select((n::id, n::status))
        .load(&mut *conn)
        .unwrap()
}

fn settled(pool: &Pool, expected: usize) -> bool {
    let rows = notice_emails(pool);
    rows.len() == expected && rows.iter().all(|d| d.state != "pending")
}

async fn simulated_addresses_behave_as_documented(backend: Backend) {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with(
        backend,
        &[
            ("SMTP_URL", format!("{}?tls=none", sink.url())),
            ("SCHOOLSIGNAL_MAIL_RETRY_BASE_MS", "200".to_string()),
            ("SCHOOLSIGNAL_MAIL_RETRY_MAX_SECONDS", "1".to_string()),
        ],
    )
    .await;
    let escalations = app.broker.bind_outbound("notice.escalated.v1").await;

    // delivered@: sent at the first attempt.
    simulate(&app.pool, ("delivered", "delivered"), "delivered");
    app.broker.publish(&example("valid-basic.json")).await;
    eventually("the first notice email settled", WAIT, || {
        settled(&app.pool, 1)
    })
    .await;
    let first = notice_emails(&app.pool).remove(0);
    assert_eq!(
        (first.state.as_str(), first.attempts, first.sent_to.clone()),
        ("sent", 1, Some(sim("delivered")))
    );
    eventually("the notice marked delivered", WAIT, || {
        notice_of_school(&app.pool, "12AB00")[0].1 == "delivered"
    })
    .await;

    // permanent-failure@ falls back to the deputy, whose temporary-failure@ gets 4xx
    // replies and then succeeds; Het Anker has no deputy, so its notice is escalated
    // as undeliverable.
    simulate(
        &app.pool,
        ("permanent-failure", "temporary-failure"),
        "permanent-failure",
    );
    app.broker.publish(&example("valid-siblings.json")).await;
    eventually("the siblings' emails settled", WAIT, || {
        settled(&app.pool, 4)
    })
    .await;
    let rows = notice_emails(&app.pool);
    let first_notice = &first.notice_id;
    let regenboog = &notice_of_school(&app.pool, "12AB00")
        .into_iter()
        .find(|(id, _)| id != first_notice)
        .unwrap()
        .0;
    let anker = &notice_of_school(&app.pool, "34CD01")[0].0;
    let of = |notice: &str, recipient: &str| {
        rows.iter()
            .find(|d| d.notice_id == notice && d.recipient == recipient)
            .unwrap_or_else(|| panic!("{recipient} of {notice}: {rows:?}"))
    };
    let coordinator = of(regenboog, "coordinator");
    assert_eq!(coordinator.state, "permanent_failure");
    assert!(
        coordinator
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("550"),
        "{coordinator:?}"
    );
    let deputy = of(regenboog, "deputy");
    let tries = schoolsignal::registry::simulated::TEMPORARY_FAILURES + 1;
    assert_eq!(
        (
            deputy.state.as_str(),
            deputy.attempts,
            deputy.sent_to.clone()
        ),
        ("sent", tries, Some(sim("temporary-failure"))),
        "{deputy:?}"
    );
    assert_eq!(of(anker, "coordinator").state, "permanent_failure");
    assert_eq!(rows.len(), 4, "no deputy for Het Anker: {rows:?}");

    let escalated = app.broker.take(&escalations, 1, WAIT).await;
    assert_eq!(escalated.len(), 1);
    let message: serde_json::Value = serde_json::from_slice(&escalated[0].delivery.data).unwrap();
    assert_eq!(message["level"], "undeliverable");
    assert_eq!(message["notice_id"], anker.as_str());
    assert!(app.metric("schoolsignal_delivery_retries_total").await >= f64::from(tries - 1));

    // An hour after the due time (a replica whose clock is later), the reminders go
    // to simulated addresses too.
    simulate(&app.pool, ("delivered", "delivered"), "delivered");
    let _later = app
        .spawn_replica(&[
            ("SMTP_URL", format!("{}?tls=none", sink.url())),
            ("SCHOOLSIGNAL_NOW", "2026-11-23T09:31:00+01:00".to_string()),
        ])
        .await;
    eventually(
        "reminders to the simulated coordinator and deputy",
        WAIT,
        || {
            let sent = deliveries(&app.pool)
                .into_iter()
                .filter(|d| d.kind == "reminder" && d.state == "sent")
                .filter(|d| {
                    d.sent_to
                        .as_deref()
                        .is_some_and(|a| a.ends_with(".invalid"))
                })
                .count();
            sent >= 2
        },
    )
    .await;

    assert_eq!(sink.connections_made(), 0, "no SMTP connection was made");
    assert!(sink.received().is_empty());
    app.cleanup().await;
}

/// Production without `SCHOOLSIGNAL_ALLOW_SIMULATED_SCHOOLS=true` does not start on
/// a registry that holds a simulated school.
#[tokio::test]
async fn production_refuses_to_serve_simulated_schools() {
    let db = TestDb::create(Backend::Sqlite);
    let pool = db.pool();
    seed(&pool);
    simulate(&pool, ("delivered", "delivered"), "delivered");
    let prefix = format!("t{}.", unique());
    let mut env = service_env(&db.url, &prefix, &amqp_url());
    env.extend(
        [
            ("SCHOOLSIGNAL_ENV", "production"),
            // No broker: the service must not declare anything on the shared one.
            ("AMQP_URL", "amqp://guest:guest@127.0.0.1:1/%2f"),
            ("SMTP_URL", "smtp://127.0.0.1:1"),
            ("SCHOOLSIGNAL_PUBLIC_URL", "https://signal.example.nl"),
            (
                "SCHOOLSIGNAL_MAIL_FROM",
                "Signaal <noreply@signal.example.nl>",
            ),
            ("SCHOOLSIGNAL_DATA_KEYS", PRODUCTION_DATA_KEYS),
        ]
        .into_iter()
        .chain(PRODUCTION_ORG)
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let refused = schoolsignal::app::Application::build(config_from(&env)).await;
    let error = refused
        .err()
        .expect("production refuses simulated schools")
        .to_string();
    assert!(
        error.contains("SCHOOLSIGNAL_ALLOW_SIMULATED_SCHOOLS"),
        "{error}"
    );
    env.push(("SCHOOLSIGNAL_ALLOW_SIMULATED_SCHOOLS".into(), "true".into()));
    let app = schoolsignal::app::Application::build(config_from(&env)).await;
    assert!(app.is_ok(), "allowed: {:?}", app.err());
    app.unwrap().stopper().cancel();
}

backend_tests!(simulated_addresses_behave_as_documented);
