//! The report's numbers: one query per kind of fact (ids, timestamps and states
//! only), each fact added to its period's rows for the service, the school's region
//! and the school.

use super::{local_day, Counts, Query, Report, Row, Scope};
use crate::db::schema::{decisions, deliveries, inbox_events, notices, school_signals, schools};
use crate::db::DbConn;
use crate::delivery::kinds::{Kind, State};
use crate::notices::store::{SignalCategory, Urgency};
use crate::notices::{NoticeStatus, Outcome};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use std::collections::{HashMap, HashSet};

/// The report for `query`.
pub fn build(conn: &mut DbConn, query: &Query) -> QueryResult<Report> {
    let regions: HashMap<String, String> = schools::table
        .select((schools::brin, schools::holiday_region))
        .load::<(String, String)>(conn)?
        .into_iter()
        .collect();
    let mut tally = Tally::new(query, regions);
    events(conn, &mut tally)?;
    decisions(conn, &mut tally)?;
    made(conn, &mut tally)?;
    follow_ups(conn, &mut tally)?;
    failures(conn, &mut tally)?;
    signals(conn, &mut tally)?;
    Ok(tally.finish())
}

/// The rows being filled: by period (its index in `periods`), then scope (its index
/// in `scopes`). Every school and region is given its index once, so that counting
/// a fact allocates nothing.
struct Tally<'q> {
    query: &'q Query,
    periods: Vec<String>,
    /// The period of each Dutch day of the range, found once rather than per fact.
    period_of_day: HashMap<chrono::NaiveDate, usize>,
    bounds: (NaiveDateTime, NaiveDateTime),
    /// Index 0 is the service.
    scopes: Vec<Scope>,
    /// A school's scope and its region's, by BRIN.
    school_slots: HashMap<String, (u32, Option<u32>)>,
    rows: HashMap<(usize, u32), Counts>,
}

impl<'q> Tally<'q> {
    fn new(query: &'q Query, regions: HashMap<String, String>) -> Self {
        let periods = query.periods();
        let mut period_of_day = HashMap::new();
        let mut day = query.from;
        while day <= query.to {
            let label = query.period_of(day);
            let index = periods.iter().position(|p| *p == label).unwrap_or(0);
            period_of_day.insert(day, index);
            let Some(next) = day.succ_opt() else { break };
            day = next;
        }
        let rows = (0..periods.len())
            .map(|p| ((p, 0), Counts::default()))
            .collect();
        let mut tally = Tally {
            query,
            periods,
            period_of_day,
            bounds: query.bounds(),
            scopes: vec![Scope::Service],
            school_slots: HashMap::new(),
            rows,
        };
        let mut region_slots: HashMap<String, u32> = HashMap::new();
        for (brin, region) in regions {
            let region_slot = *region_slots
                .entry(region.clone())
                .or_insert_with(|| tally.intern(Scope::Region(region)));
            let school_slot = tally.intern(Scope::School(brin.clone()));
            tally
                .school_slots
                .insert(brin, (school_slot, Some(region_slot)));
        }
        tally
    }

    fn intern(&mut self, scope: Scope) -> u32 {
        self.scopes.push(scope);
        (self.scopes.len() - 1) as u32
    }

    /// The period a fact that happened `at` (UTC) counts in; None outside the range.
    fn period(&self, at: NaiveDateTime) -> Option<usize> {
        let (start, end) = self.bounds;
        if at < start || at >= end {
            return None;
        }
        self.period_of_day.get(&local_day(at)).copied()
    }

    /// Adds to a school's row and its region's (a school no longer in the schools
    /// table has a row of its own and no region).
    fn add_school_at(&mut self, period: usize, brin: &str, f: &impl Fn(&mut Counts)) {
        let (school, region) = match self.school_slots.get(brin) {
            Some(slots) => *slots,
            None => {
                let slot = self.intern(Scope::School(brin.to_string()));
                self.school_slots.insert(brin.to_string(), (slot, None));
                (slot, None)
            }
        };
        f(self.rows.entry((period, school)).or_default());
        if let Some(region) = region {
            f(self.rows.entry((period, region)).or_default());
        }
    }

    /// Adds a fact that happened `at` (UTC) to the service's row and, when it is
    /// about a school, to the school's and its region's. A fact outside the range
    /// counts nowhere.
    fn add(&mut self, at: NaiveDateTime, school: Option<&str>, f: impl Fn(&mut Counts)) {
        let Some(period) = self.period(at) else {
            return;
        };
        f(self.rows.entry((period, 0)).or_default());
        if let Some(brin) = school {
            self.add_school_at(period, brin, &f);
        }
    }

