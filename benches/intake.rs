//! Intake benchmark: publishes N events to a real RabbitMQ, waits until every one is
//! decided, and prints events per second, publish→commit latency and peak RSS, for
//! PostgreSQL and for SQLite. Not a test: it asserts nothing about speed.
//!
//!     cargo bench --bench intake            # BENCH_EVENTS=10000 by default
//!
//! Commit times are observed by polling the inbox row count every 2 ms. One service
//! process consumes one FIFO queue, so the n-th commit is the n-th published event.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};
use support::*;

fn main() {
    let n: usize = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "schoolsignal intake benchmark: {n} events per run, {} cores",
        num_cpus()
    );
    println!(
        "{:<10} {:<10} {:>10} {:>12} {:>12} {:>14}",
        "backend", "load", "events/s", "p50 ms", "p99 ms", "peak RSS MiB"
    );
    for backend in [Backend::Postgres, Backend::Sqlite] {
        rt.block_on(run(backend, n));
    }
}

fn num_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

async fn run(backend: Backend, n: usize) {
    let db = TestDb::create(backend);
    let pool = db.pool();
    seed(&pool);
    let prefix = format!("bench{}.", unique());
    let mut env = service_env(&db.url, &prefix, &amqp_url());
    env.retain(|(k, _)| k != "RUST_LOG");
    env.push(("RUST_LOG".into(), "warn".into()));
    let broker = Broker::connect(
        &amqp_url(),
        schoolsignal::config::AmqpNames::with_prefix(&prefix),
    )
    .await;
    let service = ServiceProcess::start(&env, &format!("bench-{}", unique()));
    service.wait_ready(Duration::from_secs(60)).await;
    let pid = service.child.id();

    // Saturation: publish as fast as the broker confirms; measures throughput.
    let full = measure(&broker, &pool, 0, n, None).await;
    // Paced at 1,000 events per second: measures latency below saturation.
    let paced = measure(&broker, &pool, n, n / 2, Some(1000.0)).await;
    let rss = peak_rss_mib(pid);
    for (load, r) in [("full", full), ("1000/s", paced)] {
        println!(
            "{:<10} {:<10} {:>10.0} {:>12.1} {:>12.1} {:>14.1}",
            format!("{backend:?}").to_lowercase(),
            load,
            r.rate,
            r.p50_ms,
            r.p99_ms,
            rss
        );
    }
    broker.cleanup().await;
}

struct Figures {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
}

async fn measure(
    broker: &Broker,
    pool: &schoolsignal::db::Pool,
    already: usize,
    n: usize,
    pace: Option<f64>,
) -> Figures {
    let bodies: Vec<Vec<u8>> = (0..n)
        .map(|i| generated_event(already + i, "BENCH").1)
        .collect();
    let start = Instant::now();
    let poll_pool = pool.clone();
    let target = (already + n) as i64;
    // The watcher notes when the committed count passes each value.
    let watcher = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::with_capacity(n);
        let mut last = already as i64;
        while last < target {
            let now = count_rows(&poll_pool, "inbox_events");
            let t = start.elapsed();
            for _ in last..now {
                seen.push(t);
            }
            last = last.max(now);
            std::thread::sleep(Duration::from_millis(2));
        }
        seen
    });
    let mut published = Vec::with_capacity(n);
    let mut confirms = Vec::with_capacity(n);
    for (i, body) in bodies.iter().enumerate() {
        if let Some(rate) = pace {
            let due = Duration::from_secs_f64(i as f64 / rate);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
        published.push(start.elapsed());
        confirms.push(broker.send(body).await);
    }
    for c in confirms {
        assert!(c.await.unwrap().is_ack());
    }
    let committed = watcher.await.unwrap();
    let mut latencies: Vec<f64> = committed
        .iter()
        .zip(&published)
        .map(|(c, p)| c.saturating_sub(*p).as_secs_f64() * 1000.0)
        .collect();
    latencies.sort_by(f64::total_cmp);
    let pct = |q: f64| {
        latencies[((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    let elapsed = committed.last().copied().unwrap_or_default().as_secs_f64();
    Figures {
        rate: n as f64 / elapsed,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    }
}

fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}
