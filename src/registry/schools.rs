//! Schools and their care coordinators: `schoolsignal schools import FILE.csv`.

use super::csv_import::{self, ImportError, ImportSummary, Row};
use super::simulated as simulator;
use crate::db::{schema::schools, write_tx, DbConn};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use email_address::EmailAddress;
use std::collections::HashSet;
use std::io::Read;

pub const HEADERS: &[&str] = &[
    "brin",
    "name",
    "holiday_region",
    "locale",
    "school_day_start",
    "coordinator_name",
    "coordinator_email",
    "deputy_name",
    "deputy_email",
    "participating",
];

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = schools)]
#[diesel(treat_none_as_null = true)]
pub struct School {
    pub brin: String,
    pub name: String,
    pub holiday_region: String,
    pub locale: String,
    pub school_day_start: String,
    pub coordinator_name: String,
    pub coordinator_email: String,
    pub deputy_name: Option<String>,
    pub deputy_email: Option<String>,
    pub participating: bool,
    pub updated_at: NaiveDateTime,
}

impl School {
    fn same_content(&self, other: &School) -> bool {
        School {
            updated_at: other.updated_at,
            ..self.clone()
        } == *other
    }
}

fn parse_row(row: &Row, now: NaiveDateTime, simulated: Simulated) -> Result<School, String> {
    let brin = csv_import::brin(row.get("brin")).map_err(|m| m.replace("school_brin", "brin"))?;
    let holiday_region = one_of(row, "holiday_region", &["noord", "midden", "zuid"])?;
    let locale = one_of(row, "locale", &["nl", "en"])?;
    let start = row.get("school_day_start");
    if start.len() != 5 || chrono::NaiveTime::parse_from_str(start, "%H:%M").is_err() {
        return Err("school_day_start must be a time as HH:MM".into());
    }
    let coordinator_email = email("coordinator_email", row.get("coordinator_email"))?;
    let (deputy_name, deputy_email) = deputy(row)?;
    for (col, address) in [
        ("coordinator_email", Some(&coordinator_email)),
        ("deputy_email", deputy_email.as_ref()),
    ] {
        check_simulated(col, address.map_or("", |a| a.as_str()), simulated)?;
    }
    let participating = match row.get("participating") {
        "true" => true,
        "false" => false,
        _ => return Err("participating must be true or false".into()),
    };
    Ok(School {
        brin,
        name: required(row, "name")?,
        holiday_region,
        locale,
        school_day_start: start.to_string(),
        coordinator_name: required(row, "coordinator_name")?,
        coordinator_email,
        deputy_name,
        deputy_email,
        participating,
        updated_at: now,
    })
}

/// A column that must hold one of `allowed`.
fn one_of(row: &Row, col: &str, allowed: &[&str]) -> Result<String, String> {
    let value = row.get(col);
    if allowed.contains(&value) {
        return Ok(value.to_string());
    }
    let (last, first) = allowed.split_last().expect("a choice");
    Err(format!("{col} must be {} or {last}", first.join(", ")))
}

fn required(row: &Row, col: &str) -> Result<String, String> {
    match row.get(col) {
        "" => Err(format!("{col} is required")),
        v if v.chars().count() > 200 || v.chars().any(char::is_control) => Err(format!(
            "{col} must be at most 200 characters, without control characters"
        )),
        v => Ok(v.to_string()),
    }
}

/// Whether `value` could be a coordinator's or a deputy's address: what the import
/// takes. Sign-in refuses any other before it looks anything up.
pub fn is_coordinator_address(value: &str) -> bool {
    let options = email_address::Options {
        minimum_sub_domains: 2,
        allow_domain_literal: false,
        allow_display_text: false,
    };
    !value.chars().any(char::is_control) && EmailAddress::parse_with_options(value, options).is_ok()
}

