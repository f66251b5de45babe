//! The coordinator's first use over HTTP (issue 16): the two steps that cannot be
//! undone ask first, empty choices are refused, every page and email names who runs
//! the service, and the public statements. The browser test walks the same path in
//! Chromium; this one checks the rows and messages behind each step, on both
//! backends.

use crate::portal::{Portal, PUBLIC, WAIT};
use crate::support::*;

const ME: &str = "zorg@regenboog.example.nl";
const DESCRIPTION: &str = "Blauwe plek op de arm; vertelt zelf dat het een val was.";

/// A verified session of [`ME`] on the siblings event: its cookie, CSRF token and
/// Daan's notice.
async fn signed_in(p: &Portal) -> (String, String, String) {
    let cookie = p.redeem(ME).await;
    let (_, cookie, _) = p.enrol(&cookie).await;
    let (notice, _) = notice_of(&p.app.pool, "12AB00");
    let (_, _, page) = p.get(&format!("/notices/{notice}"), Some(&cookie)).await;
    (cookie, field(&page, "csrf"), notice)
}

fn signal_form<'a>(csrf: &'a str, category: &'a str, step: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf", csrf),
        ("category", category),
        ("urgency", "urgent"),
        ("description", DESCRIPTION),
        ("step", step),
    ]
}

/// POSTs `form` to `path` with `cookie`'s session, from the portal's own origin.
async fn send(p: &Portal, cookie: &str, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let (status, _, page) = p.post(path, Some(cookie), Some(PUBLIC), form).await;
    (status, page)
}

/// The notice page puts the acknowledgement first, says whether the child was
/// present, and starts both choices empty.
async fn the_notice_page_puts_the_action_first(backend: Backend) {
    let p = Portal::start(backend).await;
    let (cookie, _, daan) = signed_in(&p).await;
    let (_, _, page) = p.get(&format!("/notices/{daan}"), Some(&cookie)).await;
    let action = page.find("/acknowledge").expect("the acknowledge form");
    assert!(
        action < page.find("class=\"facts\"").unwrap(),
        "before the facts"
    );
    assert!(page.contains("<dt>Aanwezig bij het incident</dt><dd>Ja</dd>"));
    let empty = "<option value=\"\" selected>Kies…</option>";
    assert_eq!(page.matches(empty).count(), 2, "category and outcome");
    assert!(!page.contains("<option value=\"support_offered\" selected"));
    // Noor's notice (another school, in English) says she was not present.
    let anker = p.redeem("zorg@anker.example.nl").await;
    let (_, anker, _) = p.enrol(&anker).await;
    let (noor, _) = notice_of(&p.app.pool, "34CD01");
    let (_, _, page) = p.get(&format!("/notices/{noor}"), Some(&anker)).await;
    assert!(page.contains("<dt>Present during the incident</dt><dd>No</dd>"));
    p.app.cleanup().await;
}

/// A signal: the first POST shows what will be sent and stores nothing; back
/// returns the form as it was and stores nothing; only the confirmation stores it
/// and sends it. An empty category is refused at every step.
async fn a_signal_asks_first(backend: Backend) {
    let p = Portal::start(backend).await;
    let (cookie, csrf, daan) = signed_in(&p).await;
    let queue = p.app.broker.bind_outbound("school_signal.v1").await;
    let path = format!("/notices/{daan}/signals");
    let stored = || count_rows(&p.app.pool, "school_signals");
    // The event's outcome messages are there already.
    let outbox = count_rows(&p.app.pool, "outbox_messages");

    for step in ["", "confirm"] {
        let (status, page) = send(&p, &cookie, &path, &signal_form(&csrf, "", step)).await;
        assert_eq!(status, 422, "an empty category, step {step:?}");
        assert_eq!(stored(), 0);
        if step.is_empty() {
            assert!(page.contains("Vul alle velden in en kies"), "the error");
            assert!(page.contains(DESCRIPTION), "what was typed stays");
        }
    }

    let (status, page) = send(&p, &cookie, &path, &signal_form(&csrf, "injury", "")).await;
    assert_eq!(status, 200);
    for shown in [
        "Signaal controleren",
        "Veilig Thuis",
        "Daan Bakker",
        "Letsel",
        "Spoed",
        DESCRIPTION,
    ] {
        assert!(page.contains(shown), "{shown} on the confirmation");
    }
    assert!(
        page.contains("Spoed: doe dit nu") && page.contains("0800-2000") && page.contains("112")
    );
    assert_eq!(field(&page, "description"), DESCRIPTION);
    assert_eq!(stored(), 0, "asking stores nothing");
    assert_eq!(count_rows(&p.app.pool, "outbox_messages"), outbox);

    let (status, page) = send(&p, &cookie, &path, &signal_form(&csrf, "injury", "edit")).await;
    assert_eq!(status, 200);
    assert!(page.contains("<option value=\"injury\" selected>"));
    assert!(page.contains("value=\"urgent\" checked"));
    assert!(page.contains(&format!(">{DESCRIPTION}</textarea>")));
    assert_eq!(stored(), 0, "back changes nothing");

    let (status, _) = send(&p, &cookie, &path, &signal_form(&csrf, "injury", "confirm")).await;
    assert_eq!(status, 303);
    assert_eq!(stored(), 1);
    let sent = p.app.broker.take(&queue, 1, WAIT).await;
    let body: serde_json::Value = serde_json::from_slice(&sent[0].delivery.data).unwrap();
    assert_eq!(
        (body["category"].as_str(), body["urgency"].as_str()),
        (Some("injury"), Some("urgent"))
    );
    assert_eq!(body["description"], DESCRIPTION);

    // A routine signal gets no urgent guidance.
    let routine = [
        ("csrf", csrf.as_str()),
        ("category", "absence"),
        ("urgency", "routine"),
        ("description", "Twee dagen afwezig."),
    ];
    let (status, page) = send(&p, &cookie, &path, &routine).await;
    assert_eq!(status, 200);
    assert!(!page.contains("Spoed: doe dit nu"));
    assert_eq!(stored(), 1);
    p.app.cleanup().await;
}

