//! Wires the stages together. `Application::build` binds the configured address
//! (port 0 in tests) and starts the consumer, the email worker, the follow-up of
//! notices and the relay. A stop (SIGTERM, SIGINT) lets each finish the work in hand.

use crate::broker::consumer::Consumer;
use crate::broker::relay::Relay;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::contract::outbound::EscalationLevel;
use crate::contract::Reason;
use crate::db::{self, DbUrl, Pool};
use crate::delivery::kinds::State;
use crate::delivery::queue::Policy;
use crate::delivery::templates::Templates;
use crate::delivery::transport::Mailer;
use crate::delivery::worker::Worker;
use crate::http::api::{self, AppState};
use crate::http::portal::new_link::SignInMail;
use crate::http::portal::Portal;
use crate::intake::Intake;
use crate::notices::follow_up::FollowUp;
use crate::notices::lifecycle::Lifecycle;
use crate::notices::retention::{Retention, OPEN_RETENTION_DAYS};
use crate::notices::Outcome;
use crate::registry::KeyedHasher;
use crate::retry::Backoff;
use crate::telemetry::Metrics;
use actix_web::{dev::Server, web, App, HttpServer};
use lettre::message::Mailbox;
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

pub struct Application {
    port: u16,
    server: Server,
    pub pool: Pool,
    pub metrics: Arc<Metrics>,
    stop: CancellationToken,
    /// The stages that finish their work in hand on a stop: the consumer, the email
    /// worker and the relay.
    stages: Vec<JoinHandle<()>>,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let url = DbUrl::parse(&config.database_url)?;
        let pool = db::pool(&url, config.db_pool_size);
        migrate_when_reachable(&pool).await?;
        let clock = crate::clock::from_config(config.now);
        if config.now.is_some() {
            tracing::warn!(now = %clock.now(), "clock set by SCHOOLSIGNAL_NOW");
        }
        let metrics = Arc::new(metrics());
        let wake = Arc::new(Notify::new());
        let mail_wake = Arc::new(Notify::new());
        let policy = delivery_policy(&config)?;
        let broker_connected = Arc::new(AtomicBool::new(false));
        let stop = CancellationToken::new();
        let intake = Arc::new(Intake {
            pool: pool.clone(),
            clock: clock.clone(),
            hasher: KeyedHasher::new(&config.bsn_key),
            metrics: metrics.clone(),
            window_days: config.visit_window_days,
            school_age: config.school_age_min..=config.school_age_max,
            outbound_exchange: config.amqp.outbound_exchange.clone(),
            relay_wake: wake.clone(),
            delivery: policy.clone(),
            mail_wake: mail_wake.clone(),
            abort_after_commits: config
                .fault_abort_after_commits
                .map(crate::intake::AbortAfterCommits::new),
        });
        // Every step that can fail comes before any stage starts: a process that
        // cannot serve (its port taken, a broken template or SMTP_URL) must exit
        // without having taken events from the queue or emails from the outbox.
        let listener = TcpListener::bind(config.bind).map_err(|e| {
            anyhow::anyhow!("SCHOOLSIGNAL_BIND: cannot listen on {}: {e}", config.bind)
        })?;
        let port = listener.local_addr()?.port();
        let worker = mail_worker(&config, &pool, &clock, &metrics, &policy)?;
        let worker = Arc::new(Worker {
            wake: mail_wake.clone(),
            relay_wake: wake.clone(),
            stop: stop.clone(),
            ..worker
        });
        let sign_in_mail = Arc::new(SignInMail {
            mailer: worker.mailer.clone(),
            templates: worker.templates.clone(),
            from: worker.from.clone(),
            public_url: worker.public_url.clone(),
        });
        let consumer = Arc::new(Consumer::new(
            intake.clone(),
            &config,
            broker_connected.clone(),
            stop.clone(),
        ));
        let mut stages = vec![tokio::spawn(consumer.run())];
        stages.push(tokio::spawn(worker.run()));
        stages.push(tokio::spawn(
            Arc::new(FollowUp {
                pool: pool.clone(),
                clock: clock.clone(),
                metrics: metrics.clone(),
                policy,
                exchange: config.amqp.outbound_exchange.clone(),
                reminder_after: chrono_duration(config.mail.reminder_after),
                escalation_after: chrono_duration(config.mail.escalation_after),
                interval: config.mail.follow_up_interval,
                retention: Retention {
                    after_close: chrono_duration(config.mail.retention_after_close),
                    open: chrono::Duration::days(OPEN_RETENTION_DAYS),
                },
                mail_wake,
                relay_wake: wake.clone(),
                stop: stop.clone(),
            })
            .run(),
        ));
        let portal_wake = wake.clone();
        let relay = relay(&config, &pool, clock.clone(), &metrics, wake, &stop);
        stages.push(tokio::spawn(relay.run()));

