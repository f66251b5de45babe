//! The OpenAPI document at `GET /openapi.json`, and schemathesis run against the
//! running service with a valid key: every check passes, no 5xx.

use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The document is served, is OpenAPI 3.1, and covers the intake: the request
/// schema, the key, each status with its reason codes, and the mode header.
async fn the_document_covers_the_intake(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = app.http.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let doc: serde_json::Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let post = &doc["paths"]["/v1/events"]["post"];
    assert_eq!(post["security"][0]["api_key"], serde_json::json!([]));
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );
    let body = &post["requestBody"]["content"]["application/json"]["schema"]["$ref"];
    assert_eq!(body, "#/components/schemas/HomeVisit");
    let request = &doc["components"]["schemas"]["HomeVisit"];
    assert_eq!(request["properties"]["children"]["maxItems"], 20);
    for status in [
        "200", "202", "401", "403", "408", "409", "413", "415", "422", "503",
    ] {
        assert!(post["responses"][status].is_object(), "{status} documented");
    }
    let reasons = &post["responses"]["422"]["content"]["application/json"]["schema"]["properties"]
        ["reason"]["enum"];
    for reason in [
        "malformed_json",
        "missing_field",
        "invalid_field",
        "invalid_bsn",
        "duplicate_child",
        "too_old",
        "unsupported_schema",
    ] {
        assert!(
            reasons.as_array().unwrap().contains(&reason.into()),
            "{reason}: {reasons}"
        );
    }
    let mode = &post["responses"]["202"]["headers"]["Schoolsignal-Mode"]["schema"]["enum"];
    assert_eq!(mode, &serde_json::json!(["live", "test"]));
    app.cleanup().await;
}

/// schemathesis, from `TEST_SCHEMATHESIS` (set by `.ci/run`, which installs
/// it into a venv) or PATH.
fn schemathesis() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("TEST_SCHEMATHESIS") {
        return Some(PathBuf::from(path));
    }
    Command::new("schemathesis")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| PathBuf::from("schemathesis"))
}

/// Runs every schemathesis check on the document at `location` (a URL or a file)
/// against the service at `address`, with a valid key; returns whether all passed
/// and the report.
fn run_schemathesis(tool: &Path, location: &str, address: &str, key: &str) -> (bool, String) {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis.toml");
    // It keeps a cache (`.schemathesis/`) in its working folder: one of its own.
    let cwd = tempfile::tempdir().unwrap();
    let out = Command::new(tool)
        .current_dir(cwd.path())
        .arg("--config-file")
        .arg(&config)
        .args(["run", location, "--url", address])
        .args(["--header", &format!("Authorization: Bearer {key}")])
        .args(["--checks", "all", "--max-examples", "40", "--workers", "2"])
        .args(["--generation-database", "none", "--no-color"])
        .output()
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), report)
}

/// Every schemathesis check against the running service, with a valid key: the
/// statuses, headers and bodies conform to the document, and nothing is a 5xx.
/// tests/schemathesis.toml says which statuses count as accepting valid data. As a
/// control, the same run on a copy of the document without the 422 answer must fail.
async fn schemathesis_finds_nothing(backend: Backend) {
    let found = schemathesis();
    if !tool_available("schemathesis", found.is_some()) {
        return;
    }
    let tool = found.unwrap();
    let app = TestApp::spawn(backend).await;
    let (passed, report) =
        run_schemathesis(&tool, &app.url("/openapi.json"), &app.address, &app.api_key);
    assert!(passed, "schemathesis found failures:\n{report}");
    // Its warning that most generated events were refused is expected (a random
    // BSN rarely passes the eleven test), and not a failure.
    assert!(
        report.contains("Tested: 3") && !report.contains(" failed"),
        "all three operations were tested:\n{report}"
    );

    let mut doc: serde_json::Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let responses = doc["paths"]["/v1/events"]["post"]["responses"]
        .as_object_mut()
        .unwrap();
    responses.remove("422");
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("without-422.json");
    std::fs::write(&wrong, serde_json::to_vec(&doc).unwrap()).unwrap();
    let (passed, report) =
        run_schemathesis(&tool, wrong.to_str().unwrap(), &app.address, &app.api_key);
    assert!(!passed, "an undocumented 422 must fail the run:\n{report}");
    app.cleanup().await;
}

backend_tests!(the_document_covers_the_intake, schemathesis_finds_nothing);
