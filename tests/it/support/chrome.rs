//! A real browser for tests: headless Chromium driven through chromedriver with
//! fantoccini, and screenshots of every page visited under `target/screenshots/`,
//! at desktop and at phone size.
//!
//! Chromium and chromedriver are required (`apt-get install chromium
//! chromium-driver`, which `.ci/run` does): without them a browser test fails, it is
//! never skipped.

use super::*;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const WAIT: Duration = Duration::from_secs(30);
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The screens the screenshots are taken on: a laptop and a phone. The pages must
/// also reflow at the narrowest phone, [`NARROWEST`] pixels wide.
pub const DESKTOP: (u32, u32) = (1280, 800);
pub const PHONE: (u32, u32) = (390, 844);
pub const NARROWEST: u32 = 320;

/// chromedriver, a child of this test in a process group of its own. Dropping it
/// kills the whole group (chromedriver and the Chromium it started), also when the
/// test panics.
pub struct Chromedriver {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Chromedriver {
    pub async fn start() -> Self {
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

    pub fn url(&self) -> String {
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
pub struct Browser {
    pub client: Client,
    shots: PathBuf,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// A Dutch coordinator's browser: pages before any school is known (after
    /// signing out) follow Accept-Language.
    pub async fn open(driver: &Chromedriver) -> Self {
        Self::open_in(driver, "nl-NL").await
    }

    /// A browser whose preferred language is `lang` (`nl-NL`, `en-GB`).
    pub async fn open_in(driver: &Chromedriver, lang: &str) -> Self {
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
            format!("--lang={lang}"),
        ];
        let accept = format!("{lang},{}", &lang[..2]);
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": args,
                "prefs": { "intl.accept_languages": accept },
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

    pub async fn js(&self, script: &str) -> serde_json::Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    /// The visible text of the page's `main`.
    pub async fn main_text(&self) -> String {
        self.client
            .find(Locator::Css("main"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_string()
    }

    /// Waits until an element is there (after a click that navigates).
    /// On failure it saves `target/screenshots/failure.png` and shows where it is.
    pub async fn wait_for(&self, locator: Locator<'_>) -> Element {
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

    pub async fn button(&self, label: &str) -> Element {
        let xpath = format!("//button[normalize-space(.)='{label}']");
        self.client
            .find(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("no button \"{label}\": {e}"))
    }

    /// The key on the enrolment page, once it is there.
    pub async fn enrolment_secret(&self) -> String {
        let key = self.wait_for(Locator::Css("code.secret")).await;
        key.text().await.unwrap()
    }

    /// Types the code for `secret` into the enrolment form and confirms it.
    pub async fn confirm_enrolment(&self, secret: &str) {
        let field = self.client.find(Locator::Id("code")).await.unwrap();
        field.send_keys(&code_now(secret)).await.unwrap();
        self.submit("form[action='/totp']").await;
    }

    /// Sets the fields of the form `css` (see [`choose`]), then submits it.
    pub async fn fill_and_submit(&self, css: &str, fields: &[(&str, &str)]) {
        let form = self.client.find(Locator::Css(css)).await;
        let form = form.unwrap_or_else(|e| panic!("no form {css}: {e}"));
        for (name, value) in fields {
            choose(&form, name, value).await;
        }
        self.submit(css).await;
    }

    /// Clicks the first submit button of the form `css` (any language).
    pub async fn submit(&self, css: &str) {
        let form = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no form {css}: {e}"));
        form.find(Locator::Css("button[type='submit'], button:not([type])"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    /// The text of the first element `css` matches.
    pub async fn text_of(&self, css: &str) -> String {
        let element = self.client.find(Locator::Css(css)).await;
        let element = element.unwrap_or_else(|e| panic!("no {css}: {e}"));
        element.text().await.unwrap()
    }

    /// Waits for the page whose `h1` is `title`.
    pub async fn wait_for_title(&self, title: &str) {
        let xpath = format!("//h1[normalize-space(.)='{title}']");
        self.wait_for(Locator::XPath(&xpath)).await;
    }

    /// Sizes the window so that the page sees `(width, height)`, at the top.
    pub async fn viewport(&self, (width, height): (u32, u32)) {
        self.client.set_window_size(width, height).await.unwrap();
        let inner = self
            .js("window.scrollTo(0, 0); return [window.innerWidth, window.innerHeight]")
            .await;
        let (w, h) = (
            inner[0].as_u64().unwrap() as u32,
            inner[1].as_u64().unwrap() as u32,
        );
        if (w, h) != (width, height) {
            let (dw, dh) = (width.saturating_sub(w), height.saturating_sub(h));
            self.client
                .set_window_size(width + dw, height + dh)
                .await
                .unwrap();
        }
    }

    /// Sizes the window to `width` and to the whole height of the page.
    pub async fn fit(&self, width: u32) {
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

    /// Checks the page with axe-core (no WCAG 2.1 A or AA violation), then saves
    /// what a user first sees, `target/screenshots/<step>.png` on the laptop and
    /// `<step>-phone.png` on the phone, and the whole page on the phone
    /// (`<step>-phone-full.png`); checks the page reflows on the phone and at
    /// [`NARROWEST`]: no horizontal scrolling (WCAG 1.4.10). Every page a browser
    /// test visits goes through here.
    pub async fn screenshot(&self, step: &str) {
        self.viewport(DESKTOP).await;
        assert_accessible(self, step).await;
        self.save(step).await;
        self.viewport(PHONE).await;
        self.save(&format!("{step}-phone")).await;
        self.assert_reflows(step).await;
        self.fit(PHONE.0).await;
        self.save(&format!("{step}-phone-full")).await;
        self.viewport((NARROWEST, PHONE.1)).await;
        self.assert_reflows(step).await;
        self.viewport(DESKTOP).await;
    }

    /// Fails when the page scrolls sideways at the window's width.
    async fn assert_reflows(&self, step: &str) {
        let widths = self
            .js("return [window.innerWidth, document.documentElement.scrollWidth]")
            .await;
        let (viewport, content) = (widths[0].as_u64().unwrap(), widths[1].as_u64().unwrap());
        assert!(
            viewport <= u64::from(PHONE.0) + 20,
            "the window did not get narrow: {viewport}px"
        );
        assert!(
            content <= viewport,
            "{step}: the page scrolls sideways at {viewport}px ({content}px wide)"
        );
    }

    pub async fn save(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    /// Fails when the page shows a JavaScript dialog (an `alert`).
    pub async fn assert_no_alert(&self) {
        if let Ok(text) = self.client.get_alert_text().await {
            panic!("the page opened an alert: {text:?}");
        }
    }
}

/// The portal link in an email's text: `{public}/n/{hex token}`.
pub fn link_in(text: &str, public: &str) -> String {
    let token = link_token(text, public);
    assert!(token.len() >= 32, "a long link token");
    format!("{public}/n/{token}")
}

/// Sets a form field `name` to `value`, whether it is a select or radio buttons.
pub async fn choose(form: &Element, name: &str, value: &str) {
    let field = form
        .find(Locator::Css(&format!("[name='{name}']")))
        .await
        .unwrap_or_else(|e| panic!("no field {name}: {e}"));
    let tag = field.tag_name().await.unwrap().to_ascii_lowercase();
    if tag == "select" {
        field.select_by_value(value).await.unwrap();
    } else if tag == "textarea" {
        field.send_keys(value).await.unwrap();
    } else {
        form.find(Locator::Css(&format!("[name='{name}'][value='{value}']")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }
}
