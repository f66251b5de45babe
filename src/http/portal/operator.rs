//! The operator dashboard, `/operator`: how the service is doing, for the people
//! who run it. Server-rendered, no JavaScript, and never a child: it shows counts,
//! times, notice ids and school codes only. Every route asks for a verified session
//! of an operator; anyone else signed in gets 404 (audited), anyone not signed in
//! 401.

use super::i18n::{self, Locale};
use super::pages::{html, Pages};
use super::{Portal, PortalError};
use crate::access::audit::Action;
use crate::access::operators;
use crate::access::sessions::Session;
use crate::report::format::{self, Cell};
use crate::report::live::{self, Live};
use crate::report::{self, local_day, Counts, Grouping, Query, Report};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveDateTime, Utc};
use minijinja::context;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Weeks the dashboard shows unless asked for another range.
const DEFAULT_WEEKS: u64 = 12;
/// Schools in the dashboard's table; the CSV has them all.
const SCHOOLS_SHOWN: usize = 100;

/// The range asked for in the query string; both optional.
#[derive(Debug, Default, serde::Deserialize)]
pub struct RangeForm {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    by: String,
}

impl RangeForm {
    /// The range, by default the last [`DEFAULT_WEEKS`] whole weeks up to today; a
    /// date that does not parse, or a range that runs backwards or over more than
    /// ten years, is the 422 page.
    fn query(&self, now: DateTime<Utc>, by: Grouping) -> Result<Query, PortalError> {
        let today = local_day(now.naive_utc());
        let date = |s: &str, default: NaiveDate| match s.trim() {
            "" => Ok(default),
            s => s.parse::<NaiveDate>().map_err(|_| PortalError::Invalid),
        };
        let to = date(&self.to, today)?;
        let monday = to - Days::new(u64::from(to.weekday().num_days_from_monday()));
        let from = date(&self.from, monday - Days::new(7 * (DEFAULT_WEEKS - 1)))?;
        if from > to || (to - from).num_days() > 3660 {
            return Err(PortalError::Invalid);
        }
        Ok(Query { from, to, by })
    }
}

impl Portal {
    /// The verified session of an operator, its view of `action` audited; 401 when
    /// not signed in, 404 (audited too) for anyone who is not an operator.
    async fn operator(&self, req: &HttpRequest, action: Action) -> Result<Session, PortalError> {
        let session = self.verified(req).await?;
        let (email, now) = (session.email.clone(), self.clock.now());
        let allowed = self
            .db(move |conn| operators::audited_view(conn, &email, action, now))
            .await?;
        if allowed {
            Ok(session)
        } else {
            Err(PortalError::NotFound)
        }
    }
}

/// How long the dashboard's report (the chart and the per-school table) is kept:
/// it reads a range of weeks, which changes slowly, while the lists of the present
/// are read on every request.
const REPORT_FRESH_FOR: Duration = Duration::from_secs(60);

/// The report the dashboard showed last, with the schools' names, for
/// [`REPORT_FRESH_FOR`].
#[derive(Default)]
pub struct ReportCache(Mutex<Option<(Query, Instant, Shown)>>);

/// What the dashboard shows of a report, worked out once per report: the chart's
/// weeks and the per-school table, with the schools' names and regions (which the
/// live lists name schools by too).
struct Summary {
    query: Query,
    bars: Vec<Bar>,
    line: String,
    school_rows: Vec<SchoolRow>,
    schools_total: usize,
    schools: HashMap<String, (String, String)>,
}

type Shown = Arc<Summary>;

impl Summary {
    fn of(built: &Report, schools: HashMap<String, (String, String)>) -> Self {
        let bars = bars(built);
        let (school_rows, schools_total) = school_rows(built, &schools);
        Summary {
            query: built.query,
            line: line(&bars),
            bars,
            school_rows,
            schools_total,
            schools,
        }
    }
}

impl ReportCache {
    fn get(&self, query: &Query) -> Option<Shown> {
        let cached = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match &*cached {
            Some((q, at, shown)) if q == query && at.elapsed() < REPORT_FRESH_FOR => {
                Some(shown.clone())
            }
            _ => None,
        }
    }

    fn put(&self, query: Query, shown: Shown) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((query, Instant::now(), shown));
    }
}

