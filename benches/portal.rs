//! Portal benchmark: the notice page (`GET /notices/{id}`) under a steady load from
//! wrk, against the release service on PostgreSQL. Not a test: it asserts nothing
//! about speed.
//!
//!     apt-get install wrk              # once
//!     cargo bench --bench portal       # 200 req/s for 30 s after a 5 s warm-up
//!
//! It seeds a fresh PostgreSQL database, starts the release binary with an SMTP sink
//! in this process, posts `valid-basic.json` to `POST /v1/events`, takes the link from
//! the coordinator's email and signs in over HTTP as a browser would (the link page,
//! its form, TOTP enrolment with a code computed here), so it holds a verified session
//! cookie. Then wrk requests that notice with the cookie: a 5 s warm-up run, then the
//! measured run. Plain wrk has no rate option, so a Lua script paces it: each wrk
//! thread keeps a schedule of one request per `threads / rate` seconds (taken by
//! whichever of its connections is free) and `delay()` waits until the next slot;
//! a slot missed is sent at once, so the offered rate holds while the service keeps
//! up. wrk times each request from its send to the end of its response, and its
//! `done()` hook prints the percentiles in microseconds, which are parsed here.
//!
//! Every view of a notice writes an audit row, in one transaction with the ownership
//! check, and touches the session's `last_seen_at`: each request makes two small
//! committed writes, by design.
//!
//! Knobs: BENCH_RATE (200), BENCH_SECONDS (30), BENCH_WARMUP_SECONDS (5),
//! BENCH_CONNECTIONS (4), BENCH_THREADS (2), BENCH_SCHOOLS (0: extra schools in the
//! schools table, which the ownership check reads in full on every request).

#[path = "../tests/it/support/mod.rs"]
mod support;

use reqwest::header::{HeaderMap, COOKIE, LOCATION, ORIGIN};
use reqwest::redirect::Policy;
use smtp_sink::SmtpSink;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::*;

/// The coordinator of 12AB00, where `valid-basic.json`'s child is enrolled.
const COORDINATOR: &str = "zorg@regenboog.example.nl";
const WAIT: Duration = Duration::from_secs(60);

/// The pacing script. `INTERVAL_MS` is replaced by the interval of one wrk thread.
const PACING_LUA: &str = r#"-- Paces wrk: one request per INTERVAL_MS ms per thread.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local interval = INTERVAL_MS
local next_at = nil

-- Called before every request: wait for this thread's next slot.
function delay()
  local now = now_ms()
  if next_at == nil then next_at = now end
  next_at = next_at + interval
  local wait = next_at - now
  if wait < 0 then return 0 end
  return math.floor(wait + 0.5)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH-WRK requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d mean_us=%.0f status_errors=%d socket_errors=%d\n",
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean,
    e.status, e.connect + e.read + e.write + e.timeout))
end
"#;

