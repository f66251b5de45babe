//! What the operator dashboard shows of the present, never a child: notices past
//! due and not acknowledged (by school, with the notice id and how late), emails
//! that are failing now, and signals the broker has not confirmed yet.

use crate::db::schema::{deliveries, notices, outbox_messages, school_signals, schools};
use crate::db::{ts, DbConn};
use crate::delivery::kinds::State;
use crate::notices::NoticeStatus;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

/// The most rows of each list a page shows; the totals count them all.
pub const LIST_LIMIT: i64 = 200;

/// A notice past its due time that no one acknowledged.
#[derive(Debug, Clone, Queryable)]
pub struct Overdue {
    pub school_brin: String,
    pub school_name: String,
    pub notice_id: String,
    pub due_at: Option<NaiveDateTime>,
    pub escalated_at: Option<NaiveDateTime>,
}

impl Overdue {
    /// Whole minutes past due at `now`.
    pub fn minutes_late(&self, now: DateTime<Utc>) -> i64 {
        self.due_at
            .map_or(0, |due| (ts(now) - due).num_minutes().max(0))
    }
}

/// An email that was tried and will be tried again.
#[derive(Debug, Clone, Queryable)]
pub struct Failing {
    pub school_brin: String,
    pub notice_id: String,
    /// As stored: a [`crate::delivery::kinds::Kind`].
    pub kind: String,
    /// `coordinator` or `deputy`, never the address.
    pub recipient: String,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    /// Why the last attempt failed: a reply code or a kind of fault, never an address.
    pub last_error: Option<String>,
}

/// A signal saved and queued, that the broker has not confirmed yet.
#[derive(Debug, Clone, Queryable)]
pub struct Waiting {
    pub school_brin: String,
    pub notice_id: String,
    pub reported_at: NaiveDateTime,
    pub attempts: i32,
}

/// The present state of things, each list oldest first with its full count.
#[derive(Debug, Clone)]
pub struct Live {
    pub overdue: Vec<Overdue>,
    pub overdue_total: i64,
    pub failing: Vec<Failing>,
    pub failing_total: i64,
    pub waiting: Vec<Waiting>,
    pub waiting_total: i64,
}

/// Reads [`Live`] at `now`.
pub fn read(conn: &mut DbConn, now: DateTime<Utc>) -> QueryResult<Live> {
    let (overdue, overdue_total) = overdue(conn, now)?;
    let (failing, failing_total) = failing(conn)?;
    let (waiting, waiting_total) = waiting(conn)?;
    Ok(Live {
        overdue,
        overdue_total,
        failing,
        failing_total,
        waiting,
        waiting_total,
    })
}

macro_rules! overdue_notices {
    ($now:expr) => {
        notices::table
            .filter(notices::acknowledged_at.is_null())
            .filter(notices::status.ne(NoticeStatus::Withdrawn))
            .filter(notices::due_at.lt($now))
    };
}

fn overdue(conn: &mut DbConn, now: DateTime<Utc>) -> QueryResult<(Vec<Overdue>, i64)> {
    // The count the follow-up sets `schoolsignal_notices_overdue` to.
    let total = crate::notices::follow_up::overdue(conn, now)?;
    let now = ts(now);
    let rows = overdue_notices!(now)
        .inner_join(schools::table)
        // The due time alone: the order of the partial index on it, so the 200 rows
        // come from an index scan rather than a sort of the whole backlog.
        .order(notices::due_at)
        .limit(LIST_LIMIT)
        .select((
            notices::school_brin,
            schools::name,
            notices::id,
            notices::due_at,
            notices::escalated_at,
        ))
        .load(conn)?;
    Ok((rows, total))
}

macro_rules! failing_deliveries {
    () => {
        deliveries::table
            .filter(deliveries::state.eq(State::Pending))
            .filter(deliveries::attempts.gt(0))
    };
}

fn failing(conn: &mut DbConn) -> QueryResult<(Vec<Failing>, i64)> {
    let total = failing_deliveries!().count().get_result(conn)?;
    let rows = failing_deliveries!()
        .inner_join(notices::table)
        .order((deliveries::created_at, deliveries::id))
        .limit(LIST_LIMIT)
        .select((
            notices::school_brin,
            deliveries::notice_id,
            deliveries::kind,
            deliveries::recipient,
            deliveries::attempts,
            deliveries::next_attempt_at,
            deliveries::last_error,
        ))
        .load(conn)?;
    Ok((rows, total))
}

macro_rules! waiting_signals {
    () => {
        school_signals::table
            .inner_join(
                outbox_messages::table
                    .on(outbox_messages::message_id.eq(school_signals::outbox_message_id)),
            )
            .filter(outbox_messages::published_at.is_null())
    };
}

fn waiting(conn: &mut DbConn) -> QueryResult<(Vec<Waiting>, i64)> {
    let total = waiting_signals!().count().get_result(conn)?;
    let rows = waiting_signals!()
        .inner_join(notices::table)
        .order(school_signals::reported_at)
        .limit(LIST_LIMIT)
        .select((
            notices::school_brin,
            school_signals::notice_id,
            school_signals::reported_at,
            outbox_messages::attempts,
        ))
        .load(conn)?;
    Ok((rows, total))
}

/// Every school's name and holiday region, by BRIN: the dashboard's tables name
/// schools, the report's rows only hold their codes.
pub fn schools(
    conn: &mut DbConn,
) -> QueryResult<std::collections::HashMap<String, (String, String)>> {
    let rows: Vec<(String, String, String)> = schools::table
        .select((schools::brin, schools::name, schools::holiday_region))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(brin, name, region)| (brin, (name, region)))
        .collect())
}