/// Closing asks first too, and an empty outcome is refused.
async fn closing_asks_first(backend: Backend) {
    let p = Portal::start(backend).await;
    let (cookie, csrf, daan) = signed_in(&p).await;
    let path = format!("/notices/{daan}/close");
    let close = |outcome: &'static str, step: &'static str| {
        let form = [
            ("csrf", csrf.clone()),
            ("outcome", outcome.into()),
            ("step", step.into()),
        ];
        let (p, cookie, path) = (&p, &cookie, &path);
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            send(p, cookie, path, &form).await
        }
    };
    for step in ["", "confirm"] {
        assert_eq!(
            close("", step).await.0,
            422,
            "an empty outcome, step {step:?}"
        );
    }
    let (status, page) = close("referred", "").await;
    assert_eq!(status, 200);
    assert!(page.contains("Bericht afsluiten?") && page.contains("Doorverwezen"));
    assert!(page.contains("kan niet ongedaan worden gemaakt"));
    assert!(
        !page.contains("direct gewist"),
        "the data is kept for 30 days here"
    );
    assert!(!is_closed(&p.app.pool, &daan));
    let (status, page) = close("referred", "edit").await;
    assert_eq!(status, 200);
    assert!(page.contains("<option value=\"referred\" selected>"));
    assert!(!is_closed(&p.app.pool, &daan), "back changes nothing");
    assert_eq!(close("referred", "confirm").await.0, 303);
    assert!(is_closed(&p.app.pool, &daan));
    p.app.cleanup().await;
}

/// Notes show their author's name from the registry; a 404 while signed in leads
/// back to the list and offers to sign out.
async fn names_and_the_way_back(backend: Backend) {
    let p = Portal::start(backend).await;
    let (cookie, csrf, daan) = signed_in(&p).await;
    let note = [("csrf", csrf.as_str()), ("body", "Rustig vandaag.")];
    let path = format!("/notices/{daan}/notes");
    assert_eq!(
        p.post(&path, Some(&cookie), Some(PUBLIC), &note).await.0,
        303
    );
    let (_, _, page) = p.get(&format!("/notices/{daan}"), Some(&cookie)).await;
    assert!(
        page.contains("· Coordinator Regenboog</p>"),
        "the author's name"
    );
    assert!(!page.contains(&format!("· {ME}")), "not their address");

    let (noor, _) = notice_of(&p.app.pool, "34CD01");
    let (status, _, page) = p.get(&format!("/notices/{noor}"), Some(&cookie)).await;
    assert_eq!(status, 404);
    assert!(page.contains("<a href=\"/notices\">Alle berichten van uw school</a>"));
    assert!(page.contains("action=\"/logout\""));
    assert!(
        !page.contains("href=\"/login\""),
        "no new link while signed in"
    );
    // Signed out, the same page offers a new link.
    let (status, _, page) = p.get(&format!("/notices/{noor}"), None).await;
    assert_eq!(status, 401);
    assert!(page.contains("href=\"/login\"") && !page.contains("action=\"/logout\""));
    p.app.cleanup().await;
}

