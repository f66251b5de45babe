//! Privacy at rest: after a full run (notices, a note, a published signal, an
//! enrolled account), a `pg_dump` or the SQLite file names no child and holds no
//! TOTP seed; data keys rotate; a wrong key is refused before anything is written.

use crate::portal::{Portal, PUBLIC, WAIT};
use crate::support::*;
use base64::Engine;
use reqwest::header::COOKIE;
use schoolsignal::config::DEV_DATA_KEYS;
use schoolsignal::db::keys::KeyCount;
use std::process::Command;
use std::time::Duration;

const ME: &str = "zorg@regenboog.example.nl";
const NOTE: &str = "Daan kwam vandaag heel stil binnen";
const DESCRIPTION: &str = "blauwe plek op de bovenarm";

/// What a coordinator did, and every text a dump must not hold.
struct Filled {
    cookie: String,
    notice: String,
    secret: String,
    needles: Vec<String>,
}

/// Enrols the coordinator of 12AB00, writes a note and reports a signal that the
/// broker takes; also sends the basic example, so three children are notified.
async fn fill(p: &Portal) -> Filled {
    let (status, _) = p.app.post_event(&example("valid-basic.json")).await;
    assert_eq!(status, 202);
    let signals = p.app.broker.bind_outbound("school_signal.v1").await;
    let (secret, cookie, notice, csrf) = sign_in_and_note(p).await;
    let signal = [
        ("csrf", csrf.as_str()),
        ("category", "injury"),
        ("urgency", "routine"),
        ("description", DESCRIPTION),
        ("step", "confirm"),
    ];
    let path = format!("/notices/{notice}/signals");
    assert_eq!(
        p.post(&path, Some(&cookie), Some(PUBLIC), &signal).await.0,
        303
    );
    let published = p.app.broker.take(&signals, 1, WAIT).await;
    let body: serde_json::Value = serde_json::from_slice(&published[0].delivery.data).unwrap();
    assert_eq!(
        body["child"]["given_name"], "Daan",
        "published in the clear"
    );
    assert_eq!(body["description"], DESCRIPTION);
    Filled {
        cookie,
        notice,
        needles: needles(&secret),
        secret,
    }
}

/// Enrols the coordinator of 12AB00 and writes [`NOTE`] on Daan's notice. Returns
/// the TOTP seed as shown, the session cookie, the notice id and the form token.
async fn sign_in_and_note(p: &Portal) -> (String, String, String, String) {
    let cookie = p.redeem(ME).await;
    let (secret, cookie, _) = p.enrol(&cookie).await;
    let (notice, _) = notice_of(&p.app.pool, "12AB00");
    let (_, _, page) = p.get(&format!("/notices/{notice}"), Some(&cookie)).await;
    assert!(page.contains("Daan"), "the portal shows the child");
    let csrf = field(&page, "csrf");
    let note = [("csrf", csrf.as_str()), ("body", NOTE)];
    let path = format!("/notices/{notice}/notes");
    let (status, _, _) = p.post(&path, Some(&cookie), Some(PUBLIC), &note).await;
    assert_eq!(status, 303);
    (secret, cookie, notice, csrf)
}

/// The names, dates of birth (as stored and as shown) and groups of the contract
/// examples' children, the texts typed, and the TOTP seed.
fn needles(secret: &str) -> Vec<String> {
    let mut needles: Vec<String> = [
        "Daan",
        "Noor",
        "Sanne",
        "Bakker",
        "de Vries",
        "2014-09-30",
        "30-09-2014",
        "2019-02-14",
        "14-02-2019",
        "2016-04-12",
        "12-04-2016",
        "groep 5",
        "groep 7",
        "groep 2",
        NOTE,
        DESCRIPTION,
    ]
    .map(String::from)
    .to_vec();
    // The page shows the seed in groups of four; it is stored whole.
    needles.push(secret.replace(' ', ""));
    needles
}