fn env_number(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Knobs {
    rate: usize,
    seconds: usize,
    warmup: usize,
    connections: usize,
    threads: usize,
    schools: usize,
}

fn main() {
    let knobs = Knobs {
        rate: env_number("BENCH_RATE", 200).max(1),
        seconds: env_number("BENCH_SECONDS", 30).max(1),
        warmup: env_number("BENCH_WARMUP_SECONDS", 5),
        connections: env_number("BENCH_CONNECTIONS", 4).max(1),
        threads: env_number("BENCH_THREADS", 2).max(1),
        schools: env_number("BENCH_SCHOOLS", 0),
    };
    let threads = knobs.threads.min(knobs.connections);
    let knobs = Knobs { threads, ..knobs };
    match Command::new("wrk").arg("--version").output() {
        Ok(_) => {}
        Err(e) => {
            eprintln!("wrk is needed (apt-get install wrk): {e}");
            std::process::exit(1);
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if std::env::var("BENCH_COMPARE_SEALING").is_ok_and(|v| v == "1") {
        return compare_sealing(&rt, &knobs);
    }
    rt.block_on(run(&knobs, false));
}

/// Runs the measured load twice, personal data sealed and then stored unsealed
/// (`SCHOOLSIGNAL_UNSEALED_FOR_BENCHMARK`), and prints what sealing costs.
fn compare_sealing(rt: &tokio::runtime::Runtime, knobs: &Knobs) {
    let sealed = rt.block_on(run(knobs, false));
    let unsealed = rt.block_on(run(knobs, true));
    println!(
        "
sealing cost, notice page at ~{} req/s:",
        knobs.rate
    );
    println!(
        "{:<10} {:>10} {:>10} {:>18}",
        "data", "req/s", "p99 ms", "service CPU ms/req"
    );
    for (label, m) in [("sealed", &sealed), ("unsealed", &unsealed)] {
        println!(
            "{label:<10} {:>10.1} {:>10.2} {:>18.3}",
            m.rate, m.p99_ms, m.cpu_ms
        );
    }
    println!(
        "  sealed/unsealed: req/s {:.3}, p99 {:.3}, service CPU per request {:.3} (target: lose at most 10%)",
        sealed.rate / unsealed.rate,
        sealed.p99_ms / unsealed.p99_ms,
        sealed.cpu_ms / unsealed.cpu_ms
    );
}

/// What one measured run gave.
struct Measured {
    rate: f64,
    p99_ms: f64,
    cpu_ms: f64,
}

fn num_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

async fn run(k: &Knobs, unsealed: bool) -> Measured {
    println!(
        "schoolsignal portal benchmark: GET /notices/{{id}} at {} req/s for {} s \
         ({} s warm-up), {} connections on {} wrk threads, PostgreSQL, {} cores, \
         personal data {}",
        k.rate,
        k.seconds,
        k.warmup,
        k.connections,
        k.threads,
        num_cpus(),
        if unsealed { "UNSEALED" } else { "sealed" }
    );

    // A fresh, seeded database; optionally many more schools.
    let db = TestDb::create(Backend::Postgres);
    let pool = db.pool();
    let api_key = seed(&pool);
    if k.schools > 0 {
        add_schools(&pool, k.schools);
    }
    let schools = count_rows(&pool, "schools");

    // The service, bound to a port chosen here so that its public URL (the links in
    // emails, the Origin that forms must come from) is its real address. The port is
    // reserved (see `reserve_port`), not merely found free, so no one else takes it.
    let sink = SmtpSink::start().await;
    let port = reserve_port();
    let public = format!("http://127.0.0.1:{port}");
    let prefix = format!("benchportal{}.", unique());
    let mut env = service_env(&db.url, &prefix, &amqp_url());
    env.retain(|(name, _)| name != "RUST_LOG" && name != "SCHOOLSIGNAL_BIND");
    env.extend(
        [
            ("RUST_LOG", "warn,schoolsignal::app=info".to_string()),
            ("SMTP_URL", format!("{}?tls=none", sink.url())),
            ("SCHOOLSIGNAL_PUBLIC_URL", public.clone()),
            ("SCHOOLSIGNAL_BIND", format!("127.0.0.1:{port}")),
            ("SCHOOLSIGNAL_UNSEALED_FOR_BENCHMARK", unsealed.to_string()),
        ]
        .map(|(name, value)| (name.to_string(), value)),
    );
    let broker = Broker::connect(
        &amqp_url(),
        schoolsignal::config::AmqpNames::with_prefix(&prefix),
    )
    .await;
    let service = ServiceProcess::start(&env, &format!("bench-portal-{}", unique()));
    service.wait_ready(WAIT).await;

    // One notice, and its email's link.
    let http = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    let (status, _) = post_event_to(&http, &public, &api_key, &example("valid-basic.json")).await;
    assert_eq!(status, 202, "the event is accepted");
    let mails = sink.wait_for(1, WAIT).await;
    let mail = mails
        .iter()
        .find(|m| m.rcpt_to.iter().any(|r| r == COORDINATOR))
        .unwrap_or_else(|| panic!("no email to the coordinator; see {}", service.log.display()));
    let token = link_token(&mail.text_body(), &public);

    // Sign in: the link page, its form, TOTP enrolment.
    let client = Client {
        http,
        base: public.clone(),
    };
    let (status, _, page) = client.get(&format!("/n/{token}"), None).await;
    assert_eq!(status, 200, "the link page");
    let csrf = field(&page, "csrf");
    let (status, headers, _) = client
        .post(&format!("/n/{token}"), None, &[("csrf", &csrf)])
        .await;
    assert_eq!(status, 303, "the link is redeemed");
    let first = session_cookie(&headers);
    let (status, _, page) = client.get("/totp", Some(&first)).await;
    assert_eq!(status, 200, "the TOTP page");
    let secret = enrolment_secret(&page);
    let code = code_now(&secret);
    let csrf = field(&page, "csrf");
    let (status, headers, _) = client
        .post(
            "/totp",
            Some(&first),
            &[("csrf", csrf.as_str()), ("code", code.as_str())],
        )
        .await;
    assert_eq!(status, 303, "the TOTP code is accepted");
    let cookie = session_cookie(&headers);
    let target = headers[LOCATION].to_str().unwrap().to_string();
    assert!(target.starts_with("/notices/"), "signed in to {target}");
    assert!(
        cookie.starts_with("schoolsignal="),
        "the http cookie: {cookie}"
    );
    let (status, _, page) = client.get(&target, Some(&cookie)).await;
    assert_eq!(status, 200, "the notice page");
    assert!(
        page.contains("Sanne de Vries"),
        "the notice page shows the child"
    );
    println!(
        "signed in as the coordinator of 12AB00 ({schools} schools in the table); notice page: {} bytes",
        page.len()
    );

    // The load.
    let url = format!("{public}{target}");
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("pace.lua");
    let interval_ms = 1000.0 * k.threads as f64 / k.rate as f64;
    std::fs::write(
        &script,
        PACING_LUA.replace("INTERVAL_MS", &format!("{interval_ms}")),
    )
    .unwrap();
    println!(
        "\nwrk command (pace.lua: one request per {interval_ms} ms per thread, in {}):",
        script.display()
    );
    println!(
        "  wrk -t{} -c{} -d{}s --latency -s pace.lua -H 'Cookie: schoolsignal=<session>' {url}",
        k.threads, k.connections, k.seconds
    );
    let audit_before = count_rows(&pool, "audit_log");
    if k.warmup > 0 {
        println!("\nwarm-up, {} s:", k.warmup);
        let warm = wrk(k, k.warmup, &script, &cookie, &url).await;
        println!(
            "  {} requests, {:.1} req/s, p50 {:.2} ms, p99 {:.2} ms",
            warm.requests,
            warm.rate(),
            warm.p50_us / 1000.0,
            warm.p99_us / 1000.0
        );
    }
    println!("\nmeasured run, {} s:", k.seconds);
    let (service_before, machine_before) = (cpu_seconds(service.child.id()), machine_cpu());
    let w = wrk(k, k.seconds, &script, &cookie, &url).await;
    let (service_after, machine_after) = (cpu_seconds(service.child.id()), machine_cpu());
    print!("{}", w.output);
    let wall = w.duration_us / 1e6;
    let service_cpu = service_after - service_before;
    let (busy, total) = (
        machine_after.0 - machine_before.0,
        machine_after.1 - machine_before.1,
    );
    let views = count_rows(&pool, "audit_log") - audit_before;
    let rss = peak_rss_mib(service.child.id());

    println!(
        "\nnotice page at ~{} req/s: p50 {:.2} ms, p99 {:.2} ms (achieved {:.1} req/s)",
        k.rate,
        w.p50_us / 1000.0,
        w.p99_us / 1000.0,
        w.rate()
    );
    println!(
        "  p90 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms, mean {:.2} ms; {} requests, \
         {} non-2xx/3xx, {} socket errors",
        w.p90_us / 1000.0,
        w.p999_us / 1000.0,
        w.max_us / 1000.0,
        w.mean_us / 1000.0,
        w.requests,
        w.status_errors,
        w.socket_errors
    );
    println!(
        "  audit rows written during warm-up and run: {views} (one per view); \
         service peak RSS (VmHWM) {rss:.1} MiB"
    );
    println!(
        "  service CPU {:.2} ms per request ({:.0}% of one core); the whole machine was \
         {:.0}% busy over {} cores during the run (load average {})",
        1000.0 * service_cpu / w.requests.max(1) as f64,
        100.0 * service_cpu / wall,
        100.0 * busy / total,
        num_cpus(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    if w.status_errors > 0 || w.socket_errors > 0 {
        println!(
            "  (errors: see {} and the wrk output above)",
            service.log.display()
        );
    }

    drop(service);
    broker.cleanup().await;
    drop(sink);
    drop(pool);
    drop(db);
    Measured {
        rate: w.rate(),
        p99_ms: w.p99_us / 1000.0,
        cpu_ms: 1000.0 * service_cpu / w.requests.max(1) as f64,
    }
}

/// `n` more participating schools, with coordinators of their own.
fn add_schools(pool: &schoolsignal::db::Pool, n: usize) {
    let mut csv = String::from(
        "brin,name,holiday_region,locale,school_day_start,coordinator_name,\
         coordinator_email,deputy_name,deputy_email,participating\n",
    );
    for i in 0..n {
        let letters = i / 100 % 676;
        let brin = format!(
            "{:02}{}{}99",
            i % 100,
            (b'A' + (letters / 26) as u8) as char,
            (b'A' + (letters % 26) as u8) as char
        );
        csv.push_str(&format!(
            "{brin},School {i},midden,nl,08:30,Coordinator {i},zorg{i}@school{i}.example.nl,\
             Deputy {i},adjunct{i}@school{i}.example.nl,true\n"
        ));
    }
    let mut conn = pool.get().unwrap();
    let now = schoolsignal::db::ts(chrono::Utc::now());
    use schoolsignal::registry::schools::{import, Simulated};
    import(&mut conn, csv.as_bytes(), now, Simulated::Allowed).unwrap();
}

/// What one wrk run printed, and the figures of its `done()` line.
struct Wrk {
    output: String,
    requests: u64,
    duration_us: f64,
    p50_us: f64,
    p90_us: f64,
    p99_us: f64,
    p999_us: f64,
    max_us: f64,
    mean_us: f64,
    status_errors: u64,
    socket_errors: u64,
}

impl Wrk {
    fn rate(&self) -> f64 {
        self.requests as f64 / (self.duration_us / 1e6)
    }
}

async fn wrk(k: &Knobs, seconds: usize, script: &Path, cookie: &str, url: &str) -> Wrk {
    let args = vec![
        format!("-t{}", k.threads),
        format!("-c{}", k.connections),
        format!("-d{seconds}s"),
        "--latency".to_string(),
        "-s".to_string(),
        script.display().to_string(),
        "-H".to_string(),
        format!("Cookie: {cookie}"),
        url.to_string(),
    ];
    let out = tokio::task::spawn_blocking(move || Command::new("wrk").args(&args).output())
        .await
        .unwrap()
        .expect("wrk runs");
    let output = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "wrk failed: {output}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = output
        .lines()
        .find(|l| l.starts_with("BENCH-WRK "))
        .unwrap_or_else(|| panic!("no figures from the pacing script in:\n{output}"));
    let value = |key: &str| -> f64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    Wrk {
        requests: value("requests") as u64,
        duration_us: value("duration_us"),
        p50_us: value("p50_us"),
        p90_us: value("p90_us"),
        p99_us: value("p99_us"),
        p999_us: value("p999_us"),
        max_us: value("max_us"),
        mean_us: value("mean_us"),
        status_errors: value("status_errors") as u64,
        socket_errors: value("socket_errors") as u64,
        output,
    }
}

/// A browser without redirects, cookie jar or script: headers as the tests send them.
struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn get(&self, path: &str, cookie: Option<&str>) -> (u16, HeaderMap, String) {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(c) = cookie {
            request = request.header(COOKIE, c);
        }
        let r = request.send().await.unwrap();
        (
            r.status().as_u16(),
            r.headers().clone(),
            r.text().await.unwrap(),
        )
    }

    /// A form POST from the public URL's origin.
    async fn post(
        &self,
        path: &str,
        cookie: Option<&str>,
        form: &[(&str, &str)],
    ) -> (u16, HeaderMap, String) {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header(ORIGIN, &self.base)
            .form(form);
        if let Some(c) = cookie {
            request = request.header(COOKIE, c);
        }
        let r = request.send().await.unwrap();
        (
            r.status().as_u16(),
            r.headers().clone(),
            r.text().await.unwrap(),
        )
    }
}

/// User plus system CPU time of a process, all threads, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses: utime and stime
    // are the 14th and 15th fields of the line, the 12th and 13th after it.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<f64> = after
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(f64::NAN))
        .collect();
    match (fields.get(11), fields.get(12)) {
        (Some(user), Some(system)) => (user + system) / clock_ticks(),
        _ => f64::NAN,
    }
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// The machine's (busy, total) CPU time so far, in clock ticks, from /proc/stat.
fn machine_cpu() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    let total: f64 = ticks.iter().take(8).sum();
    // idle and iowait
    let idle = ticks.get(3).unwrap_or(&0.0) + ticks.get(4).unwrap_or(&0.0);
    (total - idle, total)
}

fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}