const ORG: [(&str, &str); 5] = [
    ("SCHOOLSIGNAL_ORG_NAME", "Gemeente Hilversum"),
    ("SCHOOLSIGNAL_ORG_PHONE", "035 629 2929"),
    ("SCHOOLSIGNAL_ORG_EMAIL", "schoolsignaal@hilversum.nl"),
    ("SCHOOLSIGNAL_ORG_URL", "https://www.hilversum.nl"),
    ("SCHOOLSIGNAL_SECURITY_CONTACT", "security@hilversum.nl"),
];

/// The organisation's settings reach every email, every page's footer and the
/// public pages, and `security.txt` follows RFC 9116.
async fn the_organisation_is_named_everywhere(backend: Backend) {
    let settings: Vec<(&str, String)> = ORG.iter().map(|(k, v)| (*k, v.to_string())).collect();
    let p = Portal::start_with(backend, &settings).await;
    for mail in p.sink.received() {
        for part in [mail.text_body(), mail.html_body()] {
            for shown in [
                "Gemeente Hilversum",
                "035 629 2929",
                "schoolsignaal@hilversum.nl",
                "https://www.hilversum.nl",
            ] {
                assert!(part.contains(shown), "{shown} in the email");
            }
        }
    }
    let (cookie, _, _) = signed_in(&p).await;
    let (_, _, list) = p.get("/notices", Some(&cookie)).await;
    let pages = [
        ("/toegankelijkheid", "nl", "Toegankelijkheidsverklaring"),
        ("/accessibility", "en", "Accessibility statement"),
        ("/privacy", "nl", "Privacyverklaring"),
        ("/en/privacy", "en", "Privacy statement"),
    ];
    for (path, lang, title) in pages {
        let (status, _, page) = p.get(path, None).await;
        assert_eq!(status, 200, "{path}");
        assert!(page.contains(&format!("<html lang=\"{lang}\">")), "{path}");
        assert!(page.contains(&format!("<h1>{title}</h1>")), "{path}");
        assert!(page.contains("href=\"tel:0356292929\""), "{path}");
        assert!(
            list.contains(&format!("href=\"{path}\"")) || lang == "en",
            "the footer links {path}"
        );
    }
    for page in [&list] {
        for shown in [
            "Gemeente Hilversum",
            "035 629 2929",
            "mailto:schoolsignaal@hilversum.nl",
            "https://www.hilversum.nl",
        ] {
            assert!(page.contains(shown), "{shown} in the footer");
        }
    }
    let (_, _, privacy) = p.get("/privacy", None).await;
    assert!(
        privacy.contains("tot 30 dagen na het afsluiten"),
        "the retention"
    );

    let (status, headers, text) = p.get("/.well-known/security.txt", None).await;
    assert_eq!(status, 200);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("{name} in security.txt"))
            .to_string()
    };
    assert_eq!(value("Contact"), "mailto:security@hilversum.nl");
    assert_eq!(
        value("Canonical"),
        format!("{PUBLIC}/.well-known/security.txt")
    );
    assert_eq!(value("Preferred-Languages"), "nl, en");
    let expires = chrono::DateTime::parse_from_rfc3339(&value("Expires")).unwrap();
    let ahead = expires.to_utc() - chrono::Utc::now();
    assert!(ahead > chrono::Duration::days(30) && ahead < chrono::Duration::days(365));
    p.app.cleanup().await;
}

backend_tests!(
    the_notice_page_puts_the_action_first,
    a_signal_asks_first,
    closing_asks_first,
    names_and_the_way_back,
    the_organisation_is_named_everywhere,
);

/// The service refuses to start with an organisation whose name would itself
/// reveal the matter: the startup check of the email templates covers it, and the
/// error names the variable. Nothing is declared on the broker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revealing_organisation_stops_startup() {
    let db = TestDb::create(Backend::Sqlite);
    let prefix = format!("t{}.", unique());
    for name in [
        "Veilig Thuis Gooi en Vechtstreek",
        "Steunpunt Huiselijk Geweld",
    ] {
        let mut env = service_env(&db.url, &prefix, "amqp://guest:guest@127.0.0.1:1/%2f");
        env.push(("SCHOOLSIGNAL_ORG_NAME".into(), name.into()));
        let refused = schoolsignal::app::Application::build(config_from(&env)).await;
        let error = refused.err().expect("refused").to_string();
        assert!(error.contains("SCHOOLSIGNAL_ORG_NAME"), "{error}");
        assert!(error.contains("revealing word"), "{error}");
    }
}
