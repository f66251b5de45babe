//! Routes as HTTP says (RFC 9110): a path answers a method it does not serve with
//! 405 and an `Allow` header that names the ones it does, and every GET also
//! answers HEAD, with the same headers and no body. Actix's own routes would answer
//! both with 404, as if the path did not exist.

use actix_web::dev::{AppService, HttpServiceFactory};
use actix_web::http::{header, Method};
use actix_web::{guard, web, FromRequest, Handler, HttpResponse, Resource, Responder, Route};

/// One path and the methods it serves.
pub struct Endpoint {
    resource: Resource,
    allow: Vec<Method>,
}

impl Endpoint {
    pub fn new(path: &str) -> Self {
        Endpoint {
            resource: web::resource(path),
            allow: Vec::new(),
        }
    }

    /// Serves GET, and so HEAD (the server sends HEAD's answer without its body).
    pub fn get<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        let route = web::route().guard(guard::Any(guard::Get()).or(guard::Head()));
        self.serve(&[Method::GET, Method::HEAD], route.to(handler))
    }

    pub fn post<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.serve(&[Method::POST], web::post().to(handler))
    }

    fn serve(mut self, methods: &[Method], route: Route) -> Self {
        self.allow.extend_from_slice(methods);
        self.resource = self.resource.route(route);
        self
    }

    /// The `Allow` header's value: the methods served, in the order added.
    fn allow(&self) -> String {
        let names: Vec<&str> = self.allow.iter().map(Method::as_str).collect();
        names.join(", ")
    }
}

impl HttpServiceFactory for Endpoint {
    fn register(self, config: &mut AppService) {
        let allow = self.allow();
        let not_allowed = web::to(move || {
            let allow = allow.clone();
            async move {
                HttpResponse::MethodNotAllowed()
                    .insert_header((header::ALLOW, allow))
                    .finish()
            }
        });
        self.resource.default_service(not_allowed).register(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::{call_service, init_service, TestRequest};
    use actix_web::App;

    async fn ok() -> HttpResponse {
        HttpResponse::Ok().body("body")
    }

    #[actix_web::test]
    async fn other_methods_get_405_with_allow_and_get_answers_head() {
        let app = init_service(App::new().service(Endpoint::new("/x").get(ok).post(ok))).await;
        let head = call_service(
            &app,
            TestRequest::default()
                .method(Method::HEAD)
                .uri("/x")
                .to_request(),
        )
        .await;
        assert_eq!(head.status(), 200);
        let put = call_service(&app, TestRequest::put().uri("/x").to_request()).await;
        assert_eq!(put.status(), 405);
        assert_eq!(put.headers().get(header::ALLOW).unwrap(), "GET, HEAD, POST");
        let other = call_service(&app, TestRequest::get().uri("/y").to_request()).await;
        assert_eq!(other.status(), 404);
    }
}
