//! Enrollments and consent (contract section 5), and parental objections.

use super::csv_import::{self, ImportError, ImportSummary};
use super::KeyedHasher;
use crate::contract::Bsn;
use crate::db::schema::{enrollments, objections, schools};
use crate::db::{write_tx, DbConn};
use crate::sealing::{columns, Keyring};
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use std::collections::{HashMap, HashSet};
use std::io::Read;

pub const HEADERS: &[&str] = &[
    "bsn",
    "school_brin",
    "group",
    "valid_from",
    "valid_until",
    "consent",
];

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = enrollments)]
#[diesel(treat_none_as_null = true)]
pub struct NewEnrollment {
    pub bsn_hash: String,
    pub school_brin: String,
    pub grp: String,
    pub valid_from: NaiveDate,
    pub valid_until: Option<NaiveDate>,
    #[diesel(deserialize_as = String)]
    pub consent: Consent,
}

crate::text_enum! {
    /// Whether a child's parents allow this kind of notice (contract section 5).
    pub enum Consent {
        Granted = "granted",
        /// The parents objected.
        Objected = "objected",
    }
}

/// Checks every row (including that its school exists), then writes them all in one
/// transaction. Rows are keyed by (child, school, valid_from), so importing the same
/// file again changes nothing.
pub fn import(
    conn: &mut DbConn,
    (hasher, keys): (&KeyedHasher, &Keyring),
    input: impl Read,
) -> Result<ImportSummary, ImportError> {
    let known: HashSet<String> = schools::table
        .select(schools::brin)
        .load(conn)?
        .into_iter()
        .collect();
    let rows = parse(input, hasher, &known)?;
    Ok(write_tx(conn, |conn| write_rows(conn, keys, &rows))?)
}

/// The group as stored: sealed, unless empty (which tells nothing).
fn sealed_group(keys: &Keyring, row: &NewEnrollment) -> String {
    if row.grp.is_empty() {
        return String::new();
    }
    let name = columns::enrollment_row(&row.bsn_hash, &row.school_brin);
    keys.seal(columns::ENROLLMENT_GROUP.at(&name), &row.grp)
}

/// The group as read: opened.
fn opened_group(
    keys: &Keyring,
    bsn_hash: &str,
    school_brin: &str,
    grp: &str,
) -> QueryResult<String> {
    let name = columns::enrollment_row(bsn_hash, school_brin);
    Ok(keys.open(columns::ENROLLMENT_GROUP.at(&name), grp)?)
}

/// Checks the header and every row against the `known` school codes, without the
/// database: every enrollment of the file, or every bad row.
pub fn parse(
    input: impl Read,
    hasher: &KeyedHasher,
    known: &HashSet<String>,
) -> Result<Vec<NewEnrollment>, ImportError> {
    let mut seen = HashSet::new();
    csv_import::parse_all(input, HEADERS, |row| {
        let enrollment = parse_row(row, hasher, known)?;
        let key = (
            enrollment.bsn_hash.clone(),
            enrollment.school_brin.clone(),
            enrollment.valid_from,
        );
        if !seen.insert(key) {
            return Err("the same child, school and valid_from appear earlier in the file".into());
        }
        Ok(enrollment)
    })
}

fn parse_row(
    row: &csv_import::Row,
    hasher: &KeyedHasher,
    known: &HashSet<String>,
) -> Result<NewEnrollment, String> {
    let bsn = Bsn::parse(row.get("bsn")).ok_or("bsn must be 9 digits that pass the eleven test")?;
    let school_brin = csv_import::brin(row.get("school_brin"))?;
    if !known.contains(&school_brin) {
        return Err("school_brin is not a known school; import the school first".into());
    }
    let grp = row.get("group");
    if grp.chars().count() > 50 || grp.chars().any(char::is_control) {
        return Err("group must be at most 50 characters, without control characters".into());
    }
    let valid_from = csv_import::date("valid_from", row.get("valid_from"))?;
    let valid_until = match row.get("valid_until") {
        "" => None,
        raw => Some(csv_import::date("valid_until", raw)?),
    };
    if valid_until.is_some_and(|until| until < valid_from) {
        return Err("valid_until is before valid_from".into());
    }
    let consent = row
        .get("consent")
        .parse::<Consent>()
        .map_err(|_| "consent must be granted or objected")?;
    Ok(NewEnrollment {
        bsn_hash: hasher.bsn(&bsn),
        school_brin,
        grp: grp.to_string(),
        valid_from,
        valid_until,
        consent,
    })
}

