//! The Dutch school-day calendar: when the next school day starts at a school.
//!
//! A notice is due at the start of the next school day, in the school's own time
//! (Europe/Amsterdam). Weekends are not school days, nor are national holidays and the
//! school holidays of the school's region. Those come from `holidays-nl.csv`, which is
//! compiled in and covers the school years 2026-2027 and 2027-2028.
//!
//! Every doubt is resolved towards an earlier due time: a notice that reaches a closed
//! school a day early does no harm, one that arrives after the child is back does.

use chrono::{
    DateTime, Datelike, Days, NaiveDate, NaiveTime, TimeDelta, TimeZone, Timelike, Utc, Weekday,
};
use chrono_tz::Europe::Amsterdam;
use std::sync::OnceLock;

/// The holiday data compiled into the binary.
const NETHERLANDS: &str = include_str!("holidays-nl.csv");
/// The columns the data must start with, in this order.
const HEADER: [&str; 4] = ["region", "name", "first_day", "last_day"];
/// How many days `due_at` looks ahead before it distrusts the data.
const MAX_SEARCH_DAYS: u64 = 400;

/// A school-holiday region, as assigned by the Ministerie van OCW.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Region {
    Noord,
    Midden,
    Zuid,
}

impl Region {
    pub const ALL: [Region; 3] = [Region::Noord, Region::Midden, Region::Zuid];

    /// `"noord"`, `"midden"` or `"zuid"`.
    pub fn parse(s: &str) -> Option<Region> {
        Region::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Region::Noord => "noord",
            Region::Midden => "midden",
            Region::Zuid => "zuid",
        }
    }
}

/// Why holiday data was rejected.
#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    #[error("holiday data, line {line}: {reason}")]
    Invalid { line: u64, reason: String },
    #[error("holiday data has no holiday rows")]
    Empty,
}

impl CalendarError {
    /// The line of the data the error is about, if it is about one.
    pub fn line(&self) -> Option<u64> {
        match self {
            CalendarError::Invalid { line, .. } => Some(*line),
            CalendarError::Empty => None,
        }
    }
}

/// One row of the data: a run of days without school.
#[derive(Debug, Clone)]
struct Closure {
    /// `None` for the whole country.
    region: Option<Region>,
    name: String,
    first_day: NaiveDate,
    last_day: NaiveDate,
}

impl Closure {
    fn closes(&self, region: Region, date: NaiveDate) -> bool {
        self.region.is_none_or(|r| r == region) && (self.first_day..=self.last_day).contains(&date)
    }
}

/// School days per region.
#[derive(Debug)]
pub struct Calendar {
    closures: Vec<Closure>,
    covered_until: NaiveDate,
}

