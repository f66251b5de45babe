//! Messages schoolsignal publishes (contract sections 2–4).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

pub const OUTCOME_SCHEMA: &str = "notice.outcome.v1";
pub const OUTCOME_ROUTING_KEY: &str = "notice.outcome.v1";

/// The decision for one child, sent back to the police. It never names the school.
#[derive(Debug, Clone, Serialize)]
pub struct NoticeOutcome<'a> {
    pub schema: &'static str,
    pub event_id: String,
    pub incident_id: &'a str,
    pub child_index: i32,
    pub outcome: &'static str,
    pub decided_at: String,
}

impl<'a> NoticeOutcome<'a> {
    pub fn new(
        event_id: uuid::Uuid,
        incident_id: &'a str,
        child_index: i32,
        outcome: &'static str,
        decided_at: DateTime<Utc>,
    ) -> Self {
        Self {
            schema: OUTCOME_SCHEMA,
            event_id: event_id.to_string(),
            incident_id,
            child_index,
            outcome,
            decided_at: decided_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        }
    }
}

pub const ESCALATED_SCHEMA: &str = "notice.escalated.v1";
pub const ESCALATED_ROUTING_KEY: &str = "notice.escalated.v1";

/// A notice no one acknowledged in time, or no one could be sent (contract section 4).
#[derive(Debug, Clone, Serialize)]
pub struct NoticeEscalated {
    pub schema: &'static str,
    pub notice_id: String,
    pub incident_id: String,
    pub child_index: i32,
    pub school: SchoolRef,
    pub level: EscalationLevel,
    pub due_at: Option<String>,
    pub escalated_at: String,
}

/// Why a notice went to Veilig Thuis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationLevel {
    /// Neither the coordinator nor the deputy acknowledged it in time.
    Unacknowledged,
    /// Its email could not be delivered to either of them.
    Undeliverable,
}

impl EscalationLevel {
    pub const ALL: [EscalationLevel; 2] = [Self::Unacknowledged, Self::Undeliverable];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unacknowledged => "unacknowledged",
            Self::Undeliverable => "undeliverable",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SchoolRef {
    pub brin: String,
    pub name: String,
}

/// Timestamps as the contract writes them.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}
