//! Test keys (`apikey create --mode test`): an event posted with one is validated and
//! decided against the real registry, answered exactly as a live key would be, and
//! rolled back: no notice, email, outcome message or inbox row.

use crate::support::*;
use diesel::prelude::*;
use schoolsignal::access::api_keys::{self, Mode};
use schoolsignal::db::Pool;
use smtp_sink::SmtpSink;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// Every table the intake writes, in one transaction per batch.
const INTAKE_TABLES: [&str; 7] = [
    "inbox_events",
    "incidents",
    "decisions",
    "notices",
    "outbox_messages",
    "deliveries",
    "access_tokens",
];

fn test_key(pool: &Pool) -> String {
    let mut conn = pool.get().unwrap();
    let scopes = ["events:write".to_string()];
    api_keys::create(
        &mut conn,
        "police-test-key",
        &scopes,
        Mode::Test,
        chrono::Utc::now(),
    )
    .unwrap()
}

#[derive(QueryableByName)]
struct Line {
    #[diesel(sql_type = diesel::sql_types::Text)]
    line: String,
}

/// Every row of `table` as text, sorted: what "unchanged" is compared by.
fn rows(pool: &Pool, backend: Backend, table: &str) -> Vec<String> {
    let mut conn = pool.get().unwrap();
    let query = match backend {
        Backend::Postgres => format!("SELECT row_to_json(t)::text AS line FROM {table} t"),
        Backend::Sqlite => {
            let columns: Vec<Line> = diesel::sql_query(format!(
                "SELECT name AS line FROM pragma_table_info('{table}')"
            ))
            .load(&mut *conn)
            .unwrap();
            let columns: Vec<String> = columns.into_iter().map(|c| c.line).collect();
            format!(
                "SELECT json_array({}) AS line FROM {table}",
                columns.join(", ")
            )
        }
    };
    let mut lines: Vec<String> = diesel::sql_query(query)
        .load::<Line>(&mut *conn)
        .unwrap()
        .into_iter()
        .map(|l| l.line)
        .collect();
    lines.sort();
    lines
}

fn snapshot(app: &TestApp) -> Vec<(&'static str, Vec<String>)> {
    INTAKE_TABLES
        .iter()
        .map(|t| (*t, rows(&app.pool, app.db.backend, t)))
        .collect()
}

/// Waits until the work a live event set going is done (its emails and outcome
/// messages are out), so that nothing but the test key's post could change a table
/// between two snapshots.
async fn settle(app: &TestApp) {
    eventually("the live events' emails and messages out", WAIT, || {
        count_rows(&app.pool, "deliveries WHERE state = 'pending'") == 0
            && count_rows(&app.pool, "outbox_messages WHERE published_at IS NULL") == 0
    })
    .await;
}

/// Status, mode header and body of a post.
async fn post(app: &TestApp, key: &str, body: &[u8]) -> (u16, String, serde_json::Value) {
    post_event_with_mode(&app.http, &app.address, key, body).await
}

/// Each contract example, in order, first with the test key and then with the live
/// key: the answers are the same, and the test key's post changed no intake table.
/// Each live post changes the registry's state for the next example (a revision, a
/// withdrawal), and the test key sees that state too; a second round repeats every
/// event, now known (200) or a conflict.
async fn a_test_key_gets_the_live_answer_and_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = test_key(&app.pool);
    for round in 0..2 {
        for (name, body) in examples() {
            settle(&app).await;
            let before = snapshot(&app);
            let (test_status, test_mode, test_body) = post(&app, &key, &body).await;
            assert_eq!(
                snapshot(&app),
                before,
                "{name}: the test key's post changed a table"
            );
            assert_eq!(test_mode, "test", "{name}");
            let (live_status, live_mode, live_body) = post(&app, &app.api_key, &body).await;
            assert_eq!(live_mode, "live", "{name}");
            assert_eq!(
                (test_status, &test_body),
                (live_status, &live_body),
                "{name} (round {round}): the test key's answer differs from the live one"
            );
            if name.starts_with("valid-") && round == 0 {
                assert_eq!(live_status, 202, "{name}: {live_body}");
            }
        }
    }
    assert!(
        count_rows(&app.pool, "notices") > 0,
        "the live keys made notices"
    );
    app.cleanup().await;
}