/// A bare address on a real domain: no display name ("Name <a@b.nl>"), no IP literal
/// and no single-label host, which could never match a sign-in.
fn email(col: &str, value: &str) -> Result<String, String> {
    if is_coordinator_address(value) {
        Ok(value.to_string())
    } else {
        Err(format!("{col} is not a valid email address"))
    }
}

/// Whether the import takes simulated schools (addresses at the simulator's domain).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Simulated {
    Allowed,
    /// Production without `SCHOOLSIGNAL_ALLOW_SIMULATED_SCHOOLS=true`.
    Refused,
}

/// A simulated address must be one of the simulator's, and allowed.
fn check_simulated(col: &str, address: &str, simulated: Simulated) -> Result<(), String> {
    if !simulator::is_simulated(address) {
        return Ok(());
    }
    if simulated == Simulated::Refused {
        return Err(format!(
            "{col} is a simulated address (@{}), refused in production unless \
             SCHOOLSIGNAL_ALLOW_SIMULATED_SCHOOLS=true",
            simulator::DOMAIN
        ));
    }
    if simulator::behaviour(address).is_none() {
        let known: Vec<&str> = simulator::LOCAL_PARTS.iter().map(|(l, _)| *l).collect();
        return Err(format!(
            "{col} is at @{} but its local part is not one of {}",
            simulator::DOMAIN,
            known.join(", ")
        ));
    }
    Ok(())
}

/// How many schools have a simulated coordinator or deputy address. Checked in Rust
/// with [`simulator::is_simulated`], the same test the import and the transport use
/// (the domain without case); read once at startup.
pub fn count_simulated(conn: &mut DbConn) -> QueryResult<usize> {
    let addresses: Vec<(String, Option<String>)> = schools::table
        .select((schools::coordinator_email, schools::deputy_email))
        .load(conn)?;
    Ok(addresses
        .iter()
        .filter(|(c, d)| {
            simulator::is_simulated(c) || d.as_deref().is_some_and(simulator::is_simulated)
        })
        .count())
}

/// A school may have no deputy; then both deputy columns are empty.
fn deputy(row: &Row) -> Result<(Option<String>, Option<String>), String> {
    match (row.get("deputy_name"), row.get("deputy_email")) {
        ("", "") => Ok((None, None)),
        (_, "") | ("", _) => {
            Err("deputy_name and deputy_email are both given or both empty".into())
        }
        (_, e) => Ok((
            Some(required(row, "deputy_name")?),
            Some(email("deputy_email", e)?),
        )),
    }
}

/// Checks the header and every row, without the database: every school of the file,
/// or every bad row.
pub fn parse(
    input: impl Read,
    now: NaiveDateTime,
    simulated: Simulated,
) -> Result<Vec<School>, ImportError> {
    let mut seen = HashSet::new();
    csv_import::parse_all(input, HEADERS, |row| {
        let school = parse_row(row, now, simulated)?;
        if !seen.insert(school.brin.clone()) {
            return Err("this brin appears earlier in the file".into());
        }
        Ok(school)
    })
}

/// Checks every row, then writes them all in one transaction.
pub fn import(
    conn: &mut DbConn,
    input: impl Read,
    now: NaiveDateTime,
    simulated: Simulated,
) -> Result<ImportSummary, ImportError> {
    let rows = parse(input, now, simulated)?;
    write_tx(conn, |conn| {
        let mut summary = ImportSummary::default();
        for school in rows {
            let existing: Option<School> = schools::table
                .find(&school.brin)
                .select(School::as_select())
                .first(conn)
                .optional()?;
            match existing {
                Some(old) if old.same_content(&school) => summary.unchanged += 1,
                Some(_) => {
                    diesel::update(schools::table.find(&school.brin))
                        .set(&school)
                        .execute(conn)?;
                    summary.updated += 1;
                }
                None => {
                    diesel::insert_into(schools::table)
                        .values(&school)
                        .execute(conn)?;
                    summary.inserted += 1;
                }
            }
        }
        Ok(summary)
    })
}
