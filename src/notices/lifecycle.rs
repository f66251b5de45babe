//! A notice after it was made: withdrawn with its incident, delivered once its email
//! reached a mail server, handed to the deputy when the coordinator's email failed,
//! and escalated to Veilig Thuis. [`Lifecycle`] is what the email queue calls for
//! all of this, inside its own transactions.

use super::NoticeStatus;
use crate::contract::outbound::{
    rfc3339, EscalationLevel, NoticeEscalated, SchoolRef, ESCALATED_ROUTING_KEY, ESCALATED_SCHEMA,
};
use crate::db::schema::{notices, schools};
use crate::db::{ts, DbConn, CHUNK};
use crate::delivery::kinds::{Kind, Recipient};
use crate::delivery::queue::{self, Addressee, NewDelivery, Notices, Policy};
use crate::outbox::{self, NewMessage};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use std::collections::HashMap;

/// Withdraws every notice of these incidents that is not withdrawn yet: their unsent
/// emails are cancelled, and whoever already got one is told to disregard it.
/// Returns how many emails it cancelled.
pub fn withdraw(
    conn: &mut DbConn,
    policy: &Policy,
    incident_ids: &[String],
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    let mut cancelled = 0;
    for chunk in incident_ids.chunks(CHUNK) {
        let ids: Vec<String> = notices::table
            .filter(notices::incident_id.eq_any(chunk))
            .filter(notices::status.ne(NoticeStatus::Withdrawn))
            .order(notices::id)
            .select(notices::id)
            .load(conn)?;
        diesel::update(notices::table.filter(notices::id.eq_any(&ids)))
            .set((
                notices::status.eq(NoticeStatus::Withdrawn),
                notices::withdrawn_at.eq(Some(ts(now))),
                notices::updated_at.eq(ts(now)),
            ))
            .execute(conn)?;
        cancelled += queue::withdraw(conn, policy, &ids, now)?;
    }
    Ok(cancelled)
}

/// Escalates those of these notices that are neither acknowledged, withdrawn nor
/// escalated already, and queues their messages to Veilig Thuis. The transaction
/// that does so has claimed them: no other replica sends them. Returns how many.
pub fn escalate(
    conn: &mut DbConn,
    notice_ids: &[String],
    level: EscalationLevel,
    exchange: &str,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    let mut sent = 0;
    for chunk in notice_ids.chunks(CHUNK) {
        let rows = open_with_school(conn, chunk)?;
        let ids: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        diesel::update(notices::table.filter(notices::id.eq_any(&ids)))
            .set((
                notices::escalated_at.eq(Some(ts(now))),
                notices::escalation_level.eq(Some(level.as_str())),
            ))
            .execute(conn)?;
        let messages: Vec<NewMessage> = rows
            .into_iter()
            .map(|row| escalation_message(row, level, exchange, now))
            .collect();
        sent += messages.len();
        outbox::enqueue(conn, &messages)?;
    }
    Ok(sent)
}

/// Notice id, incident id, child index, due time, school code and school name.
type EscalationRow = (String, String, i32, Option<NaiveDateTime>, String, String);

/// The notices of these that can still be escalated, with their school.
fn open_with_school(conn: &mut DbConn, ids: &[String]) -> QueryResult<Vec<EscalationRow>> {
    notices::table
        .filter(notices::id.eq_any(ids))
        .filter(notices::escalated_at.is_null())
        .filter(notices::acknowledged_at.is_null())
        .filter(notices::status.ne(NoticeStatus::Withdrawn))
        .inner_join(schools::table)
        .select((
            notices::id,
            notices::incident_id,
            notices::child_index,
            notices::due_at,
            schools::brin,
            schools::name,
        ))
        .load(conn)
}

fn escalation_message(
    row: EscalationRow,
    level: EscalationLevel,
    exchange: &str,
    now: DateTime<Utc>,
) -> NewMessage {
    let (notice_id, incident_id, child_index, due_at, brin, name) = row;
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
}

/// What the email queue asks of notices: where their emails go, and what follows
/// when one was delivered or failed for good.
pub struct Lifecycle {
    pub policy: Policy,
    /// Where escalations are published.
    pub exchange: String,
}

