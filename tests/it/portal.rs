//! The coordinator portal over HTTP: from the email's link to an acknowledged
//! notice, and the security rules on the way. Real service, real SMTP sink.

use crate::support::*;
use reqwest::header::{HeaderMap, COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::redirect::Policy;
use smtp_sink::SmtpSink;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub(crate) const PUBLIC: &str = "https://portal.example";
pub(crate) const WAIT: Duration = Duration::from_secs(30);

pub(crate) struct Portal {
    pub(crate) app: TestApp,
    pub(crate) sink: SmtpSink,
    http: reqwest::Client,
    /// The link token each coordinator was sent, by address.
    tokens: Vec<(String, String)>,
}

impl Portal {
    pub(crate) async fn start(backend: Backend) -> Self {
        Self::start_with(backend, &[]).await
    }

    /// With extra service variables.
    pub(crate) async fn start_with(backend: Backend, more: &[(&str, String)]) -> Self {
        let sink = SmtpSink::start().await;
        let mut extra = vec![
            ("SMTP_URL", format!("{}?tls=none", sink.url())),
            ("SCHOOLSIGNAL_PUBLIC_URL", PUBLIC.to_string()),
        ];
        extra.extend(more.iter().cloned());
        let app = TestApp::spawn_with(backend, &extra).await;
        Self::on(app, sink).await
    }

    /// A service that cannot reach the broker: it serves pages and takes events over
    /// HTTP (it is ready), but its relay cannot publish (and its detailed health never
    /// reports the broker up, which is what `TestApp::wait_ready` waits for).
    async fn start_without_broker(backend: Backend) -> Self {
        let sink = SmtpSink::start().await;
        // A port nothing listens on. Safe to take from `free_port` although it is
        // released: nothing here listens on it, and should another process bind it
        // meanwhile, it would not speak AMQP either, so the broker stays unreachable.
        let closed = format!("amqp://guest:guest@127.0.0.1:{}/%2f", free_port());
        let extra = [
            ("SMTP_URL", format!("{}?tls=none", sink.url())),
            ("SCHOOLSIGNAL_PUBLIC_URL", PUBLIC.to_string()),
            ("AMQP_URL", closed),
        ];
        let app = TestApp::start_with(backend, &extra).await;
        Self::on(app, sink).await
    }

    /// Sends the siblings event and collects the two emails' links.
    async fn on(app: TestApp, sink: SmtpSink) -> Self {
        let (status, _) = app.post_event(&example("valid-siblings.json")).await;
        assert_eq!(status, 202);
        let mails = sink.wait_for(2, WAIT).await;
        assert_eq!(mails.len(), 2, "one email per school");
        let tokens = mails
            .iter()
            .map(|m| (m.rcpt_to[0].clone(), token_in(&m.text_body())))
            .collect();
        let http = reqwest::Client::builder()
            .redirect(Policy::none())
            .build()
            .unwrap();
        Portal {
            app,
            sink,
            http,
            tokens,
        }
    }

    pub(crate) fn token_for(&self, address: &str) -> String {
        let (_, token) = self.tokens.iter().find(|(a, _)| a == address).unwrap();
        token.clone()
    }

    pub(crate) async fn get(&self, path: &str, cookie: Option<&str>) -> (u16, HeaderMap, String) {
        self.get_with(path, cookie, &[]).await
    }

    /// A GET with extra request headers.
    async fn get_with(
        &self,
        path: &str,
        cookie: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (u16, HeaderMap, String) {
        let mut request = self.http.get(self.app.url(path));
        if let Some(c) = cookie {
            request = request.header(COOKIE, c);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let r = request.send().await.unwrap();
        (
            r.status().as_u16(),
            r.headers().clone(),
            r.text().await.unwrap(),
        )
    }

    pub(crate) async fn post(
        &self,
        path: &str,
        cookie: Option<&str>,
        origin: Option<&str>,
        form: &[(&str, &str)],
    ) -> (u16, HeaderMap, String) {
        self.post_with(path, cookie, origin, &[], form).await
    }

    /// A POST with extra request headers.
    async fn post_with(
        &self,
        path: &str,
        cookie: Option<&str>,
        origin: Option<&str>,
        headers: &[(&str, &str)],
        form: &[(&str, &str)],
    ) -> (u16, HeaderMap, String) {
        let mut request = self.http.post(self.app.url(path)).form(form);
        if let Some(c) = cookie {
            request = request.header(COOKIE, c);
        }
        if let Some(o) = origin {
            request = request.header(ORIGIN, o);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let r = request.send().await.unwrap();
        (
            r.status().as_u16(),
            r.headers().clone(),
            r.text().await.unwrap(),
        )
    }

    /// Redeems `address`'s link; returns the session cookie ("name=value").
    pub(crate) async fn redeem(&self, address: &str) -> String {
        let token = self.token_for(address);
        let (_, _, page) = self.get(&format!("/n/{token}"), None).await;
        let csrf = field(&page, "csrf");
        let (status, headers, _) = self
            .post(
                &format!("/n/{token}"),
                None,
                Some(PUBLIC),
                &[("csrf", &csrf)],
            )
            .await;
        assert_eq!(status, 303);
        assert_eq!(headers[LOCATION], "/totp");
        session_cookie(&headers)
    }

    /// Redeems `address`'s link and opens the enrolment page; returns the session
    /// cookie, the secret shown and the form's CSRF token.
    async fn enrolment_page(&self, address: &str) -> (String, String, String) {
        let cookie = self.redeem(address).await;
        let (_, _, page) = self.get("/totp", Some(&cookie)).await;
        let secret = enrolment_secret(&page);
        (cookie, secret, field(&page, "csrf"))
    }

    /// Enrols TOTP with `cookie`'s session; returns the secret and the new cookie.
    pub(crate) async fn enrol(&self, cookie: &str) -> (String, String, String) {
        let (status, _, page) = self.get("/totp", Some(cookie)).await;
        assert_eq!(status, 200);
        let secret = enrolment_secret(&page);
        assert!(page.contains("<svg"), "the QR code is inline SVG");
        let code = code_now(&secret);
        let csrf = field(&page, "csrf");
        let form = [("csrf", csrf.as_str()), ("code", code.as_str())];
        let (status, headers, _) = self.post("/totp", Some(cookie), Some(PUBLIC), &form).await;
        assert_eq!(status, 303);
        let target = headers[LOCATION].to_str().unwrap().to_string();
        (secret, session_cookie(&headers), target)
    }
}

/// The token of the link in an email to the portal at [`PUBLIC`].
fn token_in(text: &str) -> String {
    link_token(text, PUBLIC)
}

fn audit_actions(pool: &schoolsignal::db::Pool) -> Vec<(String, String)> {
    use diesel::prelude::*;
    use schoolsignal::db::schema::audit_log::dsl::*;
    let mut conn = pool.get().unwrap();
    audit_log
        .order(id)
        .select((action, result))
        .load(&mut *conn)
        .unwrap()
}

/// Only a token of the form issued (64 lowercase hex digits) is a link. Any other
/// is not found, GET or POST, and is never rendered into a form: a path-like token
/// once made the link page's form post to `/login`.
async fn only_issued_link_forms_are_links(backend: Backend) {
    let p = Portal::start(backend).await;
    let real = p.token_for("zorg@regenboog.example.nl");
    for path in [
        "/n/%2E%2E%2F%2E%2E%2Flogin".to_string(),
        format!("/n/{}", real.to_uppercase()),
        format!("/n/{}", &real[..63]),
        format!("/n/{real}0"),
    ] {
        let (status, _, page) = p.get(&path, None).await;
        assert_eq!(status, 404, "GET {path}");
        assert!(!page.contains("<form"), "GET {path} renders no form");
        let (status, _, _) = p.post(&path, None, Some(PUBLIC), &[("csrf", "x")]).await;
        assert_eq!(status, 404, "POST {path}");
    }
    let (status, _, page) = p.get(&format!("/n/{real}"), None).await;
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!("action=\"/n/{real}\"")),
        "the real link's form"
    );
    p.app.cleanup().await;
}

/// A control character in a form field or a notice id is refused (422, 404) before
/// any query. A NUL once reached PostgreSQL, which refused it, and the portal
/// answered 503 "database unavailable" with a false outage warning.
async fn control_characters_never_reach_the_database(backend: Backend) {
    let p = Portal::start(backend).await;
    let me = "zorg@regenboog.example.nl";
    let (mine, _) = notice_of(&p.app.pool, "12AB00");
    let (_, cookie, target) = p.enrol(&p.redeem(me).await).await;
    let (_, _, page) = p.get(&target, Some(&cookie)).await;
    let csrf = field(&page, "csrf");
    for id in ["%00", "%00%00", &format!("{mine}%00"), "a%1Bb"] {
        let (status, _, _) = p.get(&format!("/notices/{id}"), Some(&cookie)).await;
        assert_eq!(status, 404, "GET /notices/{id}");
        let path = format!("/notices/{id}/acknowledge");
        let form = [("csrf", csrf.as_str())];
        let (status, _, _) = p.post(&path, Some(&cookie), Some(PUBLIC), &form).await;
        assert_eq!(status, 404, "POST {path}");
    }
    let path = format!("/notices/{mine}/notes");
    for body in ["a\0b", "\0", "bell\u{7}"] {
        let form = [("csrf", csrf.as_str()), ("body", body)];
        let (status, _, _) = p.post(&path, Some(&cookie), Some(PUBLIC), &form).await;
        assert_eq!(status, 422, "a note with a control character");
    }
    assert_eq!(count_rows(&p.app.pool, "notice_notes"), 0, "no note saved");
    let (_, _, login) = p.get("/login", None).await;
    let login_csrf = field(&login, "csrf");
    for email in [
        format!("{me}\0"),
        format!("\0{me}"),
        "zorg\0@x.nl".to_string(),
    ] {
        let form = [("csrf", login_csrf.as_str()), ("email", email.as_str())];
        let (status, _, _) = p.post("/login", None, Some(PUBLIC), &form).await;
        assert_eq!(status, 422, "an address with a NUL");
    }
    // The portal still works: the notice is mine, and a plain note is saved.
    assert_eq!(
        p.get(&format!("/notices/{mine}"), Some(&cookie)).await.0,
        200
    );
    let form = [
        ("csrf", csrf.as_str()),
        ("body", "gesprek gehad\r\nmet moeder"),
    ];
    let (status, _, _) = p.post(&path, Some(&cookie), Some(PUBLIC), &form).await;
    assert_eq!(status, 303);
    assert_eq!(count_rows(&p.app.pool, "notice_notes"), 1);
    p.app.cleanup().await;
}

backend_tests!(
    link_to_acknowledgement,
    only_issued_link_forms_are_links,
    control_characters_never_reach_the_database,
    wrong_codes_lock_the_account,
    a_new_link_by_email,
    guessed_links_lock_out_the_client,
    pages_in_the_school_language,
    actions_are_checked_in_order,
    a_signal_waits_while_the_broker_is_away,
    new_links_expire_and_are_limited_per_address,
    used_links_are_no_guesses,
    every_route_sends_the_security_headers,
    parallel_codes_stop_at_the_lockout,
    a_second_lockout_lasts_longer,
    parallel_guesses_stop_at_the_limit,
    parallel_new_links_stop_at_the_limit,
    enrolment_is_told_by_email
);

fn assert_logs_clean(texts: &[&str]) {
    let logs = captured_logs();
    assert_no_personal_data(&logs, "email attempt");
    let dates = dates_as_shown();
    assert!(dates.contains(&"30-09-2014".to_string()), "{dates:?}");
    for text in dates
        .iter()
        .map(String::as_str)
        .chain(texts.iter().copied())
    {
        assert!(
            !logs.contains(text),
            "a value of length {} in the logs",
            text.len()
        );
    }
}

/// `<html lang="…">` of a page.
fn lang(page: &str) -> String {
    between(page, "<html lang=\"", "\"")
}

fn set_notice_status(pool: &schoolsignal::db::Pool, notice: &str, to: &str) {
    use diesel::prelude::*;
    use schoolsignal::db::schema::notices::dsl::*;
    let mut conn = pool.get().unwrap();
    diesel::update(notices.find(notice))
        .set(status.eq(to))
        .execute(&mut *conn)
        .unwrap();
}

async fn link_to_acknowledgement(backend: Backend) {
    let p = Portal::start(backend).await;
    let me = "zorg@regenboog.example.nl";
    let token = p.token_for(me);
    let (mine, _) = notice_of(&p.app.pool, "12AB00");
    let (theirs, _) = notice_of(&p.app.pool, "34CD01");

    // Opening the link (twice, as a mail scanner would) uses nothing up.
    for _ in 0..2 {
        let (status, headers, page) = p.get(&format!("/n/{token}"), None).await;
        assert_eq!(status, 200);
        assert!(page.contains("Bericht openen"));
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'") && !csp.contains("script-src"));
        assert!(!csp.contains("unsafe-inline"));
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert_eq!(headers["cache-control"], "no-store");
    }
    // A POST without the form's token, or from another site, is refused.
    let path = format!("/n/{token}");
    let (status, _, _) = p.post(&path, None, Some(PUBLIC), &[]).await;
    assert_eq!(status, 403);
    let (_, _, page) = p.get(&path, None).await;
    let csrf = field(&page, "csrf");
    let form = [("csrf", csrf.as_str())];
    let (status, _, _) = p
        .post(&path, None, Some("https://evil.example"), &form)
        .await;
    assert_eq!(status, 403);

    let (status, headers, _) = p.post(&path, None, Some(PUBLIC), &form).await;
    assert_eq!(status, 303);
    let set = headers[SET_COOKIE].to_str().unwrap();
    for flag in [
        "__Host-schoolsignal=",
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/",
    ] {
        assert!(set.contains(flag), "{flag} in {set}");
    }
    assert!(!set.contains("Domain"));
    let first = session_cookie(&headers);
    // The link works once.
    let (status, _, _) = p.post(&path, None, Some(PUBLIC), &form).await;
    assert_eq!(status, 410);
    // Before the second factor, no notice is shown.
    let (status, _, _) = p.get(&format!("/notices/{mine}"), Some(&first)).await;
    assert_eq!(status, 401);

    let (_, cookie, target) = p.enrol(&first).await;
    assert_eq!(target, format!("/notices/{mine}"));
    assert_ne!(cookie, first, "a new session id after sign-in");
    let (status, _, _) = p.get("/notices", Some(&first)).await;
    assert_eq!(status, 401, "the id from before sign-in is worthless");

    let (status, _, page) = p.get(&target, Some(&cookie)).await;
    assert_eq!(status, 200);
    for shown in ["Daan Bakker", "groep 7", "OBS De Regenboog"] {
        assert!(page.contains(shown), "{shown}");
    }
    assert!(!page.contains("Noor"), "only my own pupil");
    let (_, _, list) = p.get("/notices", Some(&cookie)).await;
    assert!(list.contains(&mine) && !list.contains(&theirs));

    // Another school's notice is a 404 on every route, like one that does not exist.
    let csrf = field(&page, "csrf");
    for id in [theirs.as_str(), "no-such-notice"] {
        let (status, _, _) = p.get(&format!("/notices/{id}"), Some(&cookie)).await;
        assert_eq!(status, 404);
        let form = [("csrf", csrf.as_str())];
        let path = format!("/notices/{id}/acknowledge");
        let (status, _, _) = p.post(&path, Some(&cookie), Some(PUBLIC), &form).await;
        assert_eq!(status, 404);
    }
    assert!(!notice_of(&p.app.pool, "34CD01").1);

    // Acknowledging needs the form's token.
    let path = format!("/notices/{mine}/acknowledge");
    let (status, _, _) = p.post(&path, Some(&cookie), Some(PUBLIC), &[]).await;
    assert_eq!(status, 403);
    assert!(!notice_of(&p.app.pool, "12AB00").1);
    let form = [("csrf", csrf.as_str())];
    let (status, _, _) = p.post(&path, Some(&cookie), Some(PUBLIC), &form).await;
    assert_eq!(status, 303);
    assert!(notice_of(&p.app.pool, "12AB00").1, "acknowledged");
    let (_, _, page) = p.get(&format!("/notices/{mine}"), Some(&cookie)).await;
    assert!(page.contains("Ontvangst bevestigd"));

    // A note is shown as text, never as markup.
    let signals = p.app.broker.bind_outbound("school_signal.v1").await;
    let note = "<script>alert(1)</script> gesprek gehad";
    let form = [("csrf", csrf.as_str()), ("body", note)];
    let path = format!("/notices/{mine}/notes");
    let (status, _, _) = p.post(&path, Some(&cookie), Some(PUBLIC), &form).await;
    assert_eq!(status, 303);
    let (_, _, page) = p.get(&format!("/notices/{mine}"), Some(&cookie)).await;
    assert!(page.contains("&lt;script&gt;alert(1)&lt;"), "escaped");
    assert!(!page.contains("<script>"));
    let too_long = "x".repeat(4001);
    let form = [("csrf", csrf.as_str()), ("body", too_long.as_str())];
    let (status, _, _) = p.post(&path, Some(&cookie), Some(PUBLIC), &form).await;
    assert_eq!(status, 422);

    // A signal is stored and leaves as school_signal.v1 once the broker confirms.
    let description = "Daan vertelde over ruzie thuis <b>vet</b>";
    let form = [
        ("csrf", csrf.as_str()),
        ("category", "disclosure"),
        ("urgency", "urgent"),
        ("description", description),
        ("step", "confirm"),
    ];
    let path = format!("/notices/{mine}/signals");
    let (status, _, _) = p.post(&path, Some(&cookie), Some(PUBLIC), &form).await;
    assert_eq!(status, 303);
    let got = p.app.broker.take(&signals, 1, WAIT).await;
    assert_eq!(got.len(), 1, "school_signal.v1 on a real queue");
    let body: serde_json::Value = serde_json::from_slice(&got[0].delivery.data).unwrap();
    assert_eq!(body["schema"], "school_signal.v1");
    assert_eq!(body["notice_id"], mine.as_str());
    assert_eq!(body["incident_id"], "2026-GV-004219");
    assert_eq!(body["category"], "disclosure");
    assert_eq!(body["urgency"], "urgent");
    assert_eq!(body["description"], description);
    assert_eq!(body["child"]["given_name"], "Daan");
    assert_eq!(body["school"]["brin"], "12AB00");
    assert_eq!(body["reporter"]["email"], me);
    let mut sent = false;
    for _ in 0..100 {
        let (_, _, page) = p.get(&format!("/notices/{mine}"), Some(&cookie)).await;
        assert!(page.contains("&lt;b&gt;vet&lt;"));
        if page.contains("Verzonden aan Veilig Thuis") {
            sent = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(sent, "the page shows the signal as sent once confirmed");

    // Closing, with an outcome; another school's notice stays out of reach.
    for action in ["notes", "signals", "close"] {
        let form = [
            ("csrf", csrf.as_str()),
            ("body", "x"),
            ("outcome", "other"),
            ("category", "other"),
            ("urgency", "routine"),
            ("description", "x"),
        ];
        let path = format!("/notices/{theirs}/{action}");
        let (status, _, _) = p.post(&path, Some(&cookie), Some(PUBLIC), &form).await;
        assert_eq!(status, 404, "{action}");
    }
    let form = [
        ("csrf", csrf.as_str()),
        ("outcome", "support_offered"),
        ("step", "confirm"),
    ];
    let path = format!("/notices/{mine}/close");
    let (status, _, _) = p.post(&path, Some(&cookie), Some(PUBLIC), &form).await;
    assert_eq!(status, 303);
    let (_, _, page) = p.get(&format!("/notices/{mine}"), Some(&cookie)).await;
    assert!(page.contains("Dit bericht is afgesloten"));
    assert_eq!(count_rows(&p.app.pool, "notice_notes"), 1);
    assert_eq!(count_rows(&p.app.pool, "school_signals"), 1);

    let actions = audit_actions(&p.app.pool);
    for expected in [
        ("note", "ok"),
        ("signal", "ok"),
        ("close", "ok"),
        ("note", "not_found"),
        ("sign_in", "link_redeemed"),
        ("failed_sign_in", "used_link"),
        ("sign_in", "second_factor"),
        ("view", "ok"),
        ("view", "not_found"),
        ("acknowledge", "ok"),
    ] {
        let expected = (expected.0.to_string(), expected.1.to_string());
        assert!(actions.contains(&expected), "{expected:?} in {actions:?}");
    }
    // Logging out ends the session.
    let (status, _, _) = p.post("/logout", Some(&cookie), Some(PUBLIC), &form).await;
    assert_eq!(status, 200);
    let (status, _, _) = p.get("/notices", Some(&cookie)).await;
    assert_eq!(status, 401);
    assert_logs_clean(&["gesprek gehad", "ruzie thuis", me]);
    p.app.cleanup().await;
}

async fn wrong_codes_lock_the_account(backend: Backend) {
    let p = Portal::start(backend).await;
    let cookie = p.redeem("zorg@anker.example.nl").await;
    let (_, _, page) = p.get("/totp", Some(&cookie)).await;
    let secret = enrolment_secret(&page);
    let csrf = field(&page, "csrf");
    let wrong = if code_now(&secret) == "000000" {
        "111111"
    } else {
        "000000"
    };
    for attempt in 1..=5 {
        let form = [("csrf", csrf.as_str()), ("code", wrong)];
        let (status, _, _) = p.post("/totp", Some(&cookie), Some(PUBLIC), &form).await;
        let expected = if attempt < 5 { 422 } else { 429 };
        assert_eq!(status, expected, "attempt {attempt}");
    }
    // Locked: even the right code is refused now.
    let code = code_now(&secret);
    let form = [("csrf", csrf.as_str()), ("code", code.as_str())];
    let (status, _, _) = p.post("/totp", Some(&cookie), Some(PUBLIC), &form).await;
    assert_eq!(status, 429);
    let actions = audit_actions(&p.app.pool);
    let failed = actions
        .iter()
        .filter(|(a, _)| a == "failed_sign_in")
        .count();
    assert_eq!(failed, 5);
    assert!(actions.contains(&("lockout".to_string(), "codes".to_string())));

    // 31 minutes idle ends a session.
    {
        use diesel::prelude::*;
        use schoolsignal::db::schema::sessions::dsl::*;
        let now = chrono::DateTime::parse_from_rfc3339(NOW)
            .unwrap()
            .naive_utc();
        let mut conn = p.app.pool.get().unwrap();
        diesel::update(sessions)
            .set(last_seen_at.eq(now - chrono::Duration::minutes(31)))
            .execute(&mut *conn)
            .unwrap();
    }
    assert_eq!(
        p.get("/totp", Some(&cookie)).await.0,
        401,
        "30 minutes idle"
    );
    p.app.cleanup().await;
}

async fn a_new_link_by_email(backend: Backend) {
    let p = Portal::start(backend).await;
    let me = "adjunct@regenboog.example.nl";
    let (_, _, page) = p.get("/login", None).await;
    let csrf = field(&page, "csrf");
    let ask = |email: &'static str| {
        let csrf = csrf.clone();
        let p = &p;
        async move {
            let form = [("csrf", csrf.as_str()), ("email", email)];
            p.post("/login", None, Some(PUBLIC), &form).await
        }
    };
    // Known or not, the answer is the same.
    let (status, _, known) = ask(me).await;
    assert_eq!(status, 200);
    let (status, _, unknown) = ask("nobody@example.org").await;
    assert_eq!(status, 200);
    assert_eq!(known, unknown, "the same answer for an unknown address");
    let mails = p.sink.wait_for(3, WAIT).await;
    assert_eq!(mails.len(), 3);
    let mail = p
        .sink
        .received_for(me)
        .pop()
        .expect("a sign-in email to the deputy");
    assert!(
        mail.text_body().contains("15"),
        "says how long the link works"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(p.sink.received_for("nobody@example.org").is_empty());

    // The link signs in to the list of the deputy's school.
    let token = token_in(&mail.text_body());
    let (_, _, page) = p.get(&format!("/n/{token}"), None).await;
    let link_csrf = field(&page, "csrf");
    let form = [("csrf", link_csrf.as_str())];
    // Under `Referrer-Policy: no-referrer` a browser's own form says `Origin: null`,
    // and `Sec-Fetch-Site: same-origin`. `null` without that, or from another site,
    // is refused.
    let path = format!("/n/{token}");
    let (status, _, _) = p.post(&path, None, Some("null"), &form).await;
    assert_eq!(status, 403, "Origin: null alone");
    for site in ["cross-site", "same-site", "none"] {
        let fetch = [("sec-fetch-site", site)];
        let (status, _, _) = p.post_with(&path, None, Some("null"), &fetch, &form).await;
        assert_eq!(status, 403, "Origin: null from {site}");
    }
    let same = [("sec-fetch-site", "same-origin")];
    let (status, headers, _) = p.post_with(&path, None, Some("null"), &same, &form).await;
    assert_eq!(status, 303);
    let (_, cookie, target) = p.enrol(&session_cookie(&headers)).await;
    assert_eq!(target, "/notices");
    let (status, _, list) = p.get("/notices", Some(&cookie)).await;
    assert_eq!(status, 200);
    assert!(list.contains("Daan Bakker") && !list.contains("Noor"));

    // Sessions end after 30 minutes idle, or 12 hours in all.
    let age = |idle_minutes: i64, total_hours: i64| {
        use diesel::prelude::*;
        use schoolsignal::db::schema::sessions::dsl::*;
        let now = chrono::DateTime::parse_from_rfc3339(NOW)
            .unwrap()
            .naive_utc();
        let mut conn = p.app.pool.get().unwrap();
        diesel::update(sessions)
            .set((
                last_seen_at.eq(now - chrono::Duration::minutes(idle_minutes)),
                created_at.eq(now - chrono::Duration::hours(total_hours)),
            ))
            .execute(&mut *conn)
            .unwrap();
    };
    age(29, 11);
    assert_eq!(p.get("/notices", Some(&cookie)).await.0, 200);
    age(0, 13);
    assert_eq!(
        p.get("/notices", Some(&cookie)).await.0,
        401,
        "12 hours in all"
    );

    // An expired link is refused.
    {
        use diesel::prelude::*;
        use schoolsignal::db::schema::access_tokens::dsl::*;
        let mut conn = p.app.pool.get().unwrap();
        diesel::update(access_tokens.filter(used_at.is_null()))
            .set(
                expires_at.eq(chrono::NaiveDate::from_ymd_opt(2026, 1, 1)
                    .unwrap()
                    .and_hms_opt(0, 0, 0)
                    .unwrap()),
            )
            .execute(&mut *conn)
            .unwrap();
    }
    let other = p.token_for("zorg@anker.example.nl");
    let (_, _, page) = p.get(&format!("/n/{other}"), None).await;
    let link_csrf = field(&page, "csrf");
    let form = [("csrf", link_csrf.as_str())];
    let (status, _, _) = p
        .post(&format!("/n/{other}"), None, Some(PUBLIC), &form)
        .await;
    assert_eq!(status, 410, "expired");

    // Requests are limited per client: the sixth within 15 minutes is refused.
    for _ in 0..3 {
        let (status, _, _) = ask("nobody@example.org").await;
        assert_eq!(status, 200);
    }
    let (status, _, _) = ask(me).await;
    assert_eq!(status, 429);
    p.app.cleanup().await;
}

async fn guessed_links_lock_out_the_client(backend: Backend) {
    let p = Portal::start(backend).await;
    let guess = |n: usize| format!("{n:064x}");
    for n in 1..=10 {
        let path = format!("/n/{}", guess(n));
        let (_, _, page) = p.get(&path, None).await;
        let csrf = field(&page, "csrf");
        let (status, _, _) = p.post(&path, None, Some(PUBLIC), &[("csrf", &csrf)]).await;
        assert_eq!(status, 410, "guess {n}");
    }
    // Locked out now: even a real link is refused from this client for a while.
    let real = p.token_for("zorg@regenboog.example.nl");
    let path = format!("/n/{real}");
    let (_, _, page) = p.get(&path, None).await;
    let csrf = field(&page, "csrf");
    let (status, _, _) = p.post(&path, None, Some(PUBLIC), &[("csrf", &csrf)]).await;
    assert_eq!(status, 429);
    let actions = audit_actions(&p.app.pool);
    assert!(actions.contains(&("lockout".to_string(), "links".to_string())));
    let unknown = actions.iter().filter(|a| a.1 == "unknown_link").count();
    assert_eq!(unknown, 10);
    p.app.cleanup().await;
}

/// Forces a race on PostgreSQL, where requests really run at once on connections of
/// their own: a test transaction holds a lock, so that every request of a burst
/// reaches the same statement and waits there, and is let go once `n` requests wait
/// for a lock on its tables or were answered without reaching it. On SQLite nothing
/// is held (its `BEGIN IMMEDIATE` write transaction runs them one at a time anyway),
/// and "wait or answered" is "answered".
struct Gate {
    url: String,
    held: std::sync::Mutex<Option<diesel::PgConnection>>,
    tables: &'static [&'static str],
}

impl Gate {
    /// Opens a transaction that runs `lock` (a `SELECT … FOR UPDATE` or a `LOCK
    /// TABLE`), on PostgreSQL.
    fn hold(db: &TestDb, lock: &str, tables: &'static [&'static str]) -> Gate {
        use diesel::prelude::*;
        let held = (db.backend == Backend::Postgres).then(|| {
            let mut conn = PgConnection::establish(&db.url).unwrap();
            diesel::sql_query("BEGIN").execute(&mut conn).unwrap();
            diesel::sql_query(lock).execute(&mut conn).unwrap();
            conn
        });
        Gate {
            url: db.url.clone(),
            held: std::sync::Mutex::new(held),
            tables,
        }
    }

    /// Statements on the gate's tables waiting for a lock now, on PostgreSQL.
    fn waiting(&self, watch: &mut Option<diesel::PgConnection>) -> i64 {
        use diesel::prelude::*;
        #[derive(QueryableByName)]
        struct Waiting {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let Some(watch) = watch else {
            return 0;
        };
        let on_tables: Vec<String> = self
            .tables
            .iter()
            .map(|t| format!("query LIKE '%{t}%'"))
            .collect();
        let query = format!(
            "SELECT COUNT(*) AS n FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() \
             AND wait_event_type = 'Lock' AND ({})",
            on_tables.join(" OR ")
        );
        diesel::sql_query(query)
            .get_result::<Waiting>(watch)
            .unwrap()
            .n
    }

    /// Waits until `n` requests wait at the gate or were `answered`.
    async fn until(&self, n: usize, answered: &AtomicUsize) {
        use diesel::prelude::*;
        let mut watch = self
            .held
            .lock()
            .unwrap()
            .is_some()
            .then(|| PgConnection::establish(&self.url).unwrap());
        wait_for("the burst waiting at the gate", WAIT, || {
            let done = answered.load(Ordering::SeqCst);
            self.waiting(&mut watch) as usize + done >= n
        })
        .await;
    }

    /// Commits the gate's transaction, letting the waiting requests go.
    fn release(&self) {
        use diesel::prelude::*;
        if let Some(mut conn) = self.held.lock().unwrap().take() {
            diesel::sql_query("COMMIT").execute(&mut conn).unwrap();
        }
    }

    /// [`Gate::until`], then [`Gate::release`].
    async fn release_at(&self, n: usize, answered: &AtomicUsize) {
        self.until(n, answered).await;
        self.release();
    }
}

/// Runs `request` and counts it answered.
async fn counted<T>(answered: &AtomicUsize, request: impl std::future::Future<Output = T>) -> T {
    let out = request.await;
    answered.fetch_add(1, Ordering::SeqCst);
    out
}

/// Races on PostgreSQL, where two requests really run at once on two connections.
/// A test connection holds a row lock so that both requests have read the row
/// before either writes, then lets them go: the race happens every run.
mod postgres_races {
    use super::*;

    const TABLES: &[&str] = &["access_tokens", "staff_accounts"];

    /// Two POSTs of the same link at once: exactly one session.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_link_posted_twice_at_once_works_once() {
        let p = Portal::start(Backend::Postgres).await;
        let token = p.token_for("zorg@regenboog.example.nl");
        let path = format!("/n/{token}");
        let (_, _, page) = p.get(&path, None).await;
        let csrf = field(&page, "csrf");
        let form = [("csrf", csrf.as_str())];
        let gate = Gate::hold(&p.app.db, "SELECT 1 FROM access_tokens FOR UPDATE", TABLES);
        let answered = AtomicUsize::new(0);
        let (a, b, ()) = tokio::join!(
            p.post(&path, None, Some(PUBLIC), &form),
            p.post(&path, None, Some(PUBLIC), &form),
            gate.release_at(2, &answered)
        );
        let mut statuses = [a.0, b.0];
        statuses.sort();
        assert_eq!(statuses, [303, 410], "one redemption, one refusal");
        let winner = if a.0 == 303 { &a.1 } else { &b.1 };
        assert_eq!(winner[LOCATION], "/totp");
        assert_eq!(count_rows(&p.app.pool, "sessions"), 1, "one session");
        p.app.cleanup().await;
    }

    /// One TOTP code sent by two sessions of the same account at once verifies one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_code_verifies_once() {
        let p = Portal::start(Backend::Postgres).await;
        let me = "zorg@regenboog.example.nl";
        let first = p.redeem(me).await;
        // A second session of the same address, from a new link by email.
        let (_, _, page) = p.get("/login", None).await;
        let form = [("csrf", field(&page, "csrf")), ("email", me.to_string())];
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(p.post("/login", None, Some(PUBLIC), &form).await.0, 200);
        p.sink.wait_for(3, WAIT).await;
        let token = p
            .sink
            .received_for(me)
            .iter()
            .map(|m| token_in(&m.text_body()))
            .find(|t| *t != p.token_for(me))
            .expect("a new link");
        let path = format!("/n/{token}");
        let (_, _, page) = p.get(&path, None).await;
        let (status, headers, _) = p
            .post(
                &path,
                None,
                Some(PUBLIC),
                &[("csrf", &field(&page, "csrf"))],
            )
            .await;
        assert_eq!(status, 303);
        let second = session_cookie(&headers);

        let (_, _, page_a) = p.get("/totp", Some(&first)).await;
        let (_, _, page_b) = p.get("/totp", Some(&second)).await;
        let secret = enrolment_secret(&page_a);
        assert_eq!(secret, enrolment_secret(&page_b));
        let code = code_now(&secret);
        let (csrf_a, csrf_b) = (field(&page_a, "csrf"), field(&page_b, "csrf"));
        let form_a = [("csrf", csrf_a.as_str()), ("code", code.as_str())];
        let form_b = [("csrf", csrf_b.as_str()), ("code", code.as_str())];
        let gate = Gate::hold(&p.app.db, "SELECT 1 FROM staff_accounts FOR UPDATE", TABLES);
        let answered = AtomicUsize::new(0);
        let (a, b, ()) = tokio::join!(
            p.post("/totp", Some(&first), Some(PUBLIC), &form_a),
            p.post("/totp", Some(&second), Some(PUBLIC), &form_b),
            gate.release_at(2, &answered)
        );
        let mut statuses = [a.0, b.0];
        statuses.sort();
        assert_eq!(statuses, [303, 422], "the code verifies one session only");
        // And the loser cannot use it afterwards either.
        let (loser, form) = if a.0 == 303 {
            (&second, form_b)
        } else {
            (&first, form_a)
        };
        assert_eq!(
            p.post("/totp", Some(loser), Some(PUBLIC), &form).await.0,
            422
        );
        let verified: i64 = {
            use diesel::prelude::*;
            use schoolsignal::db::schema::sessions::dsl::*;
            let mut conn = p.app.pool.get().unwrap();
            sessions
                .filter(verified_at.is_not_null())
                .count()
                .get_result(&mut *conn)
                .unwrap()
        };
        assert_eq!(verified, 1);
        p.app.cleanup().await;
    }
}

/// Every page in the language of the school it is about; before a school is known,
/// the browser's preference.
async fn pages_in_the_school_language(backend: Backend) {
    let p = Portal::start(backend).await;
    // Het Anker reads English (tests/fixtures/schools.csv), whatever the browser says.
    let en = "zorg@anker.example.nl";
    let token = p.token_for(en);
    let dutch_browser = [("accept-language", "nl-NL,nl;q=0.9")];
    let (status, _, page) = p
        .get_with(&format!("/n/{token}"), None, &dutch_browser)
        .await;
    assert_eq!(status, 200);
    assert_eq!(lang(&page), "en");
    assert!(page.contains("Open message") && !page.contains("Bericht openen"));
    let cookie = p.redeem(en).await;
    let (_, _, enrol) = p.get_with("/totp", Some(&cookie), &dutch_browser).await;
    assert_eq!(lang(&enrol), "en");
    assert!(enrol.contains("Set up the second step"));
    let (_, cookie, target) = p.enrol(&cookie).await;
    let (status, _, page) = p.get_with(&target, Some(&cookie), &dutch_browser).await;
    assert_eq!(status, 200);
    assert_eq!(lang(&page), "en");
    for shown in [
        "Noor Bakker",
        "Date of birth",
        "14-02-2019",
        "Date of the police visit",
        "Please act before",
        "Step 1: Map the signs.",
        "Step 2: Consult a colleague and, if needed, Veilig Thuis.",
        "Step 3: Talk with the parent (and, if possible, the child).",
        "Step 4: Weigh the violence.",
        "Step 5: Decide: organise help and",
        "Received — we will offer support today",
        "Report a signal to Veilig Thuis",
        "Changed behaviour",
        "Sign out",
    ] {
        assert!(page.contains(shown), "{shown}");
    }
    for dutch in ["Geboortedatum", "Stap 3", "Uitloggen", "Veranderd gedrag"] {
        assert!(!page.contains(dutch), "{dutch}");
    }
    let (_, _, list) = p.get("/notices", Some(&cookie)).await;
    assert_eq!(lang(&list), "en");
    assert!(list.contains("Messages") && list.contains("Open (1)"));
    let (status, _, page) = p.get("/notices/no-such-notice", Some(&cookie)).await;
    assert_eq!(status, 404);
    assert_eq!(lang(&page), "en", "error pages too");
    assert!(page.contains("Not found"));

    // De Regenboog reads Dutch, also in an English browser.
    let nl = "zorg@regenboog.example.nl";
    let token = p.token_for(nl);
    let english_browser = [("accept-language", "en-GB,en;q=0.9")];
    let path = format!("/n/{token}");
    let (_, _, page) = p.get_with(&path, None, &english_browser).await;
    assert_eq!(lang(&page), "nl");
    assert!(page.contains("Bericht openen"));
    let cookie = p.redeem(nl).await;
    let (_, cookie, target) = p.enrol(&cookie).await;
    let (_, _, page) = p.get_with(&target, Some(&cookie), &english_browser).await;
    assert_eq!(lang(&page), "nl");
    for shown in [
        "Daan Bakker",
        "Geboortedatum",
        "Stap 1: In kaart brengen van signalen.",
        "Stap 2: Collegiale consultatie en zo nodig raadplegen van Veilig Thuis.",
        "Stap 3: Gesprek met de ouder (en indien mogelijk het kind).",
        "Stap 4: Wegen van het geweld.",
        "Stap 5: Beslissen: hulp organiseren en",
    ] {
        assert!(page.contains(shown), "{shown}");
    }
    assert!(!page.contains("Date of birth"));
    // Its used link is refused in Dutch, whatever the browser prefers.
    let (_, _, link_page) = p.get(&path, None).await;
    let form = [("csrf", field(&link_page, "csrf"))];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, _, page) = p
        .post_with(&path, None, Some(PUBLIC), &english_browser, &form)
        .await;
    assert_eq!(status, 410);
    assert_eq!(lang(&page), "nl");
    assert!(page.contains("Link werkt niet meer"));

    // Before any school is known: English only when preferred over Dutch.
    for (accept, expected, text) in [
        (None, "nl", "Stuur mij een nieuwe link"),
        (Some("en-GB,en;q=0.9,nl;q=0.8"), "en", "Send me a new link"),
        (
            Some("nl-NL,nl;q=0.9,en;q=0.8"),
            "nl",
            "Stuur mij een nieuwe link",
        ),
        (Some("de-DE,en;q=0.5"), "en", "Send me a new link"),
        (Some("fr"), "nl", "Stuur mij een nieuwe link"),
    ] {
        let headers: Vec<(&str, &str)> =
            accept.map(|a| ("accept-language", a)).into_iter().collect();
        let (_, _, page) = p.get_with("/login", None, &headers).await;
        assert_eq!(lang(&page), expected, "{accept:?}");
        assert!(page.contains(text), "{accept:?}");
    }
    // A new link by email for an English school's coordinator is in English.
    let (_, _, page) = p.get("/login", None).await;
    let form = [("csrf", field(&page, "csrf")), ("email", en.to_string())];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(p.post("/login", None, Some(PUBLIC), &form).await.0, 200);
    // Two notices, two enrolments told, and the new link.
    p.sink.wait_for(5, WAIT).await;
    let mails = p.sink.received_for(en);
    assert_eq!(mails.len(), 3, "the notice, the enrolment and the new link");
    let subject = |s: &str| {
        mails
            .iter()
            .find(|m| m.subject() == s)
            .map(|m| m.text_body())
    };
    let sign_in = subject("Your sign-in link for the secure portal").expect("the new link");
    assert!(sign_in.contains("valid for 15 minutes"), "{sign_in}");
    let enrolled = subject("A second sign-in step was set up for your account");
    assert!(enrolled
        .expect("told in English")
        .contains("call the operator"));

    let unknown = format!("/n/{:064x}", 7);
    let (_, _, page) = p.get(&unknown, None).await;
    let form = [("csrf", field(&page, "csrf"))];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, _, page) = p
        .post_with(&unknown, None, Some(PUBLIC), &english_browser, &form)
        .await;
    assert_eq!(status, 410);
    assert_eq!(lang(&page), "en");
    assert!(page.contains("The link no longer works"));
    p.app.cleanup().await;
}

