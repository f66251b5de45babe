//! Accessibility checks: axe-core, injected into the page the browser shows, run
//! with the WCAG 2.0 and 2.1 rules of levels A and AA.
//!
//! axe-core is not downloaded here: `.ci/run` installs the pinned version and sets
//! `TEST_AXE_CORE`; without it the file is looked for where `.ci/run` puts it, and a
//! missing file fails the test (it is never skipped).
//!
//! The pages show children's names, so nothing of a page's content may reach the
//! test's output: only axe's rule texts and the failing nodes' CSS selectors leave
//! the browser (never `node.html` or `failureSummary`), and attribute values in
//! those selectors are masked.

use super::Browser;
use fantoccini::Client;
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The axe-core version `.ci/run` installs; the two must agree.
pub const AXE_CORE_VERSION: &str = "4.14.1";
/// WCAG 2.1 A and AA, which include 2.0's.
pub const AXE_TAGS: [&str; 4] = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];

/// A rule that failed (or that axe could not decide) and where: the nodes' CSS
/// selectors, with attribute values masked.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Violation {
    pub id: String,
    pub impact: Option<String>,
    pub help: String,
    #[serde(rename = "helpUrl")]
    pub help_url: String,
    pub targets: Vec<String>,
}

/// What axe found on one page.
#[derive(Debug, Clone, Deserialize)]
pub struct AxeReport {
    pub version: String,
    pub violations: Vec<Violation>,
    /// Rules axe could not decide on its own (it wants a person to look, e.g. text
    /// over a background image). Reported, but they fail nothing: they are not
    /// violations, and failing on them would make the test depend on axe's
    /// heuristics rather than on the pages.
    pub incomplete: Vec<Violation>,
}

/// Where axe.min.js is: `TEST_AXE_CORE`, or where `.ci/run` installs it.
pub fn axe_core_path() -> PathBuf {
    if let Some(path) = std::env::var_os("TEST_AXE_CORE").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    axe_install_dir().join("node_modules/axe-core/axe.min.js")
}

/// `${XDG_CACHE_HOME:-$HOME/.cache}/schoolsignal-ci/axe`, as in `.ci/run`.
fn axe_install_dir() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"));
    cache.join("schoolsignal-ci/axe")
}

/// The script, read once per test binary.
fn axe_source() -> &'static str {
    static SOURCE: OnceLock<String> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let path = axe_core_path();
        std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "axe-core is missing at {} ({e}); .ci/run installs it, or by hand: \
                 npm install --prefix {} --no-audit --no-fund axe-core@{AXE_CORE_VERSION} \
                 (or set TEST_AXE_CORE to its axe.min.js)",
                path.display(),
                axe_install_dir().display()
            )
        })
    })
}

/// Puts axe on the current page, unless it is there already. WebDriver's execute
/// runs outside the page's Content-Security-Policy, so the portal's
/// `default-src 'none'` does not stop it (tests/it/accessibility.rs proves it).
async fn inject(client: &Client) {
    let present = client.execute("return !!window.axe", vec![]).await;
    if present.expect("a script runs in the page").as_bool() == Some(true) {
        return;
    }
    client
        .execute(axe_source(), vec![])
        .await
        .unwrap_or_else(|e| panic!("axe-core does not load into the page: {e}"));
}

/// Runs axe in the page and hands back only rule texts and masked selectors: the
/// nodes' HTML and failure summaries (which quote the page) stay in the browser.
/// Attribute values are masked in selectors, since axe picks attributes such as
/// `title` or `alt` to tell nodes apart; ids and classes come from the templates.
const RUN: &str = r#"
const [tags, done] = arguments;
const mask = s => s.replace(/\[([^\]=~|^$*]+)([~|^$*]?=)"(?:[^"\\]|\\.)*"\]/g, '[$1$2"…"]');
const target = t => [].concat(t).flat(Infinity).map(s => mask(String(s))).join(' >>> ');
const brief = r => ({ id: r.id, impact: r.impact, help: r.help, helpUrl: r.helpUrl,
                      targets: r.nodes.map(n => target(n.target)) });
axe.run(document, { runOnly: { type: 'tag', values: tags },
                    resultTypes: ['violations', 'incomplete'] })
  .then(r => done({ version: axe.version, violations: r.violations.map(brief),
                    incomplete: r.incomplete.map(brief) }),
        e => done({ error: String(e) }));
"#;

/// axe's findings on the page the client shows (WCAG 2.1 A and AA).
pub async fn axe_report(client: &Client) -> AxeReport {
    inject(client).await;
    let value = client
        .execute_async(RUN, vec![serde_json::json!(AXE_TAGS)])
        .await
        .unwrap_or_else(|e| panic!("axe.run did not finish: {e}"));
    if let Some(error) = value.get("error") {
        panic!("axe.run failed: {error}");
    }
    let report: AxeReport = serde_json::from_value(value).expect("axe's results");
    assert_eq!(
        report.version,
        AXE_CORE_VERSION,
        "{} is not the pinned axe-core (.ci/run installs {AXE_CORE_VERSION})",
        axe_core_path().display()
    );
    report
}

/// The WCAG 2.1 A and AA violations on the page the client shows.
pub async fn axe_violations(client: &Client) -> Vec<Violation> {
    axe_report(client).await.violations
}

/// Fails the test when axe finds a WCAG 2.1 A or AA violation on the page the
/// browser shows. `page` names it in the message (the URL is not used: a portal
/// link holds its token).
pub async fn assert_accessible(browser: &Browser, page: &str) {
    let report = axe_report(&browser.client).await;
    if !report.violations.is_empty() {
        panic!("{}", describe(page, &report));
    }
    if !report.incomplete.is_empty() {
        eprintln!("{}", describe(page, &report));
    }
}

/// The report as text: rule, impact, help, help URL and selectors only.
pub fn describe(page: &str, report: &AxeReport) -> String {
    let mut text = format!(
        "{page}: {} WCAG 2.1 A/AA violation(s) found by axe-core {}",
        report.violations.len(),
        report.version
    );
    for (heading, rules) in [
        ("violations", &report.violations),
        (
            "incomplete (for a person to check; not failing)",
            &report.incomplete,
        ),
    ] {
        if !rules.is_empty() {
            text.push_str(&format!("\n{heading}:"));
        }
        for rule in rules {
            text.push_str(&describe_rule(rule));
        }
    }
    text
}

fn describe_rule(rule: &Violation) -> String {
    let impact = rule.impact.as_deref().unwrap_or("unknown impact");
    let mut text = format!(
        "\n  {} ({impact}): {}\n    {}",
        rule.id, rule.help, rule.help_url
    );
    for target in &rule.targets {
        text.push_str(&format!("\n    at {target}"));
    }
    text
}
