//! k8s/monitoring/ against the service: every metric the alert rules and the Grafana
//! dashboard query is one the service exports on its internal listener, and the
//! dashboard has Grafana's top-level fields. (`promtool check rules` and `promtool
//! test rules` run in `.ci/run`.)

use crate::support::*;
use std::collections::BTreeSet;
use std::path::Path;

/// The metric names in `text`: words starting `schoolsignal_` or `process_`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for prefix in ["schoolsignal_", "process_"] {
        for (at, _) in text.match_indices(prefix) {
            let before = text[..at].chars().last();
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            let name: String = text[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            names.insert(name);
        }
    }
    names
}

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_and_dashboard_query_exported_metrics() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("k8s/monitoring/grafana-dashboard.json")).unwrap();
    for field in ["title", "uid", "schemaVersion", "panels", "time"] {
        assert!(dashboard.get(field).is_some(), "the dashboard's {field}");
    }
    let mut queries = String::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{} has a query", panel["title"]);
        for target in targets {
            queries.push_str(target["expr"].as_str().unwrap());
            queries.push('\n');
        }
    }
    let rules = read("k8s/monitoring/prometheusrule.yaml");
    let exprs: String = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr:"))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(exprs.lines().count(), 4, "four alerts");

    let app = TestApp::spawn(Backend::Sqlite).await;
    // One request on the main listener, so the request histogram has a series.
    assert_eq!(
        app.http
            .get(app.url("/login"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let exported = app.metrics_text().await;
    let queried: BTreeSet<String> = metric_names(&queries)
        .union(&metric_names(&exprs))
        .cloned()
        .collect();
    assert!(queried.len() >= 15, "{queried:?}");
    for name in &queried {
        let shown = exported
            .lines()
            .any(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")));
        assert!(shown, "{name} is queried but not exported");
    }
    app.cleanup().await;
}
