//! `school_signal.v1`: a signal a coordinator reports to Veilig Thuis about a child
//! of a notice (contract section 3).

use super::outbound::SchoolRef;
use serde::Serialize;

pub const SIGNAL_SCHEMA: &str = "school_signal.v1";

/// The message body. Its category and urgency are the codes of the contract's lists.
#[derive(Debug, Serialize)]
pub struct SchoolSignal {
    pub schema: &'static str,
    pub signal_id: String,
    pub notice_id: String,
    pub incident_id: String,
    pub child_index: i32,
    pub child: Child,
    pub school: SchoolRef,
    pub category: &'static str,
    pub urgency: &'static str,
    pub description: String,
    pub reported_at: String,
    pub reporter: Reporter,
}

/// The child as the notice names it; empty strings once its data was purged.
#[derive(Debug, Serialize)]
pub struct Child {
    pub given_name: String,
    pub family_name: String,
    /// `YYYY-MM-DD`.
    pub date_of_birth: String,
}

/// Who reported the signal: the school's coordinator or deputy.
#[derive(Debug, Serialize)]
pub struct Reporter {
    pub name: String,
    pub email: String,
}