/// The database as a thief would have it: `pg_dump`'s output, or the SQLite file
/// with its write-ahead log, as bytes.
fn stolen_copy(db: &TestDb) -> Vec<u8> {
    if let Some(path) = db.url.strip_prefix("sqlite://") {
        let mut bytes = Vec::new();
        for suffix in ["", "-wal", "-shm"] {
            if let Ok(b) = std::fs::read(format!("{path}{suffix}")) {
                bytes.extend(b);
            }
        }
        return bytes;
    }
    let out = Command::new("pg_dump")
        .arg(format!("--dbname={}", db.url))
        .output()
        .expect("pg_dump runs (Debian's postgresql-client)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The needles found in `haystack`. Sealed values are masked first: they are
/// base64, so a short name could turn up inside one by chance.
fn found(haystack: &[u8], needles: &[String]) -> Vec<String> {
    let clear = mask_sealed(haystack);
    needles
        .iter()
        .filter(|needle| clear.windows(needle.len()).any(|w| w == needle.as_bytes()))
        .cloned()
        .collect()
}

/// `haystack` with every `s1.<key id>.<base64url>` replaced by spaces.
fn mask_sealed(haystack: &[u8]) -> Vec<u8> {
    let mut out = haystack.to_vec();
    let b64 = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    let mut i = 0;
    while let Some(at) = out[i..].windows(3).position(|w| w == b"s1.") {
        let start = i + at;
        let id_end = start
            + 3
            + out[start + 3..]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-')
                .count();
        if out.get(id_end) != Some(&b'.') {
            i = start + 3;
            continue;
        }
        let end = id_end + 1 + out[id_end + 1..].iter().take_while(|b| b64(**b)).count();
        out[start..end].fill(b' ');
        i = end;
    }
    out
}

async fn a_stolen_database_names_no_child(backend: Backend) {
    let p = Portal::start(backend).await;
    let filled = fill(&p).await;
    let copy = stolen_copy(&p.app.db);
    assert!(copy.len() > 10_000, "a real copy: {} bytes", copy.len());
    assert!(
        found(&copy, std::slice::from_ref(&filled.notice)).len() == 1,
        "ids stay in the clear"
    );
    assert_eq!(found(&copy, &filled.needles), Vec::<String>::new());
    p.app.cleanup().await;
}

/// The same run with sealing off (the benchmark aid) leaves the names in the copy:
/// the scan above finds what is there.
async fn the_scan_finds_unsealed_data(backend: Backend) {
    let unsealed = [("SCHOOLSIGNAL_UNSEALED_FOR_BENCHMARK", "true".to_string())];
    let p = Portal::start_with(backend, &unsealed).await;
    let filled = fill(&p).await;
    let copy = stolen_copy(&p.app.db);
    let seen = found(&copy, &filled.needles);
    let seed = filled.secret.replace(' ', "");
    for needle in ["Daan", "Bakker", "2014-09-30", NOTE, DESCRIPTION, &seed] {
        assert!(seen.iter().any(|s| s == needle), "{needle} in {seen:?}");
    }
    p.app.cleanup().await;
}

/// A data key as `SCHOOLSIGNAL_DATA_KEYS` takes it.
fn key(id: &str, byte: u8) -> String {
    let secret = base64::engine::general_purpose::STANDARD.encode([byte; 32]);
    format!("{id}:{secret}")
}

fn keys_cli(db: &TestDb, command: &str, keys: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_schoolsignal"))
        .args(["keys", command])
        .env("DATABASE_URL", &db.url)
        .env("SCHOOLSIGNAL_BSN_KEY", BSN_KEY)
        .env("SCHOOLSIGNAL_DATA_KEYS", keys)
        .output()
        .unwrap()
}

fn counts(pool: &schoolsignal::db::Pool) -> Vec<KeyCount> {
    schoolsignal::db::keys::check(&mut pool.get().unwrap()).unwrap()
}

/// From the development key (the seed's registry and a first run) to a key of
/// one's own: rotated while a service runs on both keys, then read on the new key
/// alone, in the portal and at sign-in.
async fn keys_rotate_while_the_service_runs(backend: Backend) {
    let p = Portal::start(backend).await;
    let filled = fill(&p).await;
    assert!(counts(&p.app.pool)
        .iter()
        .all(|c| c.key_id.as_deref() == Some("dev")));
    let (new, both) = (
        key("2026a", 7),
        format!("{},{DEV_DATA_KEYS}", key("2026a", 7)),
    );
    p.app.stop_services().await;
    p.app
        .spawn_replica(&[("SCHOOLSIGNAL_DATA_KEYS", both.clone())])
        .await;
    let out = keys_cli(&p.app.db, "rotate", &both);
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("key dev: 0 value(s)"), "{said}");
    p.app.stop_services().await;

    let out = keys_cli(&p.app.db, "check", &new);
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(said.contains("in the clear: 0 value(s)"), "{said}");
    let counted = counts(&p.app.pool);
    assert!(
        counted.len() >= 8,
        "every kind of sealed value: {counted:?}"
    );
    assert!(
        counted.iter().all(|c| c.key_id.as_deref() == Some("2026a")),
        "{counted:?}"
    );

    let replica = p
        .app
        .spawn_replica(&[
            ("SCHOOLSIGNAL_DATA_KEYS", new.clone()),
            ("SCHOOLSIGNAL_PUBLIC_URL", PUBLIC.to_string()),
        ])
        .await;
    let response = replica
        .http
        .get(format!("{}/notices/{}", replica.address, filled.notice))
        .header(COOKIE, &filled.cookie)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let page = response.text().await.unwrap();
    assert_eq!(status, 200, "{}", &page[..page.len().min(2000)]);
    for shown in ["Daan", "Bakker", "30-09-2014", "groep 7", NOTE, DESCRIPTION] {
        assert!(page.contains(shown), "{shown} after rotation");
    }
    let event = example("valid-revision2-adds-child.json");
    let (status, _) = post_event_to(&replica.http, &replica.address, &p.app.api_key, &event).await;
    assert_eq!(status, 202, "the rotated registry still decides");
    let seed = filled.secret.replace(' ', "");
    assert_eq!(seed_after_rotation(&p.app.pool, &new), Some(seed));
    p.app.cleanup().await;
}

/// The coordinator's TOTP seed as sign-in opens it, on the new key alone.
fn seed_after_rotation(pool: &schoolsignal::db::Pool, new: &str) -> Option<String> {
    use diesel::prelude::*;
    use schoolsignal::db::schema::staff_accounts as sa;
    let stored: Option<String> = sa::table
        .find(ME)
        .select(sa::totp_secret)
        .first(&mut pool.get().unwrap())
        .unwrap();
    let keys = schoolsignal::sealing::Keyring::new(&schoolsignal::config::keys_from(new).unwrap());
    let column = schoolsignal::sealing::columns::TOTP_SECRET;
    Some(keys.open(column.at(ME), &stored?).unwrap())
}

/// A key whose id the database knows with another secret stops the service, and
/// `keys rotate` and `registry import`, before anything is written.
async fn a_wrong_key_is_refused(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("SCHOOLSIGNAL_DATA_KEYS", key("prod", 1))]).await;
    app.stop_services().await;
    let before = table_sizes(&app.pool);
    let wrong = key("prod", 2);
    let config = app.config_with(&[("SCHOOLSIGNAL_DATA_KEYS", wrong.clone())]);
    let e = schoolsignal::app::Application::build(config)
        .await
        .err()
        .expect("refused");
    assert!(e.to_string().contains("fingerprint differs"), "{e}");
    assert!(
        !e.to_string().contains(&wrong[5..]),
        "the key is never shown"
    );
    let out = keys_cli(&app.db, "rotate", &wrong);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("fingerprint differs"));
    let dev = app.config_with(&[]);
    let e = schoolsignal::app::Application::build(dev)
        .await
        .err()
        .expect("refused");
    assert!(e.to_string().contains("development key is refused"), "{e}");
    assert_eq!(table_sizes(&app.pool), before, "nothing written");
    app.cleanup().await;
}

