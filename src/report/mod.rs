//! Is it working for children? The timeliness report: per period, for the whole
//! service, each holiday region and each school, how many events came in, how they
//! were decided, and whether the schools heard and acted before the school day.
//! It reads ids, timestamps and states only (never a child, an incident id or an
//! address), so it gives the same numbers after the retention purge. `live` holds
//! what the operator dashboard shows of the present: the open backlog, failing
//! emails and signals waiting for the broker.

pub mod compute;
pub mod format;
pub mod live;

use crate::notices::store::{SignalCategory, Urgency};
use crate::notices::Outcome;
use chrono::{Datelike, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Europe::Amsterdam;

pub use compute::build;

/// How a report's range is cut into periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    /// ISO weeks, Monday to Sunday: `2026-W48`.
    Week,
    /// Calendar months: `2026-11`.
    Month,
    /// The whole range as one period: `2026-09-01..2026-11-30`.
    Whole,
}

impl Grouping {
    pub fn parse(s: &str) -> Option<Grouping> {
        match s {
            "week" => Some(Grouping::Week),
            "month" => Some(Grouping::Month),
            "all" => Some(Grouping::Whole),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Grouping::Week => "week",
            Grouping::Month => "month",
            Grouping::Whole => "all",
        }
    }
}

/// What a report covers: the days `from` to `to`, both included, in Dutch time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub by: Grouping,
}

impl Query {
    /// The range as UTC instants, `[start, end)`, the way timestamps are stored.
    pub fn bounds(&self) -> (NaiveDateTime, NaiveDateTime) {
        (
            local_midnight(self.from),
            local_midnight(self.to + chrono::Days::new(1)),
        )
    }

    /// The label of the period the Dutch day `day` falls in.
    pub fn period_of(&self, day: NaiveDate) -> String {
        match self.by {
            Grouping::Week => {
                let week = day.iso_week();
                format!("{}-W{:02}", week.year(), week.week())
            }
            Grouping::Month => format!("{}-{:02}", day.year(), day.month()),
            Grouping::Whole => format!("{}..{}", self.from, self.to),
        }
    }

    /// Every period of the range, in order (labels sort as time does).
    pub fn periods(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut day = self.from;
        while day <= self.to {
            let label = self.period_of(day);
            if out.last() != Some(&label) {
                out.push(label);
            }
            day = day.succ_opt().unwrap_or(NaiveDate::MAX);
            if day == NaiveDate::MAX {
                break;
            }
        }
        out
    }
}

/// The UTC instant a Dutch day starts at (the earlier one should a clock change
/// ever fall at midnight).
fn local_midnight(day: NaiveDate) -> NaiveDateTime {
    let midnight = day.and_hms_opt(0, 0, 0).expect("midnight exists");
    Amsterdam
        .from_local_datetime(&midnight)
        .earliest()
        .map_or(midnight, |t| t.with_timezone(&Utc).naive_utc())
}

/// The Dutch calendar day of a stored (UTC) timestamp.
pub fn local_day(at: NaiveDateTime) -> NaiveDate {
    Amsterdam.from_utc_datetime(&at).date_naive()
}

/// Whom a row counts for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Service,
    /// A holiday region: `noord`, `midden`, `zuid`.
    Region(String),
    /// A school, by BRIN.
    School(String),
}

impl Scope {
    pub fn kind(&self) -> &'static str {
        match self {
            Scope::Service => "service",
            Scope::Region(_) => "region",
            Scope::School(_) => "school",
        }
    }

    pub fn key(&self) -> &str {
        match self {
            Scope::Service => "",
            Scope::Region(key) | Scope::School(key) => key,
        }
    }
}

/// The numbers of one row. Timeliness (`on_time`, the shares and the median) is
/// about the notices made in the period; everything else is counted in the period
/// it happened.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    pub events: u64,
    /// By [`Outcome::ALL`]'s order.
    pub decisions: [u64; Outcome::ALL.len()],
    pub notices: u64,
    /// Notices made in the period and not withdrawn: the base of the shares.
    pub not_withdrawn: u64,
    pub emailed_on_time: u64,
    pub acknowledged_on_time: u64,
    /// Seconds from the first accepted notice email to the acknowledgement, one per
    /// acknowledged notice; only the median is shown.
    pub ack_delays: Vec<i64>,
    pub reminders: u64,
    pub escalated_unacknowledged: u64,
    pub escalated_undeliverable: u64,
    pub deliveries_failed: u64,
    /// By [`SignalCategory::ALL`]'s order.
    pub signals_by_category: [u64; SignalCategory::ALL.len()],
    /// By [`Urgency::ALL`]'s order.
    pub signals_by_urgency: [u64; Urgency::ALL.len()],
    pub withdrawals: u64,
}