/// Signed in (401), the form's token (403), my school's notice (404), not withdrawn
/// (409), and only then the form's fields (422). Forms hold 4,000 characters of
/// any script.
async fn actions_are_checked_in_order(backend: Backend) {
    let p = Portal::start(backend).await;
    let (mine, _) = notice_of(&p.app.pool, "12AB00");
    let (theirs, _) = notice_of(&p.app.pool, "34CD01");
    let cookie = p.redeem("zorg@regenboog.example.nl").await;
    let (_, cookie, _) = p.enrol(&cookie).await;
    let (_, _, page) = p.get(&format!("/notices/{mine}"), Some(&cookie)).await;
    let csrf = field(&page, "csrf");

    // The notice page: the child, the dates, the due time and the guidance.
    let due: chrono::NaiveDateTime = {
        use diesel::prelude::*;
        use schoolsignal::db::schema::notices::dsl::*;
        let mut conn = p.app.pool.get().unwrap();
        notices
            .find(&mine)
            .select(due_at)
            .first::<Option<chrono::NaiveDateTime>>(&mut *conn)
            .unwrap()
            .expect("a due time")
    };
    let due = schoolsignal::locale::format_open_by(due.and_utc(), schoolsignal::locale::Locale::Nl);
    for shown in [
        "Daan Bakker",
        "30-09-2014",
        "groep 7",
        "22-11-2026",
        due.as_str(),
        "Wat wordt er van u verwacht?",
        "Stap 3: Gesprek met de ouder (en indien mogelijk het kind).",
    ] {
        assert!(page.contains(shown), "{shown}");
    }

    let invalid: [(&str, Vec<(&str, &str)>); 3] = [
        ("notes", vec![("body", "  ")]),
        (
            "signals",
            vec![
                ("category", "bogus"),
                ("urgency", "soon"),
                ("description", ""),
            ],
        ),
        ("close", vec![("outcome", "bogus")]),
    ];
    for (action, fields) in &invalid {
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend(fields.iter().copied());
        let theirs_path = format!("/notices/{theirs}/{action}");
        let (status, _, _) = p
            .post(&theirs_path, Some(&cookie), Some(PUBLIC), &form)
            .await;
        assert_eq!(
            status, 404,
            "{action}: another school's notice, invalid form"
        );
        let mine_path = format!("/notices/{mine}/{action}");
        let (status, _, _) = p.post(&mine_path, None, Some(PUBLIC), &form).await;
        assert_eq!(status, 401, "{action}: not signed in");
        let (status, _, _) = p
            .post(&mine_path, Some(&cookie), Some(PUBLIC), &form[1..])
            .await;
        assert_eq!(status, 403, "{action}: no CSRF token");
        let (status, _, page) = p.post(&mine_path, Some(&cookie), Some(PUBLIC), &form).await;
        assert_eq!(status, 422, "{action}: my notice, invalid form");
        // A signal or a close shows the notice again, the error by its form.
        let refused = match *action {
            "notes" => "Niet volledig",
            _ => "Vul alle velden in en kies",
        };
        assert!(page.contains(refused), "{action}");
    }

    // 4,000 characters outside ASCII fit; 4,001 get the page's own refusal.
    let path = format!("/notices/{mine}/notes");
    let euros = "€".repeat(4000);
    let form = [("csrf", csrf.as_str()), ("body", euros.as_str())];
    let (status, _, _) = p.post(&path, Some(&cookie), Some(PUBLIC), &form).await;
    assert_eq!(status, 303, "4,000 euro signs are a valid note");
    let stored: Vec<(i64, Option<String>)> = {
        use diesel::prelude::*;
        use schoolsignal::db::schema::notice_notes::dsl::*;
        let mut conn = p.app.pool.get().unwrap();
        notice_notes.select((id, body)).load(&mut *conn).unwrap()
    };
    let note = schoolsignal::sealing::columns::NOTE_BODY;
    let opened: Vec<_> = stored
        .into_iter()
        .map(|(row, text)| opened(note, &row.to_string(), text))
        .collect();
    assert!(opened == vec![Some(euros.clone())], "stored whole, sealed");
    let too_long = "€".repeat(4001);
    let form = [("csrf", csrf.as_str()), ("body", too_long.as_str())];
    let (status, _, page) = p.post(&path, Some(&cookie), Some(PUBLIC), &form).await;
    assert_eq!(status, 422);
    assert!(page.contains("Niet volledig") && page.contains("4.000"));
    let huge = "ë".repeat(20_000);
    let form = [("csrf", csrf.as_str()), ("body", huge.as_str())];
    let (status, _, page) = p.post(&path, Some(&cookie), Some(PUBLIC), &form).await;
    assert_eq!(status, 422, "beyond the form limit: the page's own refusal");
    assert!(page.contains("Niet volledig"));
    assert_eq!(count_rows(&p.app.pool, "notice_notes"), 1);

    // A withdrawn notice takes no action, and shows only that it was withdrawn.
    set_notice_status(&p.app.pool, &mine, "withdrawn");
    let actions: [(&str, Vec<(&str, &str)>); 4] = [
        ("acknowledge", vec![]),
        ("notes", vec![("body", "nog een gesprek")]),
        (
            "signals",
            vec![
                ("category", "injury"),
                ("urgency", "urgent"),
                ("description", "blauwe plek"),
            ],
        ),
        ("close", vec![("outcome", "other")]),
    ];
    for (action, fields) in &actions {
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend(fields.iter().copied());
        let path = format!("/notices/{mine}/{action}");
        // A signal or a close is asked first: that page is refused too.
        if ["signals", "close"].contains(action) {
            let (status, _, page) = p.post(&path, Some(&cookie), Some(PUBLIC), &form).await;
            assert_eq!(status, 409, "{action}'s confirmation on a withdrawn notice");
            assert!(page.contains("Dit bericht is ingetrokken"), "{action}");
            form.push(("step", "confirm"));
        }
        let (status, _, page) = p.post(&path, Some(&cookie), Some(PUBLIC), &form).await;
        assert_eq!(status, 409, "{action} on a withdrawn notice");
        assert_eq!(lang(&page), "nl");
        assert!(page.contains("Dit bericht is ingetrokken"), "{action}");
    }
    let (ack, closed): (bool, bool) = {
        use diesel::prelude::*;
        use schoolsignal::db::schema::notices::dsl::*;
        let mut conn = p.app.pool.get().unwrap();
        notices
            .find(&mine)
            .select((acknowledged_at.is_not_null(), closed_at.is_not_null()))
            .first(&mut *conn)
            .unwrap()
    };
    assert_eq!((ack, closed), (false, false), "nothing written");
    assert_eq!(count_rows(&p.app.pool, "notice_notes"), 1);
    assert_eq!(count_rows(&p.app.pool, "school_signals"), 0);
    let signals_queued: i64 = {
        use diesel::prelude::*;
        use schoolsignal::db::schema::outbox_messages::dsl::*;
        let mut conn = p.app.pool.get().unwrap();
        outbox_messages
            .filter(message_type.eq("school_signal.v1"))
            .count()
            .get_result(&mut *conn)
            .unwrap()
    };
    assert_eq!(signals_queued, 0, "no signal queued");
    let (status, _, page) = p.get(&format!("/notices/{mine}"), Some(&cookie)).await;
    assert_eq!(status, 200);
    assert!(page.contains("Dit bericht is ingetrokken"));
    for hidden in [
        "Daan",
        "Bakker",
        "30-09-2014",
        "groep 7",
        "22-11-2026",
        "€€€",
    ] {
        assert!(
            !page.contains(hidden),
            "{hidden} on a withdrawn notice's page"
        );
    }
    let refused = audit_actions(&p.app.pool)
        .iter()
        .filter(|(_, r)| r == "refused_withdrawn")
        .count();
    assert_eq!(refused, 4);
    assert_logs_clean(&["nog een gesprek", "blauwe plek", &euros[..30]]);
    p.app.cleanup().await;
}

