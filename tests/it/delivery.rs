//! Delivery: notice emails through a real SMTP server, retries, the deputy fallback,
//! escalations on a real queue, reminders driven by the clock, and withdrawal, on
//! PostgreSQL and SQLite.

use crate::support::*;
use chrono::{DateTime, Datelike, NaiveDateTime, Utc};
use diesel::prelude::*;
use mail_parser::MimeHeaders;
use schoolsignal::db::Pool;
use serde_json::Value;
use sha2::{Digest, Sha256};
use smtp_sink::{ReceivedMail, Reply, SmtpSink};
use std::collections::BTreeSet;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);
/// How long to keep watching for an email or message that must not come.
const SETTLE: Duration = Duration::from_secs(3);
const PUBLIC_URL: &str = "https://portal.schoolsignal.test";
const ESCALATED: &str = "notice.escalated.v1";

/// 12AB00: Dutch, region midden, school starts 08:30, with a deputy.
const REGENBOOG: &str = "zorg@regenboog.example.nl";
const REGENBOOG_DEPUTY: &str = "adjunct@regenboog.example.nl";
const REGENBOOG_NAME: &str = "OBS De Regenboog";
/// 34CD01: English, region noord, school starts 08:15, no deputy.
const ANKER: &str = "zorg@anker.example.nl";
const ANKER_NAME: &str = "Montessorischool Het Anker";

/// The service sends through `sink`, retries quickly and follows notices up every
/// second.
fn mail_env(sink: &SmtpSink) -> Vec<(&'static str, String)> {
    vec![
        ("SMTP_URL", format!("{}?tls=none", sink.url())),
        ("SCHOOLSIGNAL_PUBLIC_URL", PUBLIC_URL.to_string()),
        ("SCHOOLSIGNAL_MAIL_RETRY_BASE_MS", "200".to_string()),
        ("SCHOOLSIGNAL_MAIL_RETRY_MAX_SECONDS", "2".to_string()),
        ("SCHOOLSIGNAL_FOLLOW_UP_INTERVAL_SECONDS", "1".to_string()),
    ]
}

async fn spawn_mail(backend: Backend, sink: &SmtpSink) -> TestApp {
    TestApp::spawn_with(backend, &mail_env(sink)).await
}

// ---------- the database ----------

/// The deliveries of one kind, recipient and state.
fn count_deliveries(pool: &Pool, kind: &str, recipient: &str, state: &str) -> usize {
    deliveries(pool)
        .iter()
        .filter(|d| d.kind == kind && d.recipient == recipient && d.state == state)
        .count()
}

#[derive(Debug, Clone, Queryable)]
struct Notice {
    id: String,
    incident_id: String,
    child_index: i32,
    school_brin: String,
    status: String,
    reminded_at: Option<NaiveDateTime>,
    escalated_at: Option<NaiveDateTime>,
}

fn notices(pool: &Pool) -> Vec<Notice> {
    use schoolsignal::db::schema::notices as n;
    let mut conn = pool.get().unwrap();
    n::table
        .order(n::id)
        .select((
            n::id,
            n::incident_id,
            n::child_index,
            n::school_brin,
            n::status,
            n::reminded_at,
            n::escalated_at,
        ))
        .load(&mut *conn)
        .unwrap()
}

fn notice(pool: &Pool, id: &str) -> Notice {
    notices(pool).into_iter().find(|n| n.id == id).unwrap()
}

