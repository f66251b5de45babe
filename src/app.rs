//! Wires the service: the configuration's sections become services, and the services
//! become stages that share one stop token. `Application::build` does every step
//! that can fail (migrations, both listeners, the mail templates and transport) before
//! any stage starts, so a process that cannot serve takes no work from the queue or
//! the outbox. A stop (SIGTERM, SIGINT) lets each stage finish the work in hand.

use crate::broker::consumer::Consumer;
use crate::broker::relay::Relay;
use crate::clock::SharedClock;
use crate::config::{Config, MailConfig, OrgConfig};
use crate::contract::outbound::EscalationLevel;
use crate::contract::Reason;
use crate::db::{self, Pool};
use crate::delivery::kinds::State;
use crate::delivery::queue::Policy;
use crate::delivery::sign_in::SignInMail;
use crate::delivery::templates::Templates;
use crate::delivery::transport::Mailer;
use crate::delivery::worker::Worker;
use crate::http::api::{self, AppState};
use crate::http::portal::{Portal, Site};
use crate::intake::{AbortAfterCommits, Intake};
use crate::notices::follow_up::FollowUp;
use crate::notices::lifecycle::Lifecycle;
use crate::notices::retention::{Retention, OPEN_RETENTION_DAYS};
use crate::notices::Outcome;
use crate::outbox::Outbox;
use crate::registry::KeyedHasher;
use crate::retry::Backoff;
use crate::sealing::Keyring;
use crate::telemetry::Metrics;
use actix_web::{dev::Server, web, App, HttpServer};
use std::net::TcpListener;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long a stop waits for the work in hand. An email on its way takes at most the
/// whole-send timeout (`SCHOOLSIGNAL_MAIL_TIMEOUT_SECONDS`, 30 s by default).
const STOP_GRACE: Duration = Duration::from_secs(45);

/// The most SMTP connections a process keeps open.
const SMTP_CONNECTIONS: usize = 16;

pub struct Application {
    port: u16,
    /// The internal listener's port: `/metrics` and the detailed `/health`.
    metrics_port: u16,
    server: Server,
    metrics_server: Server,
    pub pool: Pool,
    pub metrics: Arc<Metrics>,
    stop: CancellationToken,
    /// The stages that finish their work in hand on a stop: the consumer, the email
    /// worker, the follow-up of notices and the relay.
    stages: Vec<JoinHandle<()>>,
}

/// What every stage shares.
#[derive(Clone)]
struct Shared {
    pool: Pool,
    clock: SharedClock,
    metrics: Arc<Metrics>,
    /// Seals personal data at rest, and opens it.
    keys: Arc<Keyring>,
    /// Where outbound messages are queued, and the relay's wake-up.
    outbox: Outbox,
    /// Woken when emails were queued.
    mail_wake: Arc<Notify>,
    broker_connected: Arc<AtomicBool>,
    stop: CancellationToken,
}