impl Calendar {
    /// The calendar compiled into the binary, parsed on first use.
    pub fn netherlands() -> &'static Calendar {
        static CALENDAR: OnceLock<Calendar> = OnceLock::new();
        CALENDAR.get_or_init(|| {
            Calendar::parse(NETHERLANDS).expect("holidays-nl.csv is valid (a unit test checks)")
        })
    }

    /// Parses data in the `holidays-nl.csv` format: `#` comment lines, the header row
    /// `region,name,first_day,last_day`, then one row per holiday with region `noord`,
    /// `midden`, `zuid` or `all` and inclusive `YYYY-MM-DD` dates.
    pub fn parse(data: &str) -> Result<Calendar, CalendarError> {
        let mut reader = csv::ReaderBuilder::new()
            .comment(Some(b'#'))
            .trim(csv::Trim::All)
            .flexible(true) // a wrong field count gets our own message
            .has_headers(false) // checked below, so a bad header gets a line number
            .from_reader(data.as_bytes());
        let mut closures = Vec::new();
        let mut header_seen = false;
        for record in reader.records() {
            let record = record.map_err(|e| CalendarError::Invalid {
                line: line_at(data, e.position()),
                reason: e.to_string(),
            })?;
            let line = line_at(data, record.position());
            let row = if header_seen {
                parse_row(&record).map(|c| closures.push(c))
            } else if record.iter().eq(HEADER) {
                header_seen = true;
                Ok(())
            } else {
                Err(format!(
                    "expected the header row `{}`, found `{}`",
                    HEADER.join(","),
                    record.iter().collect::<Vec<_>>().join(",")
                ))
            };
            row.map_err(|reason| CalendarError::Invalid { line, reason })?;
        }
        let covered_until = closures
            .iter()
            .map(|c| c.last_day)
            .max()
            .ok_or(CalendarError::Empty)?;
        Ok(Calendar {
            closures,
            covered_until,
        })
    }

    /// Whether the schools of `region` are open on `date`.
    pub fn is_school_day(&self, region: Region, date: NaiveDate) -> bool {
        !is_weekend(date)
            && !is_fixed_national_holiday(date)
            && self.holiday(region, date).is_none()
    }

    /// The name of the data row closing the schools of `region` on `date`, such as
    /// `"herfstvakantie"` or `"koningsdag"` (for logs and support questions).
    pub fn holiday(&self, region: Region, date: NaiveDate) -> Option<&str> {
        self.closures
            .iter()
            .find(|c| c.closes(region, date))
            .map(|c| c.name.as_str())
    }

    /// The first start of a school day strictly after `after`: an incident at 08:29
    /// local on a school day is due at 08:30 that day, one at 08:30 or later the next
    /// school day. `day_start` is the school's local start time; the result is UTC.
    ///
    /// After [`Calendar::covered_until`] the data says nothing, so only weekends and
    /// the fixed-date national holidays (1 January, 27 April, 25 and 26 December) are
    /// skipped there. Unknown school holidays therefore make a notice early, never late.
    pub fn due_at(
        &self,
        region: Region,
        day_start: NaiveTime,
        after: DateTime<Utc>,
    ) -> DateTime<Utc> {
        first_start(day_start, after, |d| self.is_school_day(region, d))
            // Only data closing every day for over a year gets here; the next weekday
            // is then the early, safe answer.
            .or_else(|| first_start(day_start, after, |d| !is_weekend(d)))
            .unwrap_or(after)
    }

    /// The last date the data covers: the end of the last summer holiday in it (the
    /// end of the 2027-2028 school year for the compiled-in data).
    pub fn covered_until(&self) -> NaiveDate {
        self.covered_until
    }
}

/// The 1-based line of `data` where a record starts. The csv crate's position is where
/// its reader started, before the comment and blank lines it skipped (and its line
/// count leaves those out), so count from its byte offset.
fn line_at(data: &str, position: Option<&csv::Position>) -> u64 {
    let bytes = data.as_bytes();
    let offset = position.map_or(0, |p| p.byte() as usize).min(bytes.len());
    let before = bytes[..offset].iter().filter(|&&b| b == b'\n').count();
    let skipped = bytes[offset..]
        .split(|&b| b == b'\n')
        .take_while(|l| l.starts_with(b"#") || matches!(l, [] | [b'\r']))
        .count();
    (before + skipped + 1) as u64
}

fn parse_row(record: &csv::StringRecord) -> Result<Closure, String> {
    let [region, name, first_day, last_day] =
        <[&str; 4]>::try_from(record.iter().collect::<Vec<_>>()).map_err(|fields| {
            format!(
                "expected 4 fields ({}), found {}",
                HEADER.join(","),
                fields.len()
            )
        })?;
    let region = match region {
        "all" => None,
        other => Some(Region::parse(other).ok_or_else(|| {
            format!("unknown region `{other}` (expected noord, midden, zuid or all)")
        })?),
    };
    if name.is_empty() {
        return Err("the name is empty".to_string());
    }
    let date = |column: &str, value: &str| {
        NaiveDate::parse_from_str(value, "%Y-%m-%d")
            .map_err(|e| format!("{column} `{value}` is not a YYYY-MM-DD date ({e})"))
    };
    let (first_day, last_day) = (date("first_day", first_day)?, date("last_day", last_day)?);
    if first_day > last_day {
        return Err(format!(
            "first_day {first_day} is after last_day {last_day}"
        ));
    }
    Ok(Closure {
        region,
        name: name.to_string(),
        first_day,
        last_day,
    })
}

