//! Intake and delivery benchmark, against a real RabbitMQ, for PostgreSQL and SQLite.
//! Not a test: it asserts nothing about speed.
//!
//!     cargo bench --bench intake     # BENCH_EVENTS=10000, BENCH_EMAILS=2000 by default
//!
//! Intake: publishes BENCH_EVENTS events to the release service, waits until every one
//! is decided, and prints events per second, publish→commit latency and peak RSS.
//! Emails go to `.eml` files meanwhile (no SMTP_URL), as in development. Commit times
//! are observed by polling the inbox row count every 2 ms. One service process
//! consumes one FIFO queue, so the n-th commit is the n-th published event.
//!
//! End to end: the same with SMTP_URL pointing at an SMTP sink in this process;
//! BENCH_EMAILS events, each making one notice email to the coordinator, and the run
//! ends when the sink has accepted them all. Prints emails per second, publish→accepted
//! latency and peak RSS, next to the sink's own raw rate (a lettre client in this
//! process sending straight to it) as the reference for the target.
//! BENCH_MAIL_CONCURRENCY, when set, becomes the service's SCHOOLSIGNAL_MAIL_CONCURRENCY.

#[path = "../tests/it/support/mod.rs"]
mod support;

use futures_util::StreamExt;
use lettre::message::{MultiPart, SinglePart};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use smtp_sink::SmtpSink;
use std::time::{Duration, Instant};
use support::*;

/// Every generated event's child is enrolled at 12AB00, whose coordinator this is.
const COORDINATOR: &str = "zorg@regenboog.example.nl";
/// Concurrent senders (and pooled connections) of the raw sink reference.
const RAW_SENDERS: usize = 16;
/// The delivery target: this many emails per second, or 80% of the sink's raw rate if
/// that is lower.
const TARGET_EMAILS_PER_S: f64 = 1000.0;
/// The offered rate of the paced end-to-end run.
const PACED_EMAILS_PER_S: f64 = 500.0;

fn env_number(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let events = env_number("BENCH_EVENTS", 10_000);
    let emails = env_number("BENCH_EMAILS", 2_000);
    let mail_concurrency = std::env::var("BENCH_MAIL_CONCURRENCY").ok();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if std::env::var("BENCH_COMPARE_SEALING").is_ok_and(|v| v == "1") {
        return compare_sealing(&rt, events);
    }
    println!(
        "schoolsignal benchmark: {events} events per intake run, {emails} per end-to-end run, {} cores",
        num_cpus()
    );

    println!("{}", postgres_durability());
    println!("\nintake (emails written as .eml files)");
    println!(
        "{:<10} {:<10} {:>10} {:>12} {:>12} {:>14}",
        "backend", "load", "events/s", "p50 ms", "p99 ms", "peak RSS MiB"
    );
    let mut intake_rates = Vec::new();
    for backend in [Backend::Postgres, Backend::Sqlite] {
        intake_rates.push((backend, rt.block_on(intake(backend, events))));
    }
    for (backend, rate) in intake_rates {
        if backend == Backend::Postgres {
            println!(
                "  target: >= {TARGET_EVENTS_PER_S:.0} events/s on PostgreSQL at full load: {rate:.0}/s, {}",
                if rate >= TARGET_EVENTS_PER_S { "met" } else { "NOT met" }
            );
        }
    }

    println!(
        "\nend to end: publish → SMTP sink accepted, mail concurrency {}",
        mail_concurrency.as_deref().unwrap_or("the default (32)")
    );
    println!(
        "{:<10} {:<10} {:>10} {:>14} {:>12} {:>12} {:>12} {:>14}",
        "backend",
        "load",
        "emails/s",
        "accepting/s",
        "p50 ms",
        "p99 ms",
        "sink raw/s",
        "peak RSS MiB"
    );
    let mut verdicts = Vec::new();
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let (full, raw) = rt.block_on(end_to_end(backend, emails, mail_concurrency.as_deref()));
        verdicts.push((backend, full, raw));
    }
    println!(
        "\ntarget: >= {TARGET_EMAILS_PER_S:.0} emails/s or 80% of the sink's raw rate if that is lower"
    );
    for (backend, rate, raw) in verdicts {
        let target = TARGET_EMAILS_PER_S.min(0.8 * raw);
        println!(
            "  {:<10} {rate:>6.0} emails/s end to end at full load, target {target:.0}/s (sink raw {raw:.0}/s): {}",
            name(backend),
            if rate >= target { "met" } else { "NOT met" }
        );
    }
}

