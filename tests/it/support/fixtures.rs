//! The data tests run on: the shared contract examples, the fixtures under
//! `tests/fixtures/`, generated events, and the clock and key they are read with.

use std::path::{Path, PathBuf};

/// The instant the contract examples are evaluated at.
pub const NOW: &str = "2026-11-23T07:00:00+01:00";
pub const BSN_KEY: &str = "test-bsn-key-0123456789abcdef0123456789";

pub fn contracts_dir() -> PathBuf {
    std::env::var_os("SCHOOLSIGNAL_CONTRACTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/contracts/examples")
        })
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Every example message: (file name, body).
pub fn examples() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(contracts_dir())
        .expect("the contract examples are in ../shared/contracts/examples")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    assert!(
        out.len() >= 20,
        "expected the contract examples, found {}",
        out.len()
    );
    out
}

pub fn example(name: &str) -> Vec<u8> {
    std::fs::read(contracts_dir().join(name)).unwrap()
}

/// A valid event for child 111222333 (enrolled, with consent) in its own incident.
pub fn generated_event(n: usize, tag: &str) -> (String, Vec<u8>) {
    let event_id = uuid::Uuid::new_v4().to_string();
    let body = serde_json::json!({
        "schema": "police.home_visit.v1",
        "event_id": event_id,
        "incident_id": format!("2026-{tag}-{n:06}"),
        "revision": 1,
        "status": "active",
        "visited_at": "2026-11-22T21:40:00+01:00",
        "children": [{"bsn": "111222333", "given_name": "Sanne", "family_name": "de Vries",
                      "date_of_birth": "2016-04-12"}]
    });
    (event_id, serde_json::to_vec(&body).unwrap())
}

/// The organisation a production configuration must name.
pub const PRODUCTION_ORG: [(&str, &str); 4] = [
    ("SCHOOLSIGNAL_ORG_NAME", "Gemeente Utrecht"),
    ("SCHOOLSIGNAL_ORG_PHONE", "14 030"),
    ("SCHOOLSIGNAL_ORG_EMAIL", "schoolsignaal@utrecht.nl"),
    ("SCHOOLSIGNAL_ORG_URL", "https://www.utrecht.nl"),
];
