//! The decisions for a batch of accepted events, inside the intake transaction.
//!
//! A batch is decided set-wise: its incidents are locked, everything the decisions
//! need is read in a handful of queries, the events are decided in memory one after
//! another (so a later event of the batch sees what an earlier one did), and the
//! results are written a chunk of rows per statement. The number of statements does
//! not grow with the batch, which is what makes durable commits affordable.

use super::calendar::{Calendar, Region};
use super::{lifecycle, NewNotice, NoticeStatus, Outcome};
use crate::contract::outbound::{NoticeOutcome, OUTCOME_ROUTING_KEY, OUTCOME_SCHEMA};
use crate::contract::{HomeVisit, Status};
use crate::db::schema::{decisions, inbox_events, incidents, notices};
use crate::db::{ts, DbConn, CHUNK};
use crate::delivery::kinds::{Kind, Recipient};
use crate::delivery::queue::{self, NewDelivery, Policy};
use crate::outbox::{self, NewMessage};
use crate::registry::enrollments::{Lookup, RegistrySlice};
use crate::registry::KeyedHasher;
use crate::sealing::{columns, Column, Keyring};
use chrono::{DateTime, NaiveDateTime, NaiveTime, Utc};
use diesel::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What is fixed for a whole intake batch.
pub struct Rules<'a> {
    pub hasher: &'a KeyedHasher,
    pub school_age: std::ops::RangeInclusive<u32>,
    pub outbound_exchange: &'a str,
    pub now: DateTime<Utc>,
    pub delivery: &'a Policy,
    /// Seals the child's data in the notices.
    pub keys: &'a Keyring,
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

/// What deciding a batch did: a verdict per event, in the order of the batch, and
/// how many emails its withdrawals cancelled (for the caller's metrics).
#[derive(Debug)]
pub struct Decided {
    pub verdicts: Vec<Verdict>,
    pub cancelled_emails: usize,
}

/// Records a batch of events and decides for each of their children. Runs inside the
/// batch's write transaction.
pub fn decide_batch(conn: &mut DbConn, rules: &Rules, batch: &[Received]) -> QueryResult<Decided> {
    let hashes: Vec<Vec<String>> = batch
        .iter()
        .map(|r| {
            r.event
                .children
                .iter()
                .map(|c| rules.hasher.bsn(&c.bsn))
                .collect()
        })
        .collect();
    let mut state = State::load(conn, rules, batch, &hashes)?;
    let verdicts = batch
        .iter()
        .zip(&hashes)
        .map(|(r, h)| state.decide(rules, r, h))
        .collect();
    state.writes.incidents = state
        .incidents
        .into_iter()
        .filter(|(_, incident)| incident.changed)
        .map(|(id, incident)| (id, incident.applied_revision, incident.withdrawn))
        .collect();
    let cancelled_emails = state.writes.apply(conn, rules)?;
    Ok(Decided {
        verdicts,
        cancelled_emails,
    })
}

struct Incident {
    applied_revision: i64,
    withdrawn: bool,
    changed: bool,
}

/// What an event id was first seen with.
struct Seen {
    body_hash: String,
    decisions: Vec<ChildDecision>,
}

/// The slice of the database a batch touches, and the changes it makes to it.
struct State {
    seen: HashMap<String, Seen>,
    incidents: BTreeMap<String, Incident>,
    /// (incident, child's BSN hash) → notice id.
    notices: HashMap<(String, String), String>,
    registry: RegistrySlice,
    writes: Writes,
}

