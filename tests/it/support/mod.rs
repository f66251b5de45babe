//! Test support: isolated databases and AMQP names per test, the real service (in
//! process or as a child process), a test-side AMQP client, and the log canary.
#![allow(dead_code)]

pub mod smtp_sink;

use diesel::prelude::*;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use schoolsignal::config::{AmqpNames, Config};
use schoolsignal::db::{self, DbUrl, Pool};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The instant the contract examples are evaluated at.
pub const NOW: &str = "2026-11-23T07:00:00+01:00";
pub const BSN_KEY: &str = "test-bsn-key-0123456789abcdef0123456789";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// Declares one test per backend: `backend_tests!(name);` calls `async fn name(Backend)`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::support::Backend::Postgres).await }
            )*
        }
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::support::Backend::Sqlite).await }
            )*
        }
    };
}

pub fn amqp_url() -> String {
    std::env::var("TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

fn pg_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub fn contracts_dir() -> PathBuf {
    std::env::var_os("SCHOOLSIGNAL_CONTRACTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/contracts/examples")
        })
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Every example message: (file name, body).
pub fn examples() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(contracts_dir())
        .expect("the contract examples are in ../shared/contracts/examples")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    assert!(
        out.len() >= 20,
        "expected the contract examples, found {}",
        out.len()
    );
    out
}

pub fn example(name: &str) -> Vec<u8> {
    std::fs::read(contracts_dir().join(name)).unwrap()
}

/// A unique short id for database and AMQP names.
pub fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// A database of its own for one test.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for TestDb {
    /// A PostgreSQL test database is dropped at the end, so runs do not fill the
    /// server; whatever still holds a connection (a killed service's pool) is cut off.
    fn drop(&mut self) {
        if self.backend != Backend::Postgres {
            return;
        }
        let Some(name) = self.url.rsplit('/').next() else {
            return;
        };
        if let Ok(mut admin) = <PgConnection as diesel::Connection>::establish(&pg_admin_url()) {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut admin);
        }
    }
}

impl TestDb {
    pub fn create(backend: Backend) -> Self {
        match backend {
            Backend::Postgres => {
                let name = format!("ss_{}", unique());
                let mut admin = <PgConnection as diesel::Connection>::establish(&pg_admin_url())
                    .expect("PostgreSQL must run on 127.0.0.1:5432 (see .ci/run)");
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .unwrap();
                let base = pg_admin_url();
                let url = format!("{}/{name}", &base[..base.rfind('/').unwrap()]);
                Self {
                    backend,
                    url,
                    _dir: None,
                }
            }
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("schoolsignal.db").display());
                Self {
                    backend,
                    url,
                    _dir: Some(dir),
                }
            }
        }
    }

    pub fn pool(&self) -> Pool {
        db::pool(&DbUrl::parse(&self.url).unwrap(), 4)
    }
}

/// The configuration a test service runs with, as environment variables.
pub fn service_env(db_url: &str, prefix: &str, amqp: &str) -> Vec<(String, String)> {
    let names = AmqpNames::with_prefix(prefix);
    [
        ("DATABASE_URL", db_url.to_string()),
        ("AMQP_URL", amqp.to_string()),
        ("SCHOOLSIGNAL_NOW", NOW.to_string()),
        ("SCHOOLSIGNAL_BIND", "127.0.0.1:0".to_string()),
        ("SCHOOLSIGNAL_BSN_KEY", BSN_KEY.to_string()),
        ("SCHOOLSIGNAL_AMQP_INBOUND_EXCHANGE", names.inbound_exchange),
        ("SCHOOLSIGNAL_AMQP_QUEUE", names.queue),
        ("SCHOOLSIGNAL_AMQP_DEAD_EXCHANGE", names.dead_exchange),
        ("SCHOOLSIGNAL_AMQP_DEAD_QUEUE", names.dead_queue),
        (
            "SCHOOLSIGNAL_AMQP_OUTBOUND_EXCHANGE",
            names.outbound_exchange,
        ),
        ("RUST_LOG", "info,schoolsignal=debug".to_string()),
        // Tests that look at emails set SMTP_URL to their sink; the rest write files
        // out of the way.
        (
            "SCHOOLSIGNAL_MAIL_DIR",
            mail_dir(prefix).display().to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

pub fn mail_dir(prefix: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/test-mail")
        .join(prefix.trim_end_matches('.'))
}

pub fn config_from(env: &[(String, String)]) -> Config {
    let map: HashMap<String, String> = env.iter().cloned().collect();
    Config::from_lookup(|k| map.get(k).cloned()).expect("valid test configuration")
}

/// Imports the test schools and the contract's registry example, and creates an API key.
pub fn seed(pool: &Pool) -> String {
    use schoolsignal::registry::{enrollments, schools, KeyedHasher};
    let mut conn = pool.get().unwrap();
    db::migrate::run_pending(&mut conn).unwrap();
    let now = chrono::Utc::now();
    schools::import(
        &mut conn,
        std::fs::File::open(fixture("schools.csv")).unwrap(),
        db::ts(now),
    )
    .unwrap();
    let registry = std::fs::File::open(contracts_dir().join("registry-example.csv")).unwrap();
    enrollments::import(&mut conn, &KeyedHasher::new(BSN_KEY.as_bytes()), registry).unwrap();
    schoolsignal::api::keys::create(&mut conn, "police-test", &["events:write".into()], now)
        .unwrap()
}

// ---------- logs ----------

static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();

#[derive(Clone, Copy)]
struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.get_or_init(Default::default)
            .lock()
            .unwrap()
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends this test binary's service logs into a buffer the canary reads.
pub fn capture_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        std::env::set_var("RUST_LOG", "info,schoolsignal=debug");
        schoolsignal::telemetry::init(schoolsignal::config::LogFormat::Json, || Capture);
    });
}