/// While the relay cannot reach the broker, a signal is stored and shown as
/// waiting, and its outbox message is not published.
async fn a_signal_waits_while_the_broker_is_away(backend: Backend) {
    let p = Portal::start_without_broker(backend).await;
    let (mine, _) = notice_of(&p.app.pool, "12AB00");
    let cookie = p.redeem("zorg@regenboog.example.nl").await;
    let (_, cookie, _) = p.enrol(&cookie).await;
    let (_, _, page) = p.get(&format!("/notices/{mine}"), Some(&cookie)).await;
    let form = [
        ("csrf", field(&page, "csrf")),
        ("category", "behaviour_change".to_string()),
        ("urgency", "routine".to_string()),
        ("description", "stil in de klas".to_string()),
        ("step", "confirm".to_string()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let path = format!("/notices/{mine}/signals");
    let (status, _, _) = p.post(&path, Some(&cookie), Some(PUBLIC), &form).await;
    assert_eq!(status, 303);
    let (_, _, page) = p.get(&format!("/notices/{mine}"), Some(&cookie)).await;
    assert!(page.contains("Wacht op verzending"), "shown as waiting");
    assert!(!page.contains("Verzonden aan Veilig Thuis"));
    assert!(page.contains("stil in de klas"));
    let published: Vec<(String, Option<chrono::NaiveDateTime>)> = {
        use diesel::prelude::*;
        use schoolsignal::db::schema::{outbox_messages as o, school_signals as s};
        let mut conn = p.app.pool.get().unwrap();
        s::table
            .inner_join(o::table.on(o::message_id.eq(s::outbox_message_id)))
            .select((o::message_type, o::published_at))
            .load(&mut *conn)
            .unwrap()
    };
    assert_eq!(published, vec![("school_signal.v1".to_string(), None)]);
    p.app.cleanup().await;
}

/// A new link works 15 minutes: refused after 16. At most 3 links per address in
/// 15 minutes.
async fn new_links_expire_and_are_limited_per_address(backend: Backend) {
    let p = Portal::start(backend).await;
    let me = "adjunct@regenboog.example.nl";
    let (_, _, page) = p.get("/login", None).await;
    let csrf = field(&page, "csrf");
    for _ in 0..4 {
        let form = [("csrf", csrf.as_str()), ("email", me)];
        let (status, _, page) = p.post("/login", None, Some(PUBLIC), &form).await;
        assert_eq!(status, 200);
        assert!(page.contains("Als dit adres bij ons bekend is"));
    }
    let links: i64 = {
        use diesel::prelude::*;
        use schoolsignal::db::schema::access_tokens::dsl::*;
        let mut conn = p.app.pool.get().unwrap();
        access_tokens
            .filter(recipient_email.eq(me))
            .count()
            .get_result(&mut *conn)
            .unwrap()
    };
    assert_eq!(links, 3, "three links, the fourth request limited");
    let actions = audit_actions(&p.app.pool);
    let limited = ("link_request".to_string(), "limited".to_string());
    assert_eq!(actions.iter().filter(|a| **a == limited).count(), 1);
    p.sink.wait_for(5, WAIT).await;
    let mails = p.sink.received_for(me);
    assert_eq!(mails.len(), 3);

    // 16 minutes later (a replica whose clock says so) the link is refused; at 14
    // minutes it still works.
    let token = token_in(&mails[0].text_body());
    let path = format!("/n/{token}");
    let at = |minutes: i64| {
        (chrono::DateTime::parse_from_rfc3339(NOW).unwrap() + chrono::Duration::minutes(minutes))
            .to_rfc3339()
    };
    let later = p
        .app
        .spawn_replica(&[
            ("SCHOOLSIGNAL_NOW", at(16)),
            ("SCHOOLSIGNAL_PUBLIC_URL", PUBLIC.into()),
        ])
        .await;
    let soon = p
        .app
        .spawn_replica(&[
            ("SCHOOLSIGNAL_NOW", at(14)),
            ("SCHOOLSIGNAL_PUBLIC_URL", PUBLIC.into()),
        ])
        .await;
    let (_, _, page) = p.get(&path, None).await;
    let form = [("csrf", field(&page, "csrf"))];
    let post_at = |base: &str| {
        p.http
            .post(format!("{base}{path}"))
            .header(ORIGIN, PUBLIC)
            .form(&form)
            .send()
    };
    assert_eq!(
        post_at(&later.address).await.unwrap().status(),
        410,
        "16 minutes"
    );
    assert_eq!(
        post_at(&soon.address).await.unwrap().status(),
        303,
        "14 minutes"
    );
    let actions = audit_actions(&p.app.pool);
    assert!(actions.contains(&("failed_sign_in".to_string(), "expired_link".to_string())));
    p.app.cleanup().await;
}

/// Used and expired links are real: refusing them counts no guess. Behind a trusted
/// proxy, guesses count per forwarded client.
async fn used_links_are_no_guesses(backend: Backend) {
    let p = Portal::start_with(
        backend,
        &[("SCHOOLSIGNAL_TRUSTED_PROXIES", "127.0.0.1/32".to_string())],
    )
    .await;
    p.redeem("zorg@regenboog.example.nl").await;
    let used = format!("/n/{}", p.token_for("zorg@regenboog.example.nl"));
    let (_, _, page) = p.get(&used, None).await;
    let csrf = field(&page, "csrf");
    for n in 1..=12 {
        let (status, _, _) = p.post(&used, None, Some(PUBLIC), &[("csrf", &csrf)]).await;
        assert_eq!(status, 410, "used link, attempt {n}");
    }
    // Ten guesses from one forwarded client lock that client out, not the others.
    let guesser = [("x-forwarded-for", "203.0.113.66, 198.51.100.9")];
    for n in 1..=10 {
        let path = format!("/n/{n:064x}");
        let (_, _, page) = p.get(&path, None).await;
        let form = [("csrf", field(&page, "csrf"))];
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, _, _) = p
            .post_with(&path, None, Some(PUBLIC), &guesser, &form)
            .await;
        assert_eq!(status, 410, "guess {n}");
    }
    let real = format!("/n/{}", p.token_for("zorg@anker.example.nl"));
    let (_, _, page) = p.get(&real, None).await;
    let form = [("csrf", field(&page, "csrf"))];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, _, _) = p
        .post_with(&real, None, Some(PUBLIC), &guesser, &form)
        .await;
    assert_eq!(status, 429, "the guessing client is locked out");
    let other = [("x-forwarded-for", "198.51.100.10")];
    let (status, _, _) = p.post_with(&real, None, Some(PUBLIC), &other, &form).await;
    assert_eq!(status, 303, "another client behind the same proxy is not");
    let actions = audit_actions(&p.app.pool);
    let lockouts = actions.iter().filter(|(a, _)| a == "lockout").count();
    assert_eq!(lockouts, 1, "only the guesses locked anyone out");
    p.app.cleanup().await;
}