impl State {
    fn load(
        conn: &mut DbConn,
        rules: &Rules,
        batch: &[Received],
        hashes: &[Vec<String>],
    ) -> QueryResult<State> {
        let incident_ids: BTreeSet<&str> =
            batch.iter().map(|r| r.event.incident_id.as_str()).collect();
        let incident_ids: Vec<&str> = incident_ids.into_iter().collect();
        // Locked first, so that every read below sees what a concurrent replica
        // committed for the same incidents.
        let incidents = lock_incidents(conn, &incident_ids, rules.now)?;
        let event_ids: Vec<String> = batch.iter().map(|r| r.event.event_id.to_string()).collect();
        let all_hashes: Vec<&str> = hashes.iter().flatten().map(String::as_str).collect();
        Ok(State {
            seen: load_seen(conn, &event_ids)?,
            incidents,
            notices: load_notices(conn, &incident_ids)?,
            registry: RegistrySlice::load(conn, rules.keys, &all_hashes)?,
            writes: Writes::default(),
        })
    }

    fn decide(&mut self, rules: &Rules, r: &Received, bsn_hashes: &[String]) -> Verdict {
        let event_id = r.event.event_id.to_string();
        if let Some(seen) = self.seen.get(&event_id) {
            return if seen.body_hash == r.body_hash {
                Verdict::Duplicate(seen.decisions.clone())
            } else {
                Verdict::Conflict
            };
        }
        let made = self.decide_children(rules, r, bsn_hashes);
        self.writes.record(rules, r, &event_id, &made);
        let decisions: Vec<ChildDecision> = made.into_iter().map(|(d, _)| d).collect();
        self.seen.insert(
            event_id,
            Seen {
                body_hash: r.body_hash.clone(),
                decisions: decisions.clone(),
            },
        );
        Verdict::New(decisions)
    }

    /// A higher revision supersedes the incident's earlier ones. A withdrawn incident
    /// stays withdrawn; a later active revision of it changes nothing for the schools.
    fn decide_children(&mut self, rules: &Rules, r: &Received, bsn_hashes: &[String]) -> Made {
        let event = &r.event;
        let incident = self
            .incidents
            .get_mut(&event.incident_id)
            .expect("every incident of the batch is locked before deciding");
        if event.revision <= incident.applied_revision {
            return same_for_all(event, Outcome::StaleRevision);
        }
        incident.applied_revision = event.revision;
        incident.withdrawn |= event.status == Status::Withdrawn;
        incident.changed = true;
        if incident.withdrawn {
            self.writes.withdrawn.insert(event.incident_id.clone());
            return same_for_all(event, Outcome::Withdrawn);
        }
        (0..event.children.len())
            .map(|i| {
                let (outcome, notice_id) = self.decide_child(rules, r, i, &bsn_hashes[i]);
                let child_index = i as i32;
                (
                    ChildDecision {
                        child_index,
                        outcome,
                    },
                    notice_id,
                )
            })
            .collect()
    }

    fn decide_child(
        &mut self,
        rules: &Rules,
        r: &Received,
        index: usize,
        bsn_hash: &str,
    ) -> (Outcome, Option<String>) {
        let event = &r.event;
        let key = (event.incident_id.clone(), bsn_hash.to_string());
        if let Some(id) = self.notices.get(&key) {
            return (Outcome::AlreadyNotified, Some(id.clone()));
        }
        let child = &event.children[index];
        let visit_date = event.visit_date();
        let age = visit_date.years_since(child.date_of_birth).unwrap_or(0);
        if !rules.school_age.contains(&age) {
            return (Outcome::NotSchoolAge, None);
        }
        let (school_brin, group, due_at) = match self.registry.lookup(bsn_hash, visit_date) {
            Lookup::NotEnrolled => return (Outcome::NoRegistryMatch, None),
            Lookup::NoConsent => return (Outcome::NoConsent, None),
            Lookup::Enrolled {
                school_brin,
                group,
                holiday_region,
                school_day_start,
            } => {
                let due_at = next_school_day(&holiday_region, &school_day_start, rules.now);
                (school_brin, group, due_at)
            }
        };
        let id = super::new_id();
        self.writes.deliveries.push(NewDelivery::new(
            rules.delivery,
            &id,
            Kind::Notice,
            Recipient::Coordinator,
            rules.now,
        ));
        let placed = Placed {
            school_brin,
            group,
            due_at,
        };
        let notice = new_notice(rules, r, (index, bsn_hash), &id, placed);
        self.writes.notices.push(notice);
        self.notices.insert(key, id.clone());
        (Outcome::Notified, Some(id))
    }
}