/// The rows of every table.
fn table_sizes(pool: &schoolsignal::db::Pool) -> Vec<(String, i64)> {
    [
        "notices",
        "decisions",
        "inbox_events",
        "outbox_messages",
        "deliveries",
        "key_fingerprints",
        "enrollments",
        "staff_accounts",
        "audit_log",
    ]
    .iter()
    .map(|t| (t.to_string(), count_rows(pool, t)))
    .collect()
}

backend_tests!(
    a_stolen_database_names_no_child,
    the_scan_finds_unsealed_data,
    keys_rotate_while_the_service_runs,
    a_wrong_key_is_refused,
    closing_erases_at_once_when_nothing_is_kept
);

/// `SCHOOLSIGNAL_RETENTION_DAYS=0`: closing a notice erases its personal data in
/// the same transaction, notes included.
async fn closing_erases_at_once_when_nothing_is_kept(backend: Backend) {
    let p = Portal::start_with(backend, &[("SCHOOLSIGNAL_RETENTION_DAYS", "0".into())]).await;
    let (_, cookie, notice, csrf) = sign_in_and_note(&p).await;
    let path = format!("/notices/{notice}/close");
    // The confirmation says that closing erases the data, and erases nothing itself.
    let close = [("csrf", csrf.as_str()), ("outcome", "support_offered")];
    let (status, _, page) = p.post(&path, Some(&cookie), Some(PUBLIC), &close).await;
    assert_eq!(status, 200);
    assert!(page.contains("van signalen direct gewist"), "the warning");
    assert!(!erased(&p.app.pool, &notice).1, "not yet");
    let close = [
        ("csrf", csrf.as_str()),
        ("outcome", "support_offered"),
        ("step", "confirm"),
    ];
    assert_eq!(
        p.post(&path, Some(&cookie), Some(PUBLIC), &close).await.0,
        303
    );
    let (given, purged, note_body) = erased(&p.app.pool, &notice);
    assert_eq!((given, purged, note_body), (None, true, None));
    let (_, _, page) = p.get(&format!("/notices/{notice}"), Some(&cookie)).await;
    assert!(
        !page.contains("Daan") && !page.contains(NOTE),
        "nothing left to show"
    );
    p.app.cleanup().await;
}