/// (token hash, address) of every link token of a notice, sorted.
fn tokens_of(pool: &Pool, notice_id: &str) -> Vec<(String, String)> {
    use schoolsignal::db::schema::access_tokens as t;
    let mut conn = pool.get().unwrap();
    t::table
        .filter(t::notice_id.eq(notice_id))
        .order(t::token_hash)
        .select((t::token_hash, t::recipient_email))
        .load(&mut *conn)
        .unwrap()
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

// ---------- emails ----------

/// Waits until `rcpt` received at least `n` emails; returns what there is then.
async fn mails_for(sink: &SmtpSink, rcpt: &str, n: usize) -> Vec<ReceivedMail> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let mails = sink.received_for(rcpt);
        if mails.len() >= n || std::time::Instant::now() >= deadline {
            return mails;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The token of the `{PUBLIC_URL}/n/{token}` link in a body.
fn token_in(body: &str) -> Option<String> {
    let prefix = format!("{PUBLIC_URL}/n/");
    let start = body.find(&prefix)? + prefix.len();
    let token: String = body[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    (!token.is_empty()).then_some(token)
}

/// The token of a notice or reminder email: the same link in the text and the HTML.
fn link_token(mail: &ReceivedMail) -> String {
    let text = mail.text_body();
    let html = mail.html_body();
    let token = token_in(&text).expect("the text part holds the link");
    assert_eq!(
        token_in(&html).as_deref(),
        Some(token.as_str()),
        "the HTML part holds the same link"
    );
    let link = format!("{PUBLIC_URL}/n/{token}");
    assert!(text.contains(&link));
    assert!(html.contains(&format!("href=\"{link}\"")), "a real link");
    token
}

fn message_id(mail: &ReceivedMail) -> String {
    mail.header("Message-ID").expect("a Message-ID header")
}

/// `multipart/alternative` with a text/plain and a text/html part, marked automatic.
fn assert_well_formed(mail: &ReceivedMail) {
    let parsed = mail.parsed();
    let ct = parsed.content_type().expect("a Content-Type");
    assert_eq!(ct.ctype().to_ascii_lowercase(), "multipart");
    assert_eq!(
        ct.subtype().map(str::to_ascii_lowercase).as_deref(),
        Some("alternative")
    );
    let parts: Vec<String> = parsed
        .parts
        .iter()
        .skip(1)
        .map(|p| {
            p.content_type().map_or_else(String::new, |c| {
                format!("{}/{}", c.ctype(), c.subtype().unwrap_or_default()).to_ascii_lowercase()
            })
        })
        .collect();
    assert_eq!(parts, ["text/plain", "text/html"]);
    assert!(!mail.text_body().trim().is_empty());
    assert!(!mail.html_body().trim().is_empty());
    assert_eq!(
        mail.header("Auto-Submitted").as_deref(),
        Some("auto-generated")
    );
}

/// A date of birth in the forms a person or a program might write it.
fn date_forms(iso: &str) -> Vec<String> {
    use schoolsignal::locale::{MONTHS_EN, MONTHS_NL};
    let date = chrono::NaiveDate::parse_from_str(iso, "%Y-%m-%d").unwrap();
    let (y, m, d) = (date.year(), date.month(), date.day());
    let (nl, en) = (MONTHS_NL[m as usize - 1], MONTHS_EN[m as usize - 1]);
    let en = en.to_lowercase();
    vec![
        iso.to_string(),
        format!("{y}/{m:02}/{d:02}"),
        format!("{y}{m:02}{d:02}"),
        format!("{d:02}-{m:02}-{y}"),
        format!("{d:02}/{m:02}/{y}"),
        format!("{d:02}.{m:02}.{y}"),
        format!("{d:02}{m:02}{y}"),
        format!("{d}-{m}-{y}"),
        format!("{d}/{m}/{y}"),
        format!("{d}.{m}.{y}"),
        format!("{d} {nl} {y}"),
        format!("{d} {en} {y}"),
        format!("{en} {d}, {y}"),
    ]
}

/// Everything about the children and the matter that an email must never show, in
/// lowercase: names, BSNs and dates of birth of every example child, their groups,
/// the incident ids, the event ids and the police units.
fn personal_and_case_data() -> Vec<String> {
    let mut out: Vec<String> = personal_data().iter().map(|s| s.to_lowercase()).collect();
    for (file, body) in examples() {
        if !file.starts_with("valid-") {
            continue;
        }
        let v: Value = serde_json::from_slice(&body).unwrap();
        out.push(v["incident_id"].as_str().unwrap().to_lowercase());
        out.push(v["event_id"].as_str().unwrap().to_lowercase());
        if let Some(unit) = v["police_unit"].as_str() {
            out.push(unit.to_lowercase());
        }
        for child in v["children"].as_array().unwrap() {
            for field in ["bsn", "given_name", "family_name"] {
                out.push(child[field].as_str().unwrap().to_lowercase());
            }
            out.extend(date_forms(child["date_of_birth"].as_str().unwrap()));
        }
    }
    let registry = std::fs::read_to_string(contracts_dir().join("registry-example.csv")).unwrap();
    for line in registry.lines().skip(1) {
        let group = line.split(',').nth(2).unwrap_or_default();
        if !group.is_empty() {
            out.push(group.to_lowercase());
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Nothing in the email (headers, subject, every part, raw and decoded) names a
/// child, a date of birth, a BSN, a group or an incident, or hints at the matter.
fn assert_discreet(mail: &ReceivedMail) {
    let mut text = mail.all_decoded_text().to_lowercase();
    // The MIME boundary is 40 random letters and digits: it could spell anything.
    if let Some(boundary) = mail
        .parsed()
        .content_type()
        .and_then(|ct| ct.attribute("boundary"))
    {
        text = text.replace(&boundary.to_lowercase(), "");
    }
    for secret in personal_and_case_data() {
        assert!(
            !text.contains(&secret),
            "an email to {:?} holds personal or case data: a value of length {}",
            mail.rcpt_to,
            secret.len()
        );
    }
    for word in schoolsignal::delivery::templates::REVEALING_WORDS {
        assert!(
            !text.contains(word),
            "an email to {:?} holds the revealing word {word:?}",
            mail.rcpt_to
        );
    }
    // The footer names who sends it (the development defaults), in every part.
    for part in [mail.text_body(), mail.html_body()] {
        if part.is_empty() {
            continue;
        }
        for shown in ["Gemeente Voorbeeldstad", "020 000 0000"] {
            assert!(part.contains(shown), "{shown} in every part of the email");
        }
    }
}

// ---------- escalations ----------

/// The bodies of the escalation messages on `queue`: `expected` of them, and any
/// extra that shows up within [`SETTLE`].
async fn escalations(broker: &Broker, queue: &str, expected: usize) -> Vec<Value> {
    let mut messages = broker.take(queue, expected, WAIT).await;
    messages.extend(broker.take(queue, 10, SETTLE).await);
    messages
        .iter()
        .map(|m| {
            assert_eq!(m.delivery.routing_key.as_str(), ESCALATED);
            assert_eq!(
                m.delivery
                    .properties
                    .content_type()
                    .as_ref()
                    .map(|c| c.as_str()),
                Some("application/json")
            );
            let body = String::from_utf8(m.delivery.data.clone()).unwrap();
            for secret in personal_data() {
                assert!(
                    !body.contains(&secret),
                    "an escalation names a child: a value of length {}",
                    secret.len()
                );
            }
            serde_json::from_str(&body).unwrap()
        })
        .collect()
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

/// Checks an escalation against its notice; returns the notice id.
fn assert_escalation(pool: &Pool, v: &Value, level: &str) -> String {
    assert_eq!(v["schema"], ESCALATED);
    assert_eq!(v["level"], level);
    let id = v["notice_id"].as_str().unwrap();
    let notice = notice(pool, id);
    assert_eq!(v["incident_id"].as_str(), Some(notice.incident_id.as_str()));
    assert_eq!(v["child_index"].as_i64(), Some(notice.child_index as i64));
    assert_eq!(
        v["school"]["brin"].as_str(),
        Some(notice.school_brin.as_str())
    );
    let name = match notice.school_brin.as_str() {
        "12AB00" => REGENBOOG_NAME,
        "34CD01" => ANKER_NAME,
        other => panic!("unexpected school {other}"),
    };
    assert_eq!(v["school"]["name"].as_str(), Some(name));
    let due = match notice.school_brin.as_str() {
        "12AB00" => "2026-11-23T07:30:00Z", // 08:30 in Amsterdam
        _ => "2026-11-23T07:15:00Z",        // 08:15
    };
    assert_eq!(utc(v["due_at"].as_str().unwrap()), utc(due));
    assert!(
        notice.escalated_at.is_some(),
        "the notice is marked escalated"
    );
    id.to_string()
}

// ---------- the tests ----------

/// One event, one email: well formed, with a link whose token is stored only as a
/// hash, bound to the notice and the address.
async fn a_notice_arrives_as_one_email_with_a_link(backend: Backend) {
    let sink = SmtpSink::start().await;
    let app = spawn_mail(backend, &sink).await;
    app.broker.publish(&example("valid-basic.json")).await;

    let mails = mails_for(&sink, REGENBOOG, 1).await;
    assert_eq!(mails.len(), 1, "the coordinator receives the notice");
    eventually("the delivery recorded as sent", WAIT, || {
        count_deliveries(&app.pool, "notice", "coordinator", "sent") == 1
    })
    .await;
    tokio::time::sleep(SETTLE).await;
    assert_eq!(
        sink.received().len(),
        1,
        "exactly one email, to no one else"
    );

    let mail = &mails[0];
    assert_eq!(mail.rcpt_to, [REGENBOOG]);
    assert_eq!(mail.to_addresses(), [REGENBOOG]);
    assert_well_formed(mail);
    assert_discreet(mail);

    let rows = deliveries(&app.pool);
    assert_eq!(rows.len(), 1);
    let d = &rows[0];
    assert_eq!(
        (d.kind.as_str(), d.recipient.as_str(), d.state.as_str()),
        ("notice", "coordinator", "sent")
    );
    assert_eq!(d.attempts, 1);
    assert_eq!(d.sent_to.as_deref(), Some(REGENBOOG));
    assert_eq!(message_id(mail), d.message_id);

    let token = link_token(mail);
    assert_eq!(token.len(), 64, "256 random bits, hex");
    let tokens = tokens_of(&app.pool, &d.notice_id);
    assert_eq!(tokens, [(sha256_hex(&token), REGENBOOG.to_string())]);
    assert_ne!(tokens[0].0, token, "only the hash is stored");

    let n = notice(&app.pool, &d.notice_id);
    assert_eq!(n.status, "delivered");
    assert_eq!(n.incident_id, "2026-GV-004211");

    assert_no_personal_data(&captured_logs(), "email attempt");
    app.cleanup().await;
}

/// Siblings at two schools and another child: three emails, in the school's own
/// language, none of which shows anything about a child or the matter.
async fn emails_reveal_nothing(backend: Backend) {
    let sink = SmtpSink::start().await;
    let app = spawn_mail(backend, &sink).await;
    app.broker.publish(&example("valid-siblings.json")).await;
    app.broker.publish(&example("valid-basic.json")).await;

    let regenboog = mails_for(&sink, REGENBOOG, 2).await;
    let anker = mails_for(&sink, ANKER, 1).await;
    eventually("three notice emails recorded as sent", WAIT, || {
        count_deliveries(&app.pool, "notice", "coordinator", "sent") == 3
    })
    .await;
    tokio::time::sleep(SETTLE).await;
    assert_eq!(sink.received().len(), 3);
    assert_eq!((regenboog.len(), anker.len()), (2, 1));

    for mail in sink.received() {
        assert_well_formed(&mail);
        assert_discreet(&mail);
    }

    // Dutch for De Regenboog, due at 08:30; one link per notice.
    let mut tokens = BTreeSet::new();
    for mail in &regenboog {
        assert!(mail.subject().starts_with("Vertrouwelijk bericht"), "nl");
        assert!(mail.subject().contains(REGENBOOG_NAME));
        assert!(mail.html_body().contains("<html lang=\"nl\""));
        assert!(mail
            .text_body()
            .contains("maandag 23 november 2026 om 08:30"));
        tokens.insert(sha256_hex(&link_token(mail)));
    }
    assert_eq!(tokens.len(), 2, "each notice has its own link");
    // English for Het Anker, due at its own 08:15.
    let mail = &anker[0];
    assert!(mail.subject().starts_with("Confidential message"), "en");
    assert!(mail.subject().contains(ANKER_NAME));
    assert!(mail.html_body().contains("<html lang=\"en\""));
    assert!(mail
        .text_body()
        .contains("Monday 23 November 2026 at 08:15"));
    tokens.insert(sha256_hex(&link_token(mail)));

    // Each token belongs to the notice of its own school's child, and its address.
    for n in notices(&app.pool) {
        let address = if n.school_brin == "12AB00" {
            REGENBOOG
        } else {
            ANKER
        };
        let stored = tokens_of(&app.pool, &n.id);
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].1, address);
        assert!(tokens.contains(&stored[0].0));
    }

    assert_no_personal_data(&captured_logs(), "email attempt");
    app.cleanup().await;
}

/// Two 451s, then success: one email, three attempts, two retries.
async fn a_transient_failure_is_retried(backend: Backend) {
    let sink = SmtpSink::start().await;
    sink.script(REGENBOOG, 2, Reply::Transient);
    let app = spawn_mail(backend, &sink).await;
    app.broker.publish(&example("valid-basic.json")).await;

    let mails = mails_for(&sink, REGENBOOG, 1).await;
    assert_eq!(mails.len(), 1);
    eventually("the delivery recorded as sent", WAIT, || {
        count_deliveries(&app.pool, "notice", "coordinator", "sent") == 1
    })
    .await;
    wait_for_metric("the retries to be counted", WAIT, 2.0, || {
        app.metric("schoolsignal_delivery_retries_total")
    })
    .await;
    tokio::time::sleep(SETTLE).await;

    assert_eq!(sink.received().len(), 1, "exactly one email in the end");
    assert_eq!(sink.attempts(), 3, "two refused, one accepted");
    let rows = deliveries(&app.pool);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].attempts, 3);
    assert_eq!(message_id(&mails[0]), rows[0].message_id);
    assert!(
        rows[0]
            .last_error
            .as_deref()
            .is_none_or(|e| !e.contains('@') && !e.contains("scripted")),
        "an error is a code, never the server's words"
    );
    assert_eq!(app.metric("schoolsignal_delivery_retries_total").await, 2.0);
    assert_eq!(
        app.metric("schoolsignal_deliveries_total{state=\"sent\"}")
            .await,
        1.0
    );
    // The refused attempts' links were never delivered: only the last one is kept.
    assert_eq!(count_rows(&app.pool, "access_tokens"), 1);
    app.cleanup().await;
}

/// The coordinator's server refuses the address for good: the deputy gets the notice.
async fn a_permanent_failure_falls_back_to_the_deputy(backend: Backend) {
    let sink = SmtpSink::start().await;
    sink.refuse_recipient(REGENBOOG);
    let app = spawn_mail(backend, &sink).await;
    app.broker.publish(&example("valid-basic.json")).await;

    let mails = mails_for(&sink, REGENBOOG_DEPUTY, 1).await;
    assert_eq!(mails.len(), 1, "the deputy receives the notice");
    eventually("the deputy's delivery recorded as sent", WAIT, || {
        count_deliveries(&app.pool, "notice", "deputy", "sent") == 1
    })
    .await;
    tokio::time::sleep(SETTLE).await;
    assert_eq!(sink.received().len(), 1);
    assert!(sink.received_for(REGENBOOG).is_empty());

    let rows = deliveries(&app.pool);
    assert_eq!(rows.len(), 2);
    let coordinator = rows.iter().find(|d| d.recipient == "coordinator").unwrap();
    let deputy = rows.iter().find(|d| d.recipient == "deputy").unwrap();
    assert_eq!(coordinator.kind, "notice");
    assert_eq!(coordinator.state, "permanent_failure");
    assert_eq!(coordinator.attempts, 1, "a 5xx is not retried");
    assert!(coordinator
        .last_error
        .as_deref()
        .is_some_and(|e| !e.contains('@') && !e.contains("rejected")));
    assert_eq!(deputy.kind, "notice");
    assert_eq!(deputy.state, "sent");
    assert_eq!(deputy.sent_to.as_deref(), Some(REGENBOOG_DEPUTY));
    assert_eq!(deputy.notice_id, coordinator.notice_id);

    let mail = &mails[0];
    assert_well_formed(mail);
    assert_discreet(mail);
    assert_eq!(message_id(mail), deputy.message_id);
    assert!(mail.subject().starts_with("Vertrouwelijk bericht"));
    let token = link_token(mail);
    let tokens = tokens_of(&app.pool, &deputy.notice_id);
    assert!(
        tokens.contains(&(sha256_hex(&token), REGENBOOG_DEPUTY.to_string())),
        "the deputy's link is bound to the deputy's address"
    );
    assert_eq!(notice(&app.pool, &deputy.notice_id).status, "delivered");
    app.cleanup().await;
}

/// No one can be sent the notice: it is escalated as undeliverable, once, on a real
/// queue. Het Anker has no deputy; De Regenboog's deputy is refused too.
async fn an_undeliverable_notice_is_escalated(backend: Backend) {
    let sink = SmtpSink::start().await;
    for address in [REGENBOOG, REGENBOOG_DEPUTY, ANKER] {
        sink.refuse_recipient(address);
    }
    let app = spawn_mail(backend, &sink).await;
    let queue = app.broker.bind_outbound(ESCALATED).await;
    app.broker.publish(&example("valid-siblings.json")).await;
    app.broker.publish(&example("valid-basic.json")).await;

    let messages = escalations(&app.broker, &queue, 3).await;
    assert_eq!(messages.len(), 3, "one escalation per notice, no more");
    let escalated: BTreeSet<String> = messages
        .iter()
        .map(|v| assert_escalation(&app.pool, v, "undeliverable"))
        .collect();
    let all: BTreeSet<String> = notices(&app.pool).into_iter().map(|n| n.id).collect();
    assert_eq!(escalated, all);
    assert!(sink.received().is_empty());

    let rows = deliveries(&app.pool);
    assert_eq!(rows.len(), 5, "three coordinators and two deputies tried");
    assert!(rows
        .iter()
        .all(|d| d.kind == "notice" && d.state == "permanent_failure"));
    for n in notices(&app.pool) {
        let who: BTreeSet<&str> = rows
            .iter()
            .filter(|d| d.notice_id == n.id)
            .map(|d| d.recipient.as_str())
            .collect();
        let expected: BTreeSet<&str> = match n.school_brin.as_str() {
            "12AB00" => ["coordinator", "deputy"].into(),
            _ => ["coordinator"].into(),
        };
        assert_eq!(who, expected, "{}", n.school_brin);
        assert_eq!(n.status, "pending_delivery");
    }
    wait_for_metric("the escalations to be counted", WAIT, 3.0, || {
        app.metric("schoolsignal_escalations_total{level=\"undeliverable\"}")
    })
    .await;
    app.cleanup().await;
}

/// The mail server is away while 20 notices come in; when it is back, each email
/// arrives exactly once.
async fn emails_wait_out_a_mail_server_outage(backend: Backend) {
    let sink = SmtpSink::start().await;
    sink.pause().await;
    let app = spawn_mail(backend, &sink).await;
    let bodies: Vec<Vec<u8>> = (0..20).map(|n| generated_event(n, "OUT").1).collect();
    app.broker.publish_many(&bodies).await;

    eventually("20 emails tried while the server is away", WAIT, || {
        let rows = deliveries(&app.pool);
        rows.len() == 20 && rows.iter().all(|d| d.attempts >= 1 && d.state == "pending")
    })
    .await;
    tokio::time::sleep(SETTLE).await;
    assert!(sink.received().is_empty());
    assert_eq!(
        count_deliveries(&app.pool, "notice", "coordinator", "pending"),
        20
    );
    sink.resume().await;

    let mails = sink.wait_for(20, Duration::from_secs(60)).await;
    assert_eq!(mails.len(), 20, "every email arrives after the outage");
    eventually("20 deliveries recorded as sent", WAIT, || {
        count_deliveries(&app.pool, "notice", "coordinator", "sent") == 20
    })
    .await;
    tokio::time::sleep(SETTLE).await;
    let mails = sink.received();
    assert_eq!(mails.len(), 20, "each once");
    let received: BTreeSet<String> = mails.iter().map(message_id).collect();
    let recorded: BTreeSet<String> = deliveries(&app.pool)
        .into_iter()
        .map(|d| d.message_id)
        .collect();
    assert_eq!(received.len(), 20, "no email twice");
    assert_eq!(received, recorded);
    assert!(mails.iter().all(|m| m.rcpt_to == [REGENBOOG]));
    assert!(notices(&app.pool).iter().all(|n| n.status == "delivered"));
    app.cleanup().await;
}

/// No acknowledgement: an hour after the due time a reminder to the coordinator and
/// the deputy, three hours after it an escalation; each exactly once, also with two
/// services following the notices up at the same time.
async fn reminders_then_an_escalation_as_time_passes(backend: Backend) {
    let sink = SmtpSink::start().await;
    let app = spawn_mail(backend, &sink).await; // 07:00, due 08:30
    let queue = app.broker.bind_outbound(ESCALATED).await;
    app.broker.publish(&example("valid-basic.json")).await;
    let notice_mail = mails_for(&sink, REGENBOOG, 1).await.remove(0);
    eventually("the notice recorded as sent", WAIT, || {
        count_deliveries(&app.pool, "notice", "coordinator", "sent") == 1
    })
    .await;
    let notice_id = deliveries(&app.pool)[0].notice_id.clone();
    assert!(notice(&app.pool, &notice_id).reminded_at.is_none());

    let at = |now: &str| {
        let mut env = mail_env(&sink);
        env.push(("SCHOOLSIGNAL_NOW", now.to_string()));
        env
    };
    let replicas = match backend {
        Backend::Postgres => 2,
        Backend::Sqlite => 1,
    };

    // 09:31: an hour and a minute after the due time.
    let mut later = Vec::new();
    for _ in 0..replicas {
        later.push(app.spawn_replica(&at("2026-11-23T09:31:00+01:00")).await);
    }
    let coordinator = mails_for(&sink, REGENBOOG, 2).await;
    let deputy = mails_for(&sink, REGENBOOG_DEPUTY, 1).await;
    assert_eq!((coordinator.len(), deputy.len()), (2, 1), "both reminded");
    eventually("both reminders recorded as sent", WAIT, || {
        count_deliveries(&app.pool, "reminder", "coordinator", "sent") == 1
            && count_deliveries(&app.pool, "reminder", "deputy", "sent") == 1
    })
    .await;
    tokio::time::sleep(SETTLE).await; // three follow-up intervals
    assert_eq!(sink.received_for(REGENBOOG).len(), 2, "one reminder, once");
    assert_eq!(
        sink.received_for(REGENBOOG_DEPUTY).len(),
        1,
        "one reminder, once"
    );
    assert_eq!(deliveries(&app.pool).len(), 3);
    assert!(notice(&app.pool, &notice_id).reminded_at.is_some());
    let mut reminders_counted = 0.0;
    for r in &later {
        reminders_counted += r.metric("schoolsignal_reminders_total").await;
    }
    assert_eq!(
        reminders_counted, 1.0,
        "one notice reminded, by one service"
    );

    let reminders = [coordinator[1].clone(), deputy[0].clone()];
    let rows = deliveries(&app.pool);
    for (mail, address, recipient) in [
        (&reminders[0], REGENBOOG, "coordinator"),
        (&reminders[1], REGENBOOG_DEPUTY, "deputy"),
    ] {
        assert_well_formed(mail);
        assert_discreet(mail);
        assert_ne!(mail.subject(), notice_mail.subject(), "a reminder says so");
        assert!(mail.subject().contains(REGENBOOG_NAME));
        let row = rows
            .iter()
            .find(|d| d.kind == "reminder" && d.recipient == recipient)
            .unwrap();
        assert_eq!(message_id(mail), row.message_id);
        assert_eq!(row.notice_id, notice_id);
        assert_eq!(row.sent_to.as_deref(), Some(address));
        let token = link_token(mail);
        assert!(tokens_of(&app.pool, &notice_id).contains(&(sha256_hex(&token), address.into())));
    }
    assert_eq!(reminders[0].subject(), reminders[1].subject());
    assert!(
        app.broker
            .take(&queue, 1, Duration::from_secs(1))
            .await
            .is_empty(),
        "no escalation before three hours"
    );

    // 11:31: three hours and a minute after the due time.
    let mut latest = Vec::new();
    for _ in 0..replicas {
        latest.push(app.spawn_replica(&at("2026-11-23T11:31:00+01:00")).await);
    }
    let messages = escalations(&app.broker, &queue, 1).await;
    assert_eq!(messages.len(), 1, "exactly one escalation");
    assert_eq!(
        assert_escalation(&app.pool, &messages[0], "unacknowledged"),
        notice_id
    );
    let escalated_at = utc(messages[0]["escalated_at"].as_str().unwrap());
    assert!(
        escalated_at >= utc("2026-11-23T11:31:00+01:00"),
        "by the service clock"
    );
    assert!(escalated_at < utc("2026-11-23T11:41:00+01:00"));
    let mut escalations_counted = 0.0;
    for r in &latest {
        escalations_counted += r
            .metric("schoolsignal_escalations_total{level=\"unacknowledged\"}")
            .await;
    }
    assert_eq!(escalations_counted, 1.0);

    // Later follow-ups change nothing.
    tokio::time::sleep(SETTLE).await;
    assert!(app
        .broker
        .take(&queue, 1, Duration::from_secs(1))
        .await
        .is_empty());
    assert_eq!(sink.received().len(), 3, "the notice and two reminders");
    assert_eq!(deliveries(&app.pool).len(), 3);
    app.cleanup().await;
}

/// Withdrawn while the mail server is away: the email never leaves, and no "please
/// disregard" follows an email that was never sent.
async fn a_withdrawal_cancels_an_unsent_email(backend: Backend) {
    let sink = SmtpSink::start().await;
    sink.pause().await;
    let app = spawn_mail(backend, &sink).await;
    app.broker.publish(&example("valid-basic.json")).await;
    eventually(
        "the notice email tried while the server is away",
        WAIT,
        || {
            deliveries(&app.pool)
                .first()
                .is_some_and(|d| d.attempts >= 1 && d.state == "pending")
        },
    )
    .await;

    app.broker.publish(&example("valid-withdrawn.json")).await;
    eventually("the email cancelled", WAIT, || {
        count_deliveries(&app.pool, "notice", "coordinator", "cancelled") == 1
    })
    .await;
    let rows = deliveries(&app.pool);
    assert_eq!(notice(&app.pool, &rows[0].notice_id).status, "withdrawn");

    sink.resume().await;
    // Longer than the longest retry delay and the worker's poll.
    tokio::time::sleep(SETTLE + Duration::from_secs(2)).await;
    assert!(
        sink.received().is_empty(),
        "no notice email, no withdrawal email"
    );
    assert_eq!(sink.attempts(), 0);
    let rows = deliveries(&app.pool);
    assert_eq!(rows.len(), 1, "no withdrawal email queued");
    assert_eq!(rows[0].state, "cancelled");
    assert_eq!(
        app.metric("schoolsignal_deliveries_total{state=\"cancelled\"}")
            .await,
        1.0,
        "the cancelled email is counted"
    );
    app.cleanup().await;
}

/// Withdrawn after the email left: the coordinator is told to disregard it, in an
/// email without a link of its own.
async fn a_withdrawal_after_sending_says_please_disregard(backend: Backend) {
    let sink = SmtpSink::start().await;
    let app = spawn_mail(backend, &sink).await;
    app.broker.publish(&example("valid-basic.json")).await;
    let first = mails_for(&sink, REGENBOOG, 1).await.remove(0);
    eventually("the notice recorded as sent", WAIT, || {
        count_deliveries(&app.pool, "notice", "coordinator", "sent") == 1
    })
    .await;
    let notice_id = deliveries(&app.pool)[0].notice_id.clone();
    let tokens_before = tokens_of(&app.pool, &notice_id);
    assert_eq!(tokens_before.len(), 1);

    app.broker.publish(&example("valid-withdrawn.json")).await;
    let mails = mails_for(&sink, REGENBOOG, 2).await;
    assert_eq!(mails.len(), 2, "the coordinator is told");
    eventually("the withdrawal email recorded as sent", WAIT, || {
        count_deliveries(&app.pool, "withdrawal", "coordinator", "sent") == 1
    })
    .await;
    tokio::time::sleep(SETTLE).await;
    assert_eq!(sink.received().len(), 2, "no one else, nothing more");
    assert!(sink.received_for(REGENBOOG_DEPUTY).is_empty());

    let second = &mails[1];
    assert_well_formed(second);
    assert_discreet(second);
    assert_ne!(second.subject(), first.subject(), "not the notice again");
    assert!(second.subject().contains(REGENBOOG_NAME));
    assert!(
        token_in(&second.text_body()).is_none() && token_in(&second.html_body()).is_none(),
        "no link to the notice"
    );
    let row = deliveries(&app.pool)
        .into_iter()
        .find(|d| d.kind == "withdrawal")
        .unwrap();
    assert_eq!(message_id(second), row.message_id);
    assert_eq!(row.notice_id, notice_id);
    assert_eq!(row.sent_to.as_deref(), Some(REGENBOOG));
    assert_eq!(
        tokens_of(&app.pool, &notice_id),
        tokens_before,
        "no token for the withdrawal email"
    );
    assert_eq!(notice(&app.pool, &notice_id).status, "withdrawn");
    assert_eq!(deliveries(&app.pool).len(), 2);
    assert_no_personal_data(&captured_logs(), "email attempt");
    app.cleanup().await;
}

// ---------- giving up, stalls, session refusals ----------

/// (recipient, state, attempts, last error, expires_at, finished_at) of the notice
/// emails, in the order they were queued.
type Timed = (
    String,
    String,
    i32,
    Option<String>,
    NaiveDateTime,
    Option<NaiveDateTime>,
);

fn timed_deliveries(pool: &Pool) -> Vec<Timed> {
    use schoolsignal::db::schema::deliveries as d;
    let mut conn = pool.get().unwrap();
    d::table
        .filter(d::kind.eq("notice"))
        .order(d::id)
        .select((
            d::recipient,
            d::state,
            d::attempts,
            d::last_error,
            d::expires_at,
            d::finished_at,
        ))
        .load(&mut *conn)
        .unwrap()
}

/// An instant for `SCHOOLSIGNAL_NOW`: `at` (UTC) moved by `seconds`.
fn now_at(at: NaiveDateTime, seconds: i64) -> String {
    (at + chrono::Duration::seconds(seconds))
        .and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// [`mail_env`] for a service whose clock starts at `now` (a day or two on), whose
/// reminders and escalations for unacknowledged notices stay out of the way.
fn env_at(sink: &SmtpSink, now: String) -> Vec<(&'static str, String)> {
    let mut env = quiet_follow_up(mail_env(sink));
    env.push(("SCHOOLSIGNAL_NOW", now));
    env
}

/// No reminder for a week and no escalation for two: these tests travel days ahead.
fn quiet_follow_up(mut env: Vec<(&'static str, String)>) -> Vec<(&'static str, String)> {
    env.push((
        "SCHOOLSIGNAL_REMINDER_DELAY_MINUTES",
        (7 * 24 * 60).to_string(),
    ));
    env.push((
        "SCHOOLSIGNAL_ESCALATION_DELAY_MINUTES",
        (14 * 24 * 60).to_string(),
    ));
    env
}

/// Waits until an attempt of the email to `recipient` failed and it is still
/// pending; returns its row.
async fn tried_and_pending(pool: &Pool, recipient: &str) -> Timed {
    eventually("the email tried and pending", WAIT, || {
        timed_deliveries(pool)
            .iter()
            .any(|r| r.0 == recipient && r.1 == "pending" && r.3.is_some())
    })
    .await;
    timed_deliveries(pool)
        .into_iter()
        .find(|r| r.0 == recipient)
        .unwrap()
}

/// The coordinator's server answers 4xx for a whole day. The email is tried until it
/// expires, once more at the expiry itself rather than giving up a retry early; then
/// it ends `expired` and the deputy gets the notice.
async fn a_failing_email_expires_after_a_last_attempt_and_falls_back(backend: Backend) {
    let sink = SmtpSink::start().await;
    sink.script(REGENBOOG, 100_000, Reply::Transient);
    let app = TestApp::spawn_with(backend, &quiet_follow_up(mail_env(&sink))).await;
    let queue = app.broker.bind_outbound(ESCALATED).await;
    app.broker.publish(&example("valid-basic.json")).await;
    let (_, _, _, error, expires_at, _) = tried_and_pending(&app.pool, "coordinator").await;
    assert_eq!(error.as_deref(), Some("smtp 451"));

    // Five seconds before the email expires: its retries come every two seconds,
    // and the one that would fall after the expiry is made at the expiry instead.
    let later = app
        .spawn_replica(&env_at(&sink, now_at(expires_at, -5)))
        .await;
    let deputy = mails_for(&sink, REGENBOOG_DEPUTY, 1).await;
    assert_eq!(deputy.len(), 1, "the deputy gets the notice");
    assert_well_formed(&deputy[0]);
    assert_discreet(&deputy[0]);
    eventually("the deputy's email recorded as sent", WAIT, || {
        count_deliveries(&app.pool, "notice", "deputy", "sent") == 1
    })
    .await;
    let rows = timed_deliveries(&app.pool);
    let coordinator = &rows[0];
    assert_eq!(
        (coordinator.0.as_str(), coordinator.1.as_str()),
        ("coordinator", "expired")
    );
    assert_eq!(coordinator.3.as_deref(), Some("smtp 451"));
    let finished = coordinator.5.expect("an expired email has an end");
    assert!(
        finished >= coordinator.4,
        "given up at {finished}, before it expired at {}",
        coordinator.4
    );
    assert!(sink.received_for(REGENBOOG).is_empty());
    assert_eq!(
        later
            .metric("schoolsignal_deliveries_total{state=\"expired\"}")
            .await,
        1.0
    );
    assert!(
        app.broker.take(&queue, 1, SETTLE).await.is_empty(),
        "the deputy got it: no escalation"
    );
    app.cleanup().await;
}

/// Both the coordinator's and the deputy's emails get 4xx until each expires: the
/// notice is escalated as undeliverable, once.
async fn when_both_emails_expire_the_notice_is_escalated(backend: Backend) {
    let sink = SmtpSink::start().await;
    sink.script(REGENBOOG, 100_000, Reply::Transient);
    sink.script(REGENBOOG_DEPUTY, 100_000, Reply::Transient);
    let app = TestApp::spawn_with(backend, &quiet_follow_up(mail_env(&sink))).await;
    let queue = app.broker.bind_outbound(ESCALATED).await;
    app.broker.publish(&example("valid-basic.json")).await;
    let coordinator = tried_and_pending(&app.pool, "coordinator").await;

    let _next_day = app
        .spawn_replica(&env_at(&sink, now_at(coordinator.4, 60)))
        .await;
    let deputy = tried_and_pending(&app.pool, "deputy").await;
    assert_eq!(timed_deliveries(&app.pool)[0].1, "expired");
    assert!(
        app.broker.take(&queue, 1, SETTLE).await.is_empty(),
        "no escalation while the deputy's email is still being tried"
    );

    let day_after = app
        .spawn_replica(&env_at(&sink, now_at(deputy.4, 60)))
        .await;
    let messages = escalations(&app.broker, &queue, 1).await;
    assert_eq!(messages.len(), 1, "one escalation");
    assert_escalation(&app.pool, &messages[0], "undeliverable");
    let rows = timed_deliveries(&app.pool);
    let states: Vec<(&str, &str)> = rows.iter().map(|r| (r.0.as_str(), r.1.as_str())).collect();
    assert_eq!(states, [("coordinator", "expired"), ("deputy", "expired")]);
    assert!(sink.received().is_empty());
    assert_eq!(
        day_after
            .metric("schoolsignal_escalations_total{level=\"undeliverable\"}")
            .await,
        1.0
    );
    app.cleanup().await;
}

/// The server accepts connections and answers nothing: the send times out, which is
/// transient; when the server answers again, the email arrives once. The metrics show
/// the waiting email's age, and the time from event to email once it went.
async fn a_stalled_server_times_out_and_the_email_is_retried(backend: Backend) {
    let sink = SmtpSink::start().await;
    sink.set_stalled(true);
    let mut env = mail_env(&sink);
    env.push(("SCHOOLSIGNAL_MAIL_TIMEOUT_SECONDS", "1".to_string()));
    let app = TestApp::spawn_with(backend, &env).await;
    app.broker.publish(&example("valid-basic.json")).await;
    let row = tried_and_pending(&app.pool, "coordinator").await;
    assert_eq!(row.3.as_deref(), Some("timeout"));
    assert!(sink.received().is_empty());
    wait_for_metric("the waiting email's age to be shown", WAIT, 1.0, || {
        app.metric("schoolsignal_oldest_pending_delivery_seconds")
    })
    .await;
    assert_eq!(
        app.metric("schoolsignal_event_to_email_seconds_count")
            .await,
        0.0
    );

    sink.set_stalled(false);
    let mails = mails_for(&sink, REGENBOOG, 1).await;
    assert_eq!(mails.len(), 1, "delivered once the server answers");
    eventually("the email recorded as sent", WAIT, || {
        count_deliveries(&app.pool, "notice", "coordinator", "sent") == 1
    })
    .await;
    tokio::time::sleep(SETTLE).await;
    assert_eq!(sink.received().len(), 1, "once");
    assert!(timed_deliveries(&app.pool)[0].2 >= 2, "tried again");
    assert_eq!(
        app.metric("schoolsignal_event_to_email_seconds_count")
            .await,
        1.0
    );
    assert!(app.metric("schoolsignal_event_to_email_seconds_sum").await > 0.0);
    assert_eq!(
        app.metric("schoolsignal_oldest_pending_delivery_seconds")
            .await,
        0.0
    );
    assert!(app.metric("schoolsignal_delivery_retries_total").await >= 1.0);
    app.cleanup().await;
}

/// The server wants a login we do not give: `530` to MAIL FROM. That is the
/// configuration's fault, not the recipient's: the email is retried, not failed for
/// good, no deputy is bothered and nothing is escalated; once the server takes mail
/// again, it arrives.
async fn a_session_refusal_is_retried_not_permanent(backend: Backend) {
    let sink = SmtpSink::start().await;
    sink.set_require_auth(true);
    let app = spawn_mail(backend, &sink).await;
    let queue = app.broker.bind_outbound(ESCALATED).await;
    app.broker.publish(&example("valid-basic.json")).await;
    eventually("the email tried twice and pending", WAIT, || {
        timed_deliveries(&app.pool)
            .iter()
            .any(|r| r.1 == "pending" && r.2 >= 2)
    })
    .await;
    let rows = timed_deliveries(&app.pool);
    assert_eq!(rows.len(), 1, "no deputy email");
    assert_eq!(rows[0].3.as_deref(), Some("smtp 530"));
    assert!(
        app.metric("schoolsignal_mail_session_errors_total{code=\"530\"}")
            .await
            >= 2.0
    );
    assert_eq!(
        app.metric("schoolsignal_deliveries_total{state=\"permanent_failure\"}")
            .await,
        0.0
    );
    assert!(captured_logs().contains("the mail server refused the session"));

    sink.set_require_auth(false);
    let mails = mails_for(&sink, REGENBOOG, 1).await;
    assert_eq!(mails.len(), 1);
    eventually("the email recorded as sent", WAIT, || {
        count_deliveries(&app.pool, "notice", "coordinator", "sent") == 1
    })
    .await;
    assert!(app.broker.take(&queue, 1, SETTLE).await.is_empty());
    assert!(sink.received_for(REGENBOOG_DEPUTY).is_empty());
    app.cleanup().await;
}

/// Without SMTP_URL the service says so at startup and writes each email as
/// `<message-id>.eml` in SCHOOLSIGNAL_MAIL_DIR: the whole notice, multipart, with its
/// link, and nothing about the child.
async fn without_smtp_url_emails_are_written_as_files(backend: Backend) {
    let public_url = [("SCHOOLSIGNAL_PUBLIC_URL", PUBLIC_URL.to_string())];
    let app = TestApp::spawn_with(backend, &public_url).await;
    let dir = mail_dir(&app.prefix());
    let (status, _) = app.post_event(&example("valid-basic.json")).await;
    assert!(status < 300, "the event is taken: {status}");
    eventually("the email recorded as sent", WAIT, || {
        count_deliveries(&app.pool, "notice", "coordinator", "sent") == 1
    })
    .await;
    let row = deliveries(&app.pool).remove(0);
    let name = format!(
        "{}.eml",
        row.message_id.trim_start_matches('<').trim_end_matches('>')
    );
    let files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, [name.as_str()], "one file, named by the Message-ID");
    let mail = ReceivedMail {
        mail_from: String::new(),
        rcpt_to: vec![REGENBOOG.into()],
        data: std::fs::read(dir.join(&name)).unwrap(),
        accepted_at: std::time::Instant::now(),
    };
    assert_eq!(mail.to_addresses(), [REGENBOOG]);
    assert_eq!(message_id(&mail), row.message_id);
    assert_well_formed(&mail);
    assert_discreet(&mail);
    let token = link_token(&mail);
    assert_eq!(
        tokens_of(&app.pool, &row.notice_id),
        [(sha256_hex(&token), REGENBOOG.to_string())]
    );
    assert!(
        captured_logs().contains("SMTP_URL is not set"),
        "the startup warning"
    );
    let _ = std::fs::remove_dir_all(&dir);
    app.cleanup().await;
}

/// A worker's lease ran out while its send was under way; meanwhile the notice was
/// withdrawn and another claim cancelled the email. The send then succeeds: the email
/// is recorded as sent, because it was, and the "please disregard" email follows.
async fn a_send_that_outlived_its_claim_is_recorded_and_disregarded(backend: Backend) {
    use schoolsignal::delivery::queue::{self, Attempt, Finished, Policy};
    use schoolsignal::notices::lifecycle::Lifecycle;
    let sink = SmtpSink::start().await;
    sink.pause().await;
    // The service tries once, then not again for an hour by its clock.
    let mut env = mail_env(&sink);
    env.push(("SCHOOLSIGNAL_MAIL_RETRY_BASE_MS", "3600000".to_string()));
    env.push(("SCHOOLSIGNAL_MAIL_RETRY_MAX_SECONDS", "3600".to_string()));
    let app = TestApp::spawn_with(backend, &env).await;
    app.broker.publish(&example("valid-basic.json")).await;
    let row = tried_and_pending(&app.pool, "coordinator").await;
    assert_eq!(row.3.as_deref(), Some("connection"));

    // A worker of its own, two hours on: it claims the email with a one-minute lease.
    let policy = Policy {
        give_up_after: chrono::Duration::hours(24),
        message_domain: "localhost".into(),
        link_valid_for: chrono::Duration::days(7),
    };
    let notices = Lifecycle {
        policy: policy.clone(),
        exchange: app.broker.names.outbound_exchange.clone(),
    };
    let t0 = utc(NOW) + chrono::Duration::hours(2);
    let lease = chrono::Duration::minutes(1);
    let mut conn = app.pool.get().unwrap();
    let first = queue::claim(&mut conn, &notices, &policy, t0, lease, 10).unwrap();
    assert_eq!((first.claimed.len(), first.cancelled), (1, 0));

    // Withdrawn while that send is on its way; the lease runs out, and the next
    // claim finds the notice withdrawn and cancels the email.
    app.broker.publish(&example("valid-withdrawn.json")).await;
    let notice_id = first.claimed[0].notice_id.clone();
    eventually("the notice withdrawn", WAIT, || {
        notice(&app.pool, &notice_id).status == "withdrawn"
    })
    .await;
    let second = queue::claim(&mut conn, &notices, &policy, t0 + lease * 2, lease, 10).unwrap();
    assert_eq!((second.claimed.len(), second.cancelled), (0, 1));
    assert_eq!(
        count_deliveries(&app.pool, "notice", "coordinator", "cancelled"),
        1
    );

    // The first send succeeds after all; the server is back for what follows.
    sink.resume().await;
    let done = [Finished {
        email: &first.claimed[0],
        attempt: Attempt::Sent,
    }];
    // Recorded at the service's time, so that the service sends what follows.
    let summary = queue::finish(&mut conn, &notices, &policy, &done, utc(NOW)).unwrap();
    drop(conn);
    assert_eq!(summary.sent, 1);
    assert_eq!(
        count_deliveries(&app.pool, "notice", "coordinator", "sent"),
        1,
        "recorded as sent"
    );
    let withdrawal = deliveries(&app.pool)
        .into_iter()
        .find(|d| d.kind == "withdrawal")
        .expect("a \"please disregard\" email is queued");
    assert_eq!(withdrawal.recipient, "coordinator");

    // The service sends it.
    let mails = mails_for(&sink, REGENBOOG, 1).await;
    assert_eq!(mails.len(), 1, "please disregard");
    assert_eq!(message_id(&mails[0]), withdrawal.message_id);
    assert!(token_in(&mails[0].text_body()).is_none());
    assert_discreet(&mails[0]);
    app.cleanup().await;
}

backend_tests!(
    a_notice_arrives_as_one_email_with_a_link,
    emails_reveal_nothing,
    a_transient_failure_is_retried,
    a_permanent_failure_falls_back_to_the_deputy,
    an_undeliverable_notice_is_escalated,
    emails_wait_out_a_mail_server_outage,
    reminders_then_an_escalation_as_time_passes,
    a_withdrawal_cancels_an_unsent_email,
    a_withdrawal_after_sending_says_please_disregard,
    a_failing_email_expires_after_a_last_attempt_and_falls_back,
    when_both_emails_expire_the_notice_is_escalated,
    a_stalled_server_times_out_and_the_email_is_retried,
    a_session_refusal_is_retried_not_permanent,
    without_smtp_url_emails_are_written_as_files,
    a_send_that_outlived_its_claim_is_recorded_and_disregarded,
);

/// The discretion check itself: it must catch a date of birth in a body, a
/// revealing word hidden in an encoded subject and a missing sender, and pass a
/// clean email.
#[test]
fn the_discretion_check_catches_leaks() {
    let mail = |subject: &str, body: &str| ReceivedMail {
        mail_from: "noreply@localhost".into(),
        rcpt_to: vec![REGENBOOG.into()],
        data: format!(
            "From: noreply@localhost\r\nTo: {REGENBOOG}\r\nSubject: {subject}\r\n\
             MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
        )
        .into_bytes(),
        accepted_at: std::time::Instant::now(),
    };
    let passes = |m: &ReceivedMail| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| assert_discreet(m))).is_ok()
    };
    let footer = "Verzonden door Gemeente Voorbeeldstad, telefoon 020 000 0000.";
    assert!(passes(&mail(
        "Vertrouwelijk bericht voor OBS De Regenboog",
        &format!("Beste collega, open het bericht.\r\n{footer}")
    )));
    assert!(!passes(&mail(
        "Vertrouwelijk bericht voor OBS De Regenboog",
        "Beste collega, open het bericht."
    )));
    assert!(!passes(&mail(
        "Vertrouwelijk bericht",
        "Geboren 12-04-2016."
    )));
    assert!(!passes(&mail("Vertrouwelijk bericht", "Over Sanne.")));
    assert!(!passes(&mail("Vertrouwelijk bericht", "In groep 5.")));
    // "Bericht van de politie", Q-encoded: only the decoded text shows the word.
    assert!(!passes(&mail(
        "=?utf-8?q?Bericht_van_de_p=6Flitie?=",
        "Hallo."
    )));
}