type Made = Vec<(ChildDecision, Option<String>)>;

/// Where the registry placed a child, and when its school hears.
struct Placed {
    school_brin: String,
    group: String,
    due_at: DateTime<Utc>,
}

/// The notice about child `index` of the event, its personal data sealed to it.
fn new_notice(
    rules: &Rules,
    r: &Received,
    (index, bsn_hash): (usize, &str),
    id: &str,
    placed: Placed,
) -> NewNotice {
    let (event, now) = (&r.event, ts(rules.now));
    let child = &event.children[index];
    let sealed = |column: Column, value: &str| Some(rules.keys.seal(column.at(id), value));
    NewNotice {
        id: id.to_string(),
        incident_id: event.incident_id.clone(),
        child_bsn_hash: bsn_hash.to_string(),
        child_index: index as i32,
        school_brin: placed.school_brin,
        child_given_name: sealed(columns::GIVEN_NAME, &child.given_name),
        child_family_name: sealed(columns::FAMILY_NAME, &child.family_name),
        child_date_of_birth: sealed(columns::DATE_OF_BIRTH, &child.date_of_birth.to_string()),
        child_group: sealed(columns::GROUP, &placed.group),
        child_present: sealed(columns::PRESENT, present(child.present_during_incident)),
        visited_at: ts(event.visited_at.with_timezone(&Utc)),
        status: NoticeStatus::PendingDelivery,
        created_at: now,
        updated_at: now,
        due_at: Some(ts(placed.due_at)),
        received_at: Some(ts(r.received_at)),
    }
}

/// How a notice stores whether the child was present, inside the seal.
pub fn present(was: bool) -> &'static str {
    if was {
        "yes"
    } else {
        "no"
    }
}

/// The start of the school's next school day. The schools import checked both values;
/// should one still not parse, the default start applies, and the earliest due time
/// of any region: a notice may be early, never late.
fn next_school_day(region: &str, day_start: &str, now: DateTime<Utc>) -> DateTime<Utc> {
    let start = NaiveTime::parse_from_str(day_start, "%H:%M")
        .unwrap_or(NaiveTime::from_hms_opt(8, 30, 0).expect("a valid time"));
    let due = |r| Calendar::netherlands().due_at(r, start, now);
    match Region::parse(region) {
        Some(r) => due(r),
        None => Region::ALL
            .map(due)
            .into_iter()
            .min()
            .expect("three regions"),
    }
}

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

/// Creates the batch's missing incident rows and locks them all, in a fixed order, so
/// that concurrent replicas applying revisions of one incident take turns and never
/// deadlock. Returns their current state.
fn lock_incidents(
    conn: &mut DbConn,
    ids: &[&str],
    now: DateTime<Utc>,
) -> QueryResult<BTreeMap<String, Incident>> {
    let mut found = BTreeMap::new();
    for chunk in ids.chunks(CHUNK) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|id| {
                (
                    incidents::incident_id.eq(*id),
                    incidents::applied_revision.eq(0i64),
                    incidents::status.eq(Status::Active.as_str()),
                    incidents::updated_at.eq(ts(now)),
                )
            })
            .collect();
        // BACKEND-SPECIFIC: upserts are not in diesel's multi-backend subset.
        crate::per_backend!(conn => diesel::insert_into(incidents::table)
            .values(&rows)
            .on_conflict_do_nothing()
            .execute(conn))?;
        let query = incidents::table
            .filter(incidents::incident_id.eq_any(chunk))
            .order(incidents::incident_id)
            .select((
                incidents::incident_id,
                incidents::applied_revision,
                incidents::status,
            ));
        let rows: Vec<(String, i64, String)> = crate::locked!(conn, query);
        found.extend(rows.into_iter().map(|(id, applied_revision, status)| {
            let withdrawn = status == Status::Withdrawn.as_str();
            let incident = Incident {
                applied_revision,
                withdrawn,
                changed: false,
            };
            (id, incident)
        }));
    }
    Ok(found)
}

