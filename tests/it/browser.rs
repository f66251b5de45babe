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
    let (app, public) = service_for_browser(&sink).await;

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
    footer_names_the_organisation(b, "/toegankelijkheid").await;
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
    enrolment_works_on_a_phone(b, &secret, "Openen in authenticator-app").await;
    // The field has a visible label.
    let label = b
        .client
        .find(Locator::Css("label[for='code']"))
        .await
        .unwrap();
    assert!(label.text().await.unwrap().contains("Code"));
    b.screenshot("2-enrol").await;
    b.confirm_enrolment(&secret).await;

    // e. The notice, then the acknowledgement, which comes first on a phone.
    b.wait_for(Locator::Css("dl.facts")).await;
    assert_eq!(b.path().await, format!("/notices/{notice_id}"));
    let page = b.main_text().await;
    for shown in [
        "Sanne de Vries",
        "groep 5",
        "OBS De Regenboog",
        "Aanwezig bij het incident\nJa",
    ] {
        assert!(page.contains(shown), "{shown} on the notice page");
    }
    acknowledge_is_on_the_first_screen(b).await;
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

    // f. A note, shown as text under its author's name; a signal to Veilig Thuis
    // over the real broker, after its confirmation; then closing, after its own.
    note_is_escaped_and_named(b).await;
    signal_asks_first_then_is_sent(b, &app, &notice_id).await;
    closing_asks_first(b, &app, &notice_id).await;

    // g. Another notice's page, while signed in, leads back.
    let nobody = "00000000-0000-4000-8000-000000000000";
    b.client
        .goto(&format!("{public}/notices/{nobody}"))
        .await
        .unwrap();
    not_found_leads_back(
        b,
        "Niet gevonden",
        "Alle berichten van uw school",
        "Uitloggen",
    )
    .await;
    b.screenshot("10-not-found").await;

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
    assert!(list.contains("Afgesloten (1)") && list.contains("Sanne de Vries"));
    b.screenshot("7-list").await;
    b.button("Uitloggen").await.click().await.unwrap();
    b.wait_for_title("Uitgelogd").await;
    b.screenshot("8-logged-out").await;
    b.client
        .goto(&format!("{public}/notices/{notice_id}"))
        .await
        .unwrap();
    b.wait_for_title("Inloggen nodig").await;
    assert!(!b.main_text().await.contains("Sanne"));
    b.screenshot("9-signed-out-notice").await;

    // h. The public pages, and security.txt.
    public_pages(
        b,
        &public,
        &[
            (
                "/toegankelijkheid",
                "Toegankelijkheidsverklaring",
                "12-accessibility",
            ),
            ("/privacy", "Privacyverklaring", "13-privacy"),
        ],
    )
    .await;

    // i. The service's logs hold no personal data.
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