/// A notice's given name, whether it was purged, and its note's body.
fn erased(pool: &schoolsignal::db::Pool, notice: &str) -> (Option<String>, bool, Option<String>) {
    use diesel::prelude::*;
    use schoolsignal::db::schema::{notice_notes, notices};
    let mut conn = pool.get().unwrap();
    let (given, purged): (Option<String>, bool) = notices::table
        .find(notice)
        .select((notices::child_given_name, notices::purged_at.is_not_null()))
        .first(&mut *conn)
        .unwrap();
    let body: Option<String> = notice_notes::table
        .filter(notice_notes::notice_id.eq(notice))
        .select(notice_notes::body)
        .first(&mut *conn)
        .unwrap();
    (given, purged, body)
}

/// Publishes a dead letter, as the intake queue does with a rejected event.
async fn dead_letter(broker: &Broker) {
    use lapin::options::BasicPublishOptions;
    let exchange = broker.names.dead_exchange.as_str();
    let publish = broker.channel.basic_publish(
        exchange.into(),
        "home_visit.created".into(),
        BasicPublishOptions::default(),
        b"{}",
        json_props(b"{}"),
    );
    publish.await.unwrap().await.unwrap();
}

/// Dead letters expire (`x-message-ttl`), so a rejected event's names and BSNs do
/// not stay in RabbitMQ for ever; a dead-letter queue from before the TTL is used as
/// it is (intake never stops over it) until an operator deletes it, and is then
/// declared with the TTL.
#[tokio::test]
async fn dead_letters_expire() {
    use lapin::options::QueueDeleteOptions;
    let names = schoolsignal::config::AmqpNames::with_prefix(&format!("t{}.", unique()));
    let broker = Broker::connect(&amqp_url(), names.clone()).await;
    let short = (10, Duration::from_secs(1));
    // A queue declared with another TTL (as by an older version without one).
    dead_letter(&broker).await;
    schoolsignal::broker::declare_intake(&broker.conn, &broker.channel, &names, short)
        .await
        .expect("an old dead-letter queue does not stop intake");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        broker.message_count(&names.dead_queue).await,
        1,
        "kept as it was"
    );
    // Deleted as the README says, it comes back with the TTL, and letters expire.
    let delete = QueueDeleteOptions::default();
    let queue = names.dead_queue.as_str();
    broker
        .channel
        .queue_delete(queue.into(), delete)
        .await
        .unwrap();
    schoolsignal::broker::declare_intake(&broker.conn, &broker.channel, &names, short)
        .await
        .unwrap();
    dead_letter(&broker).await;
    let mut left = 1;
    for _ in 0..60 {
        left = broker.message_count(&names.dead_queue).await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(left, 0, "the dead letter expired");
    broker.cleanup().await;
}
