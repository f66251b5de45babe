//! The coordinator's whole path in a real browser: a police event over AMQP, the
//! email in the SMTP sink, then headless Chromium (driven through chromedriver with
//! fantoccini) opens the link, enrols the second factor, reads the notice and
//! acknowledges it. Every page visited is saved as a screenshot under
//! `target/screenshots/` for review, at desktop and at phone width.
//!
//! Chromium and chromedriver are required (`apt-get install chromium
//! chromium-driver`, which `.ci/run` does): without them this test fails, it is never
//! skipped.

use crate::support::*;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use smtp_sink::SmtpSink;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The window the desktop screenshots are taken in, and the phone width.
const DESKTOP: (u32, u32) = (1280, 900);
const PHONE_WIDTH: u32 = 390;
const COORDINATOR: &str = "zorg@regenboog.example.nl";
/// What the test types: a note and a signal's description. The log canary looks
/// for both.
const NOTE: &str = "Rustig vandaag. <script>alert(1)</script>";
const SIGNAL: &str = "Blauwe plek op de arm; vertelt zelf dat het een val was.";

/// chromedriver, a child of this test in a process group of its own. Dropping it
/// kills the whole group (chromedriver and the Chromium it started), also when the
/// test panics.
struct Chromedriver {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Chromedriver {
    async fn start() -> Self {
        for binary in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(binary).exists(),
                "{binary} is missing: install the packages chromium and chromium-driver \
                 (.ci/run does); this test needs a real browser"
            );
        }
        // chromedriver is told its port; reserved, so that no other process takes it.
        let port = reserve_port();
        let log = log_dir().join("chromedriver.log");
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Chromedriver { child, port, log };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + WAIT;
        loop {
            let ready = http
                .get(format!("{}/status", driver.url()))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if ready {
                return driver;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver not ready in time; log: {}",
                driver.log.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A browser session, and where its screenshots go.
struct Browser {
    client: Client,
    shots: PathBuf,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn open(driver: &Chromedriver) -> Self {
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            format!("--window-size={},{}", DESKTOP.0, DESKTOP.1),
            format!("--user-data-dir={}", profile.path().display()),
            // A Dutch coordinator's browser: pages before any school is known (after
            // signing out) follow Accept-Language.
            "--lang=nl-NL".into(),
        ];
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": args,
                "prefs": { "intl.accept_languages": "nl-NL,nl" },
            },
        });
        let client = ClientBuilder::native()
            .capabilities(capabilities.as_object().unwrap().clone())
            .connect(&driver.url())
            .await
            .unwrap_or_else(|e| panic!("no browser session: {e}; log: {}", driver.log.display()));
        let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        // A failure screenshot from an earlier run would only mislead.
        let _ = std::fs::remove_file(shots.join("failure.png"));
        Browser {
            client,
            shots,
            _profile: profile,
        }
    }

    async fn js(&self, script: &str) -> serde_json::Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    /// The visible text of the page's `main`.
    async fn main_text(&self) -> String {
        self.client
            .find(Locator::Css("main"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_string()
    }

    /// Waits until an element is there (after a click that navigates).
    /// On failure it saves `target/screenshots/failure.png` and shows where it is.
    async fn wait_for(&self, locator: Locator<'_>) -> Element {
        match self.client.wait().at_most(WAIT).for_element(locator).await {
            Ok(element) => element,
            Err(e) => {
                self.save("failure").await;
                let url = self.client.current_url().await.map(|u| u.to_string());
                let title = self.client.title().await.unwrap_or_default();
                panic!("{locator:?} did not appear ({e}); at {url:?}, page \"{title}\"")
            }
        }
    }

    async fn button(&self, label: &str) -> Element {
        let xpath = format!("//button[normalize-space(.)='{label}']");
        self.client
            .find(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("no button \"{label}\": {e}"))
    }

    /// The key on the enrolment page, once it is there.
    async fn enrolment_secret(&self) -> String {
        let key = self.wait_for(Locator::Css("code.secret")).await;
        key.text().await.unwrap()
    }

    /// Types the code for `secret` into the enrolment form and confirms it.
    async fn confirm_enrolment(&self, secret: &str) {
        let field = self.client.find(Locator::Id("code")).await.unwrap();
        field.send_keys(&code_now(secret)).await.unwrap();
        self.button("Bevestigen").await.click().await.unwrap();
    }

    /// Sizes the window to `width` and to the whole height of the page.
    async fn fit(&self, width: u32) {
        self.client.set_window_size(width, DESKTOP.1).await.unwrap();
        let heights = self
            .js("return [document.documentElement.scrollHeight, \
                 window.outerHeight - window.innerHeight]")
            .await;
        let page = heights[0].as_u64().unwrap() as u32;
        let chrome = heights[1].as_u64().unwrap_or(0) as u32;
        let height = page.max(DESKTOP.1 - chrome) + chrome;
        self.client.set_window_size(width, height).await.unwrap();
    }

    /// Saves `target/screenshots/<step>.png` (the whole page at desktop width) and
    /// `<step>-phone.png`, and checks the page reflows at phone width: no
    /// horizontal scrolling (WCAG 1.4.10).
    async fn screenshot(&self, step: &str) {
        self.fit(DESKTOP.0).await;
        self.save(step).await;
        self.fit(PHONE_WIDTH).await;
        let widths = self
            .js("return [window.innerWidth, document.documentElement.scrollWidth]")
            .await;
        let (viewport, content) = (widths[0].as_u64().unwrap(), widths[1].as_u64().unwrap());
        assert!(
            viewport <= u64::from(PHONE_WIDTH) + 20,
            "the window did not get narrow: {viewport}px"
        );
        self.save(&format!("{step}-phone")).await;
        assert!(
            content <= viewport,
            "{step}: the page scrolls sideways at {viewport}px ({content}px wide)"
        );
        self.client
            .set_window_size(DESKTOP.0, DESKTOP.1)
            .await
            .unwrap();
    }

    async fn save(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    /// Fails when the page shows a JavaScript dialog (an `alert`).
    async fn assert_no_alert(&self) {
        if let Ok(text) = self.client.get_alert_text().await {
            panic!("the page opened an alert: {text:?}");
        }
    }
}

/// The portal link in an email's text: `{public}/n/{hex token}`.
fn link_in(text: &str, public: &str) -> String {
    let token = link_token(text, public);
    assert!(token.len() >= 32, "a long link token");
    format!("{public}/n/{token}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_whole_path() {
    // The service listens where the browser goes, and its links point there: over
    // plain http the session cookie is `schoolsignal`, without Secure. The public URL
    // must name the port before the service starts, so it cannot pick its own: the
    // port is reserved (see `reserve_port`), not merely found free.
    let sink = SmtpSink::start().await;
    let port = reserve_port();
    let public = format!("http://127.0.0.1:{port}");
    let extra = [
        ("SMTP_URL", format!("{}?tls=none", sink.url())),
        ("SCHOOLSIGNAL_BIND", format!("127.0.0.1:{port}")),
        ("SCHOOLSIGNAL_PUBLIC_URL", public.clone()),
    ];
    let app = TestApp::spawn_with(Backend::Sqlite, &extra).await;
    assert_eq!(app.address, public);

    // a. The police event, over AMQP to the real queue.
    app.broker.publish(&example("valid-basic.json")).await;

    // b. The email, and the link in it.
    let mails = sink.wait_for(1, WAIT).await;
    assert_eq!(mails.len(), 1, "one email");
    assert_eq!(mails[0].rcpt_to, [COORDINATOR]);
    let link = link_in(&mails[0].text_body(), &public);
    let (notice_id, acknowledged) = notice_of(&app.pool, "12AB00");
    assert!(!acknowledged);

    let driver = Chromedriver::start().await;
    let browser = Browser::open(&driver).await;
    let b = &browser;

    // c. The link opens a page with one button; opening it uses nothing up.
    b.client.goto(&link).await.unwrap();
    assert_eq!(b.js("return document.documentElement.lang").await, "nl");
    assert!(b.main_text().await.contains("vertrouwelijk bericht"));
    b.screenshot("1-link").await;
    // The first Tab reaches the skip link, which then shows.
    b.client
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .send_keys("\u{e004}")
        .await
        .unwrap();
    let focused = b.client.active_element().await.unwrap();
    assert_eq!(focused.text().await.unwrap(), "Naar de inhoud");
    let (x, y, _, _) = focused.rectangle().await.unwrap();
    assert!(x >= 0.0 && y >= 0.0, "the focused skip link is on screen");
    b.save("1-link-skip-focus").await;
    b.button("Bericht openen").await.click().await.unwrap();

    // d. Enrolment: the key from the page, the code from it, typed in.
    let secret = b.enrolment_secret().await;
    assert_eq!(b.path().await, "/totp");
    let cookie = b.client.get_named_cookie("schoolsignal").await.unwrap();
    assert_eq!(cookie.http_only(), Some(true));
    assert_ne!(cookie.secure(), Some(true), "no Secure over plain http");
    assert_eq!(format!("{:?}", cookie.same_site()), "Some(Strict)");
    assert!(
        b.client.find(Locator::Css("figure.qr svg")).await.is_ok(),
        "the QR code"
    );
    // The field has a visible label.
    let label = b
        .client
        .find(Locator::Css("label[for='code']"))
        .await
        .unwrap();
    assert!(label.text().await.unwrap().contains("Code"));
    b.screenshot("2-enrol").await;
    b.confirm_enrolment(&secret).await;

    // e. The notice, then the acknowledgement.
    b.wait_for(Locator::Css("dl.facts")).await;
    assert_eq!(b.path().await, format!("/notices/{notice_id}"));
    let page = b.main_text().await;
    for shown in ["Sanne de Vries", "groep 5", "OBS De Regenboog"] {
        assert!(page.contains(shown), "{shown} on the notice page");
    }
    b.screenshot("3-notice").await;
    b.button("Ontvangen — we bieden vandaag steun")
        .await
        .click()
        .await
        .unwrap();
    b.wait_for(Locator::XPath(
        "//main//p[contains(., 'Ontvangst bevestigd')]",
    ))
    .await;
    assert!(
        notice_of(&app.pool, "12AB00").1,
        "acknowledged in the database"
    );
    b.screenshot("4-acknowledged").await;

    // f. A note, shown as text, and a signal to Veilig Thuis over the real broker.
    note_is_escaped_and_signal_is_sent(b, &app, &notice_id).await;

    // The school's list, then signing out.
    b.client
        .find(Locator::LinkText("Alle berichten van uw school"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait_for(Locator::Css("ul.notices")).await;
    let list = b.main_text().await;
    assert!(list.contains("Ontvangst bevestigd (1)") && list.contains("Sanne de Vries"));
    b.screenshot("7-list").await;
    b.button("Uitloggen").await.click().await.unwrap();
    b.wait_for(Locator::XPath("//h1[normalize-space(.)='Uitgelogd']"))
        .await;
    b.screenshot("8-logged-out").await;
    b.client
        .goto(&format!("{public}/notices/{notice_id}"))
        .await
        .unwrap();
    b.wait_for(Locator::XPath("//h1[normalize-space(.)='Inloggen nodig']"))
        .await;
    assert!(!b.main_text().await.contains("Sanne"));
    b.screenshot("9-signed-out-notice").await;

    // h. The service's logs hold no personal data.
    let logs = captured_logs();
    assert_no_personal_data(&logs, "event decided");
    assert_no_personal_data(&logs, "email attempt");
    // Also dates of birth as the pages show them (dd-mm-yyyy), and what was typed.
    let shown_dates = dates_as_shown();
    assert!(
        shown_dates.contains(&"12-04-2016".to_string()),
        "Sanne's, as shown"
    );
    for text in shown_dates.iter().map(String::as_str).chain([
        NOTE,
        SIGNAL,
        "Rustig vandaag",
        "Blauwe plek",
    ]) {
        assert!(
            !logs.contains(text),
            "a typed or shown value of length {} in the logs",
            text.len()
        );
    }

    browser.client.clone().close().await.unwrap();
    drop(driver);
    app.cleanup().await;
}

/// Step f: a note with markup in it (a textarea `body` posting to
/// `/notices/{id}/notes`) is shown literally and never runs; a signal (`category`,
/// `urgency`, `description` posting to `/notices/{id}/signals`) leaves as
/// `school_signal.v1` and the page says it was sent once the broker confirmed it.
async fn note_is_escaped_and_signal_is_sent(b: &Browser, app: &TestApp, notice_id: &str) {
    // The note: markup in it is shown as text, never run.
    let hostile = NOTE;
    let form = b
        .client
        .find(Locator::Css("form[action$='/notes']"))
        .await
        .expect("the note form");
    form.find(Locator::Css("textarea[name='body']"))
        .await
        .unwrap()
        .send_keys(hostile)
        .await
        .unwrap();
    form.find(Locator::Css("button[type='submit'], button:not([type])"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let note = b
        .wait_for(Locator::XPath(
            "//article[contains(@class, 'note')]/p[contains(@class, 'text')]",
        ))
        .await;
    assert_eq!(note.text().await.unwrap(), hostile, "the note, literally");
    b.assert_no_alert().await;
    assert_eq!(
        b.js("return document.querySelectorAll('main script').length")
            .await,
        0
    );
    b.screenshot("5-note").await;

    // The signal: bound before acting, so its message cannot go unseen.
    let description = SIGNAL;
    let queue = app.broker.bind_outbound("school_signal.v1").await;
    let form = b
        .client
        .find(Locator::Css("form[action$='/signals']"))
        .await
        .expect("the signal form");
    for (name, value) in [("category", "injury"), ("urgency", "routine")] {
        choose(&form, name, value).await;
    }
    form.find(Locator::Css(
        "textarea[name='description'], input[name='description']",
    ))
    .await
    .unwrap()
    .send_keys(description)
    .await
    .unwrap();
    form.find(Locator::Css("button[type='submit'], button:not([type])"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait_for(Locator::Css("article.signal")).await;
    let messages = app.broker.take(&queue, 1, WAIT).await;
    assert_eq!(messages.len(), 1, "a school_signal.v1 message");
    let delivery = &messages[0].delivery;
    assert_eq!(delivery.routing_key.as_str(), "school_signal.v1");
    let signal: serde_json::Value = serde_json::from_slice(&delivery.data).unwrap();
    assert_eq!(signal["schema"], "school_signal.v1");
    assert_eq!(signal["notice_id"], notice_id);
    assert_eq!(signal["category"], "injury");
    assert_eq!(signal["urgency"], "routine");
    assert_eq!(signal["description"], description);
    // Once the broker confirmed it, the page says it was sent.
    let deadline = Instant::now() + WAIT;
    loop {
        b.client.refresh().await.unwrap();
        let sent = b
            .client
            .find(Locator::XPath(
                "//article[contains(@class, 'signal')]/p[contains(., 'Letsel') \
                 and contains(., 'Verzonden aan Veilig Thuis')]",
            ))
            .await
            .is_ok();
        if sent {
            break;
        }
        assert!(Instant::now() < deadline, "the signal is not shown as sent");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    b.screenshot("6-signal").await;
}

/// Sets a form field `name` to `value`, whether it is a select or radio buttons.
async fn choose(form: &Element, name: &str, value: &str) {
    let field = form
        .find(Locator::Css(&format!("[name='{name}']")))
        .await
        .unwrap_or_else(|e| panic!("no field {name}: {e}"));
    if field
        .tag_name()
        .await
        .unwrap()
        .eq_ignore_ascii_case("select")
    {
        field.select_by_value(value).await.unwrap();
    } else {
        form.find(Locator::Css(&format!("[name='{name}'][value='{value}']")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }
}

/// An operator in the browser: a link from /login, the second factor, then the
/// dashboard over the report's three-week scenario at noon on its last Monday, with
/// the broker away (so a signal waits). Screenshots at desktop and phone width:
/// `target/screenshots/operator-*.png`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_operator_dashboard() {
    let s = crate::report::Scenario::run(Backend::Sqlite).await;
    let operator = "ops@gemeente.example.nl";
    assert!(run_cli(&s.db.url, &["operators", "add", operator], &[])
        .status
        .success());
    let port = reserve_port();
    let public = format!("http://127.0.0.1:{port}");
    let closed = format!("amqp://guest:guest@127.0.0.1:{}/%2f", free_port());
    let extra = [
        ("SCHOOLSIGNAL_BIND", format!("127.0.0.1:{port}")),
        ("SCHOOLSIGNAL_PUBLIC_URL", public.clone()),
        ("AMQP_URL", closed),
    ];
    let service = s
        .service_without_broker("2026-12-07T12:00:00+01:00", &extra)
        .await;
    assert_eq!(service.address, public);

    let driver = Chromedriver::start().await;
    let browser = Browser::open(&driver).await;
    let b = &browser;
    b.client.goto(&format!("{public}/login")).await.unwrap();
    let field = b.client.find(Locator::Id("email")).await.unwrap();
    field.send_keys(operator).await.unwrap();
    b.button("Stuur mij een nieuwe link")
        .await
        .click()
        .await
        .unwrap();
    b.wait_for(Locator::Css("p.status")).await;
    let mut mails = Vec::new();
    eventually("the operator's sign-in email", WAIT, || {
        mails = s.sink.received_for(operator);
        !mails.is_empty()
    })
    .await;
    b.client
        .goto(&link_in(&mails[0].text_body(), &public))
        .await
        .unwrap();
    b.button("Bericht openen").await.click().await.unwrap();
    let secret = b.enrolment_secret().await;
    b.confirm_enrolment(&secret).await;

    b.wait_for(Locator::Css("figure.chart svg")).await;
    assert_eq!(b.path().await, "/operator");
    let text = b.main_text().await;
    for shown in [
        s.notices["n4"].as_str(),
        &s.notices["n5"],
        "56EF02",
        "2026-W48",
    ] {
        assert!(text.contains(shown), "{shown} on the dashboard");
    }
    let source = b.client.source().await.unwrap();
    crate::operator::assert_no_child_data("the dashboard in the browser", &source);
    // The chart has its text alternative, and every table its column headers.
    let described = "return !!document.querySelector('svg[role=img] > title') \
        && !!document.querySelector('svg[role=img] > desc')";
    assert_eq!(b.js(described).await, true);
    let headed = "return [...document.querySelectorAll('table')].every(t => t.querySelector('th[scope=col]'))";
    assert_eq!(b.js(headed).await, true);
    b.screenshot("operator-dashboard").await;
    b.assert_no_alert().await;
    service.stop().await;
    s.cleanup().await;
}