/// The same path in English, for the school whose locale is `en`: Noor of the
/// siblings event, at Het Anker. An urgent signal shows what to do now; going back
/// from both confirmations changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_english_path() {
    let sink = SmtpSink::start().await;
    let (app, public) = service_for_browser(&sink).await;
    app.broker.publish(&example("valid-siblings.json")).await;
    let mails = sink.wait_for(2, WAIT).await;
    let mail = mails
        .iter()
        .find(|m| m.rcpt_to == ["zorg@anker.example.nl"])
        .expect("Het Anker's email");
    let link = link_in(&mail.text_body(), &public);
    let (noor, _) = notice_of(&app.pool, "34CD01");
    let (daan, _) = notice_of(&app.pool, "12AB00");

    let driver = Chromedriver::start().await;
    let browser = Browser::open_in(&driver, "en-GB").await;
    let b = &browser;
    b.client.goto(&link).await.unwrap();
    assert_eq!(b.js("return document.documentElement.lang").await, "en");
    footer_names_the_organisation(b, "/accessibility").await;
    b.screenshot("en-1-link").await;
    b.button("Open message").await.click().await.unwrap();
    let secret = b.enrolment_secret().await;
    enrolment_works_on_a_phone(b, &secret, "Open in authenticator app").await;
    b.screenshot("en-2-enrol").await;
    b.confirm_enrolment(&secret).await;

    b.wait_for(Locator::Css("dl.facts")).await;
    assert_eq!(b.path().await, format!("/notices/{noor}"));
    let page = b.main_text().await;
    assert!(page.contains("Noor Bakker") && page.contains("Present during the incident\nNo"));
    assert!(
        page.contains("Acute danger? Call 112."),
        "the hint by the urgency"
    );
    acknowledge_is_on_the_first_screen(b).await;
    b.screenshot("en-3-notice").await;

    // An urgent signal: what to do now, on the confirmation; back sends nothing.
    let urgent = [
        ("category", "behaviour_change"),
        ("urgency", "urgent"),
        ("description", "Withdrawn and tearful all morning."),
    ];
    b.fill_and_submit("form[action$='/signals']", &urgent).await;
    b.wait_for_title("Check the signal").await;
    let confirm = b.main_text().await;
    for shown in [
        "Urgent: do this now",
        "0800-2000",
        "Call 112",
        "Changed behaviour",
        "Withdrawn and tearful all morning.",
    ] {
        assert!(confirm.contains(shown), "{shown} on the confirmation");
    }
    b.screenshot("en-4-signal-urgent").await;
    b.button("Back, nothing changes")
        .await
        .click()
        .await
        .unwrap();
    b.wait_for(Locator::Css("dl.facts")).await;
    assert_eq!(
        count_rows(&app.pool, "school_signals"),
        0,
        "back sends nothing"
    );

    // Closing: the confirmation, then back.
    b.fill_and_submit("form[action$='/close']", &[("outcome", "referred")])
        .await;
    b.wait_for_title("Close this message?").await;
    b.screenshot("en-5-close-confirm").await;
    b.button("Back, nothing changes")
        .await
        .click()
        .await
        .unwrap();
    b.wait_for(Locator::Css("dl.facts")).await;
    assert!(!is_closed(&app.pool, &noor), "back closes nothing");

    // Daan's notice is another school's: not found, with the way back.
    b.client
        .goto(&format!("{public}/notices/{daan}"))
        .await
        .unwrap();
    not_found_leads_back(b, "Not found", "All messages of your school", "Sign out").await;
    b.screenshot("en-6-not-found").await;
    public_pages(
        b,
        &public,
        &[
            (
                "/accessibility",
                "Accessibility statement",
                "en-7-accessibility",
            ),
            ("/en/privacy", "Privacy statement", "en-8-privacy"),
        ],
    )
    .await;
    b.client.goto(&format!("{public}/notices")).await.unwrap();
    b.button("Sign out").await.click().await.unwrap();
    b.wait_for_title("Signed out").await;
    b.screenshot("en-9-logged-out").await;

    browser.client.clone().close().await.unwrap();
    drop(driver);
    app.cleanup().await;
}

/// A service on a reserved port, its links pointing there, sending to `sink`.
async fn service_for_browser(sink: &SmtpSink) -> (TestApp, String) {
    let port = reserve_port();
    let public = format!("http://127.0.0.1:{port}");
    let extra = [
        ("SMTP_URL", format!("{}?tls=none", sink.url())),
        ("SCHOOLSIGNAL_BIND", format!("127.0.0.1:{port}")),
        ("SCHOOLSIGNAL_PUBLIC_URL", public.clone()),
    ];
    let app = TestApp::spawn_with(Backend::Sqlite, &extra).await;
    assert_eq!(app.address, public);
    (app, public)
}

/// Every page's footer names who runs the service (the development defaults here)
/// and links the statements in the page's language.
async fn footer_names_the_organisation(b: &Browser, accessibility: &str) {
    let footer = b.text_of("footer").await;
    for shown in [
        "Gemeente Voorbeeldstad",
        "020 000 0000",
        "schoolsignaal@voorbeeldstad.example",
    ] {
        assert!(footer.contains(shown), "{shown} in the footer");
    }
    let link = format!("footer a[href='{accessibility}']");
    assert!(b.client.find(Locator::Css(&link)).await.is_ok(), "{link}");
    let dial = "footer a[href='tel:0200000000']";
    assert!(b.client.find(Locator::Css(dial)).await.is_ok(), "{dial}");
}