/// The security headers on every portal route, pages and errors alike.
async fn every_route_sends_the_security_headers(backend: Backend) {
    let p = Portal::start(backend).await;
    let (mine, _) = notice_of(&p.app.pool, "12AB00");
    let token = p.token_for("zorg@regenboog.example.nl");
    let cookie = p.redeem("zorg@regenboog.example.nl").await;
    let (_, _, page) = p.get("/totp", Some(&cookie)).await;
    let totp_csrf = field(&page, "csrf");
    let (_, cookie, _) = p.enrol(&cookie).await;
    let (_, _, page) = p.get(&format!("/notices/{mine}"), Some(&cookie)).await;
    let csrf = field(&page, "csrf");
    let check = |what: &str, headers: &HeaderMap| {
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
        assert!(csp.contains("default-src 'none'"), "{what}");
        assert!(
            !csp.contains("script-src") && !csp.contains("unsafe-inline"),
            "{what}"
        );
        assert_eq!(headers["referrer-policy"], "no-referrer", "{what}");
        assert_eq!(headers["cache-control"], "no-store", "{what}");
        assert_eq!(headers["x-frame-options"], "DENY", "{what}");
    };
    for (path, c) in [
        ("/", None),
        ("/login", None),
        ("/static/portal.css", None),
        (&format!("/n/{token}") as &str, None),
        ("/totp", None),
        ("/totp", Some(cookie.as_str())),
        ("/notices", None),
        ("/notices", Some(cookie.as_str())),
        (&format!("/notices/{mine}") as &str, Some(cookie.as_str())),
        ("/notices/no-such-notice", Some(cookie.as_str())),
    ] {
        let (status, headers, _) = p.get(path, c).await;
        check(&format!("GET {path} ({status})"), &headers);
    }
    let form = [("csrf", csrf.as_str()), ("body", "x"), ("outcome", "other")];
    let code = [("csrf", totp_csrf.as_str()), ("code", "000000")];
    for (path, c, form) in [
        (format!("/n/{token}"), None, &form[..1]),
        ("/totp".to_string(), Some(cookie.as_str()), &code[..]),
        ("/login".to_string(), None, &form[..1]),
        (
            format!("/notices/{mine}/acknowledge"),
            Some(cookie.as_str()),
            &form[..],
        ),
        (
            format!("/notices/{mine}/notes"),
            Some(cookie.as_str()),
            &form[..],
        ),
        (
            format!("/notices/{mine}/signals"),
            Some(cookie.as_str()),
            &form[..],
        ),
        (
            format!("/notices/{mine}/close"),
            Some(cookie.as_str()),
            &form[..],
        ),
        ("/logout".to_string(), Some(cookie.as_str()), &form[..]),
    ] {
        let (status, headers, _) = p.post(&path, c, Some(PUBLIC), form).await;
        check(&format!("POST {path} ({status})"), &headers);
    }
    p.app.cleanup().await;
}