/// Only a test key posts, every example twice: afterwards no intake table holds a
/// row, the SMTP sink was never even connected to, and nothing reached the outbound
/// exchange. Then one live event goes through, email and outcome message: once it
/// has arrived, anything the test posts had set going would have arrived too.
async fn a_test_key_can_never_create_a_notice(backend: Backend) {
    let sink = SmtpSink::start().await;
    let app =
        TestApp::spawn_with(backend, &[("SMTP_URL", format!("{}?tls=none", sink.url()))]).await;
    let outbound = app.broker.bind_outbound("#").await;
    let key = test_key(&app.pool);
    let mut posts = 0;
    for _ in 0..2 {
        for (name, body) in examples() {
            let (status, mode, answer) = post(&app, &key, &body).await;
            assert_eq!(mode, "test", "{name}");
            if name.starts_with("valid-") {
                assert_eq!(
                    status, 202,
                    "{name}: a test event is new every time: {answer}"
                );
            }
            posts += 1;
        }
    }
    for table in INTAKE_TABLES {
        assert_eq!(
            count_rows(&app.pool, table),
            0,
            "{table} after test posts only"
        );
    }

    let (status, mode, _) = post(&app, &app.api_key, &example("valid-basic.json")).await;
    assert_eq!((status, mode.as_str()), (202, "live"));
    let mails = sink.wait_for(1, WAIT).await;
    let messages = app.broker.take(&outbound, 1, WAIT).await;
    assert_eq!(messages.len(), 1, "the live event's outcome message");
    assert_eq!(
        mails.len(),
        1,
        "only the live event's email: {:?}",
        sink.received().len()
    );
    assert_eq!(mails[0].to_addresses(), ["zorg@regenboog.example.nl"]);
    assert_eq!(sink.received().len(), 1);
    assert!(app
        .broker
        .take(&outbound, 1, Duration::from_millis(200))
        .await
        .is_empty());
    assert_eq!(
        count_rows(&app.pool, "notices"),
        1,
        "the live event's notice only"
    );
    assert_eq!(count_rows(&app.pool, "inbox_events"), 1);

    let test_events = app
        .metric("schoolsignal_test_events_total{result=\"accepted\"}")
        .await
        + app
            .metric("schoolsignal_test_events_total{result=\"rejected\"}")
            .await;
    assert_eq!(test_events as usize, posts, "every test post counted apart");
    assert!(
        app.metric("schoolsignal_test_decisions_total{outcome=\"notified\"}")
            .await
            > 0.0
    );
    assert_eq!(
        app.metric("schoolsignal_events_total{result=\"accepted\"}")
            .await,
        1.0
    );
    assert_eq!(
        app.metric("schoolsignal_events_total{result=\"rejected\"}")
            .await,
        0.0
    );
    assert_eq!(
        test_audit_rows(&app.pool),
        posts,
        "one audit row per test post"
    );
    app.cleanup().await;
}

fn test_audit_rows(pool: &Pool) -> usize {
    use schoolsignal::db::schema::audit_log as a;
    let mut conn = pool.get().unwrap();
    let actors: Vec<String> = a::table
        .filter(a::action.eq("test_event"))
        .select(a::actor)
        .load(&mut *conn)
        .unwrap();
    assert!(
        actors.iter().all(|a| a == "api_key:police-test-key"),
        "{actors:?}"
    );
    actors.len()
}

backend_tests!(
    a_test_key_gets_the_live_answer_and_changes_nothing,
    a_test_key_can_never_create_a_notice,
);
