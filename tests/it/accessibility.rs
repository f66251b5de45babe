//! The accessibility check itself (`support::axe`), proved on two small pages in
//! real headless Chromium: a bad one with known WCAG violations, which it must find
//! and report without quoting the page, and a good one, which it must pass. Both
//! are sent with the portal's Content-Security-Policy, which axe must get past.

use crate::support::*;
use futures_util::FutureExt;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The portal's policy, as `security_headers` in src/http/portal/mod.rs sends it.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// A made-up child's name in the bad page's offending elements: no report may
/// show it.
const CANARY: &str = "Fenna Jansen-Verhoef";
/// The same name as the bad images' file name, which axe likes to put in a selector.
const CANARY_FILE: &str = "fenna-jansen-verhoef";

/// What the bad page breaks: a field without a label, images without a text
/// alternative, faint text and no language.
const EXPECTED: [&str; 4] = ["color-contrast", "html-has-lang", "image-alt", "label"];

/// No `lang`; the images' only names are in their file names and data attributes
/// (a `title` would name them); the field's only text is its value. The inline
/// script would mark the page if the policy let it run.
const BAD_PAGE: &str = r#"<!doctype html>
<html>
<head><meta charset="utf-8"><title>Melding</title><link rel="stylesheet" href="/page.css"></head>
<body>
<main>
<h1>Melding</h1>
<p class="faint">Fenna Jansen-Verhoef, groep 5</p>
<img src="/fenna-jansen-verhoef.svg" data-child="Fenna Jansen-Verhoef">
<img src="/fenna-jansen-verhoef-2.svg" data-child="Fenna Jansen-Verhoef">
<form action="/bad"><input type="text" name="child" value="Fenna Jansen-Verhoef"></form>
<script>document.body.dataset.inline = "ran";</script>
</main>
</body>
</html>
"#;

const GOOD_PAGE: &str = r#"<!doctype html>
<html lang="nl">
<head><meta charset="utf-8"><title>Melding</title><link rel="stylesheet" href="/page.css"></head>
<body>
<main>
<h1>Melding</h1>
<p>Er is een melding voor uw school.</p>
<img src="/pixel.svg" alt="Logo van de school">
<form action="/good"><label for="note">Notitie</label> <input id="note" name="note" type="text"></form>
</main>
</body>
</html>
"#;

/// #c8c8c8 on white is about 1.7:1, far below the 4.5:1 that AA asks.
const STYLESHEET: &str = "body { color: #222; background: #fff; } .faint { color: #c8c8c8; }";
const IMAGE: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40"><rect width="40" height="40" fill="#36c"/></svg>"##;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accessibility_axe_fails_bad_page_and_passes_good_page() {
    let site = Site::start();
    let driver = Chromedriver::start().await;
    let browser = Browser::open(&driver).await;
    let b = &browser;

    b.client.goto(&site.url("/bad")).await.unwrap();
    // The policy is in force (the page's own inline script did not run), and axe,
    // injected through WebDriver, runs all the same.
    assert_eq!(
        b.js("return document.body.dataset.inline || 'blocked'")
            .await,
        "blocked",
        "the page's inline script ran: the policy was not applied"
    );
    let violations = axe_violations(&b.client).await;
    let ids: BTreeSet<&str> = violations.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(
        ids,
        BTreeSet::from(EXPECTED),
        "the bad page's violations: {violations:#?}"
    );
    assert_no_canary("the violations", &format!("{violations:?}"));

    let message = panic_of(assert_accessible(b, "the bad page")).await;
    for id in EXPECTED {
        assert!(message.contains(id), "the message names {id}: {message}");
    }
    assert!(
        message.contains("https://dequeuniversity.com/rules/axe/"),
        "{message}"
    );
    assert_no_canary("the message", &message);

    b.client.goto(&site.url("/good")).await.unwrap();
    let violations = axe_violations(&b.client).await;
    assert!(
        violations.is_empty(),
        "the good page passes: {violations:#?}"
    );
    assert_accessible(b, "the good page").await;
}

/// The panic message of `check`, which must panic.
async fn panic_of(check: impl std::future::Future<Output = ()>) -> String {
    let payload = AssertUnwindSafe(check)
        .catch_unwind()
        .await
        .expect_err("assert_accessible fails on the bad page");
    match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => payload.downcast_ref::<&str>().unwrap().to_string(),
    }
}

fn assert_no_canary(what: &str, text: &str) {
    let lower = text.to_lowercase();
    for canary in [CANARY, CANARY_FILE, "fenna"] {
        assert!(
            !lower.contains(&canary.to_lowercase()),
            "{what} quotes the page ({canary}); it must show selectors only"
        );
    }
}

/// The two pages, their stylesheet and image, over plain HTTP on 127.0.0.1: a
/// thread per connection, each answered once and closed.
struct Site {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Site {
    fn start() -> Self {
        // Bound at port 0: nothing needs to know the port before it listens.
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    std::thread::spawn(move || answer(stream));
                }
            }
        });
        Site { port, stop }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Site {
    /// Ends the accept loop: it sees the flag at the next connection, this one.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
    }
}

/// Reads a request head and answers its path.
fn answer(mut stream: TcpStream) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or("/");
    let (status, content_type, body) = resource(path);
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Content-Security-Policy: {CSP}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
}

fn resource(path: &str) -> (&'static str, &'static str, &'static str) {
    const HTML: &str = "text/html; charset=utf-8";
    const SVG: &str = "image/svg+xml";
    match path {
        "/bad" => ("200 OK", HTML, BAD_PAGE),
        "/good" => ("200 OK", HTML, GOOD_PAGE),
        "/page.css" => ("200 OK", "text/css", STYLESHEET),
        p if p.ends_with(".svg") => ("200 OK", SVG, IMAGE),
        _ => ("404 Not Found", "text/plain", "not found"),
    }
}