/// The mail side, opened before any stage starts.
struct Mail {
    mailer: Arc<Mailer>,
    templates: Arc<Templates>,
    policy: Policy,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let pool = db::pool(&config.db.url, config.db.pool_size);
        migrate_when_reachable(&pool).await?;
        if !config.simulated_schools {
            refuse_simulated_schools(&pool).await?;
        }
        let keys = keyring(&config, &pool).await?;
        let shared = shared(&config, pool, keys);
        let listener = bind("SCHOOLSIGNAL_BIND", config.portal.bind)?;
        let metrics_listener = bind("SCHOOLSIGNAL_METRICS_BIND", config.portal.metrics_bind)?;
        let port = listener.local_addr()?.port();
        let metrics_port = metrics_listener.local_addr()?.port();
        let mail = open_mail(&config.mail, &config.org)?;
        let intake = Arc::new(intake(&config, &shared, &mail.policy));
        let portal = portal(&config, &shared, &mail);
        let state = app_state(&shared, intake.clone());
        let deadline = config.portal.request_timeout;
        let server = http_server(listener, deadline, state.clone(), portal)?;
        let metrics_server = metrics_server(metrics_listener, deadline, state)?;
        let backend = config.db.url.backend_name();
        let stages = start_stages(config, &shared, intake, mail);
        tracing::info!(port, metrics_port, backend, "schoolsignal listening");
        Ok(Self {
            port,
            metrics_port,
            server,
            metrics_server,
            pool: shared.pool,
            metrics: shared.metrics,
            stop: shared.stop,
            stages,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The internal listener's port (`SCHOOLSIGNAL_METRICS_BIND`).
    pub fn metrics_port(&self) -> u16 {
        self.metrics_port
    }

    /// Cancelling this token stops the service as [`Application::run_until_stopped`]
    /// describes.
    pub fn stopper(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Serves until stopped. A stop takes no new work and finishes what is in hand,
    /// for up to [`STOP_GRACE`]: HTTP requests in progress are answered; the consumer
    /// commits and acks its batch and hands the messages it prefetched back to the
    /// broker; the email worker finishes and records the emails on their way and
    /// releases the ones it claimed but did not start, so another replica sends them
    /// at once instead of after their lease; the relay settles its batch.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let http = self.server.handle();
        let internal = self.metrics_server.handle();
        let mut serving = tokio::spawn(self.server);
        let mut serving_internal = tokio::spawn(self.metrics_server);
        let served = tokio::select! {
            result = &mut serving => Some(result),
            result = &mut serving_internal => Some(result),
            _ = self.stop.cancelled() => None,
        };
        tracing::info!("stopping: finishing the work in hand");
        self.stop.cancel();
        let finished = async {
            tokio::join!(http.stop(true), internal.stop(true));
            for stage in self.stages {
                let _ = stage.await;
            }
        };
        if tokio::time::timeout(STOP_GRACE, finished).await.is_err() {
            tracing::warn!(
                grace_seconds = STOP_GRACE.as_secs(),
                "stopped before all work in hand was finished"
            );
        } else {
            tracing::info!("stopped");
        }
        match served {
            // The server ended by itself, which only an error makes it do.
            Some(result) => result.unwrap_or_else(|e| Err(std::io::Error::other(e))),
            None => Ok(()),
        }
    }
}

/// Resolves on SIGTERM (what Kubernetes sends) or SIGINT (Ctrl-C).
pub async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the service");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// The data keys, checked against the fingerprints the database recorded before
/// anything is written: a wrong key stops startup.
pub async fn keyring(config: &Config, pool: &Pool) -> anyhow::Result<Arc<Keyring>> {
    let keys = Arc::new(match config.unsealed {
        true => Keyring::unsealed(&config.data_keys),
        false => Keyring::new(&config.data_keys),
    });
    let (checked, now) = (keys.clone(), crate::clock::from_config(config.now).now());
    db::run(pool, move |conn| {
        Ok(db::keys::register(conn, &checked, now))
    })
    .await??;
    Ok(keys)
}

fn shared(config: &Config, pool: Pool, keys: Arc<Keyring>) -> Shared {
    let clock = crate::clock::from_config(config.now);
    if config.now.is_some() {
        tracing::warn!(now = %clock.now(), "clock set by SCHOOLSIGNAL_NOW");
    }
    Shared {
        pool,
        clock,
        metrics: Arc::new(metrics()),
        keys,
        outbox: Outbox::new(config.amqp.names.outbound_exchange.clone()),
        mail_wake: Arc::new(Notify::new()),
        broker_connected: Arc::new(AtomicBool::new(false)),
        stop: CancellationToken::new(),
    }
}

/// The service's metrics, with a zero series for every label the stages count by,
/// so dashboards see them before the first event.
fn metrics() -> Metrics {
    let metrics = Metrics::new();
    metrics.zero_series(&metrics.rejected, Reason::ALL.iter().map(|r| r.as_str()));
    metrics.zero_series(&metrics.decisions, Outcome::ALL.iter().map(|o| o.as_str()));
    metrics.zero_series(&metrics.deliveries, State::FINAL.iter().map(|s| s.as_str()));
    let levels = EscalationLevel::ALL.iter().map(|l| l.as_str());
    metrics.zero_series(&metrics.escalations, levels);
    metrics
}

/// Loads the templates and opens the transport, so a broken template override or
/// SMTP_URL stops startup.
fn open_mail(config: &MailConfig, org: &OrgConfig) -> anyhow::Result<Mail> {
    let templates = Templates::load(config.templates.as_deref(), org)?;
    if config.smtp_url.is_none() {
        tracing::warn!(folder = %config.dir.display(), "SMTP_URL is not set: emails are written as .eml files, not sent");
    }
    // A send slot gives its connection back before it waits for its result to be
    // recorded, so fewer connections than slots keep the server busy.
    let connections = config.concurrency.min(SMTP_CONNECTIONS) as u32;
    let mailer = Mailer::open(config, connections)?;
    let policy = Policy {
        give_up_after: chrono_duration(config.give_up_after),
        message_domain: config.from.email.domain().to_string(),
        link_valid_for: chrono_duration(config.link_valid_for),
    };
    Ok(Mail {
        mailer: Arc::new(mailer),
        templates: Arc::new(templates),
        policy,
    })
}

fn intake(config: &Config, shared: &Shared, policy: &Policy) -> Intake {
    let section = &config.intake;
    Intake {
        pool: shared.pool.clone(),
        clock: shared.clock.clone(),
        hasher: KeyedHasher::new(&section.bsn_key),
        keys: shared.keys.clone(),
        metrics: shared.metrics.clone(),
        window_days: section.visit_window_days,
        school_age: section.school_age.clone(),
        outbox: shared.outbox.clone(),
        delivery: policy.clone(),
        mail_wake: shared.mail_wake.clone(),
        abort_after_commits: section
            .fault_abort_after_commits
            .map(AbortAfterCommits::new),
    }
}

fn portal(config: &Config, shared: &Shared, mail: &Mail) -> Portal {
    let mut portal = Portal::new(
        config.portal.clone(),
        &config.intake.bsn_key,
        shared.pool.clone(),
        shared.clock.clone(),
        shared.outbox.clone(),
        (
            shared.keys.clone(),
            config.follow_up.retention_after_close.is_zero(),
        ),
        Site::new(
            &config.org,
            config.follow_up.retention_after_close.as_secs() / 86_400,
        ),
    );
    portal.metrics = shared.metrics.clone();
    portal.sign_in_mail = Some(Arc::new(SignInMail {
        mailer: mail.mailer.clone(),
        templates: mail.templates.clone(),
        from: config.mail.from.clone(),
        public_url: config.portal.public_url.clone(),
    }));
    portal
}

/// Binds `addr`, or fails startup naming `var`.
fn bind(var: &str, addr: std::net::SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).map_err(|e| anyhow::anyhow!("{var}: cannot listen on {addr}: {e}"))
}

fn app_state(shared: &Shared, intake: Arc<Intake>) -> web::Data<AppState> {
    web::Data::new(AppState {
        pool: shared.pool.clone(),
        intake,
        metrics: shared.metrics.clone(),
        broker_connected: shared.broker_connected.clone(),
    })
}

/// The main listener: the portal, intake and the kubelet's probes.
fn http_server(
    listener: TcpListener,
    deadline: Duration,
    state: web::Data<AppState>,
    portal: Portal,
) -> std::io::Result<Server> {
    let portal = web::Data::new(portal);
    serve(listener, deadline, 2, move |cfg| {
        cfg.app_data(state.clone()).app_data(portal.clone());
        api::routes(cfg);
        crate::http::portal::routes(cfg);
    })
}

/// The internal listener: `/metrics` and the detailed `/health`, nothing else.
fn metrics_server(
    listener: TcpListener,
    deadline: Duration,
    state: web::Data<AppState>,
) -> std::io::Result<Server> {
    serve(listener, deadline, 1, move |cfg| {
        cfg.app_data(state.clone());
        api::internal::routes(cfg);
    })
}

/// A server on `listener` for what `configure` adds (routes and their data), under
/// the whole-request deadline and with the baseline headers.
fn serve<F>(
    listener: TcpListener,
    deadline: Duration,
    workers: usize,
    configure: F,
) -> std::io::Result<Server>
where
    F: Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
{
    Ok(HttpServer::new(move || {
        App::new()
            .wrap_fn(move |req, srv| crate::http::deadline::within(deadline, req, srv))
            .wrap(api::baseline_headers())
            .wrap_fn(crate::http::observe)
            .configure(configure.clone())
    })
    .workers(workers)
    .client_request_timeout(deadline)
    // Signals are the caller's: they cancel `stop`, which stops the stages too.
    .disable_signals()
    .listen(listener)?
    .run())
}

/// Starts the consumer, the email worker, the follow-up of notices and the relay.
fn start_stages(
    config: Config,
    shared: &Shared,
    intake: Arc<Intake>,
    mail: Mail,
) -> Vec<JoinHandle<()>> {
    let consumer = Consumer::new(
        intake,
        config.amqp.clone(),
        config.intake.batch,
        shared.broker_connected.clone(),
        shared.stop.clone(),
    );
    let relay = Relay {
        pool: shared.pool.clone(),
        clock: shared.clock.clone(),
        metrics: shared.metrics.clone(),
        keys: shared.keys.clone(),
        amqp_url: config.amqp.url.clone(),
        outbox: shared.outbox.clone(),
        stop: shared.stop.clone(),
    };
    let follow_up = follow_up(&config, shared, &mail.policy);
    vec![
        tokio::spawn(Arc::new(consumer).run()),
        tokio::spawn(Arc::new(worker(&config, shared, mail)).run()),
        tokio::spawn(Arc::new(follow_up).run()),
        tokio::spawn(Arc::new(relay).run()),
    ]
}

fn worker(config: &Config, shared: &Shared, mail: Mail) -> Worker {
    let section = &config.mail;
    Worker {
        pool: shared.pool.clone(),
        clock: shared.clock.clone(),
        metrics: shared.metrics.clone(),
        mailer: mail.mailer,
        templates: mail.templates,
        notices: Arc::new(Lifecycle {
            policy: mail.policy.clone(),
            exchange: shared.outbox.exchange.clone(),
        }),
        policy: mail.policy,
        from: section.from.clone(),
        public_url: config.portal.public_url.clone(),
        concurrency: section.concurrency,
        lease: chrono_duration(section.lease),
        retry_base: section.retry_base,
        retry_max: section.retry_max,
        wake: shared.mail_wake.clone(),
        outbox: shared.outbox.clone(),
        stop: shared.stop.clone(),
    }
}

fn follow_up(config: &Config, shared: &Shared, policy: &Policy) -> FollowUp {
    let section = &config.follow_up;
    FollowUp {
        pool: shared.pool.clone(),
        clock: shared.clock.clone(),
        metrics: shared.metrics.clone(),
        policy: policy.clone(),
        outbox: shared.outbox.clone(),
        reminder_after: chrono_duration(section.reminder_after),
        escalation_after: chrono_duration(section.escalation_after),
        interval: section.interval,
        retention: Retention {
            after_close: chrono_duration(section.retention_after_close),
            open: chrono::Duration::days(OPEN_RETENTION_DAYS),
        },
        mail_wake: shared.mail_wake.clone(),
        stop: shared.stop.clone(),
    }
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).expect("configured durations are bounded")
}