/// The account's row, as the lockout tests read it: failures, lockouts in a row,
/// locked until, enrolled.
type AccountRow = (i32, i32, Option<chrono::NaiveDateTime>, bool);

fn account(pool: &schoolsignal::db::Pool, address: &str) -> AccountRow {
    use diesel::prelude::*;
    use schoolsignal::db::schema::staff_accounts::dsl::*;
    let mut conn = pool.get().unwrap();
    staff_accounts
        .find(address)
        .select((
            failed_attempts,
            lockouts,
            locked_until,
            totp_enrolled_at.is_not_null(),
        ))
        .first(&mut *conn)
        .unwrap()
}

/// When each lockout for wrong codes was written, in order.
fn lockouts_at(pool: &schoolsignal::db::Pool) -> Vec<chrono::NaiveDateTime> {
    use diesel::prelude::*;
    use schoolsignal::db::schema::audit_log::dsl::*;
    let mut conn = pool.get().unwrap();
    audit_log
        .filter(action.eq("lockout").and(result.eq("codes")))
        .order(id)
        .select(at)
        .load(&mut *conn)
        .unwrap()
}

fn count_audit(pool: &schoolsignal::db::Pool, entry: (&str, &str)) -> usize {
    let entry = (entry.0.to_string(), entry.1.to_string());
    audit_actions(pool).iter().filter(|a| **a == entry).count()
}