        let state = web::Data::new(AppState {
            pool: pool.clone(),
            intake,
            metrics: metrics.clone(),
            broker_connected,
        });
        let mut portal = Portal::new(
            pool.clone(),
            clock,
            &config.public_url,
            &config.bsn_key,
            config.amqp.outbound_exchange.clone(),
            portal_wake,
        );
        portal.sign_in_mail = Some(sign_in_mail);
        portal.trusted_proxies = config.trusted_proxies.clone();
        let portal = web::Data::new(portal);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(portal.clone())
                .configure(api::routes)
                .configure(crate::http::portal::routes)
        })
        .workers(2)
        // Signals are the caller's: they cancel `stop`, which stops the stages too.
        .disable_signals()
        .listen(listener)?
        .run();
        tracing::info!(port, backend = url.backend_name(), "schoolsignal listening");
        Ok(Self {
            port,
            server,
            pool,
            metrics,
            stop,
            stages,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
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
        let mut serving = tokio::spawn(self.server);
        let served = tokio::select! {
            result = &mut serving => Some(result),
            _ = self.stop.cancelled() => None,
        };
        tracing::info!("stopping: finishing the work in hand");
        self.stop.cancel();
        let finished = async {
            http.stop(true).await;
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

fn relay(
    config: &Config,
    pool: &Pool,
    clock: SharedClock,
    metrics: &Arc<Metrics>,
    wake: Arc<Notify>,
    stop: &CancellationToken,
) -> Arc<Relay> {
    Arc::new(Relay {
        pool: pool.clone(),
        clock,
        metrics: metrics.clone(),
        amqp_url: config.amqp_url.clone(),
        exchanges: vec![config.amqp.outbound_exchange.clone()],
        wake,
        stop: stop.clone(),
    })
}

/// The most SMTP connections a process keeps open.
const SMTP_CONNECTIONS: usize = 16;

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).expect("configured durations are bounded")
}

fn delivery_policy(config: &Config) -> anyhow::Result<Policy> {
    let from: Mailbox = config.mail.from.parse()?;
    Ok(Policy {
        give_up_after: chrono_duration(config.mail.give_up_after),
        message_domain: from.email.domain().to_string(),
        link_valid_for: chrono_duration(config.mail.link_valid_for),
    })
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

/// The email worker, with its wake-ups still to be connected. Loads the templates
/// and opens the transport, so a broken template override or SMTP_URL stops startup.
fn mail_worker(
    config: &Config,
    pool: &Pool,
    clock: &SharedClock,
    metrics: &Arc<Metrics>,
    policy: &Policy,
) -> anyhow::Result<Worker> {
    let mail = &config.mail;
    let templates = Templates::load(mail.templates.as_deref())?;
    let concurrency = mail.concurrency;
    let mailer = match &config.smtp_url {
        // A send slot gives its connection back before it waits for its result to
        // be recorded, so fewer connections than slots keep the server busy.
        Some(url) => Mailer::smtp(url, mail.timeout, concurrency.min(SMTP_CONNECTIONS) as u32)?,
        None => {
            tracing::warn!(folder = %mail.dir.display(), "SMTP_URL is not set: emails are written as .eml files, not sent");
            Mailer::files(&mail.dir)?
        }
    };
    Ok(Worker {
        pool: pool.clone(),
        clock: clock.clone(),
        metrics: metrics.clone(),
        mailer: Arc::new(mailer),
        templates: Arc::new(templates),
        policy: policy.clone(),
        notices: Arc::new(Lifecycle {
            policy: policy.clone(),
            exchange: config.amqp.outbound_exchange.clone(),
        }),
        from: mail.from.parse()?,
        public_url: config.public_url.trim_end_matches('/').to_string(),
        concurrency,
        lease: chrono_duration(mail.lease),
        retry_base: mail.retry_base,
        retry_max: mail.retry_max,
        wake: Arc::new(Notify::new()),
        relay_wake: Arc::new(Notify::new()),
        stop: CancellationToken::new(),
    })
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