/// Intake at full speed with personal data sealed and unsealed
/// (`SCHOOLSIGNAL_UNSEALED_FOR_BENCHMARK`), alternating, twice each per backend, in
/// one run: what sealing costs in events/s and in the service's CPU per event.
fn compare_sealing(rt: &tokio::runtime::Runtime, n: usize) {
    println!(
        "sealing cost: intake at full speed, {n} events per pass, {} cores",
        num_cpus()
    );
    println!("{}", postgres_durability());
    println!(
        "{:<10} {:<10} {:>10} {:>24}",
        "backend", "data", "events/s", "service CPU ms/1000 ev"
    );
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let mut sums = [(0.0, 0.0); 2];
        for _round in 0..2 {
            for (i, unsealed) in [false, true].into_iter().enumerate() {
                let (rate, cpu) = rt.block_on(full_speed(backend, n, unsealed));
                let label = if unsealed { "unsealed" } else { "sealed" };
                println!("{:<10} {label:<10} {rate:>10.0} {cpu:>24.1}", name(backend));
                sums[i].0 += rate;
                sums[i].1 += cpu;
            }
        }
        let [(sealed_rate, sealed_cpu), (clear_rate, clear_cpu)] = sums;
        println!(
            "  {}: sealed/unsealed events/s {:.3}, service CPU per event {:.3} (target: lose at most 10%)",
            name(backend),
            sealed_rate / clear_rate,
            sealed_cpu / clear_cpu
        );
        let work = sealing_work_ms_per_thousand();
        println!(
            "  {}: the sealing itself, measured alone: {work:.2} ms of CPU per 1,000 events, \
             {:.1}% of the sealed service's {:.1} ms",
            name(backend),
            100.0 * work / (sealed_cpu / 2.0),
            sealed_cpu / 2.0
        );
    }
}

/// The CPU an event's sealing takes, without the rest of the service: what intake
/// adds per notified child (four fields sealed, the registry's group opened),
/// repeated in this process. Work per event, steadier than a rate on a busy machine.
fn sealing_work_ms_per_thousand() -> f64 {
    use schoolsignal::sealing::{columns, Keyring};
    let config = schoolsignal::config::keys_from(schoolsignal::config::DEV_DATA_KEYS).unwrap();
    let keys = Keyring::new(&config);
    let group = keys.seal(columns::ENROLLMENT_GROUP.at("hash:12AB00"), "groep 5");
    let rounds = 20_000;
    let started = std::time::Instant::now();
    for i in 0..rounds {
        let id = format!("notice-{i}");
        for (column, value) in [
            (columns::GIVEN_NAME, "Sanne"),
            (columns::FAMILY_NAME, "de Vries"),
            (columns::DATE_OF_BIRTH, "2016-04-12"),
            (columns::GROUP, "groep 5"),
        ] {
            std::hint::black_box(keys.seal(column.at(&id), value));
        }
        let place = columns::ENROLLMENT_GROUP.at("hash:12AB00");
        std::hint::black_box(keys.open(place, &group).unwrap());
    }
    1000.0 * 1000.0 * started.elapsed().as_secs_f64() / rounds as f64
}

/// One full-speed intake pass on a fresh database: events/s, and the service's CPU
/// milliseconds per 1,000 events.
async fn full_speed(backend: Backend, n: usize, unsealed: bool) -> (f64, f64) {
    let env = [("SCHOOLSIGNAL_UNSEALED_FOR_BENCHMARK", unsealed.to_string())];
    let s = setup(backend, &env).await;
    let pid = s.service.child.id();
    let before = Cpu::sample(pid);
    let full = measure_intake(&s, 0, n, None).await;
    let cpu = Cpu::sample(pid).since(before);
    drop(s.service);
    s.broker.cleanup().await;
    (full.rate, 1e6 * cpu.service / n as f64)
}

/// The intake target of the issue, with fsync on.
const TARGET_EVENTS_PER_S: f64 = 2000.0;

/// PostgreSQL's durability settings, which the intake figures depend on.
fn postgres_durability() -> String {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        setting: String,
    }
    let url = std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut conn = diesel::PgConnection::establish(&url).expect("PostgreSQL must run");
    let mut show = |name: &str| {
        diesel::sql_query(format!(
            "SELECT setting FROM pg_settings WHERE name = '{name}'"
        ))
        .get_result::<Setting>(&mut conn)
        .map(|s| s.setting)
        .unwrap_or_else(|_| "?".into())
    };
    format!(
        "PostgreSQL: fsync={}, synchronous_commit={}",
        show("fsync"),
        show("synchronous_commit")
    )
}