pub fn captured_logs() -> String {
    String::from_utf8_lossy(&LOGS.get_or_init(Default::default).lock().unwrap()).into_owned()
}

/// Every name, BSN and date of birth in the contract examples and the registry.
pub fn personal_data() -> Vec<String> {
    let mut out = Vec::new();
    for (_, body) in examples() {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) else {
            continue;
        };
        // The police unit is free text: it has no business in a log either.
        if let Some(unit) = v["police_unit"].as_str() {
            out.push(unit.to_string());
        }
        for child in v["children"].as_array().into_iter().flatten() {
            for field in ["bsn", "given_name", "family_name", "date_of_birth"] {
                if let Some(s) = child[field].as_str() {
                    if s.len() >= 4 && !s.chars().any(char::is_control) {
                        out.push(s.to_string());
                    }
                }
            }
        }
    }
    let registry = std::fs::read_to_string(contracts_dir().join("registry-example.csv")).unwrap();
    // The BSN and the group of every enrollment.
    for line in registry.lines().skip(1) {
        let columns: Vec<&str> = line.split(',').collect();
        out.extend([columns[0], columns[2]].map(String::from));
    }
    out.sort();
    out.dedup();
    out
}

/// The canary: `logs` must hold evidence that logging worked, and none of the data.
pub fn assert_no_personal_data(logs: &str, must_contain: &str) {
    assert!(
        logs.contains(must_contain),
        "the captured logs miss `{must_contain}`: capture is broken"
    );
    for secret in personal_data() {
        assert!(
            !logs.contains(&secret),
            "personal data leaked into the logs: a value of length {}",
            secret.len()
        );
    }
}

// ---------- AMQP, test side ----------

pub struct Broker {
    pub conn: Connection,
    pub channel: Channel,
    pub names: AmqpNames,
    pub outcomes_queue: String,
}

impl Broker {
    pub async fn connect(url: &str, names: AmqpNames) -> Self {
        // Bounded: a broker that accepts connections and never answers fails the
        // test instead of hanging the run.
        let conn = tokio::time::timeout(
            Duration::from_secs(30),
            Connection::connect(url, ConnectionProperties::default()),
        )
        .await
        .expect("RabbitMQ did not answer within 30 s")
        .expect("RabbitMQ must run");
        let channel = conn.create_channel().await.unwrap();
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        let outcomes_queue = format!("{}.test-outcomes", names.outbound_exchange);
        let broker = Self {
            conn,
            channel,
            names,
            outcomes_queue,
        };
        broker.declare().await;
        broker
    }

    /// The inbound exchange and a queue that collects our outcome messages. Declared
    /// before the service starts so that no message goes unrouted.
    pub async fn declare(&self) {
        // The intake queue exists before the service first starts, as in production,
        // so events published before a start are kept. Same arguments as the service.
        schoolsignal::broker::declare_intake(&self.channel, &self.names, 10)
            .await
            .unwrap();
        for ex in [&self.names.inbound_exchange, &self.names.outbound_exchange] {
            schoolsignal::broker::declare_exchange(&self.channel, ex)
                .await
                .unwrap();
        }
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        self.declare_bound(&self.outcomes_queue, "notice.outcome.v1", durable)
            .await;
    }

