//! The HTTP surface. Handlers parse, authorise, make one domain call and render;
//! no SQL below this folder.

pub mod api;
pub mod deadline;
pub mod methods;
pub mod portal;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::web;
use std::future::Future;

/// Times a request and counts it in `schoolsignal_http_request_duration_seconds` by
/// its route pattern (`/notices/{id}`: never the id itself; `unmatched` for no
/// route) and status, from its arrival to its response head.
pub fn observe<S, B>(
    req: ServiceRequest,
    srv: &S,
) -> impl Future<Output = Result<ServiceResponse<B>, actix_web::Error>>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let started = std::time::Instant::now();
    let response = srv.call(req);
    async move {
        let response = response.await?;
        let request = response.request();
        if let Some(state) = request.app_data::<web::Data<api::AppState>>() {
            let route = request
                .match_pattern()
                .unwrap_or_else(|| "unmatched".to_string());
            let status = response.status().as_u16().to_string();
            state
                .metrics
                .http_requests
                .with_label_values(&[route.as_str(), status.as_str()])
                .observe(started.elapsed().as_secs_f64());
        }
        Ok(response)
    }
}