/// On the phone that has the app, a button hands it the key: an `otpauth://` link
/// with this key. The key's groups of four never break across lines, down to the
/// narrowest phone.
async fn enrolment_works_on_a_phone(b: &Browser, secret: &str, label: &str) {
    let link = b
        .client
        .find(Locator::Css("a[href^='otpauth://totp/']"))
        .await
        .expect("the otpauth link");
    assert_eq!(link.text().await.unwrap(), label);
    let href = link.attr("href").await.unwrap().unwrap();
    let url = url::Url::parse(&href).unwrap();
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query["secret"], secret.replace(' ', ""));
    assert_eq!(query["issuer"], "Schoolsignaal");
    for width in [NARROWEST, PHONE.0] {
        b.viewport((width, PHONE.1)).await;
        let whole = "return [...document.querySelectorAll('code.secret span')]\
            .every(s => s.getClientRects().length === 1 && s.textContent.length === 4)";
        assert_eq!(b.js(whole).await, true, "the key's groups at {width}px");
    }
    b.viewport(DESKTOP).await;
}

/// On a phone, the acknowledge button is on the first screen.
async fn acknowledge_is_on_the_first_screen(b: &Browser) {
    b.viewport(PHONE).await;
    let bottom = b
        .js("return document.querySelector('form.first button').getBoundingClientRect().bottom")
        .await;
    let bottom = bottom.as_f64().unwrap();
    assert!(
        bottom <= f64::from(PHONE.1),
        "the button ends at {bottom}px"
    );
    b.viewport(DESKTOP).await;
}

/// A notice page that is not the user's: not found, a link back to the list, and
/// signing out; no request for a new link.
async fn not_found_leads_back(b: &Browser, title: &str, back: &str, sign_out: &str) {
    b.wait_for_title(title).await;
    assert!(
        b.client.find(Locator::LinkText(back)).await.is_ok(),
        "{back}"
    );
    let _ = b.button(sign_out).await;
    assert!(b
        .client
        .find(Locator::Css("main a[href='/login']"))
        .await
        .is_err());
}

/// Each public page `(path, title, screenshot)`, then `security.txt`.
async fn public_pages(b: &Browser, public: &str, pages: &[(&str, &str, &str)]) {
    for (path, title, shot) in pages {
        b.client.goto(&format!("{public}{path}")).await.unwrap();
        b.wait_for_title(title).await;
        assert!(
            b.main_text().await.contains("Gemeente Voorbeeldstad"),
            "{path}"
        );
        b.screenshot(shot).await;
    }
    b.client
        .goto(&format!("{public}/.well-known/security.txt"))
        .await
        .unwrap();
    let text = b.text_of("body").await;
    assert!(
        text.contains("Contact: mailto:schoolsignaal@voorbeeldstad.example"),
        "{text}"
    );
    assert!(text.contains(&format!("Canonical: {public}/.well-known/security.txt")));
}

/// Whether the field `id` is empty and refused by the browser (`required`).
async fn refused_as_empty(b: &Browser, id: &str) -> bool {
    let script = format!("return document.getElementById('{id}').validity.valueMissing");
    b.js(&script).await == true
}

/// Step f: a note with markup in it is shown literally and never runs, under its
/// author's name from the registry (not their address).
async fn note_is_escaped_and_named(b: &Browser) {
    let hostile = NOTE;
    b.fill_and_submit("form[action$='/notes']", &[("body", hostile)])
        .await;
    let note = b
        .wait_for(Locator::XPath(
            "//article[contains(@class, 'note')]/p[contains(@class, 'text')]",
        ))
        .await;
    assert_eq!(note.text().await.unwrap(), hostile, "the note, literally");
    let author = b.text_of("article.note p.meta").await;
    assert!(author.ends_with("· Coordinator Regenboog"), "{author}");
    assert!(!author.contains(COORDINATOR));
    b.assert_no_alert().await;
    assert_eq!(
        b.js("return document.querySelectorAll('main script').length")
            .await,
        0
    );
    b.screenshot("5-note").await;
}

