//! The service in this process: [`TestApp`] (a database, a broker and the service,
//! seeded and ready), its replicas, and the configuration every test service runs
//! with.

use super::{
    amqp_url, capture_logs, metric_at, scrape, seed, series_value, unique, wait_ready_at, Backend,
    Broker, TestDb, BSN_KEY, NOW,
};
use schoolsignal::config::{AmqpNames, Config};
use schoolsignal::db::Pool;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long an in-process service may take to become ready.
const READY: Duration = Duration::from_secs(30);

/// The configuration a test service runs with, as environment variables. It listens
/// on ports the system picks (`SCHOOLSIGNAL_BIND=127.0.0.1:0`, and the same for the
/// internal listener, `SCHOOLSIGNAL_METRICS_BIND`).
pub fn service_env(db_url: &str, prefix: &str, amqp: &str) -> Vec<(String, String)> {
    let names = AmqpNames::with_prefix(prefix);
    [
        ("DATABASE_URL", db_url.to_string()),
        ("AMQP_URL", amqp.to_string()),
        ("SCHOOLSIGNAL_NOW", NOW.to_string()),
        ("SCHOOLSIGNAL_BIND", "127.0.0.1:0".to_string()),
        ("SCHOOLSIGNAL_METRICS_BIND", "127.0.0.1:0".to_string()),
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

/// A service running in this process: where it listens, and how to stop it.
pub struct InProcess {
    pub address: String,
    /// The internal listener: `/metrics` and `/health`.
    pub metrics_address: String,
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

/// Builds and starts an in-process service for `db_url` and the AMQP names of
/// `prefix`, with `extra` variables on top of [`service_env`] (an `extra` value
/// replaces the default of the same name). It runs until stopped or until the
/// test's runtime ends.
pub async fn start_in_process(db_url: &str, prefix: &str, extra: &[(&str, String)]) -> InProcess {
    let mut env = service_env(db_url, prefix, &amqp_url());
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let app = schoolsignal::app::Application::build(config_from(&env))
        .await
        .unwrap();
    let address = format!("http://127.0.0.1:{}", app.port());
    let metrics_address = format!("http://127.0.0.1:{}", app.metrics_port());
    let (stop, stopped) = (app.stopper(), CancellationToken::new());
    let done = stopped.clone();
    tokio::spawn(async move {
        let _ = app.run_until_stopped().await;
        done.cancel();
    });
    InProcess {
        address,
        metrics_address,
        stop,
        stopped,
    }
}

/// Another in-process service on a [`TestApp`]'s database and AMQP names.
pub struct Replica {
    pub address: String,
    pub metrics_address: String,
    pub http: reqwest::Client,
}

impl Replica {
    /// The value of one series on its `/metrics` (`name{labels}` as printed), or 0.
    pub async fn metric(&self, series: &str) -> f64 {
        metric_at(&self.http, &self.metrics_address, series).await
    }
}

/// A seeded database of its own, AMQP names of its own with the intake queue
/// declared, and the service running in this process on both.
pub struct TestApp {
    pub db: TestDb,
    pub pool: Pool,
    pub address: String,
    /// The internal listener: `/metrics` and `/health`.
    pub metrics_address: String,
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
            metrics_address: service.metrics_address.clone(),
            api_key,
            broker,
            http: reqwest::Client::new(),
            services: Mutex::new(vec![service]),
        }
    }

    /// The address of `path` on this app.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Waits until the service is ready and its consumer connected (see
    /// [`wait_ready_at`]).
    pub async fn wait_ready(&self) {
        wait_ready_at(
            &self.http,
            &self.metrics_address,
            READY,
            "service not ready in time",
        )
        .await
    }

    /// Starts another in-process service on this app's database and AMQP names, with
    /// `extra` variables (a later `SCHOOLSIGNAL_NOW` travels in time). It runs until
    /// the test ends, alongside this one.
    pub async fn spawn_replica(&self, extra: &[(&str, String)]) -> Replica {
        let service = start_in_process(&self.db.url, &self.prefix(), extra).await;
        let replica = Replica {
            address: service.address.clone(),
            metrics_address: service.metrics_address.clone(),
            http: reqwest::Client::new(),
        };
        self.services.lock().unwrap().push(service);
        wait_ready_at(
            &replica.http,
            &replica.metrics_address,
            READY,
            "service not ready in time",
        )
        .await;
        replica
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

    /// The whole `/metrics` page, from the internal listener.
    pub async fn metrics_text(&self) -> String {
        scrape(&self.http, &self.metrics_address)
            .await
            .expect("the service answers /metrics")
    }

    /// The value of one series on `/metrics` (`name{labels}` as printed), or 0.
    pub async fn metric(&self, series: &str) -> f64 {
        series_value(&self.metrics_text().await, series)
    }

    pub async fn post_event(&self, body: &[u8]) -> (u16, serde_json::Value) {
        post_event_to(&self.http, &self.address, &self.api_key, body).await
    }

    /// Stops this app and its replicas, then removes what the test declared on the
    /// broker. Stopping first matters: a running service would declare its queues
    /// again after they were deleted, and leave them behind.
    pub async fn cleanup(&self) {
        self.stop_services().await;
        self.broker.cleanup().await;
    }

    /// Stops this app's services; its database and broker names stay.
    pub async fn stop_services(&self) {
        let services = std::mem::take(&mut *self.services.lock().unwrap());
        for service in &services {
            service.stop().await;
        }
    }

    /// The configuration a service of this app would get, with `extra` on top.
    pub fn config_with(&self, extra: &[(&str, String)]) -> Config {
        let mut env = service_env(&self.db.url, &self.prefix(), &amqp_url());
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        config_from(&env)
    }
}

/// Posts an event to the service at `address` with `api_key`; returns the status and
/// the JSON body (null when there is none).
pub async fn post_event_to(
    http: &reqwest::Client,
    address: &str,
    api_key: &str,
    body: &[u8],
) -> (u16, serde_json::Value) {
    let (status, _, answer) = post_event_with_mode(http, address, api_key, body).await;
    (status, answer)
}

/// [`post_event_to`], and the answer's `Schoolsignal-Mode` header (empty when none).
pub async fn post_event_with_mode(
    http: &reqwest::Client,
    address: &str,
    api_key: &str,
    body: &[u8],
) -> (u16, String, serde_json::Value) {
    let r = http
        .post(format!("{address}/v1/events"))
        .bearer_auth(api_key)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let mode = r
        .headers()
        .get("schoolsignal-mode")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (
        status,
        mode,
        r.json().await.unwrap_or(serde_json::Value::Null),
    )
}
