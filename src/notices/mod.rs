//! Notices: the per-child decision and the notice it may create.

pub mod calendar;
pub mod decide;

use crate::db::schema::notices;
use crate::db::{ts, DbConn, CHUNK};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
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

/// Withdraws every notice of these incidents that is not withdrawn yet.
pub fn withdraw(conn: &mut DbConn, incident_ids: &[String], now: DateTime<Utc>) -> QueryResult<()> {
    for chunk in incident_ids.chunks(CHUNK) {
        diesel::update(
            notices::table
                .filter(notices::incident_id.eq_any(chunk))
                .filter(notices::status.ne(status::WITHDRAWN)),
        )
        .set((
            notices::status.eq(status::WITHDRAWN),
            notices::updated_at.eq(ts(now)),
        ))
        .execute(conn)?;
    }
    Ok(())
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
    pub child_date_of_birth: Option<NaiveDate>,
    pub child_group: Option<String>,
    pub visited_at: NaiveDateTime,
    pub status: &'static str,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}