pub async fn dashboard(
    portal: web::Data<Portal>,
    req: HttpRequest,
    form: web::Query<RangeForm>,
) -> Result<HttpResponse, PortalError> {
    let session = portal.operator(&req, Action::OperatorView).await?;
    let now = portal.clock.now();
    let query = form.query(now, Grouping::Week)?;
    let cached = portal.report_cache.get(&query);
    let was_cached = cached.is_some();
    let (shown, live) = portal
        .db(move |conn| {
            let shown = match cached {
                Some(shown) => shown,
                None => {
                    let built = report::build(conn, &query)?;
                    Arc::new(Summary::of(&built, live::schools(conn)?))
                }
            };
            Ok::<_, diesel::result::Error>((shown, live::read(conn, now)?))
        })
        .await?;
    if !was_cached {
        portal.report_cache.put(query, shown.clone());
    }
    let page = render(
        &portal.pages,
        super::locale(&req),
        &session,
        &shown,
        &live,
        now,
    );
    Ok(html(StatusCode::OK, page))
}

/// The whole report (service, regions, schools) as CSV, for the range asked for and
/// by week unless `by=month` or `by=all`.
pub async fn report_csv(
    portal: web::Data<Portal>,
    req: HttpRequest,
    form: web::Query<RangeForm>,
) -> Result<HttpResponse, PortalError> {
    portal.operator(&req, Action::OperatorDownload).await?;
    let by = match form.by.as_str() {
        "" => Grouping::Week,
        by => Grouping::parse(by).ok_or(PortalError::Invalid)?,
    };
    let query = form.query(portal.clock.now(), by)?;
    let built = portal.db(move |conn| report::build(conn, &query)).await?;
    let name = format!("schoolsignal-report-{}-{}.csv", query.from, query.to);
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/csv; charset=utf-8"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .body(format::csv(&built, false)))
}

/// One week of the chart: a bar for its notices, a point for its share.
#[derive(Serialize)]
struct Bar {
    week: String,
    notices: u64,
    emailed: String,
    acknowledged: String,
    x: f64,
    y: f64,
    height: f64,
    /// The share's point; None without notices.
    point: Option<(f64, f64)>,
}

/// The chart's drawing area, in SVG units.
const CHART_W: f64 = 640.0;
const CHART_H: f64 = 200.0;
const CHART_LEFT: f64 = 56.0;

fn bars(built: &Report) -> Vec<Bar> {
    let weeks: Vec<&report::Row> = built.service().collect();
    let most = weeks
        .iter()
        .map(|r| r.counts.notices)
        .max()
        .unwrap_or(0)
        .max(1);
    let slot = (CHART_W - CHART_LEFT) / weeks.len().max(1) as f64;
    weeks
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let c = &row.counts;
            // Room above the tallest bar for its count.
            let height = c.notices as f64 * (CHART_H - 34.0) / most as f64;
            let x = CHART_LEFT + i as f64 * slot;
            let point = c
                .share(c.acknowledged_on_time)
                .map(|s| (x + slot / 2.0, CHART_H - s * (CHART_H - 10.0) / 100.0));
            Bar {
                week: row.period.clone(),
                notices: c.notices,
                emailed: percent(c, c.emailed_on_time),
                acknowledged: percent(c, c.acknowledged_on_time),
                x: x + slot * 0.15,
                y: CHART_H - height,
                height,
                point,
            }
        })
        .collect()
}

fn percent(c: &Counts, part: u64) -> String {
    match c.share(part) {
        Some(s) => format!("{s:.1}%"),
        None => "–".into(),
    }
}

