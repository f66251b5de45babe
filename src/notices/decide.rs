//! The decision for each child of an accepted event, inside the intake transaction.

use super::{status, NewNotice, Outcome};
use crate::contract::outbound::{NoticeOutcome, OUTCOME_ROUTING_KEY, OUTCOME_SCHEMA};
use crate::contract::{Child, HomeVisit, Status};
use crate::db::schema::{decisions, inbox_events, incidents, notices};
use crate::db::{ts, DbConn};
use crate::registry::enrollments::{self, Lookup};
use crate::registry::KeyedHasher;
use crate::relay::outbox;
use chrono::{DateTime, Utc};
use diesel::prelude::*;

/// What is fixed for a whole intake batch.
pub struct Rules<'a> {
    pub hasher: &'a KeyedHasher,
    pub school_age: std::ops::RangeInclusive<u32>,
    pub outbound_exchange: &'a str,
    pub now: DateTime<Utc>,
}

/// An event as it arrived, after validation.
#[derive(Debug, Clone)]
pub struct Received {
    pub event: HomeVisit,
    pub body_hash: String,
    pub received_at: DateTime<Utc>,
    pub source: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildDecision {
    pub child_index: i32,
    pub outcome: Outcome,
}

/// What became of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// First time seen: these decisions were made now.
    New(Vec<ChildDecision>),
    /// Seen before with the same body: the decisions made then.
    Duplicate(Vec<ChildDecision>),
    /// Seen before with a different body: the first version stands.
    Conflict,
}

/// Locks the incidents of a batch, in a fixed order, so that concurrent replicas
/// applying revisions of one incident take turns and never deadlock.
pub fn lock_incidents(conn: &mut DbConn, ids: &[&str], now: DateTime<Utc>) -> QueryResult<()> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    for id in &ids {
        let row = (
            incidents::incident_id.eq(*id),
            incidents::applied_revision.eq(0i64),
            incidents::status.eq(Status::Active.as_str()),
            incidents::updated_at.eq(ts(now)),
        );
        // BACKEND-SPECIFIC: upserts are not in diesel's multi-backend subset.
        crate::per_backend!(conn => diesel::insert_into(incidents::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(conn))?;
    }
    match conn {
        // BACKEND-SPECIFIC: row locks on PostgreSQL; SQLite's BEGIN IMMEDIATE already
        // serialises writers.
        DbConn::Pg(pg) => {
            incidents::table
                .filter(incidents::incident_id.eq_any(&ids))
                .order(incidents::incident_id)
                .select(incidents::incident_id)
                .for_update()
                .load::<String>(pg)?;
        }
        DbConn::Sqlite(_) => {}
    }
    Ok(())
}

/// Records one event and decides for each of its children. Runs inside the batch
/// transaction, after [`lock_incidents`].
pub fn decide_event(conn: &mut DbConn, rules: &Rules, r: &Received) -> QueryResult<Verdict> {
    let event = &r.event;
    let event_id = event.event_id.to_string();
    let seen: Option<String> = inbox_events::table
        .find(&event_id)
        .select(inbox_events::body_hash)
        .first(conn)
        .optional()?;
    if let Some(hash) = seen {
        return if hash == r.body_hash {
            Ok(Verdict::Duplicate(stored_decisions(conn, &event_id)?))
        } else {
            Ok(Verdict::Conflict)
        };
    }
    diesel::insert_into(inbox_events::table)
        .values((
            inbox_events::event_id.eq(&event_id),
            inbox_events::body_hash.eq(&r.body_hash),
            inbox_events::incident_id.eq(&event.incident_id),
            inbox_events::revision.eq(event.revision),
            inbox_events::status.eq(event.status.as_str()),
            inbox_events::source.eq(r.source),
            inbox_events::received_at.eq(ts(r.received_at)),
            inbox_events::committed_at.eq(ts(rules.now)),
        ))
        .execute(conn)?;

    let (applied, incident_status): (i64, String) = incidents::table
        .find(&event.incident_id)
        .select((incidents::applied_revision, incidents::status))
        .first(conn)?;
    let made = if event.revision <= applied {
        same_for_all(event, Outcome::StaleRevision)
    } else {
        apply_revision(conn, rules, event, &incident_status)?
    };
    for (decision, notice_id) in &made {
        record(conn, rules, event, decision, notice_id.as_deref())?;
    }
    Ok(Verdict::New(made.into_iter().map(|(d, _)| d).collect()))
}

type Made = Vec<(ChildDecision, Option<String>)>;

fn same_for_all(event: &HomeVisit, outcome: Outcome) -> Made {
    (0..event.children.len() as i32)
        .map(|child_index| {
            (
                ChildDecision {
                    child_index,
                    outcome,
                },
                None,
            )
        })
        .collect()
}

