//! A report as a table for people, CSV or JSON. The columns are one list, so the
//! three formats always agree. Published (`publish`), a count from 1 to 4 reads
//! `<5`, and so does a share or median over 1 to 4 notices: a published table
//! cannot single out a child at a small school.

use super::{Counts, Report, Row};
use crate::notices::store::{SignalCategory, Urgency};
use crate::notices::Outcome;

/// One value of a row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell {
    Count(u64),
    /// A percentage of `base`; empty when `base` is 0.
    Share {
        part: u64,
        base: u64,
    },
    /// Minutes, a median over `base` values; empty when there is none.
    Minutes {
        value: Option<f64>,
        base: u64,
    },
}

/// What a cell says: a number, nothing, or that it is too small to publish.
#[derive(Debug, Clone, PartialEq)]
pub enum Shown {
    Number(f64),
    Empty,
    Suppressed,
}

/// Below this, a count is not published.
const SMALLEST_PUBLISHED: u64 = 5;

fn small(n: u64) -> bool {
    (1..SMALLEST_PUBLISHED).contains(&n)
}

impl Cell {
    pub fn shown(self, publish: bool) -> Shown {
        match self {
            Cell::Count(n) if publish && small(n) => Shown::Suppressed,
            Cell::Count(n) => Shown::Number(n as f64),
            Cell::Share { base: 0, .. } | Cell::Minutes { value: None, .. } => Shown::Empty,
            Cell::Share { base, .. } | Cell::Minutes { base, .. } if publish && small(base) => {
                Shown::Suppressed
            }
            Cell::Share { part, base } => {
                Shown::Number((part as f64 * 1000.0 / base as f64).round() / 10.0)
            }
            Cell::Minutes { value, .. } => {
                Shown::Number((value.unwrap_or_default() * 10.0).round() / 10.0)
            }
        }
    }

    /// As text: whole counts, one decimal for shares and minutes.
    pub fn text(self, publish: bool) -> String {
        match (self, self.shown(publish)) {
            (_, Shown::Empty) => String::new(),
            (_, Shown::Suppressed) => "<5".into(),
            (Cell::Count(n), _) => n.to_string(),
            (_, Shown::Number(x)) => format!("{x:.1}"),
        }
    }

    fn json(self, publish: bool) -> serde_json::Value {
        match self.shown(publish) {
            Shown::Empty => serde_json::Value::Null,
            Shown::Suppressed => "<5".into(),
            Shown::Number(x) => match self {
                Cell::Count(n) => n.into(),
                _ => x.into(),
            },
        }
    }
}

pub type Column = (String, Box<dyn Fn(&Counts) -> Cell>);

/// The columns after `period`, `scope` and `key`, in order.
pub fn columns() -> Vec<Column> {
    let mut cols: Vec<Column> = vec![("events".into(), Box::new(|c| Cell::Count(c.events)))];
    for (i, outcome) in Outcome::ALL.iter().enumerate() {
        let name = format!("decided_{}", outcome.as_str());
        cols.push((name, Box::new(move |c| Cell::Count(c.decisions[i]))));
    }
    cols.extend(timeliness_columns());
    for (i, category) in SignalCategory::ALL.iter().enumerate() {
        let name = format!("signals_{}", category.as_str());
        cols.push((
            name,
            Box::new(move |c| Cell::Count(c.signals_by_category[i])),
        ));
    }
    for (i, urgency) in Urgency::ALL.iter().enumerate() {
        let name = format!("signals_{}", urgency.as_str());
        cols.push((
            name,
            Box::new(move |c| Cell::Count(c.signals_by_urgency[i])),
        ));
    }
    cols.push((
        "withdrawals".into(),
        Box::new(|c| Cell::Count(c.withdrawals)),
    ));
    cols
}

