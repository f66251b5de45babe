//! The coordinator's whole path in a real browser: a police event over AMQP, the
//! email in the SMTP sink, then headless Chromium (driven through chromedriver with
//! fantoccini) opens the link, enrols the second factor, reads the notice and
//! acknowledges it. Every page visited is saved as a screenshot under
//! `target/screenshots/` for review, at desktop and at phone width. The browser
//! harness is `support::chrome`.

use crate::support::*;
use fantoccini::Locator;
use smtp_sink::SmtpSink;
use std::time::{Duration, Instant};

const COORDINATOR: &str = "zorg@regenboog.example.nl";
/// What the test types: a note and a signal's description. The log canary looks
/// for both.
const NOTE: &str = "Rustig vandaag. <script>alert(1)</script>";
const SIGNAL: &str = "Blauwe plek op de arm; vertelt zelf dat het een val was.";

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