impl Counts {
    pub fn signals(&self) -> u64 {
        self.signals_by_category.iter().sum()
    }

    /// The median delay to acknowledgement in minutes; None without one.
    pub fn median_ack_minutes(&self) -> Option<f64> {
        let mut delays = self.ack_delays.clone();
        delays.sort_unstable();
        let n = delays.len();
        if n == 0 {
            return None;
        }
        let seconds = if n % 2 == 1 {
            delays[n / 2] as f64
        } else {
            (delays[n / 2 - 1] + delays[n / 2]) as f64 / 2.0
        };
        Some(seconds / 60.0)
    }

    /// Adds another row's numbers to these (periods into a longer one).
    pub fn merge(&mut self, other: &Counts) {
        self.events += other.events;
        for (a, b) in self.decisions.iter_mut().zip(other.decisions) {
            *a += b;
        }
        self.notices += other.notices;
        self.not_withdrawn += other.not_withdrawn;
        self.emailed_on_time += other.emailed_on_time;
        self.acknowledged_on_time += other.acknowledged_on_time;
        self.ack_delays.extend(&other.ack_delays);
        self.reminders += other.reminders;
        self.escalated_unacknowledged += other.escalated_unacknowledged;
        self.escalated_undeliverable += other.escalated_undeliverable;
        self.deliveries_failed += other.deliveries_failed;
        for (a, b) in self
            .signals_by_category
            .iter_mut()
            .zip(other.signals_by_category)
        {
            *a += b;
        }
        for (a, b) in self
            .signals_by_urgency
            .iter_mut()
            .zip(other.signals_by_urgency)
        {
            *a += b;
        }
        self.withdrawals += other.withdrawals;
    }

    /// The share of `part` in the notices that were not withdrawn, in percent.
    pub fn share(&self, part: u64) -> Option<f64> {
        (self.not_withdrawn > 0).then(|| part as f64 * 100.0 / self.not_withdrawn as f64)
    }

    /// Whether anything at all was counted.
    pub fn is_empty(&self) -> bool {
        *self == Counts::default()
    }
}

/// One row of a report.
#[derive(Debug, Clone)]
pub struct Row {
    pub period: String,
    pub scope: Scope,
    pub counts: Counts,
}

impl Report {
    /// Each school's rows added up over the whole range, by BRIN.
    pub fn per_school(&self) -> std::collections::BTreeMap<String, Counts> {
        let mut schools = std::collections::BTreeMap::<String, Counts>::new();
        for row in &self.rows {
            if let Scope::School(brin) = &row.scope {
                schools.entry(brin.clone()).or_default().merge(&row.counts);
            }
        }
        schools
    }

    /// The service's rows, one per period, in order.
    pub fn service(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.scope == Scope::Service)
    }
}

/// A whole report: a service row for every period, and a row for each region and
/// school that had anything in it; by period, then service, regions, schools.
#[derive(Debug, Clone)]
pub struct Report {
    pub query: Query,
    pub rows: Vec<Row>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn periods_cover_the_range_in_order() {
        let q = Query {
            from: day("2026-11-20"),
            to: day("2026-12-08"),
            by: Grouping::Week,
        };
        assert_eq!(
            q.periods(),
            ["2026-W47", "2026-W48", "2026-W49", "2026-W50"]
        );
        let q = Query {
            by: Grouping::Month,
            ..q
        };
        assert_eq!(q.periods(), ["2026-11", "2026-12"]);
        let q = Query {
            by: Grouping::Whole,
            ..q
        };
        assert_eq!(q.periods(), ["2026-11-20..2026-12-08"]);
    }

    #[test]
    fn days_are_dutch() {
        // 23:30 UTC on 30 November is already 1 December in Amsterdam.
        let late = day("2026-11-30").and_hms_opt(23, 30, 0).unwrap();
        assert_eq!(local_day(late), day("2026-12-01"));
        let q = Query {
            from: day("2026-12-01"),
            to: day("2026-12-01"),
            by: Grouping::Week,
        };
        let (start, end) = q.bounds();
        assert_eq!(start, day("2026-11-30").and_hms_opt(23, 0, 0).unwrap());
        assert_eq!(end, day("2026-12-01").and_hms_opt(23, 0, 0).unwrap());
    }

    #[test]
    fn the_median_is_the_middle_or_the_mean_of_two() {
        let mut c = Counts::default();
        assert_eq!(c.median_ack_minutes(), None);
        c.ack_delays = vec![3600, 600, 6300];
        assert_eq!(c.median_ack_minutes(), Some(60.0));
        c.ack_delays.push(7200);
        assert_eq!(c.median_ack_minutes(), Some(82.5));
    }
}