/// Walks an audit trail (in the order written): a lockout comes right after the
/// fifth wrong code since the last accepted one, and after it no code, wrong or
/// right, is checked (the test's clock never reaches its end).
fn assert_codes_stop_at_lockouts(trail: &[(String, String)], seen: &str) {
    let (mut failures, mut locked) = (0, false);
    for (action, result) in trail {
        match (action.as_str(), result.as_str()) {
            ("failed_sign_in", "wrong_code") => {
                assert!(!locked, "a wrong code checked while locked ({seen})");
                failures += 1;
                assert!(failures <= 5, "a sixth wrong code checked ({seen})");
            }
            ("lockout", _) => {
                assert_eq!(failures, 5, "a lockout after five wrong codes ({seen})");
                locked = true;
            }
            ("sign_in", "second_factor") => {
                assert!(!locked, "a right code accepted while locked ({seen})");
                failures = 0;
            }
            _ => {}
        }
    }
}

/// A code that is not the current one.
fn wrong_code(secret: &str) -> &'static str {
    if code_now(secret) == "000000" {
        "111111"
    } else {
        "000000"
    }
}

/// Finding 2: fifteen wrong codes at once check five, lock once, and the right code
/// sent while they wait is refused. On PostgreSQL a row lock holds all of them at
/// the account's row and lets them go together, the right code last; on SQLite they
/// run one at a time anyway, and the right code follows them.
async fn parallel_codes_stop_at_the_lockout(backend: Backend) {
    let pool_size = [("SCHOOLSIGNAL_DB_POOL_SIZE", "40".to_string())];
    let p = Portal::start_with(backend, &pool_size).await;
    let me = "zorg@anker.example.nl";
    let (cookie, secret, csrf) = p.enrolment_page(me).await;
    let wrong = [("csrf", csrf.as_str()), ("code", wrong_code(&secret))];
    let gate = Gate::hold(
        &p.app.db,
        "SELECT 1 FROM staff_accounts FOR UPDATE",
        &["staff_accounts"],
    );
    let answered = AtomicUsize::new(0);
    let burst = (0..15).map(|_| {
        counted(
            &answered,
            p.post("/totp", Some(&cookie), Some(PUBLIC), &wrong),
        )
    });
    let right = async {
        gate.until(15, &answered).await;
        let code = code_now(&secret);
        let form = [("csrf", csrf.as_str()), ("code", code.as_str())];
        counted(
            &answered,
            p.post("/totp", Some(&cookie), Some(PUBLIC), &form),
        )
        .await
    };
    let (wrongs, right, ()) = tokio::join!(
        futures_util::future::join_all(burst),
        right,
        gate.release_at(16, &answered)
    );
    let mut statuses: Vec<u16> = wrongs.iter().map(|r| r.0).collect();
    statuses.sort();
    // PostgreSQL does not promise to grant a row lock to its waiters in the order
    // they came, so the right code may be checked anywhere in the burst. In every
    // order the audit trail must show at most five wrong codes, then the lockout,
    // then no code checked at all while it lasts.
    let trail = audit_actions(&p.app.pool);
    let seen = format!("wrong codes: {statuses:?}; the right code: {}", right.0);
    assert_codes_stop_at_lockouts(&trail, &seen);
    if right.0 == 303 {
        // Checked before the fifth wrong code: it verified the session, whose old
        // id the rest of the burst then no longer had.
        return p.app.cleanup().await;
    }
    assert_eq!(right.0, 429, "the right code during the lockout is refused");
    let expected: Vec<u16> = [vec![422; 4], vec![429; 11]].concat();
    assert_eq!(statuses, expected, "{seen}");
    assert_eq!(count_audit(&p.app.pool, ("lockout", "codes")), 1);
    assert_eq!(count_audit(&p.app.pool, ("sign_in", "second_factor")), 0);
    let (failures, lockouts, until, enrolled) = account(&p.app.pool, me);
    assert_eq!((failures, lockouts, enrolled), (5, 1, false));
    let locked_at = lockouts_at(&p.app.pool)[0];
    assert_eq!(until, Some(locked_at + chrono::Duration::minutes(15)));
    p.app.cleanup().await;
}

