//! Arbitrary bytes through everything both transports (AMQP and `POST /v1/events`)
//! do to a police event before any database work: `intake::validate_body` (size
//! limit, JSON, the contract's field checks, the BSN eleven test, dates, the body's
//! fingerprint), and on a rejection what is logged and answered about it. The clock
//! is fixed, so a run is reproducible.
#![no_main]

use chrono::{DateTime, Duration, Utc};
use libfuzzer_sys::fuzz_target;
use schoolsignal::contract::home_visit::{self, HomeVisit, Limits};
use schoolsignal::contract::{Bsn, Rejection, MAX_BODY_BYTES};
use schoolsignal::intake::validate_body;
use schoolsignal::notices::decide::Received;
use schoolsignal::registry::KeyedHasher;

const WINDOW_DAYS: i64 = 14;

fn limits() -> Limits {
    Limits {
        // The morning after the contract examples' visits.
        now: DateTime::parse_from_rfc3339("2026-11-23T07:00:00+01:00")
            .expect("a fixed time")
            .with_timezone(&Utc),
        window_days: WINDOW_DAYS,
    }
}

fuzz_target!(|body: &[u8]| {
    let hasher = KeyedHasher::new(b"fuzz-key");
    let result = validate_body(body, limits(), &hasher, "fuzz");
    // The contract's own entry point must come to the same verdict.
    match (&result, HomeVisit::parse(body, limits())) {
        (Ok(r), Ok(e)) => assert_eq!(r.event.event_id, e.event_id),
        (Err(a), Err(b)) => assert_eq!(*a, b),
        _ => panic!("validate_body and HomeVisit::parse disagree"),
    }
    match result {
        Ok(received) => accepted(body, &received, &hasher),
        Err(rejection) => rejected(body, &rejection),
    }
});

/// What holds for every accepted event.
fn accepted(body: &[u8], r: &Received, hasher: &KeyedHasher) {
    let event = &r.event;
    assert!(body.len() <= MAX_BODY_BYTES);
    assert!(event.revision >= 1);
    assert!((1..=64).contains(&event.incident_id.len()));
    assert!((1..=20).contains(&event.children.len()));
    let visited = event.visited_at.with_timezone(&Utc);
    let now = limits().now;
    assert!(visited <= now + Duration::minutes(5));
    assert!(visited >= now - Duration::days(WINDOW_DAYS));
    assert_eq!(r.body_hash.len(), 64);
    for (i, child) in event.children.iter().enumerate() {
        assert!(Bsn::parse(child.bsn.digits()).is_some());
        assert!(event.children[..i].iter().all(|c| c.bsn != child.bsn));
        assert!(child.date_of_birth <= event.visit_date());
        assert!(!child.given_name.is_empty() && !child.family_name.is_empty());
        assert_eq!(hasher.bsn(&child.bsn).len(), 64);
        assert_eq!(format!("{child:?}"), "Child(<redacted>)");
    }
    // A republish with other whitespace or key order is the same event: its
    // canonical form validates to the same fingerprint.
    let value: serde_json::Value = serde_json::from_slice(body).expect("it was accepted");
    let again = serde_json::to_vec(&value).expect("a value serialises");
    if again.len() <= MAX_BODY_BYTES {
        let twin = validate_body(&again, limits(), hasher, "fuzz").expect("canonical form");
        assert_eq!(twin.body_hash, r.body_hash);
        assert_eq!(twin.event.event_id, event.event_id);
    }
}

/// What the intake logs and answers about a rejection (`Intake::note_rejection`,
/// the API's 422 body).
fn rejected(body: &[u8], rejection: &Rejection) {
    assert!(!rejection.detail().is_empty());
    let _ = serde_json::to_string(&rejection.reason).expect("a reason serialises");
    let _ = home_visit::event_id_of(body);
}
