//! The coordinator portal over HTTP: from the email's link to an acknowledged
//! notice, and the security rules on the way. Real service, real SMTP sink.

mod support;

use reqwest::header::{HeaderMap, COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::redirect::Policy;
use std::time::Duration;
use support::smtp_sink::SmtpSink;
use support::*;

const PUBLIC: &str = "https://portal.example";
const WAIT: Duration = Duration::from_secs(30);

struct Portal {
    app: TestApp,
    sink: SmtpSink,
    http: reqwest::Client,
    /// The link token each coordinator was sent, by address.
    tokens: Vec<(String, String)>,
}

impl Portal {
    async fn start(backend: Backend) -> Self {
        let sink = SmtpSink::start().await;
        let extra = [
            ("SMTP_URL", format!("{}?tls=none", sink.url())),
            ("SCHOOLSIGNAL_PUBLIC_URL", PUBLIC.to_string()),
        ];
        let app = TestApp::spawn_with(backend, &extra).await;
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

    fn token_for(&self, address: &str) -> String {
        let (_, token) = self.tokens.iter().find(|(a, _)| a == address).unwrap();
        token.clone()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.app.address)
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> (u16, HeaderMap, String) {
        let mut request = self.http.get(self.url(path));
        if let Some(c) = cookie {
            request = request.header(COOKIE, c);
        }
        let r = request.send().await.unwrap();
        (
            r.status().as_u16(),
            r.headers().clone(),
            r.text().await.unwrap(),
        )
    }

    async fn post(
        &self,
        path: &str,
        cookie: Option<&str>,
        origin: Option<&str>,
        form: &[(&str, &str)],
    ) -> (u16, HeaderMap, String) {
        let mut request = self.http.post(self.url(path)).form(form);
        if let Some(c) = cookie {
            request = request.header(COOKIE, c);
        }
        if let Some(o) = origin {
            request = request.header(ORIGIN, o);
        }
        let r = request.send().await.unwrap();
        (
            r.status().as_u16(),
            r.headers().clone(),
            r.text().await.unwrap(),
        )
    }

    /// Redeems `address`'s link; returns the session cookie ("name=value").
    async fn redeem(&self, address: &str) -> String {
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

    /// Enrols TOTP with `cookie`'s session; returns the secret and the new cookie.
    async fn enrol(&self, cookie: &str) -> (String, String, String) {
        let (status, _, page) = self.get("/totp", Some(cookie)).await;
        assert_eq!(status, 200);
        let secret = between(&page, "<code class=\"secret\">", "</code>");
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

fn token_in(text: &str) -> String {
    let start = text
        .find(&format!("{PUBLIC}/n/"))
        .expect("a link in the email")
        + PUBLIC.len()
        + 3;
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect()
}

fn between(page: &str, start: &str, end: &str) -> String {
    let from = page
        .find(start)
        .unwrap_or_else(|| panic!("{start} not in page"))
        + start.len();
    page[from..from + page[from..].find(end).unwrap()].to_string()
}

fn field(page: &str, name: &str) -> String {
    between(page, &format!("name=\"{name}\" value=\""), "\"")
}

fn session_cookie(headers: &HeaderMap) -> String {
    let set = headers[SET_COOKIE].to_str().unwrap();
    set.split(';').next().unwrap().to_string()
}

fn code_now(secret: &str) -> String {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    schoolsignal::portal::totp::current_code(secret, unix).unwrap()
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

fn notice_of(pool: &schoolsignal::db::Pool, brin: &str) -> (String, bool) {
    use diesel::prelude::*;
    use schoolsignal::db::schema::notices::dsl::*;
    let mut conn = pool.get().unwrap();
    notices
        .filter(school_brin.eq(brin))
        .select((id, acknowledged_at.is_not_null()))
        .first(&mut *conn)
        .unwrap()
}

backend_tests!(
    link_to_acknowledgement,
    wrong_codes_lock_the_account,
    a_new_link_by_email,
    guessed_links_lock_out_the_client
);

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
    let form = [("csrf", csrf.as_str()), ("outcome", "support_offered")];
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
    let logs = captured_logs();
    assert_no_personal_data(&logs, "email attempt");
    for text in ["gesprek gehad", "ruzie thuis", me] {
        assert!(!logs.contains(text), "{text} in the logs");
    }
    p.app.broker.cleanup().await;
}

async fn wrong_codes_lock_the_account(backend: Backend) {
    let p = Portal::start(backend).await;
    let cookie = p.redeem("zorg@anker.example.nl").await;
    let (_, _, page) = p.get("/totp", Some(&cookie)).await;
    let secret = between(&page, "<code class=\"secret\">", "</code>");
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
    p.app.broker.cleanup().await;
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
    // Under `Referrer-Policy: no-referrer` a browser's own form says `Origin: null`.
    let path = format!("/n/{token}");
    let (status, headers, _) = p.post(&path, None, Some("null"), &form).await;
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
    p.app.broker.cleanup().await;
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
    p.app.broker.cleanup().await;
}
