//! The HTTP surface: police intake, health, readiness and metrics.

pub mod events;

use crate::db::{self, Pool};
use crate::http::methods::Endpoint;
use crate::intake::Intake;
use crate::telemetry::Metrics;
use actix_web::http::{header, StatusCode};
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, HttpResponse, ResponseError};
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What every handler can reach.
pub struct AppState {
    pub pool: Pool,
    pub intake: Arc<Intake>,
    pub metrics: Arc<Metrics>,
    pub broker_connected: Arc<AtomicBool>,
}

/// Errors at the HTTP boundary. Each maps to one status and a JSON body with a
/// reason code and no personal data.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("a valid API key is required")]
    Unauthorized,
    #[error("the API key lacks the scope `{0}`")]
    Forbidden(&'static str),
    #[error("{}", .0.detail())]
    Rejected(crate::contract::Rejection),
    #[error("temporarily unavailable; try again")]
    Unavailable,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        use crate::contract::Reason;
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Rejected(r) => match r.reason {
                Reason::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                Reason::EventIdConflict => StatusCode::CONFLICT,
                Reason::UnsupportedContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            },
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let reason = match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Rejected(r) => r.reason.as_str(),
            ApiError::Unavailable => "unavailable",
        };
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::Unauthorized) {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if matches!(self, ApiError::Unavailable) {
            response.insert_header(("Retry-After", "5"));
        }
        let error = match self {
            ApiError::Rejected(r) => r.detail(),
            other => other.to_string(),
        };
        response.json(json!({ "reason": reason, "error": error }))
    }
}

/// The headers every response of the service carries unless it sets its own, the
/// API's and its error bodies too: nothing is sniffed into another type, and nothing
/// (a decision, a reason code) is kept by a cache.
pub fn baseline_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::CACHE_CONTROL, "no-store"))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(Endpoint::new("/healthz").get(healthz))
        .service(Endpoint::new("/readyz").get(readyz))
        .service(Endpoint::new("/metrics").get(metrics))
        .service(Endpoint::new("/v1/events").post(events::post_event));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Ready when the database answers and the intake consumer holds a broker connection.
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let database = tokio::time::timeout(Duration::from_secs(3), db::run(&state.pool, db::ping))
        .await
        .is_ok_and(|r| r.is_ok());
    let broker = state.broker_connected.load(Ordering::SeqCst);
    let body = json!({
        "database": if database { "up" } else { "down" },
        "broker": if broker { "up" } else { "down" },
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
