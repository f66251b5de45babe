//! Notices: the per-child decision and the notice it may create.

pub mod calendar;
pub mod decide;
pub mod follow_up;
pub mod retention;

use crate::contract::outbound::{
    rfc3339, NoticeEscalated, SchoolRef, ESCALATED_ROUTING_KEY, ESCALATED_SCHEMA,
};
use crate::db::schema::{notices, schools};
use crate::db::{ts, DbConn, CHUNK};
use crate::delivery::queue::{self, Policy};
use crate::outbox::{self, NewMessage};
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
    /// Its email reached the coordinator's or the deputy's mail server.
    pub const DELIVERED: &str = "delivered";
    pub const WITHDRAWN: &str = "withdrawn";
}

/// Withdraws every notice of these incidents that is not withdrawn yet: their unsent
/// emails are cancelled, and whoever already got one is told to disregard it.
pub fn withdraw(
    conn: &mut DbConn,
    policy: &Policy,
    incident_ids: &[String],
    now: DateTime<Utc>,
) -> QueryResult<()> {
    for chunk in incident_ids.chunks(CHUNK) {
        let ids: Vec<String> = notices::table
            .filter(notices::incident_id.eq_any(chunk))
            .filter(notices::status.ne(status::WITHDRAWN))
            .order(notices::id)
            .select(notices::id)
            .load(conn)?;
        diesel::update(notices::table.filter(notices::id.eq_any(&ids)))
            .set((
                notices::status.eq(status::WITHDRAWN),
                notices::updated_at.eq(ts(now)),
            ))
            .execute(conn)?;
        queue::withdraw(conn, policy, &ids, now)?;
    }
    Ok(())
}

/// An escalation to Veilig Thuis that this transaction has claimed: no other replica
/// will send it.
pub struct Escalation;

impl Escalation {
    pub const UNACKNOWLEDGED: &'static str = "unacknowledged";
    pub const UNDELIVERABLE: &'static str = "undeliverable";

    /// Escalates those of these notices that are neither acknowledged, withdrawn nor
    /// escalated already, and queues their messages. Returns how many.
    pub fn send(
        conn: &mut DbConn,
        notice_ids: &[String],
        level: &'static str,
        exchange: &str,
        now: DateTime<Utc>,
    ) -> QueryResult<usize> {
        let mut sent = 0;
        for chunk in notice_ids.chunks(CHUNK) {
            let open = notices::table
                .filter(notices::id.eq_any(chunk))
                .filter(notices::escalated_at.is_null())
                .filter(notices::acknowledged_at.is_null())
                .filter(notices::status.ne(status::WITHDRAWN));
            let rows: Vec<(String, String, i32, Option<NaiveDateTime>, String, String)> = open
                .inner_join(schools::table)
                .select((
                    notices::id,
                    notices::incident_id,
                    notices::child_index,
                    notices::due_at,
                    schools::brin,
                    schools::name,
                ))
                .load(conn)?;
            let ids: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
            diesel::update(notices::table.filter(notices::id.eq_any(&ids)))
                .set(notices::escalated_at.eq(Some(ts(now))))
                .execute(conn)?;
            let messages: Vec<NewMessage> = rows
                .into_iter()
                .map(
                    |(notice_id, incident_id, child_index, due_at, brin, name)| {
                        let body = NoticeEscalated {
                            schema: ESCALATED_SCHEMA,
                            notice_id,
                            incident_id,
                            child_index,
                            school: SchoolRef { brin, name },
                            level,
                            due_at: due_at.map(|t| rfc3339(t.and_utc())),
                            escalated_at: rfc3339(now),
                        };
                        NewMessage::new(
                            exchange,
                            ESCALATED_ROUTING_KEY,
                            ESCALATED_SCHEMA,
                            &body,
                            now,
                        )
                    },
                )
                .collect();
            sent += messages.len();
            outbox::enqueue(conn, &messages)?;
        }
        Ok(sent)
    }
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
    pub due_at: Option<NaiveDateTime>,
    pub received_at: Option<NaiveDateTime>,
}
