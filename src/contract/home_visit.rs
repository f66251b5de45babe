//! `police.home_visit.v1`: parsing and validation with the contract's reason codes.
//!
//! Validation walks a `serde_json::Value` by hand rather than deriving `Deserialize`,
//! because each failure must map to one exact reason code and name the field.

use super::{Bsn, Reason, Rejection, MAX_BODY_BYTES};
use chrono::{DateTime, Duration, FixedOffset, NaiveDate, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

pub const SCHEMA: &str = "police.home_visit.v1";
pub const MAX_CHILDREN: usize = 20;
pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_UNIT_CHARS: usize = 100;
pub const MAX_INCIDENT_ID_CHARS: usize = 64;
const FUTURE_TOLERANCE_MINUTES: i64 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Active,
    Withdrawn,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Withdrawn => "withdrawn",
        }
    }
}

/// A validated home-visit event.
#[derive(Debug, Clone)]
pub struct HomeVisit {
    pub event_id: Uuid,
    pub incident_id: String,
    pub revision: i64,
    pub status: Status,
    pub visited_at: DateTime<FixedOffset>,
    pub children: Vec<Child>,
}

/// A child in an event. Its `Debug` shows no personal data.
#[derive(Clone)]
pub struct Child {
    pub bsn: Bsn,
    pub given_name: String,
    pub family_name: String,
    pub date_of_birth: NaiveDate,
    pub present_during_incident: bool,
}

impl std::fmt::Debug for Child {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Child(<redacted>)")
    }
}

/// The time rules, which depend on configuration and the clock.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub now: DateTime<Utc>,
    pub window_days: i64,
}

impl HomeVisit {
    /// Parses and validates a message body.
    pub fn parse(body: &[u8], limits: Limits) -> Result<HomeVisit, Rejection> {
        if body.len() > MAX_BODY_BYTES {
            return Err(Rejection::new(Reason::TooLarge));
        }
        let value: Value =
            serde_json::from_slice(body).map_err(|_| Rejection::new(Reason::MalformedJson))?;
        Self::from_value(&value, limits)
    }

    /// Validates an already-parsed JSON value.
    pub fn from_value(value: &Value, limits: Limits) -> Result<HomeVisit, Rejection> {
        let obj = value
            .as_object()
            .ok_or_else(|| Rejection::new(Reason::MalformedJson))?;
        match obj.get("schema") {
            None | Some(Value::Null) => return Err(Rejection::at(Reason::MissingField, "schema")),
            Some(Value::String(s)) if s == SCHEMA => {}
            Some(_) => return Err(Rejection::at(Reason::UnsupportedSchema, "schema")),
        }
        let event_id = required_str(obj, "event_id")?;
        let event_id = Uuid::parse_str(event_id)
            .map_err(|_| Rejection::at(Reason::InvalidField, "event_id"))?;
        let incident_id = incident_id(required_str(obj, "incident_id")?)?;
        let revision = revision(obj.get("revision"))?;
        let status = status(obj.get("status"))?;
        let visited_at = DateTime::parse_from_rfc3339(required_str(obj, "visited_at")?)
            .map_err(|_| Rejection::at(Reason::InvalidField, "visited_at"))?;
        police_unit(obj.get("police_unit"))?;
        let children = children(obj, visited_at)?;
        check_time(visited_at, limits)?;
        Ok(HomeVisit {
            event_id,
            incident_id,
            revision,
            status,
            visited_at,
            children,
        })
    }

    /// The calendar date of the visit, in the offset the police gave.
    pub fn visit_date(&self) -> NaiveDate {
        self.visited_at.date_naive()
    }
}

/// The event id of a body, if it has a well-formed one: safe to log beside a rejection.
pub fn event_id_of(body: &[u8]) -> Option<Uuid> {
    let value: Value = serde_json::from_slice(body).ok()?;
    Uuid::parse_str(value.get("event_id")?.as_str()?).ok()
}

fn present<'a>(obj: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    obj.get(field).filter(|v| !v.is_null())
}

fn required_str<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<&'a str, Rejection> {
    present(obj, field)
        .ok_or_else(|| Rejection::at(Reason::MissingField, field))?
        .as_str()
        .ok_or_else(|| Rejection::at(Reason::InvalidField, field))
}

