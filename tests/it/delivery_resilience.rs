//! The email worker under failure: a hard kill while sending, and two workers on one
//! PostgreSQL database. Real service processes, a real SMTP sink, real RabbitMQ.

use crate::support::*;
use smtp_sink::SmtpSink;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(180);
/// Emails on their way at once, per process.
const CONCURRENCY: usize = 4;

struct Setup {
    _db: TestDb,
    pool: schoolsignal::db::Pool,
    env: Vec<(String, String)>,
    broker: Broker,
    sink: SmtpSink,
}

async fn setup(backend: Backend) -> Setup {
    setup_with_slots(backend, CONCURRENCY).await
}

async fn setup_with_slots(backend: Backend, slots: usize) -> Setup {
    let db = TestDb::create(backend);
    let pool = db.pool();
    seed(&pool);
    let sink = SmtpSink::start().await;
    let prefix = format!("t{}.", unique());
    let mut env = service_env(&db.url, &prefix, &amqp_url());
    let extra = [
        ("SMTP_URL", format!("{}?tls=none", sink.url())),
        ("SCHOOLSIGNAL_MAIL_CONCURRENCY", slots.to_string()),
        ("SCHOOLSIGNAL_MAIL_TIMEOUT_SECONDS", "2".into()),
        // A killed worker's claims run out quickly, so the test need not wait long.
        ("SCHOOLSIGNAL_MAIL_LEASE_SECONDS", "4".into()),
        ("SCHOOLSIGNAL_MAIL_RETRY_BASE_MS", "200".into()),
    ];
    env.extend(extra.map(|(k, v)| (k.to_string(), v)));
    let names = schoolsignal::config::AmqpNames::with_prefix(&prefix);
    let broker = Broker::connect(&amqp_url(), names).await;
    Setup {
        _db: db,
        pool,
        env,
        broker,
        sink,
    }
}

/// The Message-IDs the database holds for the notice emails.
fn queued_message_ids(pool: &schoolsignal::db::Pool) -> HashSet<String> {
    use diesel::prelude::*;
    use schoolsignal::db::schema::deliveries::dsl::*;
    let mut conn = pool.get().unwrap();
    deliveries
        .select(message_id)
        .load::<String>(&mut *conn)
        .unwrap()
        .into_iter()
        .collect()
}

fn sent_count(pool: &schoolsignal::db::Pool) -> i64 {
    use diesel::prelude::*;
    use schoolsignal::db::schema::deliveries::dsl::*;
    let mut conn = pool.get().unwrap();
    deliveries
        .filter(state.eq("sent"))
        .count()
        .get_result(&mut *conn)
        .unwrap()
}

/// How often the sink accepted each Message-ID.
fn copies(sink: &SmtpSink) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for mail in sink.received() {
        let id = mail
            .header("Message-ID")
            .expect("every email has a Message-ID");
        *seen.entry(id).or_insert(0) += 1;
    }
    seen
}

backend_tests!(
    hard_kill_while_sending_500,
    hard_kill_with_one_send_slot,
    sigterm_finishes_the_work_in_hand
);

async fn hard_kill_while_sending_500(backend: Backend) {
    hard_kill_while_sending(backend, CONCURRENCY).await
}

/// With one send slot (`SCHOOLSIGNAL_MAIL_CONCURRENCY=1`) each kill repeats at most
/// one email: the bound, bought with throughput.
async fn hard_kill_with_one_send_slot(backend: Backend) {
    hard_kill_while_sending(backend, 1).await
}