fn timeliness_columns() -> Vec<Column> {
    fn count(name: &str, f: fn(&Counts) -> u64) -> Column {
        (name.into(), Box::new(move |c| Cell::Count(f(c))))
    }
    fn share(name: &str, f: fn(&Counts) -> u64) -> Column {
        let cell = move |c: &Counts| Cell::Share {
            part: f(c),
            base: c.not_withdrawn,
        };
        (name.into(), Box::new(cell))
    }
    vec![
        count("notices", |c| c.notices),
        count("notices_not_withdrawn", |c| c.not_withdrawn),
        count("emailed_on_time", |c| c.emailed_on_time),
        share("emailed_on_time_pct", |c| c.emailed_on_time),
        count("acknowledged_on_time", |c| c.acknowledged_on_time),
        share("acknowledged_on_time_pct", |c| c.acknowledged_on_time),
        (
            "median_ack_minutes".into(),
            Box::new(|c| Cell::Minutes {
                value: c.median_ack_minutes(),
                base: c.ack_delays.len() as u64,
            }),
        ),
        count("reminders", |c| c.reminders),
        count("escalated_unacknowledged", |c| c.escalated_unacknowledged),
        count("escalated_undeliverable", |c| c.escalated_undeliverable),
        count("deliveries_failed", |c| c.deliveries_failed),
        count("signals", |c| c.signals()),
    ]
}

/// Every column's name, the three leading ones first.
pub fn header() -> Vec<String> {
    let mut names: Vec<String> = ["period", "scope", "key"].map(String::from).to_vec();
    names.extend(columns().into_iter().map(|(name, _)| name));
    names
}

/// One row as text cells, in [`header`]'s order (`columns` is [`columns`]).
pub fn cells(row: &Row, columns: &[Column], publish: bool) -> Vec<String> {
    let mut out = vec![
        row.period.clone(),
        row.scope.kind().to_string(),
        row.scope.key().to_string(),
    ];
    out.extend(
        columns
            .iter()
            .map(|(_, cell)| cell(&row.counts).text(publish)),
    );
    out
}

/// The report as CSV, a header line first.
pub fn csv(report: &Report, publish: bool) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let _ = writer.write_record(header());
    let columns = columns();
    for row in &report.rows {
        let _ = writer.write_record(cells(row, &columns, publish));
    }
    let bytes = writer.into_inner().unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}

/// The report as JSON: the query, and the rows as objects keyed by column.
pub fn json(report: &Report, publish: bool) -> String {
    let columns = columns();
    let rows: Vec<serde_json::Value> = report
        .rows
        .iter()
        .map(|row| {
            let mut object = serde_json::Map::new();
            object.insert("period".into(), row.period.clone().into());
            object.insert("scope".into(), row.scope.kind().into());
            object.insert("key".into(), row.scope.key().into());
            for (name, cell) in &columns {
                object.insert(name.clone(), cell(&row.counts).json(publish));
            }
            object.into()
        })
        .collect();
    let q = &report.query;
    let value = serde_json::json!({
        "from": q.from.to_string(),
        "to": q.to.to_string(),
        "by": q.by.as_str(),
        "published": publish,
        "rows": rows,
    });
    serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"
}

/// The report as a plain-text table, columns aligned; an empty cell reads `-`.
pub fn table(report: &Report, publish: bool) -> String {
    let mut lines = vec![header()];
    let columns = columns();
    lines.extend(report.rows.iter().map(|row| {
        cells(row, &columns, publish)
            .into_iter()
            .map(|c| if c.is_empty() { "-".into() } else { c })
            .collect()
    }));
    let widths: Vec<usize> = (0..lines[0].len())
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in lines {
        let padded: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(padded.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_small_counts_read_below_five() {
        let shown = |cell: Cell, publish| cell.text(publish);
        assert_eq!(shown(Cell::Count(0), true), "0");
        assert_eq!(shown(Cell::Count(1), true), "<5");
        assert_eq!(shown(Cell::Count(4), true), "<5");
        assert_eq!(shown(Cell::Count(5), true), "5");
        assert_eq!(shown(Cell::Count(3), false), "3");
        let share = Cell::Share { part: 1, base: 3 };
        assert_eq!(shown(share, false), "33.3");
        assert_eq!(shown(share, true), "<5");
        assert_eq!(shown(Cell::Share { part: 0, base: 0 }, true), "");
        assert_eq!(shown(Cell::Share { part: 1, base: 8 }, true), "12.5");
        let minutes = Cell::Minutes {
            value: Some(82.5),
            base: 2,
        };
        assert_eq!(shown(minutes, false), "82.5");
        assert_eq!(shown(minutes, true), "<5");
    }

    #[test]
    fn every_column_has_a_unique_name() {
        let names = header();
        let unique: std::collections::HashSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        assert_eq!(names.len(), 3 + 1 + 7 + 12 + 6 + 2 + 1);
    }
}
