//! The whole-request deadline. Actix cuts off a request whose head is slow
//! (`client_request_timeout`), but once the head is in it waits for the body as long
//! as the client likes: a `POST` that declares 200 bytes and sends 6 held its
//! connection for good, and enough of them starved the server. Here reading the body
//! and answering must finish within the deadline too, or the client gets 408 and
//! the connection is closed.

use actix_web::body::BoxBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::HttpResponse;
use std::future::Future;
use std::time::Duration;

/// Runs `call` (the rest of the app, given the request) within `deadline`.
pub fn within<S>(
    deadline: Duration,
    req: ServiceRequest,
    service: &S,
) -> impl Future<Output = Result<ServiceResponse<BoxBody>, actix_web::Error>>
where
    S: Service<ServiceRequest, Response = ServiceResponse<BoxBody>, Error = actix_web::Error>,
{
    // Kept to answer with: the request itself moves into the call.
    let request = req.request().clone();
    let call = service.call(req);
    async move {
        match tokio::time::timeout(deadline, call).await {
            Ok(answer) => answer,
            Err(_) => {
                tracing::info!(
                    deadline_seconds = deadline.as_secs(),
                    "request cut off at its deadline"
                );
                Ok(ServiceResponse::new(request, too_slow()))
            }
        }
    }
}

/// 408, and the connection closes: what is left of the body is never read.
fn too_slow() -> HttpResponse {
    HttpResponse::RequestTimeout()
        .force_close()
        .json(serde_json::json!({
            "reason": "request_timeout",
            "error": "the request was not received and answered in time",
        }))
}