/// Production without `SCHOOLSIGNAL_ALLOW_SIMULATED_SCHOOLS=true` does not serve a
/// registry that holds simulated schools: a real child enrolled at one would be
/// notified to no one.
async fn refuse_simulated_schools(pool: &Pool) -> anyhow::Result<()> {
    let simulated = db::run(pool, |c| Ok(crate::registry::schools::count_simulated(c)?)).await?;
    if simulated > 0 {
        anyhow::bail!(
            "SCHOOLSIGNAL_ALLOW_SIMULATED_SCHOOLS: {simulated} school(s) have addresses at @{}; \
             remove them, or set SCHOOLSIGNAL_ALLOW_SIMULATED_SCHOOLS=true for a rehearsal",
            crate::registry::simulated::DOMAIN
        );
    }
    Ok(())
}

/// Runs migrations, waiting up to a minute for the database to answer, so that a
/// service started before its database still comes up.
async fn migrate_when_reachable(pool: &Pool) -> anyhow::Result<()> {
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(5));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match db::run(pool, db::migrate::run_pending).await {
            Ok(ran) => {
                if ran > 0 {
                    tracing::info!(migrations = ran, "database migrated");
                }
                return Ok(());
            }
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::warn!(error = %e, "database not ready for migrations; waiting");
                tokio::time::sleep(backoff.next_delay()).await;
            }
            Err(e) => return Err(anyhow::anyhow!("migrations failed: {e}")),
        }
    }
}
