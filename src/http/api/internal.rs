//! The internal listener (`SCHOOLSIGNAL_METRICS_BIND`), never the portal's address:
//! Prometheus `/metrics` and the detailed `/health`. The decision counters move right
//! after a police event, so on a public address they would tell whether a child is
//! in the registry.

use super::{database_up, up_down, AppState};
use crate::db;
use crate::http::methods::Endpoint;
use actix_web::{web, HttpResponse};
use serde_json::json;
use std::sync::atomic::Ordering;
use std::time::Duration;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(Endpoint::new("/metrics").get(metrics))
        .service(Endpoint::new("/health").get(health));
}

/// Each dependency's state: `{"database":"up"|"down","broker":"up"|"down"}`, where
/// the broker is up while the intake consumer holds a connection. 200 when all are
/// up, else 503: for monitoring and people, never a readiness probe (a broker
/// outage must not take the replicas out of the Service; `/readyz` on the main
/// listener is the probe).
async fn health(state: web::Data<AppState>) -> HttpResponse {
    let database = database_up(&state.pool).await;
    let broker = state.broker_connected.load(Ordering::SeqCst);
    let body = json!({
        "database": up_down(database),
        "broker": up_down(broker),
    });
    if database && broker {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    // Queue gauges are read at scrape time, so they are exact across replicas.
    let now = state.intake.clock.now();
    let read = db::run(&state.pool, move |c| {
        let depth = crate::outbox::depth(c)?;
        let oldest = crate::delivery::queue::oldest_pending_age(c, now)?;
        Ok((depth, oldest))
    });
    if let Ok(Ok((depth, oldest))) = tokio::time::timeout(Duration::from_secs(3), read).await {
        state.metrics.outbox_depth.set(depth);
        state.metrics.oldest_pending_delivery.set(oldest);
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