/// A higher revision: it supersedes the incident's earlier ones. A withdrawn incident
/// stays withdrawn; a later active revision of it changes nothing for the schools.
fn apply_revision(
    conn: &mut DbConn,
    rules: &Rules,
    event: &HomeVisit,
    incident_status: &str,
) -> QueryResult<Made> {
    let withdrawn =
        event.status == Status::Withdrawn || incident_status == Status::Withdrawn.as_str();
    let new_status = if withdrawn {
        Status::Withdrawn
    } else {
        Status::Active
    };
    diesel::update(incidents::table.find(&event.incident_id))
        .set((
            incidents::applied_revision.eq(event.revision),
            incidents::status.eq(new_status.as_str()),
            incidents::updated_at.eq(ts(rules.now)),
        ))
        .execute(conn)?;
    if withdrawn {
        withdraw_notices(conn, &event.incident_id, rules.now)?;
        return Ok(same_for_all(event, Outcome::Withdrawn));
    }
    let mut made = Vec::with_capacity(event.children.len());
    for (i, child) in event.children.iter().enumerate() {
        let (outcome, notice_id) = decide_child(conn, rules, event, i as i32, child)?;
        made.push((
            ChildDecision {
                child_index: i as i32,
                outcome,
            },
            notice_id,
        ));
    }
    Ok(made)
}

fn decide_child(
    conn: &mut DbConn,
    rules: &Rules,
    event: &HomeVisit,
    child_index: i32,
    child: &Child,
) -> QueryResult<(Outcome, Option<String>)> {
    let bsn_hash = rules.hasher.bsn(&child.bsn);
    let existing: Option<String> = notices::table
        .filter(notices::incident_id.eq(&event.incident_id))
        .filter(notices::child_bsn_hash.eq(&bsn_hash))
        .select(notices::id)
        .first(conn)
        .optional()?;
    if let Some(id) = existing {
        return Ok((Outcome::AlreadyNotified, Some(id)));
    }
    let visit_date = event.visit_date();
    let age = visit_date.years_since(child.date_of_birth).unwrap_or(0);
    if !rules.school_age.contains(&age) {
        return Ok((Outcome::NotSchoolAge, None));
    }
    let (school_brin, group) = match enrollments::lookup(conn, &bsn_hash, visit_date)? {
        Lookup::NotEnrolled => return Ok((Outcome::NoRegistryMatch, None)),
        Lookup::NoConsent => return Ok((Outcome::NoConsent, None)),
        Lookup::Enrolled { school_brin, group } => (school_brin, group),
    };
    let id = uuid::Uuid::new_v4().to_string();
    let now = ts(rules.now);
    diesel::insert_into(notices::table)
        .values(NewNotice {
            id: id.clone(),
            incident_id: &event.incident_id,
            child_bsn_hash: &bsn_hash,
            child_index,
            school_brin: &school_brin,
            child_given_name: Some(&child.given_name),
            child_family_name: Some(&child.family_name),
            child_date_of_birth: Some(child.date_of_birth),
            child_group: Some(&group),
            visited_at: ts(event.visited_at.with_timezone(&Utc)),
            status: status::PENDING_DELIVERY,
            created_at: now,
            updated_at: now,
        })
        .execute(conn)?;
    Ok((Outcome::Notified, Some(id)))
}

/// Cancels every notice of a withdrawn incident.
fn withdraw_notices(
    conn: &mut DbConn,
    incident_id: &str,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(
        notices::table
            .filter(notices::incident_id.eq(incident_id))
            .filter(notices::status.ne(status::WITHDRAWN)),
    )
    .set((
        notices::status.eq(status::WITHDRAWN),
        notices::updated_at.eq(ts(now)),
    ))
    .execute(conn)
}

/// Stores a decision and queues its outcome message in the same transaction.
fn record(
    conn: &mut DbConn,
    rules: &Rules,
    event: &HomeVisit,
    decision: &ChildDecision,
    notice_id: Option<&str>,
) -> QueryResult<()> {
    let event_id = event.event_id.to_string();
    diesel::insert_into(decisions::table)
        .values((
            decisions::event_id.eq(&event_id),
            decisions::child_index.eq(decision.child_index),
            decisions::incident_id.eq(&event.incident_id),
            decisions::outcome.eq(decision.outcome.as_str()),
            decisions::notice_id.eq(notice_id),
            decisions::decided_at.eq(ts(rules.now)),
        ))
        .execute(conn)?;
    let message = NoticeOutcome::new(
        event.event_id,
        &event.incident_id,
        decision.child_index,
        decision.outcome.as_str(),
        rules.now,
    );
    outbox::enqueue(
        conn,
        rules.outbound_exchange,
        OUTCOME_ROUTING_KEY,
        OUTCOME_SCHEMA,
        &serde_json::to_string(&message).expect("plain struct serialises"),
        rules.now,
    )
}

fn stored_decisions(conn: &mut DbConn, event_id: &str) -> QueryResult<Vec<ChildDecision>> {
    let rows: Vec<(i32, String)> = decisions::table
        .filter(decisions::event_id.eq(event_id))
        .order(decisions::child_index)
        .select((decisions::child_index, decisions::outcome))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(child_index, outcome)| {
            Outcome::parse(&outcome).map(|outcome| ChildDecision {
                child_index,
                outcome,
            })
        })
        .collect())
}