/// Finding 2: a second lockout with no right code in between lasts 30 minutes, not
/// 15, and the right code is refused all of it; after it, the right code works and
/// the count starts again. Later times are replicas whose clock says so.
async fn a_second_lockout_lasts_longer(backend: Backend) {
    let p = Portal::start(backend).await;
    let me = "zorg@anker.example.nl";
    let (cookie, secret, csrf) = p.enrolment_page(me).await;
    let wrong = [("csrf", csrf.as_str()), ("code", wrong_code(&secret))];
    let at = |minutes: i64| {
        (chrono::DateTime::parse_from_rfc3339(NOW).unwrap() + chrono::Duration::minutes(minutes))
            .to_rfc3339()
    };
    let replica = |minutes: i64| {
        let env = [
            ("SCHOOLSIGNAL_NOW", at(minutes)),
            ("SCHOOLSIGNAL_PUBLIC_URL", PUBLIC.into()),
        ];
        let app = &p.app;
        async move { app.spawn_replica(&env).await }
    };
    let post = |base: String, form: Vec<(&'static str, String)>| {
        let request = p.http.post(format!("{base}/totp"));
        let request = request.header(COOKIE, &cookie).header(ORIGIN, PUBLIC);
        async move { request.form(&form).send().await.unwrap().status().as_u16() }
    };
    let form = |code: &str| vec![("csrf", csrf.clone()), ("code", code.to_string())];
    let five_wrong = |base: String| {
        let post = &post;
        let form = form(wrong[1].1);
        async move {
            let mut statuses = Vec::new();
            for _ in 0..5 {
                statuses.push(post(base.clone(), form.clone()).await);
            }
            statuses
        }
    };
    assert_eq!(
        five_wrong(p.app.address.clone()).await,
        [422, 422, 422, 422, 429]
    );
    let first = account(&p.app.pool, me);
    assert_eq!(
        first.2,
        Some(lockouts_at(&p.app.pool)[0] + chrono::Duration::minutes(15))
    );

    // 20 minutes on, the first lockout is over: five more wrong codes lock it again,
    // now for 30 minutes.
    let later = replica(20).await;
    assert_eq!(
        five_wrong(later.address.clone()).await,
        [422, 422, 422, 422, 429]
    );
    let second = account(&p.app.pool, me);
    let locked = lockouts_at(&p.app.pool);
    assert_eq!(locked.len(), 2);
    assert_eq!(
        second.2,
        Some(locked[1] + chrono::Duration::minutes(30)),
        "the second lockout lasts twice as long"
    );
    // The row keeps the count that locked it, and the lockouts in a row.
    assert_eq!((first.0, first.1), (5, 1));
    assert_eq!((second.0, second.1), (5, 2));
    // 40 minutes on (15 after the second lockout began) the right code is still
    // refused; 52 minutes on (past its 30) it works, and the slate is clean.
    let still = replica(40).await;
    assert_eq!(
        post(still.address.clone(), form(&code_now(&secret))).await,
        429
    );
    let after = replica(52).await;
    assert_eq!(
        post(after.address.clone(), form(&code_now(&secret))).await,
        303
    );
    assert_eq!(account(&p.app.pool, me), (0, 0, None, true));
    p.app.cleanup().await;
}

