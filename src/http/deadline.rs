//! The whole-request deadline. Actix cuts off a request whose head is slow
//! (`client_request_timeout`), but once the head is in it waits for the body as long
//! as the client likes: a `POST` that declares 200 bytes and sends 6 held its
//! connection for good, and enough of them starved the server. Here reading the body
//! and answering must finish within the deadline too, or the client gets 408 and
//! the connection is closed.

use actix_web::body::BoxBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use std::future::Future;
use std::time::Duration;

/// Runs the rest of the app (`service`) on `req` within `deadline`.
pub fn within<S>(
    deadline: Duration,
    req: ServiceRequest,
    service: &S,
) -> impl Future<Output = Result<ServiceResponse<BoxBody>, actix_web::Error>>
where
    S: Service<ServiceRequest, Response = ServiceResponse<BoxBody>, Error = actix_web::Error>,
{
    let call = service.call(req);
    async move {
        match tokio::time::timeout(deadline, call).await {
            Ok(answer) => answer,
            Err(_) => {
                tracing::info!(
                    deadline_seconds = deadline.as_secs(),
                    "request cut off at its deadline"
                );
                // An error, because the request moved into the call (and a clone
                // of it would break actix's routing); actix answers it as below.
                Err(TooSlow.into())
            }
        }
    }
}

/// The reason code of a 408's body.
pub const TIMEOUT_REASON: &str = "request_timeout";

#[derive(Debug, thiserror::Error)]
#[error("the request was not received and answered in time")]
struct TooSlow;

impl ResponseError for TooSlow {
    fn status_code(&self) -> StatusCode {
        StatusCode::REQUEST_TIMEOUT
    }

    /// 408, and the connection closes: what is left of the body is never read. An
    /// error passes the middleware that adds the baseline headers, so it has its own.
    fn error_response(&self) -> HttpResponse {
        HttpResponse::RequestTimeout()
            .force_close()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .json(serde_json::json!({
                "reason": TIMEOUT_REASON,
                "error": self.to_string(),
            }))
    }
}