/// Inserts new rows, updates changed ones, and counts the unchanged.
fn write_rows(
    conn: &mut DbConn,
    keys: &Keyring,
    rows: &[NewEnrollment],
) -> QueryResult<ImportSummary> {
    let mut summary = ImportSummary::default();
    for row in rows {
        let key = enrollments::table
            .filter(enrollments::bsn_hash.eq(&row.bsn_hash))
            .filter(enrollments::school_brin.eq(&row.school_brin))
            .filter(enrollments::valid_from.eq(row.valid_from));
        let existing: Option<NewEnrollment> = key
            .select(NewEnrollment::as_select())
            .first(conn)
            .optional()?;
        let stored = NewEnrollment {
            grp: sealed_group(keys, row),
            ..row.clone()
        };
        match existing {
            Some(mut old) => {
                old.grp = opened_group(keys, &old.bsn_hash, &old.school_brin, &old.grp)?;
                if &old == row {
                    summary.unchanged += 1;
                } else {
                    diesel::update(key).set(&stored).execute(conn)?;
                    summary.updated += 1;
                }
            }
            None => {
                diesel::insert_into(enrollments::table)
                    .values(&stored)
                    .execute(conn)?;
                summary.inserted += 1;
            }
        }
    }
    Ok(summary)
}

/// Records that a child's parents object. It takes effect for every decision from
/// now on, whatever a later import says. Returns false if it was already recorded.
pub fn record_objection(
    conn: &mut DbConn,
    hasher: &KeyedHasher,
    bsn: &Bsn,
    now: NaiveDateTime,
) -> Result<bool, diesel::result::Error> {
    let bsn_hash = hasher.bsn(bsn);
    write_tx(conn, |conn| {
        let exists = objections::table
            .find(&bsn_hash)
            .count()
            .get_result::<i64>(conn)?
            > 0;
        if !exists {
            diesel::insert_into(objections::table)
                .values((
                    objections::bsn_hash.eq(&bsn_hash),
                    objections::recorded_at.eq(now),
                ))
                .execute(conn)?;
        }
        Ok(!exists)
    })
}

/// What the registry says about a child on a date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    NotEnrolled,
    NoConsent,
    Enrolled {
        school_brin: String,
        group: String,
        holiday_region: String,
        school_day_start: String,
    },
}

/// One enrollment as the decision sees it, with its school's participation.
#[derive(Debug, Clone, Queryable)]
struct Entry {
    bsn_hash: String,
    id: i64,
    school_brin: String,
    grp: String,
    #[diesel(deserialize_as = String)]
    consent: Consent,
    valid_from: NaiveDate,
    valid_until: Option<NaiveDate>,
    participating: bool,
    holiday_region: String,
    school_day_start: String,
}

/// The registry entries of many children, loaded in a few queries so that a whole
/// intake batch is decided without a query per child.
#[derive(Debug, Default)]
pub struct RegistrySlice {
    enrollments: HashMap<String, Vec<Entry>>,
    objected: HashSet<String>,
}

impl RegistrySlice {
    /// The entries of `bsn_hashes`, their groups opened.
    pub fn load(conn: &mut DbConn, keys: &Keyring, bsn_hashes: &[&str]) -> QueryResult<Self> {
        let mut slice = RegistrySlice::default();
        for chunk in bsn_hashes.chunks(crate::db::CHUNK) {
            let entries: Vec<Entry> = enrollments::table
                .inner_join(schools::table)
                .filter(enrollments::bsn_hash.eq_any(chunk))
                .select((
                    enrollments::bsn_hash,
                    enrollments::id,
                    enrollments::school_brin,
                    enrollments::grp,
                    enrollments::consent,
                    enrollments::valid_from,
                    enrollments::valid_until,
                    schools::participating,
                    schools::holiday_region,
                    schools::school_day_start,
                ))
                .load(conn)?;
            for mut entry in entries {
                entry.grp = opened_group(keys, &entry.bsn_hash, &entry.school_brin, &entry.grp)?;
                slice
                    .enrollments
                    .entry(entry.bsn_hash.clone())
                    .or_default()
                    .push(entry);
            }
            let objected: Vec<String> = objections::table
                .filter(objections::bsn_hash.eq_any(chunk))
                .select(objections::bsn_hash)
                .load(conn)?;
            slice.objected.extend(objected);
        }
        Ok(slice)
    }

    /// The child's enrollment on `date`. Where enrollments overlap, the one that
    /// started last wins: it is the most recent word of the registry.
    pub fn lookup(&self, bsn_hash: &str, date: NaiveDate) -> Lookup {
        let current = self
            .enrollments
            .get(bsn_hash)
            .into_iter()
            .flatten()
            .filter(|e| e.valid_from <= date && e.valid_until.is_none_or(|until| until >= date))
            .max_by_key(|e| (e.valid_from, e.id));
        let Some(entry) = current else {
            return Lookup::NotEnrolled;
        };
        if self.objected.contains(bsn_hash)
            || entry.consent != Consent::Granted
            || !entry.participating
        {
            return Lookup::NoConsent;
        }
        Lookup::Enrolled {
            school_brin: entry.school_brin.clone(),
            group: entry.grp.clone(),
            holiday_region: entry.holiday_region.clone(),
            school_day_start: entry.school_day_start.clone(),
        }
    }
}

/// The child's enrollment on `date` (see [`RegistrySlice::lookup`]).
pub fn lookup(
    conn: &mut DbConn,
    keys: &Keyring,
    bsn_hash: &str,
    date: NaiveDate,
) -> QueryResult<Lookup> {
    Ok(RegistrySlice::load(conn, keys, &[bsn_hash])?.lookup(bsn_hash, date))
}