    /// Publishes as a police system would, and waits for the broker's confirm.
    pub async fn publish(&self, body: &[u8]) {
        self.publish_with(body, json_props(body)).await
    }

    pub async fn publish_with(&self, body: &[u8], props: BasicProperties) {
        let confirm = self
            .channel
            .basic_publish(
                self.names.inbound_exchange.as_str().into(),
                "home_visit.v1".into(),
                BasicPublishOptions::default(),
                body,
                props,
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(confirm.is_ack());
    }

    /// Takes up to `n` messages from a queue, waiting at most `timeout` for them.
    pub async fn take(
        &self,
        queue: &str,
        n: usize,
        timeout: Duration,
    ) -> Vec<lapin::message::BasicGetMessage> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        while out.len() < n && Instant::now() < deadline {
            match self
                .channel
                .basic_get(queue.into(), BasicGetOptions { no_ack: true })
                .await
                .unwrap()
            {
                Some(m) => out.push(m),
                None => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        out
    }

    pub async fn message_count(&self, queue: &str) -> u32 {
        self.channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap()
            .message_count()
    }

    /// Removes what a test declared. Stop the test's services first (drop a
    /// `ServiceProcess`; `TestApp::cleanup` stops its own): a running service would
    /// declare its queues again and leave them behind.
    pub async fn cleanup(&self) {
        for q in [
            &self.names.queue,
            &self.names.dead_queue,
            &self.outcomes_queue,
        ] {
            let _ = self
                .channel
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
        for ex in [
            &self.names.inbound_exchange,
            &self.names.dead_exchange,
            &self.names.outbound_exchange,
        ] {
            let _ = self
                .channel
                .exchange_delete(ex.as_str().into(), ExchangeDeleteOptions::default())
                .await;
        }
    }
}

pub fn json_props(body: &[u8]) -> BasicProperties {
    let mut props = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_type("police.home_visit.v1".into());
    if let Some(id) = schoolsignal::contract::home_visit::event_id_of(body) {
        props = props.with_message_id(id.to_string().into());
    }
    props
}

pub fn header_str(props: &BasicProperties, name: &str) -> Option<String> {
    match props.headers().as_ref()?.inner().get(name)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_string()),
        _ => None,
    }
}

pub async fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------- the service, in process ----------

pub struct TestApp {
    pub db: TestDb,
    pub pool: Pool,
    pub address: String,
    pub api_key: String,
    pub broker: Broker,
    pub http: reqwest::Client,
    /// This app's service and its replicas, to stop before a cleanup.
    services: Mutex<Vec<InProcess>>,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, &[]).await
    }

    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = self
                .http
                .get(format!("{}/readyz", self.address))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if ok {
                return;
            }
            assert!(Instant::now() < deadline, "service not ready in time");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The whole `/metrics` page.
    pub async fn metrics_text(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.address))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The value of one series on `/metrics` (`name{labels}` as printed), or 0.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self.metrics_text().await;
        text.lines()
            .find_map(|l| {
                l.strip_prefix(series)
                    .and_then(|rest| rest.trim().parse().ok())
            })
            .unwrap_or(0.0)
    }

    pub async fn post_event(&self, body: &[u8]) -> (u16, serde_json::Value) {
        let r = self
            .http
            .post(format!("{}/v1/events", self.address))
            .bearer_auth(&self.api_key)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }
}

// ---------- database checks ----------

pub fn count_rows(pool: &Pool, table: &str) -> i64 {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = pool.get().unwrap();
    diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"))
        .get_result::<N>(&mut *conn)
        .map(|r| r.n)
        .unwrap_or(-1)
}

/// The decisions recorded for an event, in child order.
pub fn decisions_of(pool: &Pool, id: &str) -> Vec<String> {
    use schoolsignal::db::schema::decisions::dsl::*;
    let mut conn = pool.get().unwrap();
    decisions
        .filter(event_id.eq(id))
        .order(child_index)
        .select(outcome)
        .load(&mut *conn)
        .unwrap()
}

// ---------- the service, as a child process ----------

pub struct ServiceProcess {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
}

