//! Notices: the per-child decision, the notice it may create, and the notice's
//! life after: delivery, withdrawal, reminders, escalation, retention, and the reads
//! and actions of the portal (`store`).

pub mod calendar;
pub mod decide;
pub mod follow_up;
pub mod lifecycle;
pub mod retention;
pub mod store;

use crate::db::schema::notices;
use chrono::NaiveDateTime;
use diesel::prelude::*;

crate::text_enum! {
    /// The decision for one child (contract section 1).
    pub enum Outcome {
        Notified = "notified",
        AlreadyNotified = "already_notified",
        NoRegistryMatch = "no_registry_match",
        NoConsent = "no_consent",
        NotSchoolAge = "not_school_age",
        Withdrawn = "withdrawn",
        StaleRevision = "stale_revision",
    }
}

crate::text_enum! {
    /// Where a notice is: made, delivered, acknowledged, closed, or withdrawn (from
    /// any of these). The moments keep their own columns too (`acknowledged_at`,
    /// `closed_at`, `withdrawn_at`): a withdrawn notice may have been acknowledged
    /// before, and one acknowledged before its email was recorded sent stays
    /// acknowledged.
    pub enum NoticeStatus {
        PendingDelivery = "pending_delivery",
        /// Its email reached the coordinator's or the deputy's mail server.
        Delivered = "delivered",
        /// A coordinator said "Received".
        Acknowledged = "acknowledged",
        /// A coordinator closed it with an outcome (closing also acknowledges).
        Closed = "closed",
        Withdrawn = "withdrawn",
    }
}

/// A new notice's id: a random UUID, hyphenated and lowercase.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Whether `id` has the form [`new_id`] gives. Anything else names no notice, and
/// is answered without a query.
pub fn is_well_formed_id(id: &str) -> bool {
    uuid::Uuid::try_parse(id).is_ok_and(|uuid| uuid.hyphenated().to_string() == id)
}

/// A notice to create. No `Debug`: it holds the child's names.
#[derive(Clone, Insertable)]
#[diesel(table_name = notices)]
// None is NULL, not DEFAULT: SQLite then takes many rows in one statement.
#[diesel(treat_none_as_default_value = false)]
pub struct NewNotice {
    pub id: String,
    pub incident_id: String,
    pub child_bsn_hash: String,
    pub child_index: i32,
    pub school_brin: String,
    pub child_given_name: Option<String>,
    pub child_family_name: Option<String>,
    /// Sealed, like the names and the group (see `crate::sealing`).
    pub child_date_of_birth: Option<String>,
    pub child_group: Option<String>,
    /// Sealed `yes` or `no`.
    pub child_present: Option<String>,
    pub visited_at: NaiveDateTime,
    pub status: NoticeStatus,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub due_at: Option<NaiveDateTime>,
    pub received_at: Option<NaiveDateTime>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_issued_form_is_a_notice_id() {
        assert!(is_well_formed_id(&new_id()));
        assert!(!is_well_formed_id(&new_id().to_uppercase()));
        assert!(!is_well_formed_id(&new_id().replace('-', "")));
        assert!(!is_well_formed_id("no-such-notice"));
        assert!(!is_well_formed_id("\0"));
    }
}
