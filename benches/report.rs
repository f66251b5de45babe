//! Report benchmark: one year at national scale on PostgreSQL. Not a test: it
//! asserts nothing about speed.
//!
//!     cargo bench --bench report      # 100,000 notices over 7,000 schools
//!
//! It fills a fresh PostgreSQL database with `generate_series` (BENCH_SCHOOLS schools,
//! BENCH_NOTICES notices over 2026, each with its event, decision and notice email,
//! and the acknowledgements, reminders, escalations, failures, signals and
//! withdrawals of a plausible year), then:
//!
//! 1. times the whole-service yearly report (`report::build` by week for 2026, every
//!    service, region and school row, then its CSV), BENCH_RUNS times after one warm-up;
//! 2. beside it, a same-run reference: reading the same notice rows once
//!    (`SELECT id, school_brin, created_at, due_at, acknowledged_at, status FROM
//!    notices`) and a `SELECT count(*)` over the notices and their emails, so a
//!    machine three times slower shows as such in both;
//!
//! The data is consistent with the service's clock (2026-12-31 12:00): every notice
//! not acknowledged was reminded and escalated, and what the retention purge would
//! have erased by then is erased, so the service has no follow-up work while loaded.
//!
//! 3. starts the service in this process (clock at 2026-12-31 12:00), makes an
//!    operator with a verified session, and requests `GET /operator` at BENCH_RATE
//!    (20) requests per second for BENCH_SECONDS (30), each request on its own
//!    schedule (open loop), and prints p50, p99 and the slowest.

#[path = "../tests/it/support/mod.rs"]
mod support;

use chrono::NaiveDate;
use diesel::prelude::*;
use schoolsignal::db::{DbConn, Pool};
use schoolsignal::report::{self, format, Grouping, Query};
use std::time::{Duration, Instant};
use support::*;

/// The service's clock while it is loaded.
const SERVICE_NOW: &str = "2026-12-31T12:00:00+01:00";

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One year of data, made by PostgreSQL itself. Notice `i` is made at
/// 2026-01-01 + i·(a year / notices), at school `i mod schools`.
fn fill(conn: &mut DbConn, schools: u64, notices: u64) {
    let step = 365 * 24 * 3600 / notices.max(1);
    let statements = [
        format!(
            "INSERT INTO schools SELECT 'S' || lpad(i::text, 5, '0'), 'School ' || i,
             (ARRAY['noord','midden','zuid'])[1 + i % 3], 'nl', '08:30', 'Coordinator ' || i,
             'zorg' || i || '@school.example.nl', NULL, NULL, true, now()
             FROM generate_series(1, {schools}) i"
        ),
        format!(
            "CREATE TEMP TABLE g AS SELECT i,
               md5('e' || i)::uuid::text AS event_id, md5('n' || i)::uuid::text AS notice_id,
               'S' || lpad((1 + i % {schools})::text, 5, '0') AS brin,
               timestamp '2026-01-01 05:00' + i * interval '{step} seconds' AS at
             FROM generate_series(1, {notices}) i"
        ),
        "INSERT INTO inbox_events SELECT event_id, md5(event_id), 'BENCH-' || i, 1, 'active', 'amqp', at, at FROM g".into(),
        "INSERT INTO notices (id, incident_id, child_bsn_hash, child_index, school_brin,
           child_given_name, child_family_name, child_date_of_birth, child_group, visited_at,
           status, created_at, updated_at, due_at, received_at, acknowledged_at, reminded_at,
           escalated_at, escalation_level, closed_at, withdrawn_at)
         SELECT notice_id, 'BENCH-' || i, md5('b' || i), 0, brin, 'Kind', 'Bench', date '2016-01-01', 'groep 5',
           at - interval '10 hours',
           CASE WHEN i % 100 = 0 THEN 'withdrawn' WHEN i % 10 < 3 THEN 'closed'
                WHEN i % 10 < 8 THEN 'acknowledged' ELSE 'delivered' END,
           at, at, at + interval '3 hours', at,
           CASE WHEN i % 10 < 8 THEN at + (i % 7) * interval '40 minutes' END,
           CASE WHEN i % 10 >= 8 THEN at + interval '4 hours' END,
           CASE WHEN i % 10 >= 8 THEN at + interval '6 hours' END,
           CASE WHEN i % 10 >= 8 THEN 'unacknowledged' END,
           CASE WHEN i % 10 < 3 THEN at + interval '2 days' END,
           CASE WHEN i % 100 = 0 THEN at + interval '1 hour' END
         FROM g".into(),
        "INSERT INTO decisions SELECT event_id, 0, 'BENCH-' || i, 'notified', notice_id, at FROM g".into(),
        "INSERT INTO deliveries (notice_id, kind, recipient, state, message_id, attempts, created_at,
           next_attempt_at, expires_at, finished_at)
         SELECT notice_id, 'notice', 'coordinator',
           CASE WHEN i % 50 = 7 THEN 'permanent_failure' ELSE 'sent' END,
           'm' || i || '@bench', 1, at, at, at + interval '1 day', at + interval '5 seconds' FROM g".into(),
        "INSERT INTO school_signals SELECT md5('s' || i)::uuid::text, notice_id,
           (ARRAY['behaviour_change','injury','absence','disclosure','hygiene_or_neglect','other'])[1 + i % 6],
           (ARRAY['routine','urgent'])[1 + i % 2], NULL, 'zorg@school.example.nl', at + interval '1 day', 'o' || i
         FROM g WHERE i % 10 = 0".into(),
        // What the retention purge would have done by the service's clock (2026-12-31
        // 11:00 UTC), so that the service started below has no purge to catch up on.
        "UPDATE notices SET purged_at = timestamp '2026-12-31 10:00', child_given_name = NULL,
           child_family_name = NULL, child_date_of_birth = NULL, child_group = NULL, child_bsn_hash = id
         WHERE closed_at <= timestamp '2026-12-01 11:00'
            OR (status = 'withdrawn' AND updated_at <= timestamp '2026-12-01 11:00')
            OR created_at <= timestamp '2026-10-02 11:00'".into(),
        "ANALYZE".into(),
    ];
    for sql in statements {
        diesel::sql_query(sql).execute(conn).expect("bench data");
    }
}

