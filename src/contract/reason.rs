//! The reason codes of contract section 1, and the rejection that carries one.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    MalformedJson,
    TooLarge,
    UnsupportedSchema,
    MissingField,
    InvalidField,
    InvalidBsn,
    DuplicateChild,
    TooOld,
    EventIdConflict,
    UnsupportedContentType,
}

impl Reason {
    pub const ALL: [Reason; 10] = [
        Reason::MalformedJson,
        Reason::TooLarge,
        Reason::UnsupportedSchema,
        Reason::MissingField,
        Reason::InvalidField,
        Reason::InvalidBsn,
        Reason::DuplicateChild,
        Reason::TooOld,
        Reason::EventIdConflict,
        Reason::UnsupportedContentType,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::MalformedJson => "malformed_json",
            Reason::TooLarge => "too_large",
            Reason::UnsupportedSchema => "unsupported_schema",
            Reason::MissingField => "missing_field",
            Reason::InvalidField => "invalid_field",
            Reason::InvalidBsn => "invalid_bsn",
            Reason::DuplicateChild => "duplicate_child",
            Reason::TooOld => "too_old",
            Reason::EventIdConflict => "event_id_conflict",
            Reason::UnsupportedContentType => "unsupported_content_type",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a message was refused. `field` names the offending field by its path
/// (`children[1].given_name`), never its value, so it is safe to log and return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: Reason,
    pub field: Option<String>,
}

impl Rejection {
    pub fn new(reason: Reason) -> Self {
        Self {
            reason,
            field: None,
        }
    }

    pub fn at(reason: Reason, field: impl Into<String>) -> Self {
        Self {
            reason,
            field: Some(field.into()),
        }
    }

    /// A short English explanation without any value from the message.
    pub fn detail(&self) -> String {
        match &self.field {
            Some(field) => format!("{} at `{}`", self.reason, field),
            None => self.reason.to_string(),
        }
    }
}
