//! Arbitrary bytes through both CSV imports' parsing and checks (`schoolsignal
//! schools import` and `schoolsignal registry import`), everything they do before
//! they open a transaction. Every input goes through both, so each seed is a plain
//! CSV file. The enrollments import knows the schools of the contract examples.
#![no_main]

use chrono::NaiveDate;
use libfuzzer_sys::fuzz_target;
use schoolsignal::registry::csv_import::ImportError;
use schoolsignal::registry::{enrollments, schools, KeyedHasher};
use std::collections::HashSet;

fuzz_target!(|data: &[u8]| {
    let now = NaiveDate::from_ymd_opt(2026, 11, 23)
        .and_then(|d| d.and_hms_opt(7, 0, 0))
        .expect("a fixed time");
    match schools::parse(data, now, schools::Simulated::Allowed) {
        Ok(list) => {
            let mut seen = HashSet::new();
            for s in &list {
                assert_eq!(s.brin.len(), 6);
                assert!(seen.insert(s.brin.clone()), "a brin twice");
                assert_eq!(s.deputy_name.is_some(), s.deputy_email.is_some());
            }
        }
        Err(e) => refused(e),
    }
    let known: HashSet<String> = ["12AB00", "34CD01"].map(String::from).into();
    let hasher = KeyedHasher::new(b"fuzz-key");
    match enrollments::parse(data, &hasher, &known) {
        Ok(list) => {
            for e in &list {
                assert!(known.contains(&e.school_brin));
                assert_eq!(e.bsn_hash.len(), 64);
                assert!(e.valid_until.is_none_or(|until| until >= e.valid_from));
            }
        }
        Err(e) => refused(e),
    }
});

/// A refused file says why, by line, and never touched a database.
fn refused(e: ImportError) {
    assert!(!e.to_string().is_empty());
    match e {
        ImportError::Header { .. } => {}
        ImportError::Rows(rows) => {
            assert!(!rows.is_empty());
            assert!(
                rows.iter().all(|r| r.line >= 2),
                "a row error on the header line"
            );
        }
        ImportError::Io(_) | ImportError::Db(_) => panic!("unexpected error: {e}"),
    }
}