fn seconds(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

/// The report of the year, timed: (build, CSV) of the fastest of `runs`.
fn time_report(conn: &mut DbConn, runs: u64) -> (Duration, Duration, usize) {
    let query = Query {
        from: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        to: NaiveDate::from_ymd_opt(2026, 12, 31).unwrap(),
        by: Grouping::Week,
    };
    let _ = report::build(conn, &query).unwrap();
    let mut best = (Duration::MAX / 4, Duration::MAX / 4, 0);
    for _ in 0..runs {
        let started = Instant::now();
        let built = report::build(conn, &query).unwrap();
        let build = started.elapsed();
        let csv = format::csv(&built, false);
        let total = started.elapsed();
        if total < best.0 + best.1 {
            best = (build, total - build, csv.len());
        }
    }
    best
}

/// What the reference reads of each notice: what the report reads of it.
type NoticeRead = (
    String,
    String,
    chrono::NaiveDateTime,
    Option<chrono::NaiveDateTime>,
    Option<chrono::NaiveDateTime>,
    String,
);

/// The same-run reference: the notices read once, and a count over them and their
/// emails. The fastest of `runs` each.
fn time_reference(conn: &mut DbConn, runs: u64) -> (Duration, Duration) {
    use schoolsignal::db::schema::{deliveries, notices};
    let mut best = (Duration::MAX, Duration::MAX);
    for _ in 0..runs {
        let started = Instant::now();
        let rows: Vec<NoticeRead> = notices::table
            .select((
                notices::id,
                notices::school_brin,
                notices::created_at,
                notices::due_at,
                notices::acknowledged_at,
                notices::status,
            ))
            .load(conn)
            .unwrap();
        let read = started.elapsed();
        assert!(!rows.is_empty());
        let started = Instant::now();
        let n: i64 = notices::table.count().get_result(conn).unwrap();
        let m: i64 = deliveries::table.count().get_result(conn).unwrap();
        let count = started.elapsed();
        assert!(n > 0 && m > 0);
        best = (best.0.min(read), best.1.min(count));
    }
    best
}

/// An operator's verified session, made in the database: the sign-in itself is the
/// portal's, measured elsewhere. Returns the cookie header.
fn operator_session(pool: &Pool) -> String {
    use schoolsignal::access::{operators, sessions};
    let mut conn = pool.get().unwrap();
    // The service's clock, which judges the session's age.
    let now = chrono::DateTime::parse_from_rfc3339(SERVICE_NOW)
        .unwrap()
        .to_utc();
    operators::add(&mut conn, "ops@bench.example.nl", now).unwrap();
    let cookie = sessions::start(&mut conn, "ops@bench.example.nl", None, now).unwrap();
    sessions::mark_verified(&mut conn, &sessions::hash(&cookie), now).unwrap();
    format!("schoolsignal={cookie}")
}

/// `GET /operator` at `rate` per second for `seconds`, open loop; the latencies.
async fn load(address: &str, cookie: &str, rate: u64, seconds: u64) -> Vec<Duration> {
    let http = reqwest::Client::new();
    let url = format!("{address}/operator");
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut requests = Vec::new();
    for _ in 0..rate * seconds {
        tick.tick().await;
        let (http, url, cookie) = (http.clone(), url.clone(), cookie.to_string());
        requests.push(tokio::spawn(async move {
            let started = Instant::now();
            let r = http
                .get(&url)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "the dashboard answers");
            let _ = r.bytes().await.unwrap();
            started.elapsed()
        }));
    }
    let mut latencies = Vec::new();
    for r in requests {
        latencies.push(r.await.unwrap());
    }
    latencies.sort();
    latencies
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[at]
}

