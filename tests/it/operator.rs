//! The operator dashboard over HTTP, on the report's three-week scenario: operators
//! are added on the command line and sign in like coordinators (a link from /login,
//! then TOTP); coordinators get 404 and anonymous users 401 on every operator route;
//! sign-ins and views are audited; and no operator page, nor the CSV, holds any child
//! data of the scenario.

use crate::report::{Scenario, KIDS, PUBLIC, REGENBOOG};
use crate::support::*;
use diesel::prelude::*;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, ORIGIN};
use reqwest::redirect::Policy;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);
const OPERATOR: &str = "ops@gemeente.example.nl";
/// Noon on the scenario's last Monday: two of its notices are past due.
const NOON: &str = "2026-12-07T12:00:00+01:00";

/// A client that shows redirects instead of following them.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

async fn get(http: &reqwest::Client, url: String, cookie: Option<&str>) -> (u16, String, String) {
    let mut request = http.get(url);
    if let Some(c) = cookie {
        request = request.header(COOKIE, c);
    }
    let r = request.send().await.unwrap();
    let kind = r
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (r.status().as_u16(), kind, r.text().await.unwrap())
}

/// Asks /login for a link to `email`, redeems it from the sink and passes TOTP;
/// returns the verified session's cookie and where the portal sent it.
async fn sign_in(s: &Scenario, base: &str, email: &str) -> (String, String) {
    let http = client();
    let before = s.sink.received_for(email).len();
    let (_, _, page) = get(&http, format!("{base}/login"), None).await;
    let form = [("csrf", field(&page, "csrf")), ("email", email.to_string())];
    let r = http
        .post(format!("{base}/login"))
        .header(ORIGIN, PUBLIC)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut mails = Vec::new();
    eventually("the sign-in email", WAIT, || {
        mails = s.sink.received_for(email);
        mails.len() > before
    })
    .await;
    let token = link_token(&mails.last().unwrap().text_body(), PUBLIC);
    let link = format!("{base}/n/{token}");
    let (_, _, page) = get(&http, link.clone(), None).await;
    let r = http
        .post(&link)
        .header(ORIGIN, PUBLIC)
        .form(&[("csrf", field(&page, "csrf"))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookie = session_cookie(r.headers());
    let (_, _, page) = get(&http, format!("{base}/totp"), Some(&cookie)).await;
    let secret = enrolment_secret(&page);
    let form = [("csrf", field(&page, "csrf")), ("code", code_now(&secret))];
    let r = http
        .post(format!("{base}/totp"))
        .header(COOKIE, &cookie)
        .header(ORIGIN, PUBLIC)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let target = r.headers()[LOCATION].to_str().unwrap().to_string();
    (session_cookie(r.headers()), target)
}

/// Every way the scenario's children could be written down: names, dates of birth
/// (ISO and Dutch order) and groups. Case-sensitive: the region `noord` is no name.
pub fn child_data() -> Vec<String> {
    let mut out = Vec::new();
    for kid in KIDS {
        out.push(kid.given.to_string());
        out.push(kid.family.to_string());
        out.push(format!("{} {}", kid.given, kid.family));
        out.push(kid.born.to_string());
        let (y, rest) = kid.born.split_at(4);
        let (m, d) = (&rest[1..3], &rest[4..6]);
        out.push(format!("{d}-{m}-{y}"));
        out.push(format!("{d}/{m}/{y}"));
        if !kid.group.is_empty() {
            out.push(kid.group.to_string());
        }
    }
    out.push(crate::support::BSN_KEY.to_string());
    out
}

pub fn assert_no_child_data(what: &str, text: &str) {
    for secret in child_data() {
        assert!(
            !text.contains(&secret),
            "{what} shows child data: {secret:?}"
        );
    }
    for kid in KIDS {
        assert!(!text.contains(kid.bsn), "{what} shows a BSN");
    }
}

fn audit(pool: &schoolsignal::db::Pool, actor: &str) -> Vec<(String, String)> {
    use schoolsignal::db::schema::audit_log as a;
    let mut conn = pool.get().unwrap();
    a::table
        .filter(a::actor.eq(actor))
        .order(a::id)
        .select((a::action, a::result))
        .load(&mut *conn)
        .unwrap()
}

backend_tests!(operators_see_how_it_goes_and_no_child);

async fn operators_see_how_it_goes_and_no_child(backend: Backend) {
    let s = Scenario::run(backend).await;
    // The command line: an address like the schools import takes, once.
    let add = run_cli(
        &s.db.url,
        &["operators", "add", "Ops@Gemeente.example.nl"],
        &[],
    );
    assert!(add.status.success(), "{add:?}");
    let again = run_cli(&s.db.url, &["operators", "add", OPERATOR], &[]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("already"));
    let bad = run_cli(&s.db.url, &["operators", "add", "ops@localhost"], &[]);
    assert!(!bad.status.success());

    // An email failing now: 34CD01's first notice email, as if its server kept
    // answering 451, with its next attempt far off so that no worker takes it.
    {
        use schoolsignal::db::schema::deliveries as d;
        let far = chrono::NaiveDate::from_ymd_opt(2027, 6, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        let mut conn = s.pool.get().unwrap();
        let email = d::table
            .filter(d::notice_id.eq(&s.notices["n2"]))
            .filter(d::kind.eq("notice"));
        let changed = diesel::update(email)
            .set((
                d::state.eq("pending"),
                d::attempts.eq(3),
                d::last_error.eq(Some("reply 451")),
                d::next_attempt_at.eq(far),
                d::finished_at.eq(None::<chrono::NaiveDateTime>),
            ))
            .execute(&mut *conn)
            .unwrap();
        assert_eq!(changed, 1);
    }
    // The broker is away, so the last week's signal waits for it.
    let closed = format!("amqp://guest:guest@127.0.0.1:{}/%2f", free_port());
    let service = s
        .service_without_broker(NOON, &[("AMQP_URL", closed)])
        .await;
    let base = service.address.clone();
    let http = client();

    // Not signed in: 401 on every operator route.
    for path in ["/operator", "/operator/report.csv"] {
        assert_eq!(
            get(&http, format!("{base}{path}"), None).await.0,
            401,
            "{path}"
        );
    }
    let (operator, target) = sign_in(&s, &base, OPERATOR).await;
    assert_eq!(
        target, "/operator",
        "an operator's link leads to the dashboard"
    );
    let (coordinator, target) = sign_in(&s, &base, REGENBOOG).await;
    assert_eq!(target, "/notices");
    for path in [
        "/operator",
        "/operator/report.csv",
        "/operator?from=2026-11-01",
    ] {
        let (status, _, page) = get(&http, format!("{base}{path}"), Some(&coordinator)).await;
        assert_eq!(status, 404, "a coordinator on {path}");
        assert_no_child_data(path, &page);
    }

    // The dashboard: the backlog by school with notice ids, the waiting signal, and
    // the chart with its text and table.
    let (status, _, page) = get(&http, format!("{base}/operator"), Some(&operator)).await;
    assert_eq!(status, 200);
    let (n4, n5) = (s.notices["n4"].clone(), s.notices["n5"].clone());
    let backlog = between(&page, "id=\"backlog-h\"", "</section>");
    assert!(backlog.contains("(2)"), "two notices past due: {backlog}");
    assert!(backlog.contains(&n4) && backlog.contains(&n5));
    assert!(backlog.contains("56EF02") && backlog.contains("34CD01"));
    // 34CD01 was due at 08:15: at 12:00 it is 225 minutes late (a minute more if the
    // test is slow).
    assert!(
        backlog.contains("<td>225</td>") || backlog.contains("<td>226</td>"),
        "{backlog}"
    );
    let failing = between(&page, "id=\"failing-h\"", "</section>");
    assert!(
        failing.contains("(1)") && failing.contains(&s.notices["n2"]),
        "{failing}"
    );
    for shown in ["34CD01", "coordinator", "reply 451", "<td>3</td>"] {
        assert!(failing.contains(shown), "{shown} in {failing}");
    }
    assert!(!failing.contains('@'), "no address: {failing}");
    let waiting = between(&page, "id=\"waiting-h\"", "</section>");
    assert!(
        waiting.contains("(1)") && waiting.contains(&n4),
        "{waiting}"
    );
    let chart = between(&page, "<svg", "</svg>");
    assert!(chart.contains("role=\"img\"") && chart.contains("<desc"));
    assert!(
        chart.contains("2026-W48: 2"),
        "the text alternative has the numbers: {chart}"
    );
    assert_eq!(chart.matches("<rect").count(), 12, "twelve weeks");
    for school in ["12AB00", "34CD01", "56EF02"] {
        assert!(between(&page, "id=\"schools-h\"", "</section>").contains(school));
    }
    assert!(!page.contains("<script"), "no JavaScript");
    assert_no_child_data("the dashboard", &page);

    // Another range; a bad one is the 422 page.
    let ranged = format!("{base}/operator?from=2026-11-23&to=2026-11-29");
    let (status, _, page) = get(&http, ranged, Some(&operator)).await;
    assert_eq!(status, 200);
    assert_eq!(between(&page, "<svg", "</svg>").matches("<rect").count(), 1);
    assert_no_child_data("the dashboard for a week", &page);
    for bad in [
        "from=yesterday",
        "to=2026-13-01",
        "from=2026-12-01&to=2026-11-01",
    ] {
        let (status, _, _) = get(&http, format!("{base}/operator?{bad}"), Some(&operator)).await;
        assert_eq!(status, 422, "{bad}");
    }

    // The CSV download is the command line's report, to the byte.
    let csv_url = format!("{base}/operator/report.csv?from=2026-11-23&to=2026-12-13&by=week");
    let (status, kind, csv) = get(&http, csv_url, Some(&operator)).await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("text/csv"), "{kind}");
    let cli = run_cli(
        &s.db.url,
        &[
            "report",
            "--from",
            "2026-11-23",
            "--to",
            "2026-12-13",
            "--format",
            "csv",
        ],
        &[],
    );
    assert_eq!(csv, String::from_utf8(cli.stdout).unwrap());
    assert_no_child_data("the CSV", &csv);
    let (_, _, default_csv) = get(
        &http,
        format!("{base}/operator/report.csv"),
        Some(&operator),
    )
    .await;
    assert_no_child_data("the default CSV", &default_csv);
    assert!(default_csv.contains("school,56EF02"));

    // Audited: the operator's sign-in and each view or download; the coordinator's
    // refused views too.
    let trail = audit(&s.pool, OPERATOR);
    for entry in [
        ("sign_in", "link_redeemed"),
        ("sign_in", "second_factor"),
        ("operator_view", "ok"),
        ("operator_download", "ok"),
    ] {
        assert!(
            trail.contains(&(entry.0.into(), entry.1.into())),
            "{entry:?} in {trail:?}"
        );
    }
    let views = trail.iter().filter(|e| e.0 == "operator_view").count();
    assert_eq!(
        views, 5,
        "every view of the dashboard, the refused ranges too: {trail:?}"
    );
    let refused = audit(&s.pool, REGENBOOG);
    assert!(refused.contains(&("operator_view".into(), "not_found".into())));
    assert!(refused.contains(&("operator_download".into(), "not_found".into())));
    let cli_trail = audit(&s.pool, "operator");
    assert!(cli_trail.contains(&("operator_add".into(), "ok".into())));

    // Counted: sign-ins, and requests by route pattern and status.
    let metrics = scrape(&http, &service.metrics_address).await.unwrap();
    assert!(
        series_value(
            &metrics,
            "schoolsignal_portal_actions_total{action=\"sign_in\"}"
        ) >= 2.0
    );
    let ok = "schoolsignal_http_request_duration_seconds_count{route=\"/operator\",status=\"200\"}";
    assert_eq!(series_value(&metrics, ok), 2.0, "{metrics}");
    assert!(
        metrics.contains("route=\"/n/{token}\""),
        "the pattern, not the token"
    );
    assert_no_child_data("/metrics", &metrics);

    // Removed: the role and the sessions end at once.
    let removed = run_cli(&s.db.url, &["operators", "remove", OPERATOR], &[]);
    assert!(removed.status.success());
    assert_eq!(
        get(&http, format!("{base}/operator"), Some(&operator))
            .await
            .0,
        401
    );
    let again = run_cli(&s.db.url, &["operators", "remove", OPERATOR], &[]);
    assert!(!again.status.success());
    service.stop().await;
    s.cleanup().await;
}
