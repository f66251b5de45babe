//! Every contract example, over AMQP and over HTTPS, on PostgreSQL and SQLite.

use crate::support::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// `invalid-<reason>-*.json` → `<reason>`.
fn expected_reason(file: &str) -> Option<&str> {
    file.strip_prefix("invalid-")?.split('-').next()
}

fn event_id(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body).unwrap()["event_id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn invalid_examples() -> Vec<(String, Vec<u8>)> {
    examples()
        .into_iter()
        .filter(|(f, _)| f.starts_with("invalid-"))
        .collect()
}

/// The valid examples in an order that exercises revisions, siblings and withdrawal,
/// with the outcome each child must get.
const VALID_SEQUENCE: &[(&str, &[&str])] = &[
    ("valid-basic.json", &["notified"]),
    (
        "valid-revision2-adds-child.json",
        &["already_notified", "no_consent"],
    ),
    ("valid-siblings.json", &["notified", "notified"]),
    ("valid-extra-fields.json", &["no_registry_match"]),
    ("valid-withdrawn.json", &["withdrawn"]),
];

async fn contract_examples_over_amqp(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let names = app.broker.names.clone();

    // Invalid: each ends in the dead-letter queue with exactly its reason.
    let invalid = invalid_examples();
    assert_eq!(invalid.len(), 17);
    for (_, body) in &invalid {
        app.broker.publish(body).await;
    }
    let dead = app
        .broker
        .take(&names.dead_queue, invalid.len(), WAIT)
        .await;
    assert_eq!(
        dead.len(),
        invalid.len(),
        "every invalid example is dead-lettered"
    );
    let mut seen = BTreeSet::new();
    for m in &dead {
        let (file, _) = invalid
            .iter()
            .find(|(_, b)| *b == m.delivery.data)
            .expect("body kept unchanged");
        let reason = header_str(&m.delivery.properties, "x-schoolsignal-reason");
        assert_eq!(reason.as_deref(), expected_reason(file), "{file}");
        seen.insert(file.clone());
    }
    assert_eq!(seen.len(), invalid.len());
    assert_eq!(count_rows(&app.pool, "inbox_events"), 0);

    // Valid: the outcomes for each child, in the database.
    for (file, expected) in VALID_SEQUENCE {
        let body = example(file);
        app.broker.publish(&body).await;
        let id = event_id(&body);
        wait_for(file, WAIT, || !decisions_of(&app.pool, &id).is_empty()).await;
        assert_eq!(decisions_of(&app.pool, &id), *expected, "{file}");
    }
    assert_notices(&app);

    // One outcome message per child decision, naming no school.
    let total: usize = VALID_SEQUENCE.iter().map(|(_, e)| e.len()).sum();
    let messages = app
        .broker
        .take(
            &app.broker.outcomes_queue,
            total + 1,
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(
        messages.len(),
        total,
        "exactly one outcome message per decision"
    );
    let mut got: Vec<(String, i64, String)> = messages
        .iter()
        .map(|m| {
            let v: Value = serde_json::from_slice(&m.delivery.data).unwrap();
            assert_eq!(v["schema"], "notice.outcome.v1");
            assert!(v.get("school").is_none());
            assert_eq!(
                m.delivery
                    .properties
                    .content_type()
                    .as_ref()
                    .unwrap()
                    .as_str(),
                "application/json"
            );
            (
                v["event_id"].as_str().unwrap().into(),
                v["child_index"].as_i64().unwrap(),
                v["outcome"].as_str().unwrap().into(),
            )
        })
        .collect();
    got.sort();
    let mut want: Vec<(String, i64, String)> = VALID_SEQUENCE
        .iter()
        .flat_map(|(file, outcomes)| {
            let id = event_id(&example(file));
            outcomes
                .iter()
                .enumerate()
                .map(move |(i, o)| (id.clone(), i as i64, o.to_string()))
        })
        .collect();
    want.sort();
    assert_eq!(got, want);

    // A redelivered valid event has no second effect.
    app.broker.publish(&example("valid-basic.json")).await;
    wait_for_metric("the redelivery to be counted", WAIT, 1.0, || {
        app.metric("schoolsignal_events_total{result=\"duplicate\"}")
    })
    .await;
    assert_eq!(app.broker.message_count(&names.queue).await, 0);
    assert_eq!(count_rows(&app.pool, "decisions"), total as i64);

    assert_no_personal_data(&captured_logs(), "event decided");
    app.cleanup().await;
}

/// Notices: one per notified child, holding what the coordinator needs, sealed.
fn assert_notices(app: &TestApp) {
    use diesel::prelude::*;
    use schoolsignal::db::schema::notices::dsl::*;
    use schoolsignal::sealing::columns;
    let mut conn = app.pool.get().unwrap();
    type Stored = (
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        String,
    );
    let stored: Vec<Stored> = notices
        .select((
            id,
            incident_id,
            school_brin,
            child_given_name,
            child_group,
            status,
        ))
        .load(&mut *conn)
        .unwrap();
    // The email worker runs alongside: a notice may already have been delivered.
    type Row = (String, String, Option<String>, Option<String>, String);
    let mut rows: Vec<Row> = stored
        .into_iter()
        .map(|(n, i, b, given, group, s)| {
            let given = opened(columns::GIVEN_NAME, &n, given);
            let group = opened(columns::GROUP, &n, group);
            let s = if s == "delivered" {
                "pending_delivery".to_string()
            } else {
                s
            };
            (i, b, given, group, s)
        })
        .collect();
    rows.sort_by(|a, b| (&a.1, &a.2).cmp(&(&b.1, &b.2)));
    assert_eq!(
        rows,
        vec![
            (
                "2026-GV-004219".into(),
                "12AB00".into(),
                Some("Daan".into()),
                Some("groep 7".into()),
                "pending_delivery".into()
            ),
            (
                "2026-GV-004211".into(),
                "12AB00".into(),
                Some("Sanne".into()),
                Some("groep 5".into()),
                "withdrawn".into()
            ),
            (
                "2026-GV-004219".into(),
                "34CD01".into(),
                Some("Noor".into()),
                Some("groep 2".into()),
                "pending_delivery".into()
            ),
        ]
    );
    // The rest of what the coordinator sees, and the deadline: the visit was on
    // Sunday evening, so the notice is due when Monday's school day starts at the
    // school (08:30 at 12AB00, 08:15 at 34CD01, Europe/Amsterdam, UTC+1 in November).
    type StoredDetails = (
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        chrono::NaiveDateTime,
        Option<chrono::NaiveDateTime>,
    );
    let stored: Vec<StoredDetails> = notices
        .select((
            id,
            school_brin,
            child_given_name,
            child_family_name,
            child_date_of_birth,
            visited_at,
            due_at,
        ))
        .load(&mut *conn)
        .unwrap();
    let mut details: Vec<_> = stored
        .into_iter()
        .map(|(n, b, given, family, born, visit, due)| {
            let given = opened(columns::GIVEN_NAME, &n, given);
            let family = opened(columns::FAMILY_NAME, &n, family);
            let born = opened(columns::DATE_OF_BIRTH, &n, born);
            ((b, given), (family, born, visit, due))
        })
        .collect();
    details.sort_by(|a, b| a.0.cmp(&b.0));
    let details: Vec<_> = details.into_iter().map(|(_, d)| d).collect();
    let date = |s: &str| Some(s.to_string());
    let utc = |s: &str| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
    let visit = utc("2026-11-22 20:40");
    assert_eq!(
        details,
        vec![
            (
                Some("Bakker".into()),
                date("2014-09-30"),
                visit,
                Some(utc("2026-11-23 07:30"))
            ),
            (
                Some("de Vries".into()),
                date("2016-04-12"),
                visit,
                Some(utc("2026-11-23 07:30"))
            ),
            (
                Some("Bakker".into()),
                date("2019-02-14"),
                visit,
                Some(utc("2026-11-23 07:15"))
            ),
        ]
    );
}

async fn amqp_edge_rejections(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let names = app.broker.names.clone();
    let basic = example("valid-basic.json");
    app.broker.publish(&basic).await;
    wait_for("basic decided", WAIT, || {
        count_rows(&app.pool, "decisions") == 1
    })
    .await;

    // Same event id, different body: the first version stands.
    let mut changed: Value = serde_json::from_slice(&basic).unwrap();
    changed["police_unit"] = json!("Another unit");
    let changed = serde_json::to_vec(&changed).unwrap();
    app.broker.publish(&changed).await;
    // Not JSON by content type, and too large.
    let text = lapin::BasicProperties::default().with_content_type("text/plain".into());
    app.broker.publish_with(&basic, text).await;
    let mut big: Value = serde_json::from_slice(&basic).unwrap();
    big["padding"] = json!("x".repeat(70 * 1024));
    app.broker.publish(&serde_json::to_vec(&big).unwrap()).await;

    let dead = app.broker.take(&names.dead_queue, 3, WAIT).await;
    let mut reasons: Vec<String> = dead
        .iter()
        .map(|m| header_str(&m.delivery.properties, "x-schoolsignal-reason").unwrap())
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        ["event_id_conflict", "too_large", "unsupported_content_type"]
    );
    assert_eq!(
        count_rows(&app.pool, "decisions"),
        1,
        "the first version stands"
    );
    app.cleanup().await;
}

