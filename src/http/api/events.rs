//! `POST /v1/events`: the same intake for police systems that cannot publish to AMQP.

use super::{ApiError, AppState, MODE_HEADER};
use crate::access::api_keys::{self as keys, KeyInfo, Mode};
use crate::access::audit::{self, Action, Outcome};
use crate::contract::{Reason, Rejection, MAX_BODY_BYTES};
use crate::db;
use crate::notices::decide::{ChildDecision, Verdict};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use futures_util::StreamExt;
use serde_json::json;

const ACCEPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Post a police event.
///
/// It is validated, and each child decided against the registry, in one transaction;
/// the answer holds one outcome per child. Every answer past the key check says its mode
/// (`Schoolsignal-Mode: live` or `test`); a test key's event is rolled back, and
/// written to the audit log. The error statuses and their reason codes are added
/// from `ApiError` (`openapi::ErrorResponses`).
#[utoipa::path(
    post,
    path = "/v1/events",
    tag = "intake",
    request_body(content = super::openapi::HomeVisit, content_type = "application/json"),
    responses(
        (status = 202, description = "a new event: decided, and its notices made", body = super::openapi::EventAnswer),
        (status = 200, description = "an event seen before (same id, same body): the first answer's outcomes, and no new effect", body = super::openapi::EventAnswer),
    ),
    security(("api_key" = [])),
)]
pub async fn post_event(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let key = match authorize(&req, &state, "events:write").await {
        Ok(key) => key,
        Err(e) => return e.error_response(),
    };
    let mut response = decide(&req, payload, &state, key.mode)
        .await
        .unwrap_or_else(|e| e.error_response());
    response.headers_mut().insert(
        HeaderName::from_static(MODE_HEADER),
        HeaderValue::from_static(key.mode.as_str()),
    );
    if key.mode == Mode::Test {
        audit_test_event(&state, &key, response.status().as_u16()).await;
    }
    response
}

/// Validates and decides the event: for real with a live key, rolled back with a
/// test key; the answer is the same.
async fn decide(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    mode: Mode,
) -> Result<HttpResponse, ApiError> {
    let reject = |rejection: Rejection, body: &[u8]| {
        state.intake.note_rejection(&rejection, body, "http", mode);
        ApiError::Rejected(rejection)
    };
    if !is_json(req) {
        return Err(reject(Rejection::new(Reason::UnsupportedContentType), &[]));
    }
    let body = read_body(payload).await.map_err(|r| reject(r, &[]))?;
    let received = state
        .intake
        .validate(&body, "http")
        .map_err(|r| reject(r, &body))?;
    let event_id = received.event.event_id;
    // The intake retries an outage without end; an HTTP client gets 503 instead and
    // may retry: the inbox makes a retry of a late commit a harmless 200.
    let decided = async {
        match mode {
            Mode::Live => state.intake.accept(vec![received]).await,
            Mode::Test => state.intake.rehearse(vec![received]).await,
        }
    };
    let verdict = tokio::time::timeout(ACCEPT_TIMEOUT, decided)
        .await
        .map_err(|_| ApiError::Unavailable)?
        .map_err(|e| {
            tracing::error!(%event_id, error = %e, "event could not be stored");
            ApiError::Unavailable
        })?
        .pop()
        .ok_or(ApiError::Unavailable)?;
    let body = |decisions: &[ChildDecision]| {
        json!({
            "event_id": event_id,
            "outcomes": decisions.iter().map(|d| json!({
                "child_index": d.child_index, "outcome": d.outcome.as_str()
            })).collect::<Vec<_>>(),
        })
    };
    match verdict {
        Verdict::New(d) => Ok(HttpResponse::Accepted().json(body(&d))),
        Verdict::Duplicate(d) => Ok(HttpResponse::Ok().json(body(&d))),
        Verdict::Conflict => Err(ApiError::Rejected(Rejection::new(Reason::EventIdConflict))),
    }
}

/// One audit row per test key request: which key, and how it went. Written on its
/// own, after the rehearsal was rolled back.
async fn audit_test_event(state: &AppState, key: &KeyInfo, status: u16) {
    let outcome = match status {
        200..=299 => Outcome::Ok,
        500..=599 => Outcome::Unavailable,
        _ => Outcome::Rejected,
    };
    let actor = format!("api_key:{}", key.name);
    let now = state.intake.clock.now();
    let written = db::run(&state.pool, move |c| {
        Ok(audit::record(
            c,
            &actor,
            Action::TestEvent,
            None,
            outcome,
            now,
        )?)
    })
    .await;
    if let Err(e) = written {
        tracing::warn!(error = %e, "a test event's audit row was not written");
    }
}

/// No `Content-Type` is taken as JSON; any other type is refused.
fn is_json(req: &HttpRequest) -> bool {
    let Some(ct) = req.headers().get(header::CONTENT_TYPE) else {
        return true;
    };
    let mime = ct.to_str().unwrap_or("").split(';').next().unwrap_or("");
    mime.trim().eq_ignore_ascii_case("application/json")
}

/// Reads at most one chunk past the limit, so an oversized body is never buffered whole.
async fn read_body(mut payload: web::Payload) -> Result<web::BytesMut, Rejection> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| Rejection::new(Reason::MalformedJson))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(Rejection::new(Reason::TooLarge));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

async fn authorize(
    req: &HttpRequest,
    state: &AppState,
    scope: &'static str,
) -> Result<KeyInfo, ApiError> {
    let key = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty() && k.len() <= 200)
        .ok_or(ApiError::Unauthorized)?;
    let info = db::run(&state.pool, move |c| Ok(keys::lookup(c, &key)?))
        .await
        .map_err(|_| ApiError::Unavailable)?
        .ok_or(ApiError::Unauthorized)?;
    if info.scopes.iter().any(|s| s == scope) {
        Ok(info)
    } else {
        Err(ApiError::Forbidden(scope))
    }
}
