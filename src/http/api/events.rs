//! `POST /v1/events`: the same intake for police systems that cannot publish to AMQP.

use super::{ApiError, AppState};
use crate::access::api_keys as keys;
use crate::contract::{Reason, Rejection, MAX_BODY_BYTES};
use crate::db;
use crate::notices::decide::{ChildDecision, Verdict};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde_json::json;

const ACCEPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

pub async fn post_event(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &state, "events:write").await?;
    let reject = |rejection: Rejection, body: &[u8]| {
        state.intake.note_rejection(&rejection, body, "http");
        ApiError::Rejected(rejection)
    };
    if !is_json(&req) {
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
    let verdict = tokio::time::timeout(ACCEPT_TIMEOUT, state.intake.accept(vec![received]))
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
) -> Result<(), ApiError> {
    let key = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty() && k.len() <= 200)
        .ok_or(ApiError::Unauthorized)?;
    let scopes = db::run(&state.pool, move |c| Ok(keys::scopes_of(c, &key)?))
        .await
        .map_err(|_| ApiError::Unavailable)?
        .ok_or(ApiError::Unauthorized)?;
    if scopes.iter().any(|s| s == scope) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(scope))
    }
}