fn main() {
    let (schools, notices) = (knob("BENCH_SCHOOLS", 7000), knob("BENCH_NOTICES", 100_000));
    let runs = knob("BENCH_RUNS", 5);
    let (rate, secs) = (knob("BENCH_RATE", 20), knob("BENCH_SECONDS", 30));
    let db = TestDb::create(Backend::Postgres);
    let pool = db.pool();
    let mut conn = pool.get().unwrap();
    schoolsignal::db::migrate::run_pending(&mut conn).unwrap();
    let started = Instant::now();
    fill(&mut conn, schools, notices);
    println!(
        "data: {notices} notices over {schools} schools in 2026, made in {}",
        seconds(started.elapsed())
    );

    let (build, csv, bytes) = time_report(&mut conn, runs);
    let (read, count) = time_reference(&mut conn, runs);
    println!("yearly report, by week, every row (fastest of {runs}):");
    println!("  report::build         {}", seconds(build));
    println!("  CSV ({bytes} bytes)   {}", seconds(csv));
    println!(
        "  total                 {}   target < 2 s",
        seconds(build + csv)
    );
    println!("reference, same run:");
    println!(
        "  read the notice rows  {}   (report / reference = {:.1})",
        seconds(read),
        (build + csv).as_secs_f64() / read.as_secs_f64()
    );
    println!("  count(*) x2           {}", seconds(count));
    drop(conn);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let prefix = format!("bench{}.", unique());
        // Every notice of the data is acknowledged, escalated or withdrawn already, and
        // purged where due: the follow-up finds nothing to do while the load runs.
        let extra = [
            ("SCHOOLSIGNAL_NOW", SERVICE_NOW.to_string()),
            ("SCHOOLSIGNAL_FOLLOW_UP_INTERVAL_SECONDS", "3600".to_string()),
        ];
        let service = start_in_process(&db.url, &prefix, &extra).await;
        let cookie = operator_session(&pool);
        let warm = load(&service.address, &cookie, rate, 2).await;
        let latencies = load(&service.address, &cookie, rate, secs).await;
        println!(
            "GET /operator at {rate}/s for {secs} s ({} requests; {} warm-up): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms   target p99 < 100 ms",
            latencies.len(),
            warm.len(),
            percentile(&latencies, 0.5).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
            latencies.last().unwrap().as_secs_f64() * 1e3,
        );
        service.stop().await;
        let broker = Broker::connect(&amqp_url(), schoolsignal::config::AmqpNames::with_prefix(&prefix)).await;
        broker.cleanup().await;
    });
}