/// The events of the batch already in the inbox, with the decisions made then.
fn load_seen(conn: &mut DbConn, event_ids: &[String]) -> QueryResult<HashMap<String, Seen>> {
    let mut seen = HashMap::new();
    for chunk in event_ids.chunks(CHUNK) {
        let rows: Vec<(String, String)> = inbox_events::table
            .filter(inbox_events::event_id.eq_any(chunk))
            .select((inbox_events::event_id, inbox_events::body_hash))
            .load(conn)?;
        seen.extend(rows.into_iter().map(|(id, body_hash)| {
            let decisions = Vec::new();
            (
                id,
                Seen {
                    body_hash,
                    decisions,
                },
            )
        }));
    }
    let known: Vec<String> = seen.keys().cloned().collect();
    for chunk in known.chunks(CHUNK) {
        let rows: Vec<(String, i32, String)> = decisions::table
            .filter(decisions::event_id.eq_any(chunk))
            .order((decisions::event_id, decisions::child_index))
            .select((
                decisions::event_id,
                decisions::child_index,
                decisions::outcome,
            ))
            .load(conn)?;
        for (event_id, child_index, outcome) in rows {
            if let (Some(entry), Some(outcome)) =
                (seen.get_mut(&event_id), outcome.parse::<Outcome>().ok())
            {
                entry.decisions.push(ChildDecision {
                    child_index,
                    outcome,
                });
            }
        }
    }
    Ok(seen)
}

fn load_notices(
    conn: &mut DbConn,
    incident_ids: &[&str],
) -> QueryResult<HashMap<(String, String), String>> {
    let mut found = HashMap::new();
    for chunk in incident_ids.chunks(CHUNK) {
        let rows: Vec<(String, String, String)> = notices::table
            .filter(notices::incident_id.eq_any(chunk))
            .select((notices::incident_id, notices::child_bsn_hash, notices::id))
            .load(conn)?;
        found.extend(
            rows.into_iter()
                .map(|(incident, hash, id)| ((incident, hash), id)),
        );
    }
    Ok(found)
}

#[derive(Insertable)]
#[diesel(table_name = inbox_events)]
struct InboxRow {
    event_id: String,
    body_hash: String,
    incident_id: String,
    revision: i64,
    status: &'static str,
    source: &'static str,
    received_at: NaiveDateTime,
    committed_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = decisions)]
// None is NULL, not DEFAULT: SQLite then takes many rows in one statement.
#[diesel(treat_none_as_default_value = false)]
struct DecisionRow {
    event_id: String,
    child_index: i32,
    incident_id: String,
    outcome: &'static str,
    notice_id: Option<String>,
    decided_at: NaiveDateTime,
}

/// The rows a batch adds or changes, written together at its end.
#[derive(Default)]
struct Writes {
    inbox: Vec<InboxRow>,
    notices: Vec<NewNotice>,
    decisions: Vec<DecisionRow>,
    outbox: Vec<NewMessage>,
    deliveries: Vec<NewDelivery>,
    withdrawn: BTreeSet<String>,
    incidents: Vec<(String, i64, bool)>,
}

impl Writes {
    /// Records an event, its decisions, and one outcome message per decision.
    fn record(&mut self, rules: &Rules, r: &Received, event_id: &str, made: &Made) {
        let event = &r.event;
        self.inbox.push(InboxRow {
            event_id: event_id.to_string(),
            body_hash: r.body_hash.clone(),
            incident_id: event.incident_id.clone(),
            revision: event.revision,
            status: event.status.as_str(),
            source: r.source,
            received_at: ts(r.received_at),
            committed_at: ts(rules.now),
        });
        for (decision, notice_id) in made {
            self.decisions.push(DecisionRow {
                event_id: event_id.to_string(),
                child_index: decision.child_index,
                incident_id: event.incident_id.clone(),
                outcome: decision.outcome.as_str(),
                notice_id: notice_id.clone(),
                decided_at: ts(rules.now),
            });
            let message = NoticeOutcome::new(
                event.event_id,
                &event.incident_id,
                decision.child_index,
                decision.outcome.as_str(),
                rules.now,
            );
            self.outbox.push(NewMessage::new(
                rules.outbound_exchange,
                OUTCOME_ROUTING_KEY,
                OUTCOME_SCHEMA,
                &message,
                rules.now,
            ));
        }
    }