fn incident_id(raw: &str) -> Result<String, Rejection> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-');
    if raw.is_empty() || raw.len() > MAX_INCIDENT_ID_CHARS || !raw.chars().all(allowed) {
        return Err(Rejection::at(Reason::InvalidField, "incident_id"));
    }
    Ok(raw.to_string())
}

fn revision(value: Option<&Value>) -> Result<i64, Rejection> {
    match value {
        None | Some(Value::Null) => Ok(1),
        Some(v) => v
            .as_i64()
            .filter(|r| *r >= 1)
            .ok_or_else(|| Rejection::at(Reason::InvalidField, "revision")),
    }
}

fn status(value: Option<&Value>) -> Result<Status, Rejection> {
    match value.and_then(|v| if v.is_null() { None } else { Some(v) }) {
        None => Ok(Status::Active),
        Some(v) => match v.as_str() {
            Some("active") => Ok(Status::Active),
            Some("withdrawn") => Ok(Status::Withdrawn),
            _ => Err(Rejection::at(Reason::InvalidField, "status")),
        },
    }
}

fn police_unit(value: Option<&Value>) -> Result<(), Rejection> {
    match value {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if s.chars().count() <= MAX_UNIT_CHARS => Ok(()),
        Some(_) => Err(Rejection::at(Reason::InvalidField, "police_unit")),
    }
}

fn children(
    obj: &Map<String, Value>,
    visited_at: DateTime<FixedOffset>,
) -> Result<Vec<Child>, Rejection> {
    let list = present(obj, "children")
        .ok_or_else(|| Rejection::at(Reason::MissingField, "children"))?
        .as_array()
        .filter(|l| (1..=MAX_CHILDREN).contains(&l.len()))
        .ok_or_else(|| Rejection::at(Reason::InvalidField, "children"))?;
    let mut out: Vec<Child> = Vec::with_capacity(list.len());
    for (i, value) in list.iter().enumerate() {
        let child = child(value, i, visited_at)?;
        if out.iter().any(|c| c.bsn == child.bsn) {
            return Err(Rejection::at(
                Reason::DuplicateChild,
                format!("children[{i}].bsn"),
            ));
        }
        out.push(child);
    }
    Ok(out)
}

fn child(value: &Value, i: usize, visited_at: DateTime<FixedOffset>) -> Result<Child, Rejection> {
    let path = |field: &str| format!("children[{i}].{field}");
    let obj = value
        .as_object()
        .ok_or_else(|| Rejection::at(Reason::InvalidField, format!("children[{i}]")))?;
    let field = |name: &str| -> Result<&str, Rejection> {
        required_str(obj, name).map_err(|r| Rejection::at(r.reason, path(name)))
    };
    let bsn = match present(obj, "bsn") {
        None => return Err(Rejection::at(Reason::MissingField, path("bsn"))),
        Some(v) => v
            .as_str()
            .and_then(Bsn::parse)
            .ok_or_else(|| Rejection::at(Reason::InvalidBsn, path("bsn")))?,
    };
    let given_name = name(field("given_name")?)
        .ok_or_else(|| Rejection::at(Reason::InvalidField, path("given_name")))?;
    let family_name = name(field("family_name")?)
        .ok_or_else(|| Rejection::at(Reason::InvalidField, path("family_name")))?;
    let date_of_birth = NaiveDate::parse_from_str(field("date_of_birth")?, "%Y-%m-%d")
        .ok()
        .filter(|d| *d <= visited_at.date_naive())
        .ok_or_else(|| Rejection::at(Reason::InvalidField, path("date_of_birth")))?;
    let present_during_incident = match obj.get("present_during_incident") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(Rejection::at(
                Reason::InvalidField,
                path("present_during_incident"),
            ))
        }
    };
    Ok(Child {
        bsn,
        given_name,
        family_name,
        date_of_birth,
        present_during_incident,
    })
}

/// 1–100 characters with no control characters.
fn name(raw: &str) -> Option<String> {
    let len = raw.chars().count();
    let ok = (1..=MAX_NAME_CHARS).contains(&len) && !raw.chars().any(char::is_control);
    ok.then(|| raw.to_string())
}

