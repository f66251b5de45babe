//! The HTTP surface: police intake, health, readiness and metrics.

pub mod events;
pub mod internal;
pub mod openapi;

use crate::db::{self, Pool};
use crate::http::methods::Endpoint;
use crate::intake::Intake;
use crate::telemetry::Metrics;
use actix_web::http::{header, StatusCode};
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, HttpResponse, ResponseError};
use openapi::{BearerKey, ErrorResponses};
use serde_json::json;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use utoipa::OpenApi;

/// The police API's OpenAPI document (`GET /openapi.json`): the operations from the
/// handlers' `#[utoipa::path]`, the rest from [`openapi`].
#[derive(OpenApi)]
#[openapi(
    info(
        title = "schoolsignal police API",
        description = "Police systems post `police.home_visit.v1` events (contract section 1) \
            over HTTPS. A key made with `--mode test` gets the same answers, decided against \
            the real registry, and leaves nothing behind: see `Schoolsignal-Mode`."
    ),
    paths(events::post_event, healthz, readyz),
    components(schemas(
        openapi::HomeVisit,
        openapi::Child,
        openapi::EventAnswer,
        openapi::ChildOutcome
    )),
    modifiers(&BearerKey, &ErrorResponses),
)]
pub struct ApiDoc;

/// The header that says whether a response came from a live or a test key.
pub const MODE_HEADER: &str = "schoolsignal-mode";

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

impl ApiError {
    /// The reason code of the answer's body.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Rejected(r) => r.reason.as_str(),
            ApiError::Unavailable => "unavailable",
        }
    }
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
        let reason = self.reason();
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

/// The routes of the main listener (the portal's address): intake and the kubelet's
/// probes. `/metrics` and the detailed health are on the internal listener only
/// ([`internal::routes`]), so here they are 404.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(Endpoint::new("/healthz").get(healthz))
        .service(Endpoint::new("/readyz").get(readyz))
        .service(Endpoint::new("/v1/events").post(events::post_event))
        .service(Endpoint::new("/openapi.json").get(openapi::document));
}

/// Liveness: the process runs.
#[utoipa::path(get, path = "/healthz", tag = "probes",
    responses((status = 200, description = "the process runs", body = serde_json::Value, example = json!({"status": "ok"}))))]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Ready when the database answers: all this replica needs to answer the portal and
/// HTTPS intake. The broker is left out on purpose: its outage must not take every
/// replica out of the Service. The body says the database's state and nothing else.
#[utoipa::path(get, path = "/readyz", tag = "probes", responses(
    (status = 200, description = "the database answers", body = serde_json::Value, example = json!({"database": "up"})),
    (status = 503, description = "the database does not answer within 3 s", body = serde_json::Value, example = json!({"database": "down"}))))]
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let database = database_up(&state.pool).await;
    let body = json!({ "database": up_down(database) });
    if database {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Whether the database answers a ping within 3 seconds.
async fn database_up(pool: &Pool) -> bool {
    tokio::time::timeout(Duration::from_secs(3), db::run(pool, db::ping))
        .await
        .is_ok_and(|r| r.is_ok())
}

fn up_down(up: bool) -> &'static str {
    if up {
        "up"
    } else {
        "down"
    }
}
