//! The log canary: in-process services log into a buffer, and tests check that no
//! personal data reached it (or a child process's log file).

use super::{contracts_dir, examples};
use std::io::Write;
use std::sync::{Mutex, OnceLock};

static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();

#[derive(Clone, Copy)]
struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.get_or_init(Default::default)
            .lock()
            .unwrap()
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends this test binary's service logs into a buffer the canary reads.
pub fn capture_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        std::env::set_var("RUST_LOG", "info,schoolsignal=debug");
        schoolsignal::telemetry::init(schoolsignal::config::LogFormat::Json, || Capture);
    });
}

pub fn captured_logs() -> String {
    String::from_utf8_lossy(&LOGS.get_or_init(Default::default).lock().unwrap()).into_owned()
}

/// Every name, BSN and date of birth in the contract examples and the registry.
pub fn personal_data() -> Vec<String> {
    let mut out: Vec<String> = examples()
        .iter()
        .filter_map(|(_, body)| serde_json::from_slice::<serde_json::Value>(body).ok())
        .flat_map(|event| personal_data_in(&event))
        .collect();
    let registry = std::fs::read_to_string(contracts_dir().join("registry-example.csv")).unwrap();
    // The BSN and the group of every enrollment.
    for line in registry.lines().skip(1) {
        let columns: Vec<&str> = line.split(',').collect();
        out.extend([columns[0], columns[2]].map(String::from));
    }
    out.sort();
    out.dedup();
    out
}

/// The police unit and the children's BSNs, names and dates of birth in one event.
fn personal_data_in(event: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    // The police unit is free text: it has no business in a log either.
    if let Some(unit) = event["police_unit"].as_str() {
        out.push(unit.to_string());
    }
    for child in event["children"].as_array().into_iter().flatten() {
        for field in ["bsn", "given_name", "family_name", "date_of_birth"] {
            if let Some(s) = child[field].as_str() {
                if s.len() >= 4 && !s.chars().any(char::is_control) {
                    out.push(s.to_string());
                }
            }
        }
    }
    out
}

/// Dates of birth as the portal's pages show them (dd-mm-yyyy): the canary looks for
/// these too, beside the ISO form in [`personal_data`].
pub fn dates_as_shown() -> Vec<String> {
    personal_data()
        .iter()
        .filter_map(|v| chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").ok())
        .map(|d| d.format("%d-%m-%Y").to_string())
        .collect()
}

/// The canary: `logs` must hold evidence that logging worked, and none of the data.
pub fn assert_no_personal_data(logs: &str, must_contain: &str) {
    assert!(
        logs.contains(must_contain),
        "the captured logs miss `{must_contain}`: capture is broken"
    );
    for secret in personal_data() {
        assert!(
            !logs.contains(&secret),
            "personal data leaked into the logs: a value of length {}",
            secret.len()
        );
    }
}