/// One notice and its school's contacts, as the email queue needs them.
#[derive(Queryable)]
struct AddresseeRow {
    id: String,
    #[diesel(deserialize_as = String)]
    status: NoticeStatus,
    due_at: Option<NaiveDateTime>,
    received_at: Option<NaiveDateTime>,
    school_name: String,
    locale: String,
    coordinator_name: String,
    coordinator_email: String,
    deputy_name: Option<String>,
    deputy_email: Option<String>,
}

impl From<AddresseeRow> for Addressee {
    fn from(row: AddresseeRow) -> Self {
        Addressee {
            withdrawn: row.status == NoticeStatus::Withdrawn,
            due_at: row.due_at,
            received_at: row.received_at,
            school_name: row.school_name,
            locale: row.locale,
            coordinator: (row.coordinator_name, row.coordinator_email),
            deputy: row
                .deputy_email
                .map(|email| (row.deputy_name.unwrap_or_default(), email)),
        }
    }
}

impl Notices for Lifecycle {
    fn addressees(
        &self,
        conn: &mut DbConn,
        notice_ids: &[String],
    ) -> QueryResult<HashMap<String, Addressee>> {
        let mut found = HashMap::new();
        for chunk in notice_ids.chunks(CHUNK) {
            let rows: Vec<AddresseeRow> = notices::table
                .inner_join(schools::table)
                .filter(notices::id.eq_any(chunk))
                .select((
                    notices::id,
                    notices::status,
                    notices::due_at,
                    notices::received_at,
                    schools::name,
                    schools::locale,
                    schools::coordinator_name,
                    schools::coordinator_email,
                    schools::deputy_name,
                    schools::deputy_email,
                ))
                .load(conn)?;
            found.extend(rows.into_iter().map(|r| (r.id.clone(), r.into())));
        }
        Ok(found)
    }

    fn lock_withdrawn(&self, conn: &mut DbConn, notice_ids: &[&str]) -> QueryResult<Vec<String>> {
        #[derive(Queryable)]
        struct Locked {
            id: String,
            #[diesel(deserialize_as = String)]
            status: NoticeStatus,
        }
        let query = notices::table
            .filter(notices::id.eq_any(notice_ids))
            .order(notices::id)
            .select((notices::id, notices::status));
        let rows: Vec<Locked> = crate::locked!(conn, query);
        Ok(rows
            .into_iter()
            .filter(|r| r.status == NoticeStatus::Withdrawn)
            .map(|r| r.id)
            .collect())
    }

    fn delivered(
        &self,
        conn: &mut DbConn,
        notice_ids: &[&str],
        now: DateTime<Utc>,
    ) -> QueryResult<()> {
        diesel::update(
            notices::table
                .filter(notices::id.eq_any(notice_ids))
                .filter(notices::status.eq(NoticeStatus::PendingDelivery)),
        )
        .set((
            notices::status.eq(NoticeStatus::Delivered),
            notices::updated_at.eq(ts(now)),
        ))
        .execute(conn)?;
        Ok(())
    }

    /// The deputy gets a notice email the coordinator could not; a notice no one
    /// could get is escalated at once.
    fn undeliverable(
        &self,
        conn: &mut DbConn,
        failed: &[(&str, Recipient)],
        now: DateTime<Utc>,
    ) -> QueryResult<usize> {
        let mut to_deputy = Vec::new();
        let mut undeliverable = Vec::new();
        for &(notice_id, recipient) in failed {
            if recipient == Recipient::Coordinator && has_deputy(conn, notice_id)? {
                to_deputy.push(NewDelivery::new(
                    &self.policy,
                    notice_id,
                    Kind::Notice,
                    Recipient::Deputy,
                    now,
                ));
            } else {
                undeliverable.push(notice_id.to_string());
            }
        }
        queue::enqueue(conn, &to_deputy)?;
        let level = EscalationLevel::Undeliverable;
        escalate(conn, &undeliverable, level, &self.exchange, now)
    }
}

fn has_deputy(conn: &mut DbConn, notice_id: &str) -> QueryResult<bool> {
    notices::table
        .inner_join(schools::table)
        .filter(notices::id.eq(notice_id))
        .select(schools::deputy_email.is_not_null())
        .first(conn)
}