    /// Writes it all; returns how many emails the withdrawals cancelled.
    fn apply(mut self, conn: &mut DbConn, rules: &Rules) -> QueryResult<usize> {
        let now = rules.now;
        crate::insert_chunks!(conn, inbox_events::table, self.inbox);
        self.update_incidents(conn, now)?;
        crate::insert_chunks!(conn, notices::table, self.notices);
        queue::enqueue(conn, &self.deliveries)?;
        // After the inserts, so a notice made earlier in a batch that later withdraws
        // its incident is withdrawn too.
        let withdrawn: Vec<String> = std::mem::take(&mut self.withdrawn).into_iter().collect();
        let cancelled = lifecycle::withdraw(conn, rules.delivery, &withdrawn, now)?;
        crate::insert_chunks!(conn, decisions::table, self.decisions);
        outbox::enqueue(conn, &self.outbox)?;
        Ok(cancelled)
    }

    fn update_incidents(&self, conn: &mut DbConn, now: DateTime<Utc>) -> QueryResult<()> {
        use diesel::upsert::excluded;
        let rows: Vec<_> = self
            .incidents
            .iter()
            .map(|(id, revision, withdrawn)| {
                let status = if *withdrawn {
                    Status::Withdrawn
                } else {
                    Status::Active
                };
                (
                    incidents::incident_id.eq(id),
                    incidents::applied_revision.eq(*revision),
                    incidents::status.eq(status.as_str()),
                    incidents::updated_at.eq(ts(now)),
                )
            })
            .collect();
        for chunk in rows.chunks(CHUNK) {
            // BACKEND-SPECIFIC: an upsert on rows that exist (they are locked) updates
            // many incidents in one statement.
            crate::per_backend!(conn => diesel::insert_into(incidents::table)
                .values(chunk)
                .on_conflict(incidents::incident_id)
                .do_update()
                .set((
                    incidents::applied_revision.eq(excluded(incidents::applied_revision)),
                    incidents::status.eq(excluded(incidents::status)),
                    incidents::updated_at.eq(excluded(incidents::updated_at)),
                ))
                .execute(conn))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::next_school_day;
    use chrono::{DateTime, Utc};

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn an_unknown_region_takes_the_earliest_due_time_of_any_region() {
        // Herfstvakantie 2026: noord 10-18 October, midden and zuid 17-25 October.
        let before_noord = at("2026-10-09T20:00:00+02:00");
        assert_eq!(
            next_school_day("?", "08:30", before_noord),
            at("2026-10-12T08:30:00+02:00"),
            "midden and zuid are at school on 12 October"
        );
        let before_south = at("2026-10-16T20:00:00+02:00");
        assert_eq!(
            next_school_day("?", "08:30", before_south),
            at("2026-10-19T08:30:00+02:00"),
            "noord is back at school on 19 October"
        );
        assert_eq!(
            next_school_day("zuid", "08:30", before_south),
            at("2026-10-26T08:30:00+01:00"),
            "winter time by then"
        );
    }

    #[test]
    fn zuid_is_at_school_on_30_august_2027() {
        // Of the two readings of zuid's summer 2027, the shorter one counts.
        assert_eq!(
            next_school_day("zuid", "08:30", at("2027-08-27T20:00:00+02:00")),
            at("2027-08-30T08:30:00+02:00")
        );
        assert_eq!(
            next_school_day("zuid", "08:30", at("2027-07-23T20:00:00+02:00")),
            at("2027-08-30T08:30:00+02:00")
        );
    }
}
