//! What the HTTP boundary refuses before any handler works: methods a path does not
//! serve, and requests whose head or body never finishes.

use crate::support::*;
use reqwest::Method;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The bound on waiting for an answer that, without the deadline, never comes.
const HANG: Duration = Duration::from_secs(60);

/// A path served for some methods answers another with 405 and `Allow`, and every
/// GET answers HEAD too, with its headers and no body. Both once gave 404.
async fn methods_as_http_says(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let not_allowed = [
        (Method::POST, "/healthz", "GET, HEAD"),
        (Method::DELETE, "/readyz", "GET, HEAD"),
        (Method::GET, "/v1/events", "POST"),
        (Method::HEAD, "/v1/events", "POST"),
        (Method::PUT, "/login", "GET, HEAD, POST"),
        (Method::GET, "/logout", "POST"),
        (Method::POST, "/notices", "GET, HEAD"),
        (Method::GET, "/notices/x/acknowledge", "POST"),
        (Method::PATCH, "/static/portal.css", "GET, HEAD"),
    ];
    for (method, path, allow) in not_allowed {
        let r = app
            .http
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "{method} {path}");
        assert_eq!(r.headers()["allow"], allow, "{method} {path}");
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    }
    for path in [
        "/healthz",
        "/readyz",
        "/openapi.json",
        "/login",
        "/static/portal.css",
    ] {
        let get = app.http.get(app.url(path)).send().await.unwrap();
        let head = app.http.head(app.url(path)).send().await.unwrap();
        assert_eq!(head.status(), get.status(), "HEAD {path}");
        assert_eq!(head.status(), 200, "HEAD {path}");
        let content_type = &get.headers()["content-type"];
        assert_eq!(&head.headers()["content-type"], content_type, "HEAD {path}");
        assert!(
            head.bytes().await.unwrap().is_empty(),
            "HEAD {path} has no body"
        );
    }
    let r = app.http.get(app.url("/no-such-path")).send().await.unwrap();
    assert_eq!(r.status(), 404, "an unknown path is still 404");
    app.cleanup().await;
}

/// Opens a connection and sends `start` of a request that never finishes.
async fn unfinished(address: &str, start: &str) -> TcpStream {
    let host = address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).await.unwrap();
    stream.write_all(start.as_bytes()).await.unwrap();
    stream
}

/// What the server sends before it closes the connection; fails the test if it is
/// still open after [`HANG`].
async fn answer_then_close(mut stream: TcpStream) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(HANG, stream.read_to_end(&mut answer))
        .await
        .expect("the server closes an unfinished request's connection")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

const SLOW_BODY: &str = "POST /login HTTP/1.1\r\nHost: x\r\n\
    Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 200\r\n\r\ncsrf=x";

/// A request whose body never finishes gets 408 and its connection closed once the
/// deadline passes, and a crowd of them leaves the server answering. Before, a body
/// that declared 200 bytes and sent 6 held its connection for good.
async fn unfinished_requests_are_cut_off(backend: Backend) {
    let deadline = ("SCHOOLSIGNAL_REQUEST_TIMEOUT_SECONDS", "2".to_string());
    let app = TestApp::spawn_with(backend, &[deadline]).await;
    let events = format!(
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 900\r\n\r\n{{\"event",
        app.api_key
    );
    let mut crowd = Vec::new();
    for i in 0..130 {
        let start = if i % 2 == 0 { SLOW_BODY } else { &events };
        crowd.push(unfinished(&app.address, start).await);
    }
    let head = unfinished(&app.address, "GET /healthz HTTP/1.1\r\nHost:").await;
    // While they wait, the server answers others.
    let r = app.http.get(app.url("/healthz")).timeout(HANG).send().await;
    assert_eq!(r.expect("/healthz answers").status(), 200);
    for stream in crowd {
        let answer = answer_then_close(stream).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("request_timeout"), "{answer}");
    }
    let answer = answer_then_close(head).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    assert_eq!(count_rows(&app.pool, "inbox_events"), 0, "no event taken");
    app.cleanup().await;
}

backend_tests!(methods_as_http_says, unfinished_requests_are_cut_off);