/// A signal (`category`, `urgency`, `description` posting to
/// `/notices/{id}/signals`): an empty category is refused; the first POST shows
/// what will be sent; back returns the form as it was and sends nothing; the
/// confirmation sends `school_signal.v1`, and the page says so once the broker
/// confirmed it.
async fn signal_asks_first_then_is_sent(b: &Browser, app: &TestApp, notice_id: &str) {
    let description = SIGNAL;
    let queue = app.broker.bind_outbound("school_signal.v1").await;
    let typed = [("description", description)];
    b.fill_and_submit("form[action$='/signals']", &typed).await;
    assert!(refused_as_empty(b, "category").await, "Kies… is refused");
    assert_eq!(
        b.path().await,
        format!("/notices/{notice_id}"),
        "still here"
    );

    let chosen = [("category", "injury"), ("urgency", "routine")];
    b.fill_and_submit("form[action$='/signals']", &chosen).await;
    b.wait_for_title("Signaal controleren").await;
    let confirm = b.main_text().await;
    for shown in [
        "Veilig Thuis",
        "Sanne de Vries",
        "Letsel",
        "Regulier",
        description,
    ] {
        assert!(confirm.contains(shown), "{shown} on the confirmation");
    }
    assert!(
        !confirm.contains("Spoed: doe dit nu"),
        "routine: no urgent guidance"
    );
    b.screenshot("6-signal-confirm").await;
    b.button("Terug, er verandert niets")
        .await
        .click()
        .await
        .unwrap();
    b.wait_for(Locator::Css("form[action$='/signals']")).await;
    assert_eq!(
        b.js("return document.getElementById('category').value")
            .await,
        "injury"
    );
    assert_eq!(
        b.js("return document.getElementById('description').value")
            .await,
        description
    );
    assert_eq!(
        count_rows(&app.pool, "school_signals"),
        0,
        "back sends nothing"
    );

    b.submit("form[action$='/signals']").await;
    b.wait_for_title("Signaal controleren").await;
    b.button("Ja, verstuur aan Veilig Thuis")
        .await
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
        b.client
            .goto(&format!("{}/notices/{notice_id}", app.address))
            .await
            .unwrap();
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
    assert_eq!(count_rows(&app.pool, "school_signals"), 1);
    b.screenshot("6-signal").await;
}

/// Closing (`outcome` posting to `/notices/{id}/close`): an empty outcome is
/// refused; the confirmation, then back, closes nothing; the confirmation closes.
async fn closing_asks_first(b: &Browser, app: &TestApp, notice_id: &str) {
    b.submit("form[action$='/close']").await;
    assert!(refused_as_empty(b, "outcome").await, "Kies… is refused");
    let chosen = [("outcome", "support_offered")];
    b.fill_and_submit("form[action$='/close']", &chosen).await;
    b.wait_for_title("Bericht afsluiten?").await;
    assert!(b
        .main_text()
        .await
        .contains("Steun geboden, geen zorgen meer"));
    b.screenshot("11-close-confirm").await;
    b.button("Terug, er verandert niets")
        .await
        .click()
        .await
        .unwrap();
    b.wait_for(Locator::Css("form[action$='/close']")).await;
    assert!(!is_closed(&app.pool, notice_id), "back closes nothing");
    b.submit("form[action$='/close']").await;
    b.wait_for_title("Bericht afsluiten?").await;
    b.button("Ja, sluit af").await.click().await.unwrap();
    b.wait_for(Locator::XPath(
        "//main//p[contains(., 'Dit bericht is afgesloten')]",
    ))
    .await;
    assert!(is_closed(&app.pool, notice_id));
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
