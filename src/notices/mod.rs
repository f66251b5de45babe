//! Notices: the per-child decision and the notice it may create.

pub mod decide;

use crate::db::schema::notices;
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

/// The decision for one child (contract section 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Notified,
    AlreadyNotified,
    NoRegistryMatch,
    NoConsent,
    NotSchoolAge,
    Withdrawn,
    StaleRevision,
}

impl Outcome {
    pub const ALL: [Outcome; 7] = [
        Outcome::Notified,
        Outcome::AlreadyNotified,
        Outcome::NoRegistryMatch,
        Outcome::NoConsent,
        Outcome::NotSchoolAge,
        Outcome::Withdrawn,
        Outcome::StaleRevision,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Notified => "notified",
            Outcome::AlreadyNotified => "already_notified",
            Outcome::NoRegistryMatch => "no_registry_match",
            Outcome::NoConsent => "no_consent",
            Outcome::NotSchoolAge => "not_school_age",
            Outcome::Withdrawn => "withdrawn",
            Outcome::StaleRevision => "stale_revision",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// Notice states. Delivery (a later stage) moves a notice on from `pending_delivery`.
pub mod status {
    pub const PENDING_DELIVERY: &str = "pending_delivery";
    pub const WITHDRAWN: &str = "withdrawn";
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = notices)]
pub struct NewNotice<'a> {
    pub id: String,
    pub incident_id: &'a str,
    pub child_bsn_hash: &'a str,
    pub child_index: i32,
    pub school_brin: &'a str,
    pub child_given_name: Option<&'a str>,
    pub child_family_name: Option<&'a str>,
    pub child_date_of_birth: Option<NaiveDate>,
    pub child_group: Option<&'a str>,
    pub visited_at: NaiveDateTime,
    pub status: &'static str,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}