fn num_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn name(backend: Backend) -> String {
    format!("{backend:?}").to_lowercase()
}

/// A service process on a fresh, seeded database, with its broker names declared.
/// Field order is drop order: the service goes before its database.
struct Setup {
    service: ServiceProcess,
    broker: Broker,
    pool: schoolsignal::db::Pool,
    db: TestDb,
}

async fn setup(backend: Backend, extra_env: &[(&str, String)]) -> Setup {
    let db = TestDb::create(backend);
    let pool = db.pool();
    seed(&pool);
    let prefix = format!("bench{}.", unique());
    let mut env = service_env(&db.url, &prefix, &amqp_url());
    env.retain(|(k, _)| k != "RUST_LOG");
    // The app's info line says which ports it listens on; the rest only warnings.
    env.push(("RUST_LOG".into(), "warn,schoolsignal::app=info".into()));
    env.extend(extra_env.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let broker = Broker::connect(
        &amqp_url(),
        schoolsignal::config::AmqpNames::with_prefix(&prefix),
    )
    .await;
    let service = ServiceProcess::start(&env, &format!("bench-{}", unique()));
    service.wait_ready(Duration::from_secs(60)).await;
    Setup {
        service,
        broker,
        pool,
        db,
    }
}

/// Runs the intake passes and prints them; returns the full-load rate.
async fn intake(backend: Backend, n: usize) -> f64 {
    let s = setup(backend, &[]).await;
    // Saturation: publish as fast as the broker confirms; measures throughput.
    let pid = s.service.child.id();
    let before = Cpu::sample(pid);
    let full = measure_intake(&s, 0, n, None).await;
    let cpu = Cpu::sample(pid).since(before);
    settle(&s).await;
    // Paced at 1,000 events per second: measures latency below saturation.
    let paced = measure_intake(&s, n, n / 2, Some(1000.0)).await;
    let rss = peak_rss_mib(s.service.child.id());
    let full_rate = full.rate;
    for (load, r) in [("full", full), ("1000/s", paced)] {
        println!(
            "{:<10} {:<10} {:>10.0} {:>12.1} {:>12.1} {:>14.1}",
            name(backend),
            load,
            r.rate,
            r.p50_ms,
            r.p99_ms,
            rss
        );
    }
    println!("{:<10} {}", "", cpu.per_thousand(n, full_rate));
    drop(s.service);
    s.broker.cleanup().await;
    full_rate
}

/// CPU seconds used so far by each party sharing the machine in a run. The per-event
/// cost it gives varies far less from machine to machine, and day to day, than a rate.
#[derive(Clone, Copy)]
struct Cpu {
    service: f64,
    postgres: f64,
    rabbitmq: f64,
    bench: f64,
}

impl Cpu {
    /// Reads `/proc`: the service process, every PostgreSQL process (with the time of
    /// backends that exited, which the postmaster collects), every RabbitMQ node, and
    /// this process (publisher and commit watcher).
    fn sample(service: u32) -> Cpu {
        let mut cpu = Cpu {
            service: 0.0,
            postgres: 0.0,
            rabbitmq: 0.0,
            bench: 0.0,
        };
        let me = std::process::id();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Some((comm, seconds)) = process_cpu(pid) else {
                continue;
            };
            match comm.as_str() {
                _ if pid == service => cpu.service += seconds,
                _ if pid == me => cpu.bench += seconds,
                "postgres" => cpu.postgres += seconds,
                "beam.smp" => cpu.rabbitmq += seconds,
                _ => {}
            }
        }
        cpu
    }

    fn since(self, before: Cpu) -> Cpu {
        Cpu {
            service: self.service - before.service,
            postgres: self.postgres - before.postgres,
            rabbitmq: self.rabbitmq - before.rabbitmq,
            bench: self.bench - before.bench,
        }
    }

    /// One line: CPU milliseconds per 1,000 events for each party, their sum, and the
    /// share of the machine's cores they kept busy at `rate`.
    fn per_thousand(self, events: usize, rate: f64) -> String {
        let per = |s: f64| s * 1000.0 * 1000.0 / events as f64;
        let total = self.service + self.postgres + self.rabbitmq + self.bench;
        let busy = per(total) / 1000.0 * rate / 1000.0 / num_cpus() as f64;
        format!(
            "CPU ms per 1,000 events: service {:.0}, PostgreSQL {:.0}, RabbitMQ {:.0}, benchmark {:.0}; total {:.0}, {:.0}% of {} cores",
            per(self.service),
            per(self.postgres),
            per(self.rabbitmq),
            per(self.bench),
            per(total),
            busy * 100.0,
            num_cpus()
        )
    }
}