fn is_weekend(date: NaiveDate) -> bool {
    matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

/// National holidays on a fixed date, so known for every year, also beyond the data:
/// Nieuwjaarsdag, Koningsdag and both Kerstdagen. (When 27 April is a Sunday,
/// Koningsdag moves to Saturday the 26th: a weekend either way.)
fn is_fixed_national_holiday(date: NaiveDate) -> bool {
    matches!(
        (date.month(), date.day()),
        (1, 1) | (4, 27) | (12, 25) | (12, 26)
    )
}

/// The first `day_start` on a day that `is_open` accepts, strictly after `after`,
/// looking at most `MAX_SEARCH_DAYS` ahead.
fn first_start(
    day_start: NaiveTime,
    after: DateTime<Utc>,
    is_open: impl Fn(NaiveDate) -> bool,
) -> Option<DateTime<Utc>> {
    let today = after.with_timezone(&Amsterdam).date_naive();
    (0..=MAX_SEARCH_DAYS)
        .filter_map(|n| today.checked_add_days(Days::new(n)))
        .filter(|&d| is_open(d))
        .map(|d| local_instant(d, day_start))
        .find(|&start| start > after)
}

/// `time` on `date` in Amsterdam, as a UTC instant. A time in the spring-forward gap
/// becomes the first instant after the gap; one in the autumn overlap the earlier of
/// its two instants.
fn local_instant(date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let wall = date.and_time(time);
    if let Some(t) = Amsterdam.from_local_datetime(&wall).earliest() {
        return t.with_timezone(&Utc);
    }
    // Gaps start and end on a whole minute, so the first whole minute that exists
    // again is the end of the gap.
    let minute = wall
        .with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(wall);
    (1..=24 * 60)
        .map(|m| minute + TimeDelta::minutes(m))
        .find_map(|t| Amsterdam.from_local_datetime(&t).earliest())
        .map_or_else(|| Utc.from_utc_datetime(&wall), |t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Offset;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn hm(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    /// Due time at a school starting at 08:30, with the compiled-in data.
    fn due(region: Region, after: &str) -> DateTime<Utc> {
        Calendar::netherlands().due_at(region, hm(8, 30), at(after))
    }

    /// The Amsterdam UTC offset at `t`, in hours.
    fn offset_hours(t: DateTime<Utc>) -> i32 {
        t.with_timezone(&Amsterdam).offset().fix().local_minus_utc() / 3600
    }

    #[test]
    fn region_names_round_trip() {
        for r in Region::ALL {
            assert_eq!(Region::parse(r.as_str()), Some(r));
        }
        assert_eq!(Region::parse("Noord"), None);
        assert_eq!(Region::parse("all"), None);
    }

    #[test]
    fn friday_evening_is_due_monday_morning() {
        for r in Region::ALL {
            assert_eq!(
                due(r, "2026-11-27T21:40:00+01:00"),
                at("2026-11-30T07:30:00Z")
            );
        }
    }

    #[test]
    fn before_the_day_starts_is_due_that_morning_and_from_the_start_on_the_next_day() {
        let r = Region::Midden;
        assert_eq!(
            due(r, "2026-12-01T08:29:00+01:00"),
            at("2026-12-01T07:30:00Z")
        );
        assert_eq!(
            due(r, "2026-12-01T08:29:59.999+01:00"),
            at("2026-12-01T07:30:00Z")
        );
        assert_eq!(
            due(r, "2026-12-01T08:30:00+01:00"),
            at("2026-12-02T07:30:00Z")
        );
        assert_eq!(
            due(r, "2026-12-01T00:00:00+01:00"),
            at("2026-12-01T07:30:00Z")
        );
    }

    #[test]
    fn herfstvakantie_2027_differs_per_region() {
        // Noord and midden are off 16-24 October, zuid 23-31 October.
        let first_week = "2027-10-20T12:00:00+02:00";
        assert_eq!(due(Region::Noord, first_week), at("2027-10-25T06:30:00Z"));
        assert_eq!(due(Region::Midden, first_week), at("2027-10-25T06:30:00Z"));
        assert_eq!(due(Region::Zuid, first_week), at("2027-10-21T06:30:00Z"));
        // Zuid's week ends on the night summer time ends: Monday is +01:00 again.
        let second_week = "2027-10-27T12:00:00+02:00";
        assert_eq!(due(Region::Noord, second_week), at("2027-10-28T06:30:00Z"));
        assert_eq!(due(Region::Midden, second_week), at("2027-10-28T06:30:00Z"));
        assert_eq!(due(Region::Zuid, second_week), at("2027-11-01T07:30:00Z"));
    }

    #[test]
    fn voorjaarsvakantie_2028_differs_per_region() {
        // Noord is off 19-27 February, midden and zuid 26 February - 5 March.
        let first_week = "2028-02-22T10:00:00+01:00";
        assert_eq!(due(Region::Noord, first_week), at("2028-02-28T07:30:00Z"));
        assert_eq!(due(Region::Midden, first_week), at("2028-02-23T07:30:00Z"));
        assert_eq!(due(Region::Zuid, first_week), at("2028-02-23T07:30:00Z"));
        let second_week = "2028-02-29T10:00:00+01:00";
        assert_eq!(due(Region::Noord, second_week), at("2028-03-01T07:30:00Z"));
        assert_eq!(due(Region::Midden, second_week), at("2028-03-06T07:30:00Z"));
        assert_eq!(due(Region::Zuid, second_week), at("2028-03-06T07:30:00Z"));
    }

    #[test]
    fn zomervakantie_2028_ends_on_three_different_mondays() {
        let friday = "2028-08-18T20:00:00+02:00";
        assert_eq!(due(Region::Midden, friday), at("2028-08-21T06:30:00Z"));
        assert_eq!(due(Region::Noord, friday), at("2028-08-28T06:30:00Z"));
        assert_eq!(due(Region::Zuid, friday), at("2028-09-04T06:30:00Z"));
    }

    #[test]
    fn herfstvakantie_2026_noord_is_a_week_earlier() {
        let wednesday = "2026-10-14T12:00:00+02:00";
        assert_eq!(due(Region::Noord, wednesday), at("2026-10-19T06:30:00Z"));
        assert_eq!(due(Region::Midden, wednesday), at("2026-10-15T06:30:00Z"));
        assert_eq!(due(Region::Zuid, wednesday), at("2026-10-15T06:30:00Z"));
    }

    #[test]
    fn march_2027_change_to_summer_time_over_easter() {
        // Summer time starts Sunday 28 March 2027, which is Easter: Goede Vrijdag (26th)
        // and Tweede Paasdag (29th) are skipped, and Tuesday starts at +02:00.
        for after in ["2027-03-25T18:00:00+01:00", "2027-03-27T12:00:00+01:00"] {
            let t = due(Region::Noord, after);
            assert_eq!(t, at("2027-03-30T06:30:00Z"));
            assert_eq!(offset_hours(t), 2);
        }
        let before = due(Region::Noord, "2027-03-24T12:00:00+01:00");
        assert_eq!(before, at("2027-03-25T07:30:00Z"));
        assert_eq!(offset_hours(before), 1);
    }

    #[test]
    fn march_2028_change_to_summer_time() {
        let t = due(Region::Zuid, "2028-03-24T21:00:00+01:00");
        assert_eq!(t, at("2028-03-27T06:30:00Z"));
        assert_eq!(offset_hours(t), 2);
    }

    #[test]
    fn october_2027_change_to_winter_time() {
        // Winter time starts Sunday 31 October 2027.
        let t = due(Region::Midden, "2027-10-29T21:00:00+02:00");
        assert_eq!(t, at("2027-11-01T07:30:00Z"));
        assert_eq!(offset_hours(t), 1);
        let friday = due(Region::Midden, "2027-10-28T21:00:00+02:00");
        assert_eq!(friday, at("2027-10-29T06:30:00Z"));
        assert_eq!(offset_hours(friday), 2);
    }

    #[test]
    fn custom_start_time() {
        let nl = Calendar::netherlands();
        let winter = nl.due_at(Region::Midden, hm(8, 15), at("2027-10-29T21:00:00+02:00"));
        assert_eq!(winter, at("2027-11-01T07:15:00Z"));
        let summer = nl.due_at(Region::Noord, hm(8, 15), at("2027-03-27T12:00:00+01:00"));
        assert_eq!(summer, at("2027-03-30T06:15:00Z"));
        // 08:20 is before an 08:30 start, but after an 08:15 one.
        let tuesday = at("2026-12-01T08:20:00+01:00");
        assert_eq!(
            nl.due_at(Region::Zuid, hm(8, 15), tuesday),
            at("2026-12-02T07:15:00Z")
        );
        assert_eq!(
            nl.due_at(Region::Zuid, hm(8, 30), tuesday),
            at("2026-12-01T07:30:00Z")
        );
    }

    #[test]
    fn national_holidays_are_skipped() {
        let nl = Calendar::netherlands();
        for r in Region::ALL {
            // Goede Vrijdag 14 April and Tweede Paasdag 17 April 2028.
            assert_eq!(
                due(r, "2028-04-13T12:00:00+02:00"),
                at("2028-04-18T06:30:00Z")
            );
            // Koningsdag, Thursday 27 April 2028 (the meivakantie starts on the 29th).
            assert_eq!(
                due(r, "2028-04-26T12:00:00+02:00"),
                at("2028-04-28T06:30:00Z")
            );
            // Hemelvaartsdag; the Friday after is a school day.
            assert_eq!(
                due(r, "2027-05-05T12:00:00+02:00"),
                at("2027-05-07T06:30:00Z")
            );
            assert_eq!(
                due(r, "2028-05-24T12:00:00+02:00"),
                at("2028-05-26T06:30:00Z")
            );
            // Tweede Pinksterdag.
            assert_eq!(
                due(r, "2027-05-14T20:00:00+02:00"),
                at("2027-05-18T06:30:00Z")
            );
            assert_eq!(nl.holiday(r, day("2027-03-29")), Some("tweede paasdag"));
            assert_eq!(nl.holiday(r, day("2028-04-27")), Some("koningsdag"));
            assert!(!nl.is_school_day(r, day("2027-03-29")));
            assert!(!nl.is_school_day(r, day("2027-04-27")));
            // Bevrijdingsdag is a school day outside lustrum years.
            assert!(nl.is_school_day(r, day("2027-05-05")));
        }
    }

    #[test]
    fn weekends_are_not_school_days() {
        let nl = Calendar::netherlands();
        assert!(!nl.is_school_day(Region::Noord, day("2026-11-28")));
        assert!(!nl.is_school_day(Region::Noord, day("2026-11-29")));
        assert!(nl.is_school_day(Region::Noord, day("2026-11-30")));
    }

    #[test]
    fn embedded_data_covers_both_school_years_for_every_region() {
        let nl = Calendar::netherlands();
        assert_eq!(nl.covered_until(), day("2028-09-03"));
        let kinds = [
            "herfstvakantie",
            "kerstvakantie",
            "voorjaarsvakantie",
            "meivakantie",
            "zomervakantie",
        ];
        // A school year's holidays start between August and the next July.
        for year in [2026, 2027] {
            let school_year = day(&format!("{year}-08-01"))..=day(&format!("{}-07-31", year + 1));
            for r in Region::ALL {
                for kind in kinds {
                    let found = nl.closures.iter().filter(|c| {
                        c.name == kind
                            && c.region.is_none_or(|cr| cr == r)
                            && school_year.contains(&c.first_day)
                    });
                    assert_eq!(found.count(), 1, "{kind} {year} for {}", r.as_str());
                }
            }
        }
    }

    #[test]
    fn beyond_coverage_only_weekends_and_fixed_holidays_count() {
        let nl = Calendar::netherlands();
        // Friday evening in 2029: Monday morning, whatever the holidays then.
        for r in Region::ALL {
            assert_eq!(
                due(r, "2029-03-02T21:00:00+01:00"),
                at("2029-03-05T07:30:00Z")
            );
            // In the middle of what will surely be a summer holiday.
            assert_eq!(
                due(r, "2029-08-03T21:00:00+02:00"),
                at("2029-08-06T06:30:00Z")
            );
        }
        // Nieuwjaarsdag 2029 is a Monday.
        assert!(!nl.is_school_day(Region::Zuid, day("2029-01-01")));
        assert_eq!(
            due(Region::Zuid, "2028-12-29T21:00:00+01:00"),
            at("2029-01-02T07:30:00Z")
        );
    }

    #[test]
    fn parse_errors_carry_the_line_number() {
        let header = "# source\n# more\nregion,name,first_day,last_day\n";
        let good = "all,koningsdag,2027-04-27,2027-04-27\n";
        let cases = [
            ("zuid-oost,x,2027-01-01,2027-01-01\n", "unknown region"),
            ("noord,x,2027-02-30,2027-03-01\n", "first_day `2027-02-30`"),
            ("noord,x,27-01-2027,2027-03-01\n", "not a YYYY-MM-DD date"),
            ("noord,x,2027-03-02,2027-03-01\n", "is after last_day"),
            ("noord,x,2027-03-01\n", "expected 4 fields"),
            ("noord,,2027-03-01,2027-03-01\n", "name is empty"),
        ];
        for (row, reason) in cases {
            // Lines 1-2 are comments, 3 the header, 4 a good row, 5 the bad one.
            let data = format!("{header}{good}{row}");
            let err = Calendar::parse(&data).unwrap_err();
            assert_eq!(err.line(), Some(5), "{row:?}: {err}");
            let message = err.to_string();
            assert!(message.contains("line 5"), "{message}");
            assert!(message.contains(reason), "{message}");
        }
    }

    #[test]
    fn parse_needs_a_header_and_rows() {
        let err = Calendar::parse("# x\nall,koningsdag,2027-04-27,2027-04-27\n").unwrap_err();
        assert_eq!(err.line(), Some(2), "{err}");
        assert!(err.to_string().contains("expected the header row"), "{err}");
        let err = Calendar::parse("region,name,first_day,last_day\n").unwrap_err();
        assert!(matches!(err, CalendarError::Empty), "{err}");
    }

    #[test]
    fn comments_between_rows_are_skipped_and_counted_as_lines() {
        let data = "region,name,first_day,last_day\n# a\n\n# b\nnoord,x,2027-01-01\n";
        assert_eq!(Calendar::parse(data).unwrap_err().line(), Some(5));
        let data = "region,name,first_day,last_day\n# a\nall, koningsdag ,2027-04-27,2027-04-27\n";
        assert_eq!(
            Calendar::parse(data).unwrap().covered_until(),
            day("2027-04-27")
        );
    }

    #[test]
    fn the_search_is_bounded() {
        // Data closing every day for two years: fall back to the next weekday.
        let data = "region,name,first_day,last_day\nall,forever,2026-01-01,2028-12-31\n";
        let cal = Calendar::parse(data).unwrap();
        assert_eq!(
            cal.due_at(Region::Noord, hm(8, 30), at("2026-11-27T21:40:00+01:00")),
            at("2026-11-30T07:30:00Z")
        );
    }

    #[test]
    fn local_times_around_the_clock_changes() {
        // 02:30 does not exist on 28 March 2027: the gap ends at 03:00 (+02:00).
        assert_eq!(
            local_instant(day("2027-03-28"), hm(2, 30)),
            at("2027-03-28T03:00:00+02:00")
        );
        // 02:30 happens twice on 31 October 2027: the first one (+02:00).
        assert_eq!(
            local_instant(day("2027-10-31"), hm(2, 30)),
            at("2027-10-31T02:30:00+02:00")
        );
        assert_eq!(
            local_instant(day("2027-07-01"), hm(8, 30)),
            at("2027-07-01T06:30:00Z")
        );
    }
}