    /// Like [`Tally::add`] for a school, leaving the service's row alone (which
    /// counted the fact already).
    fn add_school_only(&mut self, at: NaiveDateTime, brin: &str, f: impl Fn(&mut Counts)) {
        if let Some(period) = self.period(at) {
            self.add_school_at(period, brin, &f);
        }
    }

    fn finish(self) -> Report {
        let (periods, scopes) = (self.periods, self.scopes);
        let mut rows: Vec<((usize, u32), Counts)> = self
            .rows
            .into_iter()
            .filter(|((_, scope), counts)| *scope == 0 || !counts.is_empty())
            .collect();
        rows.sort_unstable_by(|((pa, sa), _), ((pb, sb), _)| {
            pa.cmp(pb)
                .then_with(|| scopes[*sa as usize].cmp(&scopes[*sb as usize]))
        });
        let rows = rows
            .into_iter()
            .map(|((period, scope), counts)| Row {
                period: periods[period].clone(),
                scope: scopes[scope as usize].clone(),
                counts,
            })
            .collect();
        Report {
            query: *self.query,
            rows,
        }
    }
}

/// Every event received, for the service; a school's events are those with a
/// decision about one of its notices (see [`decisions`]).
fn events(conn: &mut DbConn, tally: &mut Tally) -> QueryResult<()> {
    let (start, end) = tally.query.bounds();
    let received: Vec<NaiveDateTime> = inbox_events::table
        .filter(inbox_events::received_at.ge(start))
        .filter(inbox_events::received_at.lt(end))
        .select(inbox_events::received_at)
        .load(conn)?;
    for at in received {
        tally.add(at, None, |c| c.events += 1);
    }
    Ok(())
}

/// Decisions by outcome, in the period their event arrived. Only a decision with a
/// notice (notified, already notified) names a school; the others count for the
/// service alone.
fn decisions(conn: &mut DbConn, tally: &mut Tally) -> QueryResult<()> {
    let (start, end) = tally.query.bounds();
    let rows: Vec<(String, NaiveDateTime, String, Option<String>)> = decisions::table
        .inner_join(inbox_events::table.on(inbox_events::event_id.eq(decisions::event_id)))
        .left_join(notices::table.on(decisions::notice_id.eq(notices::id.nullable())))
        .filter(inbox_events::received_at.ge(start))
        .filter(inbox_events::received_at.lt(end))
        .select((
            decisions::event_id,
            inbox_events::received_at,
            decisions::outcome,
            notices::school_brin.nullable(),
        ))
        .load(conn)?;
    let mut seen: HashSet<(String, String)> = HashSet::new();
    for (event_id, at, outcome, school) in rows {
        let Some(i) = Outcome::ALL.iter().position(|o| o.as_str() == outcome) else {
            continue;
        };
        tally.add(at, None, |c| c.decisions[i] += 1);
        let Some(brin) = school else { continue };
        tally.add_school_only(at, &brin, |c| c.decisions[i] += 1);
        if seen.insert((event_id, brin.clone())) {
            tally.add_school_only(at, &brin, |c| c.events += 1);
        }
    }
    Ok(())
}

/// One notice made in the range: school, made, due, acknowledged, status.
type Made = (
    String,
    String,
    NaiveDateTime,
    Option<NaiveDateTime>,
    Option<NaiveDateTime>,
    String,
);

/// Notices made, and whether their school heard and acted before the school day.
fn made(conn: &mut DbConn, tally: &mut Tally) -> QueryResult<()> {
    let (start, end) = tally.query.bounds();
    let in_range = notices::created_at
        .ge(start)
        .and(notices::created_at.lt(end));
    let rows: Vec<Made> = notices::table
        .filter(in_range)
        .select((
            notices::id,
            notices::school_brin,
            notices::created_at,
            notices::due_at,
            notices::acknowledged_at,
            notices::status,
        ))
        .load(conn)?;
    // The first time a notice email (to the coordinator or the deputy) was accepted.
    let first_sent: HashMap<String, Option<NaiveDateTime>> = deliveries::table
        .inner_join(notices::table)
        .filter(in_range)
        .filter(deliveries::kind.eq(Kind::Notice))
        .filter(deliveries::state.eq(State::Sent))
        .group_by(deliveries::notice_id)
        .select((
            deliveries::notice_id,
            diesel::dsl::min(deliveries::finished_at),
        ))
        .load::<(String, Option<NaiveDateTime>)>(conn)?
        .into_iter()
        .collect();
    for (id, brin, created, due, acked, status) in rows {
        let sent = first_sent.get(&id).copied().flatten();
        let fact = Timeliness::of(status, due, sent, acked);
        tally.add(created, Some(&brin), |c| fact.count(c));
    }
    Ok(())
}

/// What one notice adds to its period's timeliness.
struct Timeliness {
    withdrawn: bool,
    emailed_on_time: bool,
    acknowledged_on_time: bool,
    ack_delay: Option<i64>,
}