fn check_time(visited_at: DateTime<FixedOffset>, limits: Limits) -> Result<(), Rejection> {
    let visited = visited_at.with_timezone(&Utc);
    if visited > limits.now + Duration::minutes(FUTURE_TOLERANCE_MINUTES) {
        return Err(Rejection::at(Reason::InvalidField, "visited_at"));
    }
    if visited < limits.now - Duration::days(limits.window_days) {
        return Err(Rejection::at(Reason::TooOld, "visited_at"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn limits() -> Limits {
        Limits {
            now: DateTime::parse_from_rfc3339("2026-11-23T07:00:00+01:00")
                .unwrap()
                .with_timezone(&Utc),
            window_days: 14,
        }
    }

    fn base() -> Value {
        json!({
            "schema": SCHEMA,
            "event_id": "6f1c2a9e-3b7d-4c1e-9a52-0d6f3e1b7a44",
            "incident_id": "2026-GV-004211",
            "visited_at": "2026-11-22T21:40:00+01:00",
            "children": [{"bsn": "111222333", "given_name": "A", "family_name": "B",
                          "date_of_birth": "2016-04-12"}]
        })
    }

    fn reason_of(v: &Value) -> Reason {
        HomeVisit::from_value(v, limits()).unwrap_err().reason
    }

    #[test]
    fn defaults_apply() {
        let e = HomeVisit::from_value(&base(), limits()).unwrap();
        assert_eq!(e.revision, 1);
        assert_eq!(e.status, Status::Active);
        assert!(e.children[0].present_during_incident);
    }

    #[test]
    fn edge_cases_have_exact_reasons() {
        let cases: Vec<(&str, Value, Reason)> = vec![
            ("schema", json!(null), Reason::MissingField),
            ("schema", json!(1), Reason::UnsupportedSchema),
            ("revision", json!(1.5), Reason::InvalidField),
            ("revision", json!("2"), Reason::InvalidField),
            ("police_unit", json!("x".repeat(101)), Reason::InvalidField),
            ("incident_id", json!("x".repeat(65)), Reason::InvalidField),
            ("incident_id", json!(""), Reason::InvalidField),
            (
                "visited_at",
                json!("2026-11-23T06:04:59+01:00"),
                Reason::InvalidField,
            ),
            (
                "visited_at",
                json!("2026-11-08T06:59:00+01:00"),
                Reason::TooOld,
            ),
            ("children", json!("x"), Reason::InvalidField),
        ];
        for (field, value, reason) in cases {
            let mut v = base();
            v[field] = value;
            // 06:04:59 is within the five-minute tolerance: fine.
            if field == "visited_at" && reason == Reason::InvalidField {
                assert!(HomeVisit::from_value(&v, limits()).is_ok());
                continue;
            }
            assert_eq!(reason_of(&v), reason, "{field}");
        }
        let mut v = base();
        v["children"] = json!((0..21)
            .map(|_| base()["children"][0].clone())
            .collect::<Vec<_>>());
        assert_eq!(reason_of(&v), Reason::InvalidField);
        let mut v = base();
        v["children"][0]["bsn"] = json!(111222333);
        assert_eq!(reason_of(&v), Reason::InvalidBsn);
        let mut v = base();
        v["children"][0]["given_name"] = json!("n".repeat(101));
        assert_eq!(reason_of(&v), Reason::InvalidField);
        let mut v = base();
        v["children"][0]["family_name"] = json!(null);
        assert_eq!(reason_of(&v), Reason::MissingField);
        assert_eq!(reason_of(&json!([1, 2])), Reason::MalformedJson);
    }

    #[test]
    fn rejections_name_fields_not_values() {
        let mut v = base();
        v["children"][0]["given_name"] = json!("Secret\u{7}Name");
        let r = HomeVisit::from_value(&v, limits()).unwrap_err();
        assert_eq!(r.detail(), "invalid_field at `children[0].given_name`");
    }

    #[test]
    fn too_large_is_checked_before_parsing() {
        let body = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(
            HomeVisit::parse(&body, limits()).unwrap_err().reason,
            Reason::TooLarge
        );
    }
}