/// A process's name and the CPU seconds it and its collected children used, from
/// `/proc/PID/stat` (fields 14 to 17, in clock ticks of 1/100 s on Linux).
fn process_cpu(pid: u32) -> Option<(String, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_string();
    // Counted from field 3, the first after the name.
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let ticks: u64 = fields
        .get(11..15)?
        .iter()
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    Some((comm, ticks as f64 / 100.0))
}

struct Figures {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Waits until the work a run left behind is done (every email sent or written, every
/// outcome message published), so that a paced run starts on an idle service.
async fn settle(s: &Setup) {
    let deadline = Instant::now() + Duration::from_secs(120);
    // `count_rows` counts `FROM {table}`, so a condition can follow the table name.
    while (count_rows(&s.pool, "deliveries WHERE state = 'pending'") > 0
        || count_rows(&s.pool, "outbox_messages WHERE published_at IS NULL") > 0)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Publishes `bodies` (at `pace` per second, or as fast as the broker takes them),
/// then waits for every confirm. Returns when each was published.
async fn publish(broker: &Broker, bodies: &[Vec<u8>], pace: Option<f64>) -> Vec<Instant> {
    let start = Instant::now();
    let mut published = Vec::with_capacity(bodies.len());
    let mut confirms = Vec::with_capacity(bodies.len());
    for (i, body) in bodies.iter().enumerate() {
        if let Some(rate) = pace {
            let due = Duration::from_secs_f64(i as f64 / rate);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
        published.push(Instant::now());
        confirms.push(broker.send(body).await);
    }
    for c in confirms {
        assert!(c.await.unwrap().is_ack());
    }
    published
}

fn bodies(from: usize, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| generated_event(from + i, "BENCH").1)
        .collect()
}

/// The `q` quantile of `sorted` (nearest rank).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// Latency figures from publish and completion instants paired in order, with the
/// rate from the first publish to the last completion.
fn figures(published: &[Instant], done: &[Instant]) -> Figures {
    let mut latencies: Vec<f64> = done
        .iter()
        .zip(published)
        .map(|(d, p)| d.saturating_duration_since(*p).as_secs_f64() * 1000.0)
        .collect();
    latencies.sort_by(f64::total_cmp);
    let elapsed = match (published.first(), done.last()) {
        (Some(first), Some(last)) => last.saturating_duration_since(*first).as_secs_f64(),
        _ => f64::NAN,
    };
    Figures {
        rate: done.len() as f64 / elapsed,
        p50_ms: quantile(&latencies, 0.50),
        p99_ms: quantile(&latencies, 0.99),
    }
}

async fn measure_intake(s: &Setup, already: usize, n: usize, pace: Option<f64>) -> Figures {
    let bodies = bodies(already, n);
    let poll_pool = s.pool.clone();
    let target = (already + n) as i64;
    // The watcher notes when the committed count passes each value.
    let watcher = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::with_capacity(n);
        let mut last = already as i64;
        while last < target {
            let now = count_rows(&poll_pool, "inbox_events");
            let t = Instant::now();
            for _ in last..now {
                seen.push(t);
            }
            last = last.max(now);
            std::thread::sleep(Duration::from_millis(2));
        }
        seen
    });
    let published = publish(&s.broker, &bodies, pace).await;
    let committed = watcher.await.unwrap();
    figures(&published, &committed)
}

/// One backend end to end: the sink's raw rate first, then the service sending to a
/// fresh sink, at full load and paced. Prints two rows; returns the full-load rate and
/// the sink's raw rate.
async fn end_to_end(backend: Backend, n: usize, mail_concurrency: Option<&str>) -> (f64, f64) {
    let raw = sink_raw_rate(n).await;

    let sink = SmtpSink::start().await;
    let mut extra = vec![("SMTP_URL", format!("{}?tls=none", sink.url()))];
    if let Some(c) = mail_concurrency {
        extra.push(("SCHOOLSIGNAL_MAIL_CONCURRENCY", c.to_string()));
    }
    let s = setup(backend, &extra).await;
    let full = measure_emails(&s, &sink, 0, n, None).await;
    settle(&s).await;
    let paced = measure_emails(&s, &sink, n, n / 2, Some(PACED_EMAILS_PER_S)).await;
    let rss = peak_rss_mib(s.service.child.id());
    let full_rate = full.0.rate;
    let paced_load = format!("{PACED_EMAILS_PER_S:.0}/s");
    for (load, (r, accepting)) in [("full", full), (paced_load.as_str(), paced)] {
        println!(
            "{:<10} {:<10} {:>10.0} {:>14.0} {:>12.1} {:>12.1} {:>12.0} {:>14.1}",
            name(backend),
            load,
            r.rate,
            accepting,
            r.p50_ms,
            r.p99_ms,
            raw,
            rss
        );
    }
    drop(s.service);
    s.broker.cleanup().await;
    (full_rate, raw)
}

/// Publishes `n` events and waits until the sink has accepted `n` more emails. Returns
/// the figures (rate from the first publish to the last acceptance) and the rate of
/// the acceptance phase alone (first to last acceptance).
async fn measure_emails(
    s: &Setup,
    sink: &SmtpSink,
    already: usize,
    n: usize,
    pace: Option<f64>,
) -> (Figures, f64) {
    let bodies = bodies(already, n);
    let published = publish(&s.broker, &bodies, pace).await;
    let timeout = Duration::from_secs(120 + n as u64 / 10);
    let received = sink.wait_for(already + n, timeout).await;
    let mails = received.get(already..).unwrap_or_default();
    if mails.len() < n {
        println!(
            "  ({}: only {} of {n} emails accepted within {timeout:?}; see {})",
            name(s.db.backend),
            mails.len(),
            s.service.log.display()
        );
    }
    let stray = mails.iter().filter(|m| m.rcpt_to != [COORDINATOR]).count();
    if stray > 0 {
        println!("  ({stray} emails were not addressed to the coordinator alone)");
    }
    // Emails carry no event data by design (no event id, no incident), so an email
    // cannot be matched to its event. The n-th acceptance is paired with the n-th
    // publish instead: exact when emails leave in event order, and otherwise the same
    // as matching every email to some event, which keeps the mean and is close at the
    // quantiles. The sink records in acceptance order, so `mails` is sorted already.
    let mut accepted: Vec<Instant> = mails.iter().take(n).map(|m| m.accepted_at).collect();
    accepted.sort();
    let accepting = match (accepted.first(), accepted.last()) {
        (Some(first), Some(last)) if accepted.len() > 1 => {
            (accepted.len() - 1) as f64 / last.duration_since(*first).as_secs_f64()
        }
        _ => f64::NAN,
    };
    (figures(&published, &accepted), accepting)
}

/// The sink's own rate: `n` pre-built messages, about the size of a notice email, sent
/// straight to a fresh sink by a pooled lettre client with [`RAW_SENDERS`] senders.
async fn sink_raw_rate(n: usize) -> f64 {
    let sink = SmtpSink::start().await;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(sink.port())
        .timeout(Some(Duration::from_secs(30)))
        .pool_config(PoolConfig::new().max_size(RAW_SENDERS as u32))
        .build();
    let messages: Vec<Message> = (0..n).map(reference_message).collect();
    let start = Instant::now();
    let failed = futures_util::stream::iter(messages)
        .map(|m| transport.send(m))
        .buffer_unordered(RAW_SENDERS)
        .filter(|r| std::future::ready(r.is_err()))
        .count()
        .await;
    let accepted = sink.wait_for(n, Duration::from_secs(10)).await;
    if failed > 0 || accepted.len() < n {
        println!(
            "  (raw reference: {failed} sends failed, {} of {n} accepted)",
            accepted.len()
        );
    }
    match accepted.last() {
        Some(last) => accepted.len() as f64 / last.accepted_at.duration_since(start).as_secs_f64(),
        None => f64::NAN,
    }
}

/// A message shaped like a notice email: multipart/alternative, about 3 KB.
fn reference_message(i: usize) -> Message {
    let line = "Er staat een vertrouwelijk bericht voor u klaar in het beveiligde portaal.\n";
    let text = format!("Beste Coordinator Regenboog,\n\n{}", line.repeat(12));
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"nl\">\n<body>\n{}</body>\n</html>\n",
        format!("<p>{}</p>\n", line.trim_end()).repeat(18)
    );
    Message::builder()
        .from("Schoolsignaal <noreply@localhost>".parse().unwrap())
        .to(format!("\"Coordinator Regenboog\" <{COORDINATOR}>")
            .parse()
            .unwrap())
        .subject("Vertrouwelijk bericht voor OBS De Regenboog")
        .message_id(Some(format!("<bench-{i}@localhost>")))
        .multipart(
            MultiPart::alternative()
                .singlepart(SinglePart::plain(text))
                .singlepart(SinglePart::html(html)),
        )
        .unwrap()
}

fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}