async fn contract_examples_over_http(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (file, body) in invalid_examples() {
        let (status, json) = app.post_event(&body).await;
        assert_eq!(status, 422, "{file}");
        assert_eq!(json["reason"].as_str(), expected_reason(&file), "{file}");
    }
    assert_eq!(count_rows(&app.pool, "inbox_events"), 0);

    // A different order than over AMQP: revision 2 first makes revision 1 stale.
    let sequence: &[(&str, &[&str])] = &[
        (
            "valid-revision2-adds-child.json",
            &["notified", "no_consent"],
        ),
        ("valid-basic.json", &["stale_revision"]),
        ("valid-siblings.json", &["notified", "notified"]),
        ("valid-extra-fields.json", &["no_registry_match"]),
        ("valid-withdrawn.json", &["withdrawn"]),
    ];
    for (file, expected) in sequence {
        let body = example(file);
        let (status, json) = app.post_event(&body).await;
        assert_eq!(status, 202, "{file}");
        let outcomes: Vec<&str> = json["outcomes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["outcome"].as_str().unwrap())
            .collect();
        assert_eq!(outcomes, *expected, "{file}");
        assert_eq!(
            decisions_of(&app.pool, &event_id(&body)),
            *expected,
            "{file}"
        );
        // The same event again: 200 and the same outcomes, no new rows.
        let (again, json_again) = app.post_event(&body).await;
        assert_eq!((again, &json_again), (200, &json), "{file}");
    }
    assert_eq!(count_rows(&app.pool, "decisions"), 7);
    assert_eq!(count_rows(&app.pool, "outbox_messages"), 7);

    // A toddler is outside the school ages; an objection recorded now takes effect now.
    let mut toddler: Value = serde_json::from_slice(&example("valid-siblings.json")).unwrap();
    toddler["event_id"] = json!(uuid::Uuid::new_v4().to_string());
    toddler["incident_id"] = json!("2026-GV-009001");
    toddler["children"][0]["date_of_birth"] = json!("2023-01-01");
    let (status, json) = app.post_event(&serde_json::to_vec(&toddler).unwrap()).await;
    assert_eq!(status, 202);
    assert_eq!(json["outcomes"][0]["outcome"], "not_school_age");
    assert_eq!(json["outcomes"][1]["outcome"], "notified");
    {
        let mut conn = app.pool.get().unwrap();
        let hasher = schoolsignal::registry::KeyedHasher::new(BSN_KEY.as_bytes());
        let bsn = schoolsignal::contract::Bsn::parse("162275869").unwrap();
        schoolsignal::registry::enrollments::record_objection(
            &mut conn,
            &hasher,
            &bsn,
            chrono::Utc::now().naive_utc(),
        )
        .unwrap();
    }
    toddler["event_id"] = json!(uuid::Uuid::new_v4().to_string());
    toddler["incident_id"] = json!("2026-GV-009002");
    let (_, json) = app.post_event(&serde_json::to_vec(&toddler).unwrap()).await;
    assert_eq!(json["outcomes"][1]["outcome"], "no_consent");

    let mut changed: Value = serde_json::from_slice(&example("valid-basic.json")).unwrap();
    changed["police_unit"] = json!("Another unit");
    let (status, json) = app.post_event(&serde_json::to_vec(&changed).unwrap()).await;
    assert_eq!(
        (status, json["reason"].as_str()),
        (409, Some("event_id_conflict"))
    );

    let big = vec![b' '; 64 * 1024 + 1];
    let (status, json) = app.post_event(&big).await;
    assert_eq!((status, json["reason"].as_str()), (413, Some("too_large")));

    let url = format!("{}/v1/events", app.address);
    let basic = example("valid-basic.json");
    let none = app
        .http
        .post(&url)
        .body(basic.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
    let wrong = app
        .http
        .post(&url)
        .bearer_auth("ssk_not-a-key")
        .body(basic.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let text = app
        .http
        .post(&url)
        .bearer_auth(&app.api_key)
        .header("content-type", "text/plain")
        .body(basic)
        .send()
        .await
        .unwrap();
    assert_eq!(text.status(), 415);

    for (series, value) in [
        ("schoolsignal_decisions_total{outcome=\"notified\"}", 4.0),
        (
            "schoolsignal_events_rejected_total{reason=\"invalid_bsn\"}",
            2.0,
        ),
        ("schoolsignal_intake_receipt_to_commit_seconds_count", 13.0),
    ] {
        assert_eq!(app.metric(series).await, value, "{series}");
    }
    let text = app.metrics_text().await;
    assert!(text.contains("\nschoolsignal_outbox_depth "), "{text}");

    assert_no_personal_data(&captured_logs(), "event decided");
    app.cleanup().await;
}

/// Every API response, errors included, says `nosniff` and `no-store`, as the
/// portal's pages do.
async fn api_responses_carry_the_baseline_headers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let url = |path: &str| format!("{}{path}", app.address);
    let event = example("valid-basic.json");
    let requests = [
        ("healthz", app.http.get(url("/healthz"))),
        (
            "no key",
            app.http.post(url("/v1/events")).body(event.clone()),
        ),
        (
            "malformed",
            app.http
                .post(url("/v1/events"))
                .bearer_auth(&app.api_key)
                .body("{"),
        ),
        (
            "accepted",
            app.http
                .post(url("/v1/events"))
                .bearer_auth(&app.api_key)
                .header("content-type", "application/json")
                .body(event),
        ),
        ("unknown route", app.http.get(url("/v1/nothing"))),
    ];
    for (what, request) in requests {
        let r = request.send().await.unwrap();
        let headers = r.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{what}");
        assert_eq!(headers["cache-control"], "no-store", "{what}");
    }
    app.cleanup().await;
}

/// The counters move right after a police event, so on the portal's address they
/// would tell whether a child is in the registry: `/metrics` and the detailed health
/// are on the internal listener only. The main listener answers 404 for them, and
/// its `/readyz` names the database alone; the internal listener serves nothing of
/// the portal or the intake.
async fn metrics_and_health_are_on_the_internal_listener_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, _) = app.post_event(&example("valid-basic.json")).await;
    assert_eq!(status, 202);
    let get = |base: &str, path: &str| {
        let request = app.http.get(format!("{base}{path}"));
        async move {
            let r = request.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (main, internal) = (app.address.as_str(), app.metrics_address.as_str());
    assert_ne!(main, internal);
    for path in ["/metrics", "/health"] {
        let (status, body) = get(main, path).await;
        assert_eq!(status, 404, "{path} on the main listener");
        assert!(!body.contains("schoolsignal_"), "{path}: {body}");
    }
    let (status, page) = get(internal, "/metrics").await;
    assert_eq!(status, 200);
    let line = "schoolsignal_decisions_total{outcome=\"notified\"} 1";
    assert!(page.lines().any(|l| l == line), "{line} in {page}");
    assert!(
        page.lines().any(|l| l == "schoolsignal_broker_up 1"),
        "{page}"
    );
    let (status, body) = get(internal, "/health").await;
    assert_eq!(status, 200, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health, json!({"database": "up", "broker": "up"}));
    let (status, body) = get(main, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready, json!({"database": "up"}), "the database only");
    assert_eq!(get(main, "/healthz").await.0, 200);
    for path in ["/readyz", "/healthz", "/login", "/v1/events"] {
        assert_eq!(
            get(internal, path).await.0,
            404,
            "{path} on the internal listener"
        );
    }
    app.cleanup().await;
}

backend_tests!(
    contract_examples_over_amqp,
    api_responses_carry_the_baseline_headers,
    metrics_and_health_are_on_the_internal_listener_only,
    amqp_edge_rejections,
    contract_examples_over_http,
    one_batch_is_decided_as_if_event_by_event
);

/// A batch is decided set-wise; a later event must still see what an earlier one of
/// the same batch did: the notice it made, the revision it applied, its inbox row.
async fn one_batch_is_decided_as_if_event_by_event(backend: Backend) {
    use schoolsignal::contract::{HomeVisit, Limits};
    use schoolsignal::notices::decide::{self, ChildDecision, Received, Rules, Verdict};
    use schoolsignal::notices::Outcome::*;

    let db = TestDb::create(backend);
    let pool = db.pool();
    seed(&pool);
    let hasher = schoolsignal::registry::KeyedHasher::new(BSN_KEY.as_bytes());
    let now = chrono::DateTime::parse_from_rfc3339(NOW).unwrap().to_utc();
    let received = |file: &str, body_hash: &str| {
        let value: Value = serde_json::from_slice(&example(file)).unwrap();
        let limits = Limits {
            now,
            window_days: 14,
        };
        Received {
            event: HomeVisit::from_value(&value, limits).unwrap(),
            body_hash: body_hash.to_string(),
            received_at: now,
            source: "test",
        }
    };
    let batch = vec![
        received("valid-basic.json", "a"),
        received("valid-revision2-adds-child.json", "b"),
        received("valid-basic.json", "a"),
        received("valid-basic.json", "a-changed"),
        received("valid-siblings.json", "c"),
        received("valid-withdrawn.json", "d"),
    ];
    let policy = schoolsignal::delivery::queue::Policy {
        give_up_after: chrono::Duration::hours(24),
        message_domain: "example.org".into(),
        link_valid_for: chrono::Duration::days(7),
    };
    let keys = dev_keyring();
    let rules = Rules {
        hasher: &hasher,
        school_age: 4..=18,
        outbound_exchange: "schoolsignal.events",
        now,
        delivery: &policy,
        keys: &keys,
    };
    let mut conn = pool.get().unwrap();
    let verdicts =
        schoolsignal::db::write_tx(&mut conn, |conn| decide::decide_batch(conn, &rules, &batch))
            .unwrap()
            .verdicts;

    let made = |outcomes: &[schoolsignal::notices::Outcome]| -> Vec<ChildDecision> {
        let decision = |(i, o): (usize, &_)| ChildDecision {
            child_index: i as i32,
            outcome: *o,
        };
        outcomes.iter().enumerate().map(decision).collect()
    };
    assert_eq!(
        verdicts,
        vec![
            Verdict::New(made(&[Notified])),
            Verdict::New(made(&[AlreadyNotified, NoConsent])),
            Verdict::Duplicate(made(&[Notified])),
            Verdict::Conflict,
            Verdict::New(made(&[Notified, Notified])),
            Verdict::New(made(&[Withdrawn])),
        ]
    );
    assert_eq!(count_rows(&pool, "inbox_events"), 4);
    assert_eq!(count_rows(&pool, "decisions"), 6);
    assert_eq!(count_rows(&pool, "outbox_messages"), 6);
    let notices: BTreeSet<(String, String)> = {
        use diesel::prelude::*;
        use schoolsignal::db::schema::notices::dsl::*;
        notices
            .select((incident_id, status))
            .load(&mut *conn)
            .unwrap()
            .into_iter()
            .collect()
    };
    let expected: BTreeSet<(String, String)> = [
        ("2026-GV-004211", "withdrawn"),
        ("2026-GV-004219", "pending_delivery"),
    ]
    .map(|(i, s)| (i.to_string(), s.to_string()))
    .into();
    assert_eq!(
        notices, expected,
        "the notice made early in the batch is withdrawn by its end"
    );
    assert_eq!(count_rows(&pool, "notices"), 3);
    // The withdrawn notice's email was cancelled before it left; the siblings' wait.
    let deliveries: BTreeSet<(String, String)> = {
        use diesel::prelude::*;
        use schoolsignal::db::schema::{deliveries, notices};
        deliveries::table
            .inner_join(notices::table)
            .select((notices::incident_id, deliveries::state))
            .load(&mut *conn)
            .unwrap()
            .into_iter()
            .collect()
    };
    let expected: BTreeSet<(String, String)> = [
        ("2026-GV-004211", "cancelled"),
        ("2026-GV-004219", "pending"),
    ]
    .map(|(i, s)| (i.to_string(), s.to_string()))
    .into();
    assert_eq!(deliveries, expected);
    assert_eq!(count_rows(&pool, "deliveries"), 3);
    let incident: (i64, String) = {
        use diesel::prelude::*;
        use schoolsignal::db::schema::incidents::dsl::*;
        incidents
            .find("2026-GV-004211")
            .select((applied_revision, status))
            .first(&mut *conn)
            .unwrap()
    };
    assert_eq!(incident, (3, "withdrawn".to_string()));
}