/// Finding 5: thirty guessed links at once from one client check at most ten. On
/// PostgreSQL the audit table is locked so that every guess let through waits at
/// its audit row, and the gate opens once the other guesses were answered: with a
/// check apart from the count, all thirty would have passed the check.
async fn parallel_guesses_stop_at_the_limit(backend: Backend) {
    let pool_size = [("SCHOOLSIGNAL_DB_POOL_SIZE", "40".to_string())];
    let p = Portal::start_with(backend, &pool_size).await;
    let mut guesses = Vec::new();
    for n in 1..=30 {
        let path = format!("/n/{n:064x}");
        let (_, _, page) = p.get(&path, None).await;
        guesses.push((path, field(&page, "csrf")));
    }
    let gate = Gate::hold(
        &p.app.db,
        "LOCK TABLE audit_log IN EXCLUSIVE MODE",
        &["audit_log"],
    );
    let answered = AtomicUsize::new(0);
    let burst = guesses.iter().map(|(path, csrf)| {
        let form = [("csrf", csrf.as_str())];
        let answered = &answered;
        let p = &p;
        async move {
            counted(answered, p.post(path, None, Some(PUBLIC), &form))
                .await
                .0
        }
    });
    let (mut statuses, ()) = tokio::join!(
        futures_util::future::join_all(burst),
        gate.release_at(30, &answered)
    );
    statuses.sort();
    let checked = count_audit(&p.app.pool, ("failed_sign_in", "unknown_link"));
    assert_eq!(checked, 10, "guesses checked: {statuses:?}");
    let expected: Vec<u16> = [vec![410; 10], vec![429; 20]].concat();
    assert_eq!(statuses, expected);
    assert_eq!(count_audit(&p.app.pool, ("lockout", "links")), 1);
    p.app.cleanup().await;
}

/// Finding 5: eight new-link requests at once for one address (from eight clients,
/// so that only the address's limit applies) issue three links and send three
/// emails. On PostgreSQL the links table is locked against inserts, so that every
/// request has counted the address's links before any is written.
async fn parallel_new_links_stop_at_the_limit(backend: Backend) {
    let extra = [
        ("SCHOOLSIGNAL_TRUSTED_PROXIES", "127.0.0.1/32".to_string()),
        ("SCHOOLSIGNAL_DB_POOL_SIZE", "40".to_string()),
    ];
    let p = Portal::start_with(backend, &extra).await;
    let me = "adjunct@regenboog.example.nl";
    let (_, _, page) = p.get("/login", None).await;
    let csrf = field(&page, "csrf");
    let gate = Gate::hold(
        &p.app.db,
        "LOCK TABLE access_tokens IN EXCLUSIVE MODE",
        &["access_tokens", "staff_accounts"],
    );
    let answered = AtomicUsize::new(0);
    let burst = (1..=8).map(|n| {
        let client = format!("203.0.113.{n}");
        let form = [("csrf", csrf.clone()), ("email", me.to_string())];
        let (answered, p) = (&answered, &p);
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let forwarded = [("x-forwarded-for", client.as_str())];
            let request = p.post_with("/login", None, Some(PUBLIC), &forwarded, &form);
            counted(answered, request).await.0
        }
    });
    let (statuses, ()) = tokio::join!(
        futures_util::future::join_all(burst),
        gate.release_at(8, &answered)
    );
    assert_eq!(statuses, [200; 8], "the same answer to every request");
    let links: i64 = {
        use diesel::prelude::*;
        use schoolsignal::db::schema::access_tokens::dsl::*;
        let mut conn = p.app.pool.get().unwrap();
        access_tokens
            .filter(recipient_email.eq(me).and(notice_id.is_null()))
            .count()
            .get_result(&mut *conn)
            .unwrap()
    };
    assert_eq!(links, 3, "links issued");
    assert_eq!(count_audit(&p.app.pool, ("link_request", "sent")), 3);
    assert_eq!(count_audit(&p.app.pool, ("link_request", "limited")), 5);
    // Every link issued is sent: two notices, then the links.
    p.sink.wait_for(2 + links as usize, WAIT).await;
    assert_eq!(p.sink.received_for(me).len(), 3, "emails sent");
    p.app.cleanup().await;
}

/// Finding 9: setting up the second factor tells the address, once, by an email
/// with no link or URL in it, that says to call the operator if it was not them.
async fn enrolment_is_told_by_email(backend: Backend) {
    let p = Portal::start(backend).await;
    let me = "zorg@regenboog.example.nl";
    let cookie = p.redeem(me).await;
    let (_, _, target) = p.enrol(&cookie).await;
    assert!(target.starts_with("/notices/"));
    let mails = p.sink.wait_for(3, WAIT).await;
    assert_eq!(mails.len(), 3, "the two notices, and the enrolment told");
    let told: Vec<_> = p
        .sink
        .received_for(me)
        .into_iter()
        .filter(|m| !m.text_body().contains(&format!("{PUBLIC}/n/")))
        .collect();
    assert_eq!(told.len(), 1, "one email besides the notice");
    let mail = &told[0];
    assert_eq!(mail.to_addresses(), [me]);
    assert_eq!(
        mail.subject(),
        "Er is een tweede inlogstap ingesteld voor uw account"
    );
    let text = mail.text_body();
    assert!(text.contains("Bel dan direct de beheerder"), "{text}");
    for part in [text.as_str(), &mail.html_body(), &mail.all_decoded_text()] {
        let lower = part.to_lowercase();
        assert!(
            !lower.contains("http") && !lower.contains("://"),
            "no URL: {part}"
        );
        assert!(!lower.contains("href"), "no link: {part}");
    }

    // A later email (a new link) arrives, and still only one told of the enrolment.
    let (_, _, page) = p.get("/login", None).await;
    let form = [("csrf", field(&page, "csrf")), ("email", me.to_string())];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(p.post("/login", None, Some(PUBLIC), &form).await.0, 200);
    p.sink.wait_for(4, WAIT).await;
    let subjects: Vec<String> = p
        .sink
        .received_for(me)
        .iter()
        .map(|m| m.subject())
        .collect();
    let enrolments = subjects
        .iter()
        .filter(|s| s.contains("tweede inlogstap"))
        .count();
    assert_eq!(enrolments, 1, "{subjects:?}");
    let logs = captured_logs();
    assert!(logs.contains("second-factor notice sent"));
    assert!(!logs.contains(me), "no address in the logs");
    p.app.cleanup().await;
}