pub fn log_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-logs");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl ServiceProcess {
    /// Starts `schoolsignal serve` with `env`, logging to target/test-logs/<name>.log.
    pub fn start(env: &[(String, String)], name: &str) -> Self {
        let port = free_port();
        let log = log_dir().join(format!("{name}.log"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_schoolsignal"))
            .arg("serve")
            .envs(env.iter().cloned())
            .env("SCHOOLSIGNAL_BIND", format!("127.0.0.1:{port}"))
            .env("SCHOOLSIGNAL_LOG_FORMAT", "json")
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap();
        Self { child, port, log }
    }

    /// Sends SIGTERM, as Kubernetes does, and waits up to `within` for the process to
    /// exit; panics if it has not by then.
    pub fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM failed");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the service did not exit within {within:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill(); // SIGKILL on Unix
        let _ = self.child.wait();
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

// ---------- generated events ----------

/// A valid event for child 111222333 (enrolled, with consent) in its own incident.
pub fn generated_event(n: usize, tag: &str) -> (String, Vec<u8>) {
    let event_id = uuid::Uuid::new_v4().to_string();
    let body = serde_json::json!({
        "schema": "police.home_visit.v1",
        "event_id": event_id,
        "incident_id": format!("2026-{tag}-{n:06}"),
        "revision": 1,
        "status": "active",
        "visited_at": "2026-11-22T21:40:00+01:00",
        "children": [{"bsn": "111222333", "given_name": "Sanne", "family_name": "de Vries",
                      "date_of_birth": "2016-04-12"}]
    });
    (event_id, serde_json::to_vec(&body).unwrap())
}

impl Broker {
    /// Publishes without waiting; the caller awaits the confirm.
    pub async fn send(&self, body: &[u8]) -> lapin::PublisherConfirm {
        self.channel
            .basic_publish(
                self.names.inbound_exchange.as_str().into(),
                "home_visit.v1".into(),
                BasicPublishOptions::default(),
                body,
                json_props(body),
            )
            .await
            .unwrap()
    }

    /// Publishes many bodies and waits for all confirms once.
    pub async fn publish_many(&self, bodies: &[Vec<u8>]) {
        let mut confirms = Vec::with_capacity(bodies.len());
        for body in bodies {
            confirms.push(self.send(body).await);
        }
        for c in confirms {
            assert!(c.await.unwrap().is_ack());
        }
    }
}

impl ServiceProcess {
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        let r = reqwest::get(format!("http://127.0.0.1:{}{path}", self.port))
            .await
            .ok()?;
        let status = r.status().as_u16();
        Some((status, r.text().await.unwrap_or_default()))
    }

    pub async fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.get("/readyz").await.map(|r| r.0) != Some(200) {
            assert!(
                Instant::now() < deadline,
                "service not ready in time; log: {}",
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn metric(&self, series: &str) -> f64 {
        let Some((_, text)) = self.get("/metrics").await else {
            return 0.0;
        };
        text.lines()
            .find_map(|l| {
                l.strip_prefix(series)
                    .and_then(|rest| rest.trim().parse().ok())
            })
            .unwrap_or(0.0)
    }
}

/// Polls a metric (`read` fetches its current value) until it reaches `at_least`;
/// fails the test after `timeout`, saying `what` was not seen.
pub async fn wait_for_metric<F, Fut>(what: &str, timeout: Duration, at_least: f64, mut read: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = f64>,
{
    let deadline = Instant::now() + timeout;
    while read().await < at_least {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `f` (a database check) until it is true.
pub async fn eventually(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    wait_for(what, timeout, &mut f).await
}

// ---------- the service, in process, with extra configuration; replicas ----------

/// Builds and starts an in-process service for `db_url` and the AMQP names of
/// `prefix`, with `extra` variables on top of [`service_env`] (an `extra` value
/// replaces the default of the same name). Returns its base address. It runs until
/// the test's runtime ends.
/// A service running in this process: where it listens, and how to stop it.
pub struct InProcess {
    pub address: String,
    stop: CancellationToken,
    /// Cancelled once the service has stopped.
    stopped: CancellationToken,
}

impl InProcess {
    /// Stops the service and waits until it has: afterwards it declares nothing, so
    /// a cleanup that follows is final.
    pub async fn stop(&self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(60), self.stopped.cancelled()).await;
    }
}

pub async fn start_in_process(db_url: &str, prefix: &str, extra: &[(&str, String)]) -> InProcess {
    let mut env = service_env(db_url, prefix, &amqp_url());
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let app = schoolsignal::app::Application::build(config_from(&env))
        .await
        .unwrap();
    let address = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = (app.stopper(), CancellationToken::new());
    let done = stopped.clone();
    tokio::spawn(async move {
        let _ = app.run_until_stopped().await;
        done.cancel();
    });
    InProcess {
        address,
        stop,
        stopped,
    }
}

async fn wait_ready_at(http: &reqwest::Client, address: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ok = http
            .get(format!("{address}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        if ok {
            return;
        }
        assert!(Instant::now() < deadline, "service not ready in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Another in-process service on a [`TestApp`]'s database and AMQP names.
pub struct Replica {
    pub address: String,
    pub http: reqwest::Client,
}

impl Replica {
    /// The value of one series on its `/metrics` (`name{labels}` as printed), or 0.
    pub async fn metric(&self, series: &str) -> f64 {
        let Ok(r) = self
            .http
            .get(format!("{}/metrics", self.address))
            .send()
            .await
        else {
            return 0.0;
        };
        let text = r.text().await.unwrap_or_default();
        text.lines()
            .find_map(|l| {
                l.strip_prefix(series)
                    .and_then(|rest| rest.trim().parse().ok())
            })
            .unwrap_or(0.0)
    }
}

impl TestApp {
    /// Like [`TestApp::spawn`], with extra environment variables for the service
    /// (e.g. `SMTP_URL`).
    pub async fn spawn_with(backend: Backend, extra: &[(&str, String)]) -> Self {
        let app = Self::start_with(backend, extra).await;
        app.wait_ready().await;
        app
    }

    /// Like [`TestApp::spawn_with`], without waiting until it is ready (a service
    /// that cannot reach its broker never is).
    pub async fn start_with(backend: Backend, extra: &[(&str, String)]) -> Self {
        capture_logs();
        let db = TestDb::create(backend);
        let pool = db.pool();
        let api_key = seed(&pool);
        let prefix = format!("t{}.", unique());
        // The intake queue exists before the service starts.
        let broker = Broker::connect(&amqp_url(), AmqpNames::with_prefix(&prefix)).await;
        let service = start_in_process(&db.url, &prefix, extra).await;
        Self {
            db,
            pool,
            address: service.address.clone(),
            api_key,
            broker,
            http: reqwest::Client::new(),
            services: Mutex::new(vec![service]),
        }
    }

    /// Stops this app and its replicas, then removes what the test declared on the
    /// broker. Stopping first matters: a running service would declare its queues
    /// again after they were deleted, and leave them behind.
    pub async fn cleanup(&self) {
        let services = std::mem::take(&mut *self.services.lock().unwrap());
        for service in &services {
            service.stop().await;
        }
        self.broker.cleanup().await;
    }

    /// The prefix of this app's AMQP names.
    pub fn prefix(&self) -> String {
        let exchange = &self.broker.names.inbound_exchange;
        exchange
            .strip_suffix("police.events")
            .unwrap_or_else(|| {
                panic!("an inbound exchange made by AmqpNames::with_prefix: {exchange}")
            })
            .to_string()
    }

    /// Starts another in-process service on this app's database and AMQP names, with
    /// `extra` variables (a later `SCHOOLSIGNAL_NOW` travels in time). It runs until
    /// the test ends, alongside this one.
    pub async fn spawn_replica(&self, extra: &[(&str, String)]) -> Replica {
        let service = start_in_process(&self.db.url, &self.prefix(), extra).await;
        let replica = Replica {
            address: service.address.clone(),
            http: reqwest::Client::new(),
        };
        self.services.lock().unwrap().push(service);
        wait_ready_at(&replica.http, &replica.address).await;
        replica
    }
}

impl Broker {
    /// A queue of the test's own bound to the outbound exchange with `routing_key`
    /// (e.g. `notice.escalated.v1`). Exclusive to this connection, so the broker
    /// removes it when the test ends, whether it passed or not.
    pub async fn bind_outbound(&self, routing_key: &str) -> String {
        let queue = format!("{}.test-{routing_key}", self.names.outbound_exchange);
        let exclusive = QueueDeclareOptions {
            exclusive: true,
            ..Default::default()
        };
        self.declare_bound(&queue, routing_key, exclusive).await;
        queue
    }

    /// Declares `queue` and binds it to the outbound exchange with `routing_key`.
    async fn declare_bound(&self, queue: &str, routing_key: &str, options: QueueDeclareOptions) {
        self.channel
            .queue_declare(queue.into(), options, FieldTable::default())
            .await
            .unwrap();
        self.channel
            .queue_bind(
                queue.into(),
                self.names.outbound_exchange.as_str().into(),
                routing_key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
    }
}
