//! The two languages of the emails and the portal, and how dates read in each.

use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};
use chrono_tz::Europe::Amsterdam;

/// The language of a mail. Dutch is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Locale {
    #[default]
    Nl,
    En,
}

impl Locale {
    pub const ALL: [Locale; 2] = [Locale::Nl, Locale::En];

    /// Parses `nl`/`en`, case-insensitively, also with a region
    /// (`nl-NL`, `en_GB`). Anything else is `None`.
    pub fn parse(s: &str) -> Option<Locale> {
        let primary = s.trim().split(['-', '_']).next().unwrap_or("");
        if primary.eq_ignore_ascii_case("nl") {
            Some(Locale::Nl)
        } else if primary.eq_ignore_ascii_case("en") {
            Some(Locale::En)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Locale::Nl => "nl",
            Locale::En => "en",
        }
    }
}

/// Formats a moment as local Europe/Amsterdam time for the given locale:
/// nl "maandag 30 november 2026 om 08:30", en "Monday 30 November 2026 at 08:30".
pub fn format_open_by(moment: DateTime<Utc>, locale: Locale) -> String {
    let local = moment.with_timezone(&Amsterdam);
    let (day, month, at) = match locale {
        Locale::Nl => (
            weekday_nl(local.weekday()),
            MONTHS_NL[local.month0() as usize],
            "om",
        ),
        Locale::En => (
            weekday_en(local.weekday()),
            MONTHS_EN[local.month0() as usize],
            "at",
        ),
    };
    format!(
        "{day} {} {month} {} {at} {:02}:{:02}",
        local.day(),
        local.year(),
        local.hour(),
        local.minute()
    )
}

/// Month names, as dates in the emails write them.
pub const MONTHS_NL: [&str; 12] = [
    "januari",
    "februari",
    "maart",
    "april",
    "mei",
    "juni",
    "juli",
    "augustus",
    "september",
    "oktober",
    "november",
    "december",
];

pub const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn weekday_nl(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "maandag",
        Weekday::Tue => "dinsdag",
        Weekday::Wed => "woensdag",
        Weekday::Thu => "donderdag",
        Weekday::Fri => "vrijdag",
        Weekday::Sat => "zaterdag",
        Weekday::Sun => "zondag",
    }
}

fn weekday_en(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn nl_date_across_dst() {
        assert_eq!(
            format_open_by(utc("2026-11-30T07:30:00Z"), Locale::Nl),
            "maandag 30 november 2026 om 08:30"
        );
        assert_eq!(
            format_open_by(utc("2027-04-01T06:30:00Z"), Locale::Nl),
            "donderdag 1 april 2027 om 08:30"
        );
    }

    #[test]
    fn en_date() {
        assert_eq!(
            format_open_by(utc("2026-11-30T07:30:00Z"), Locale::En),
            "Monday 30 November 2026 at 08:30"
        );
        assert_eq!(
            format_open_by(utc("2027-04-01T06:30:00Z"), Locale::En),
            "Thursday 1 April 2027 at 08:30"
        );
    }

    #[test]
    fn locale_parse() {
        assert_eq!(Locale::parse("nl"), Some(Locale::Nl));
        assert_eq!(Locale::parse("NL-nl"), Some(Locale::Nl));
        assert_eq!(Locale::parse(" en_GB "), Some(Locale::En));
        assert_eq!(Locale::parse("de"), None);
        assert_eq!(Locale::parse(""), None);
        for l in Locale::ALL {
            assert_eq!(Locale::parse(l.as_str()), Some(l));
        }
        assert_eq!(Locale::default(), Locale::Nl);
    }
}