/// SIGKILL twice while 500 notices are being sent. SMTP has no idempotency: an email
/// whose server accepted it but whose sent mark was not yet committed at the kill is
/// sent again after the restart. A send slot takes its next email only after its mark
/// is committed, so a kill can repeat at most the emails in its slots at that instant.
/// Hence: no email is lost; none arrives more than once per kill plus once; and all
/// the repeats together are at most kills × slots.
async fn hard_kill_while_sending(backend: Backend, slots: usize) {
    let s = setup_with_slots(backend, slots).await;
    let bodies: Vec<Vec<u8>> = (0..500).map(|n| generated_event(n, "MK").1).collect();
    s.broker.publish_many(&bodies).await;
    let name = format!("mailkill-{}", unique());
    let kills = 2;
    for target in [100, 300] {
        let mut service = ServiceProcess::start(&s.env, &name);
        eventually("emails going out", LONG, || {
            s.sink.accepted_count() >= target
        })
        .await;
        service.kill9();
        eprintln!(
            "killed with {} emails accepted, {} recorded as sent",
            s.sink.accepted_count(),
            sent_count(&s.pool)
        );
    }
    let survivor = ServiceProcess::start(&s.env, &name);
    eventually("every email sent", LONG, || sent_count(&s.pool) == 500).await;

    let queued = queued_message_ids(&s.pool);
    assert_eq!(queued.len(), 500, "one email per notice");
    let copies = copies(&s.sink);
    let arrived: HashSet<String> = copies.keys().cloned().collect();
    assert_eq!(
        arrived, queued,
        "no email lost, and none that was not queued"
    );
    let repeated: usize = copies.values().map(|n| n - 1).sum();
    let most = copies.values().copied().max().unwrap_or(0);
    eprintln!(
        "{backend:?}: {repeated} duplicates after {kills} kills with {slots} slots; \
         at most {most} copies of one email"
    );
    assert!(
        most <= 1 + kills,
        "an email arrived {most} times: more than once per kill"
    );
    assert!(
        repeated <= kills * slots,
        "{repeated} duplicates: more than the {slots} slots in flight per kill"
    );
    assert_no_personal_data(&survivor.logs(), "email attempt");
    drop(survivor);
    s.broker.cleanup().await;
}

/// SIGTERM while 1,000 emails go out, then a second process. The first finishes what
/// it holds: it exits cleanly, holds no email any more, and recorded every email the
/// server accepted. The lease is 10 minutes, so the second process can send the emails
/// the first claimed but did not start, well within the wait below, only because they
/// were given back. Every event is decided once and every email arrives exactly once:
/// unlike a kill, a stop repeats nothing.
async fn sigterm_finishes_the_work_in_hand(backend: Backend) {
    let mut s = setup(backend).await;
    s.env
        .push(("SCHOOLSIGNAL_MAIL_LEASE_SECONDS".into(), "600".into()));
    // Each SMTP reply waits, so that sends are on their way when the signal comes.
    s.sink.set_reply_delay(Duration::from_millis(20));
    let bodies: Vec<Vec<u8>> = (0..1000).map(|n| generated_event(n, "TERM").1).collect();
    s.broker.publish_many(&bodies).await;
    let name = format!("sigterm-{}", unique());
    let mut first = ServiceProcess::start(&s.env, &name);
    eventually("emails going out", LONG, || s.sink.accepted_count() >= 20).await;
    let status = first.terminate(Duration::from_secs(90));
    assert!(status.success(), "exit on SIGTERM: {status}");
    let held = count_rows(&s.pool, "deliveries WHERE lease_until IS NOT NULL");
    assert_eq!(
        held, 0,
        "a stopped worker gives back every email it claimed"
    );
    assert_eq!(
        sent_count(&s.pool) as usize,
        s.sink.accepted_count(),
        "every email the server accepted is recorded as sent"
    );
    let stopped_at = s.sink.accepted_count();

    let mut second = ServiceProcess::start(&s.env, &name);
    eventually("every email sent", LONG, || sent_count(&s.pool) == 1000).await;
    assert_eq!(count_rows(&s.pool, "inbox_events"), 1000);
    assert_eq!(
        count_rows(&s.pool, "decisions"),
        1000,
        "one decision per event"
    );
    assert_eq!(s.broker.message_count(&s.broker.names.queue).await, 0);
    let copies = copies(&s.sink);
    let arrived: HashSet<String> = copies.keys().cloned().collect();
    assert_eq!(arrived, queued_message_ids(&s.pool), "no email lost");
    let repeated: Vec<_> = copies.values().filter(|n| **n > 1).collect();
    assert!(repeated.is_empty(), "{} emails sent twice", repeated.len());
    eprintln!("{backend:?}: stopped with {stopped_at} of 1000 emails sent");

    let status = second.terminate(Duration::from_secs(90));
    assert!(status.success(), "exit on SIGTERM when idle: {status}");
    assert_no_personal_data(&(first.logs() + &second.logs()), "stopping");
    drop((first, second));
    s.broker.cleanup().await;
}

