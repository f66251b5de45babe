//! Wires the stages together. `Application::build` binds the configured address
//! (port 0 in tests) and starts the consumer and the relay.

use crate::api::{self, AppState};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::db::{self, DbUrl, Pool};
use crate::intake::{amqp::Consumer, Intake};
use crate::registry::KeyedHasher;
use crate::relay::Relay;
use crate::retry::Backoff;
use crate::telemetry::Metrics;
use actix_web::{dev::Server, web, App, HttpServer};
use std::net::TcpListener;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

pub struct Application {
    port: u16,
    server: Server,
    pub pool: Pool,
    pub metrics: Arc<Metrics>,
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
        let metrics = Arc::new(Metrics::new());
        let wake = Arc::new(Notify::new());
        let broker_connected = Arc::new(AtomicBool::new(false));
        let intake = Arc::new(Intake {
            pool: pool.clone(),
            clock: clock.clone(),
            hasher: KeyedHasher::new(&config.bsn_key),
            metrics: metrics.clone(),
            window_days: config.visit_window_days,
            school_age: config.school_age_min..=config.school_age_max,
            outbound_exchange: config.amqp.outbound_exchange.clone(),
            relay_wake: wake.clone(),
        });
        let consumer = Arc::new(Consumer::new(
            intake.clone(),
            &config,
            broker_connected.clone(),
        ));
        tokio::spawn(consumer.run());
        tokio::spawn(relay(&config, &pool, clock, &metrics, wake).run());

        let listener = TcpListener::bind(config.bind)?;
        let port = listener.local_addr()?.port();
        let state = web::Data::new(AppState {
            pool: pool.clone(),
            intake,
            metrics: metrics.clone(),
            broker_connected,
        });
        let server =
            HttpServer::new(move || App::new().app_data(state.clone()).configure(api::routes))
                .workers(2)
                .listen(listener)?
                .run();
        tracing::info!(port, backend = url.backend_name(), "schoolsignal listening");
        Ok(Self {
            port,
            server,
            pool,
            metrics,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

fn relay(
    config: &Config,
    pool: &Pool,
    clock: SharedClock,
    metrics: &Arc<Metrics>,
    wake: Arc<Notify>,
) -> Arc<Relay> {
    Arc::new(Relay {
        pool: pool.clone(),
        clock,
        metrics: metrics.clone(),
        amqp_url: config.amqp_url.clone(),
        exchanges: vec![config.amqp.outbound_exchange.clone()],
        wake,
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