/// The SVG `points` of the share's line.
fn line(bars: &[Bar]) -> String {
    bars.iter()
        .filter_map(|b| b.point)
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One school's row of the dashboard's table.
#[derive(Serialize)]
struct SchoolRow {
    brin: String,
    name: String,
    region: String,
    cells: Vec<String>,
}

/// The per-school table: the report's columns that say most about timeliness.
fn school_rows(
    built: &Report,
    schools: &HashMap<String, (String, String)>,
) -> (Vec<SchoolRow>, usize) {
    let mut rows: Vec<(String, Counts)> = built.per_school().into_iter().collect();
    let total = rows.len();
    let on_time = |c: &Counts| c.share(c.acknowledged_on_time).unwrap_or(101.0);
    rows.sort_by(|a, b| on_time(&a.1).total_cmp(&on_time(&b.1)).then(a.0.cmp(&b.0)));
    let shown = rows
        .into_iter()
        .take(SCHOOLS_SHOWN)
        .map(|(brin, c)| {
            let (name, region) = schools.get(&brin).cloned().unwrap_or_default();
            let median = Cell::Minutes {
                value: c.median_ack_minutes(),
                base: c.ack_delays.len() as u64,
            };
            let cells = vec![
                c.notices.to_string(),
                percent(&c, c.emailed_on_time),
                percent(&c, c.acknowledged_on_time),
                Some(median.text(false))
                    .filter(|m| !m.is_empty())
                    .unwrap_or("–".into()),
                c.reminders.to_string(),
                c.escalated_unacknowledged.to_string(),
                c.escalated_undeliverable.to_string(),
                c.deliveries_failed.to_string(),
                c.signals().to_string(),
                c.withdrawals.to_string(),
            ];
            SchoolRow {
                brin,
                name,
                region,
                cells,
            }
        })
        .collect();
    (shown, total)
}

/// A moment in Dutch time, to the minute.
fn when(t: NaiveDateTime) -> String {
    use chrono::TimeZone;
    chrono_tz::Europe::Amsterdam
        .from_utc_datetime(&t)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

#[derive(Serialize)]
struct ListRows {
    overdue: Vec<[String; 6]>,
    failing: Vec<[String; 7]>,
    waiting: Vec<[String; 4]>,
}

fn list_rows(
    live: &Live,
    schools: &HashMap<String, (String, String)>,
    now: DateTime<Utc>,
    locale: Locale,
) -> ListRows {
    let name = |brin: &str| schools.get(brin).map(|s| s.0.clone()).unwrap_or_default();
    let yes_no = |b: bool| i18n::t(locale, if b { "op_yes" } else { "op_no" }).to_string();
    ListRows {
        overdue: live
            .overdue
            .iter()
            .map(|o| {
                [
                    o.school_brin.clone(),
                    o.school_name.clone(),
                    o.notice_id.clone(),
                    o.due_at.map(when).unwrap_or_default(),
                    o.minutes_late(now).to_string(),
                    yes_no(o.escalated_at.is_some()),
                ]
            })
            .collect(),
        failing: live
            .failing
            .iter()
            .map(|f| {
                [
                    format!("{} {}", f.school_brin, name(&f.school_brin)),
                    f.notice_id.clone(),
                    f.kind.clone(),
                    f.recipient.clone(),
                    f.attempts.to_string(),
                    when(f.next_attempt_at),
                    f.last_error.clone().unwrap_or_default(),
                ]
            })
            .collect(),
        waiting: live
            .waiting
            .iter()
            .map(|w| {
                [
                    format!("{} {}", w.school_brin, name(&w.school_brin)),
                    w.notice_id.clone(),
                    when(w.reported_at),
                    w.attempts.to_string(),
                ]
            })
            .collect(),
    }
}

fn render(
    pages: &Pages,
    locale: Locale,
    session: &Session,
    summary: &Summary,
    live: &Live,
    now: DateTime<Utc>,
) -> String {
    let lists = list_rows(live, &summary.schools, now, locale);
    let q = &summary.query;
    let csv = format!("/operator/report.csv?from={}&to={}&by=week", q.from, q.to);
    let ctx = context! {
        title => i18n::t(locale, "title_operator"),
        csrf => session.csrf_token.as_str(),
        signed_in => true,
        wide => true,
        from => q.from.to_string(),
        to => q.to.to_string(),
        bars => &summary.bars, line => &summary.line,
        chart_w => CHART_W, chart_h => CHART_H, chart_left => CHART_LEFT,
        school_rows => &summary.school_rows, schools_total => summary.schools_total, csv,
        overdue => lists.overdue, overdue_total => live.overdue_total,
        failing => lists.failing, failing_total => live.failing_total,
        waiting => lists.waiting, waiting_total => live.waiting_total,
    };
    pages.render("operator.html", locale, ctx)
}