impl Timeliness {
    fn of(
        status: String,
        due: Option<NaiveDateTime>,
        sent: Option<NaiveDateTime>,
        acked: Option<NaiveDateTime>,
    ) -> Self {
        let by_due = |t: Option<NaiveDateTime>| matches!((t, due), (Some(t), Some(d)) if t <= d);
        Timeliness {
            withdrawn: status == NoticeStatus::Withdrawn.as_str(),
            emailed_on_time: by_due(sent),
            acknowledged_on_time: by_due(acked),
            // Acknowledged from the list before the email was recorded: no delay.
            ack_delay: sent.zip(acked).map(|(s, a)| (a - s).num_seconds().max(0)),
        }
    }

    /// A withdrawn notice is made, but neither on time nor late: its school no
    /// longer needed to act.
    fn count(&self, c: &mut Counts) {
        c.notices += 1;
        if self.withdrawn {
            return;
        }
        c.not_withdrawn += 1;
        c.emailed_on_time += u64::from(self.emailed_on_time);
        c.acknowledged_on_time += u64::from(self.acknowledged_on_time);
        c.ack_delays.extend(self.ack_delay);
    }
}

/// Reminders, escalations by level and withdrawals, when they happened.
fn follow_ups(conn: &mut DbConn, tally: &mut Tally) -> QueryResult<()> {
    let (start, end) = tally.query.bounds();
    let reminded: Vec<(String, Option<NaiveDateTime>)> = notices::table
        .filter(notices::reminded_at.ge(start))
        .filter(notices::reminded_at.lt(end))
        .select((notices::school_brin, notices::reminded_at))
        .load(conn)?;
    for (brin, at) in reminded {
        tally.add(at.unwrap_or_default(), Some(&brin), |c| c.reminders += 1);
    }
    let escalated: Vec<(String, Option<NaiveDateTime>, Option<String>)> = notices::table
        .filter(notices::escalated_at.ge(start))
        .filter(notices::escalated_at.lt(end))
        .select((
            notices::school_brin,
            notices::escalated_at,
            notices::escalation_level,
        ))
        .load(conn)?;
    for (brin, at, level) in escalated {
        let undeliverable = level.as_deref() == Some("undeliverable");
        tally.add(at.unwrap_or_default(), Some(&brin), |c| {
            if undeliverable {
                c.escalated_undeliverable += 1;
            } else {
                c.escalated_unacknowledged += 1;
            }
        });
    }
    let withdrawn: Vec<(String, Option<NaiveDateTime>)> = notices::table
        .filter(notices::withdrawn_at.ge(start))
        .filter(notices::withdrawn_at.lt(end))
        .select((notices::school_brin, notices::withdrawn_at))
        .load(conn)?;
    for (brin, at) in withdrawn {
        tally.add(at.unwrap_or_default(), Some(&brin), |c| c.withdrawals += 1);
    }
    Ok(())
}

/// Emails of any kind that failed for good (refused, or given up on).
fn failures(conn: &mut DbConn, tally: &mut Tally) -> QueryResult<()> {
    let (start, end) = tally.query.bounds();
    let failed = deliveries::state
        .eq(State::PermanentFailure)
        .or(deliveries::state.eq(State::Expired));
    let rows: Vec<(String, Option<NaiveDateTime>)> = deliveries::table
        .inner_join(notices::table)
        .filter(failed)
        .filter(deliveries::finished_at.ge(start))
        .filter(deliveries::finished_at.lt(end))
        .select((notices::school_brin, deliveries::finished_at))
        .load(conn)?;
    for (brin, at) in rows {
        tally.add(at.unwrap_or_default(), Some(&brin), |c| {
            c.deliveries_failed += 1
        });
    }
    Ok(())
}

/// Signals by category and urgency, when they were reported.
fn signals(conn: &mut DbConn, tally: &mut Tally) -> QueryResult<()> {
    let (start, end) = tally.query.bounds();
    let rows: Vec<(String, NaiveDateTime, String, String)> = school_signals::table
        .inner_join(notices::table)
        .filter(school_signals::reported_at.ge(start))
        .filter(school_signals::reported_at.lt(end))
        .select((
            notices::school_brin,
            school_signals::reported_at,
            school_signals::category,
            school_signals::urgency,
        ))
        .load(conn)?;
    for (brin, at, category, urgency) in rows {
        let category = SignalCategory::ALL
            .iter()
            .position(|k| k.as_str() == category);
        let urgency = Urgency::ALL.iter().position(|u| u.as_str() == urgency);
        let (Some(category), Some(urgency)) = (category, urgency) else {
            continue;
        };
        tally.add(at, Some(&brin), |c| {
            c.signals_by_category[category] += 1;
            c.signals_by_urgency[urgency] += 1;
        });
    }
    Ok(())
}