/// Two worker processes on one PostgreSQL database send each email exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_send_each_email_once() {
    let s = setup(Backend::Postgres).await;
    let workers: Vec<ServiceProcess> = (0..2)
        .map(|i| ServiceProcess::start(&s.env, &format!("mailer{i}-{}", unique())))
        .collect();
    for w in &workers {
        w.wait_ready(LONG).await;
    }
    let bodies: Vec<Vec<u8>> = (0..400).map(|n| generated_event(n, "TW").1).collect();
    s.broker.publish_many(&bodies).await;
    eventually("every email sent", LONG, || sent_count(&s.pool) == 400).await;
    // Anything sent twice would arrive within the lease; wait past it.
    tokio::time::sleep(Duration::from_secs(5)).await;

    let copies = copies(&s.sink);
    assert_eq!(copies.len(), 400);
    assert!(copies.values().all(|n| *n == 1), "an email was sent twice");
    assert_eq!(
        copies.keys().cloned().collect::<HashSet<_>>(),
        queued_message_ids(&s.pool)
    );
    let sent_by: Vec<f64> = futures_util::future::join_all(
        workers
            .iter()
            .map(|w| w.metric("schoolsignal_deliveries_total{state=\"sent\"}")),
    )
    .await;
    eprintln!("sent per worker: {sent_by:?}");
    assert_eq!(sent_by.iter().sum::<f64>(), 400.0);
    drop(workers);
    s.broker.cleanup().await;
}

/// A slow mail server: each reply comes 250 ms late, so one send takes over a second
/// and a claim of four emails outlasts its four-second lease. (On the code before
/// the fix this test saw two emails sent twice.) Two worker processes on
/// one PostgreSQL database still send each email exactly once: a worker renews the
/// lease of an email right before sending it, and leaves it alone when the other
/// worker took it over meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_server_does_not_make_two_workers_send_twice() {
    let mut s = setup(Backend::Postgres).await;
    s.sink.set_reply_delay(Duration::from_millis(250));
    let slow = [
        // One slot: a claim takes four emails, sent one after another.
        ("SCHOOLSIGNAL_MAIL_CONCURRENCY", "1"),
        // A whole send (six replies on a new connection) takes 1.5 s.
        ("SCHOOLSIGNAL_MAIL_TIMEOUT_SECONDS", "2"),
        ("SCHOOLSIGNAL_MAIL_LEASE_SECONDS", "4"),
    ];
    s.env
        .extend(slow.map(|(k, v)| (k.to_string(), v.to_string())));
    let emails = 12;
    let first = ServiceProcess::start(&s.env, &format!("slow0-{}", unique()));
    first.wait_ready(LONG).await;
    let bodies: Vec<Vec<u8>> = (0..emails).map(|n| generated_event(n, "SL").1).collect();
    s.broker.publish_many(&bodies).await;
    // The second worker comes while the first is inside its first claim.
    eventually("the first email sent", LONG, || {
        s.sink.accepted_count() >= 1
    })
    .await;
    let second = ServiceProcess::start(&s.env, &format!("slow1-{}", unique()));
    eventually("every email sent", LONG, || {
        sent_count(&s.pool) == emails as i64
    })
    .await;
    // Anything sent twice would be sent within a lease and a send: wait past both.
    tokio::time::sleep(Duration::from_secs(8)).await;

    let copies = copies(&s.sink);
    let twice: Vec<usize> = copies.values().copied().filter(|n| *n > 1).collect();
    eprintln!(
        "{} emails accepted for {emails}; copies above one: {twice:?}",
        s.sink.accepted_count()
    );
    assert_eq!(copies.len(), emails, "every email arrived");
    assert!(twice.is_empty(), "an email was sent twice: {twice:?}");
    assert_eq!(
        copies.keys().cloned().collect::<HashSet<_>>(),
        queued_message_ids(&s.pool)
    );
    let taken_over = [&first, &second]
        .iter()
        .map(|w| w.logs().matches("taken over by another claim").count())
        .sum::<usize>();
    let renewed_logs = first.logs() + &second.logs();
    eprintln!("emails left to the other worker: {taken_over}");
    assert_no_personal_data(&renewed_logs, "email attempt");
    drop((first, second));
    s.broker.cleanup().await;
}
