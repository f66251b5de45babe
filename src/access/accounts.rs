//! Staff accounts: one per email address, holding the TOTP secret and the count of
//! failed attempts that leads to a lockout.

use super::audit::{self, Action, Outcome};
use crate::db::schema::{schools, staff_accounts as sa};
use crate::db::{ts, write_tx, DbConn};
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;

/// Wrong codes or links before a lockout, and how long it lasts.
pub const MAX_FAILURES: i32 = 5;
pub const LOCKOUT: Duration = Duration::minutes(15);

#[derive(Debug, Clone, Queryable)]
pub struct Account {
    pub email: String,
    pub totp_secret: Option<String>,
    pub totp_enrolled_at: Option<NaiveDateTime>,
    pub totp_last_step: i64,
    pub failed_attempts: i32,
    pub locked_until: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

impl Account {
    pub fn locked(&self, now: DateTime<Utc>) -> bool {
        self.locked_until.is_some_and(|until| until > ts(now))
    }
}

/// The account for `email`, created on first use.
pub fn ensure(conn: &mut DbConn, email: &str, now: DateTime<Utc>) -> QueryResult<Account> {
    let row = (sa::email.eq(email), sa::created_at.eq(ts(now)));
    // BACKEND-SPECIFIC: upserts are not in diesel's multi-backend subset.
    crate::per_backend!(conn => diesel::insert_into(sa::table)
        .values(row)
        .on_conflict_do_nothing()
        .execute(conn))?;
    sa::table.find(email).first(conn)
}

/// Stores a secret to enrol with, unless one is waiting already (so reloading the
/// page does not invalidate a QR code just scanned).
pub fn pending_secret(conn: &mut DbConn, account: &Account) -> QueryResult<String> {
    if let Some(secret) = &account.totp_secret {
        return Ok(secret.clone());
    }
    let secret = super::totp::new_secret();
    diesel::update(sa::table.find(&account.email))
        .set(sa::totp_secret.eq(Some(&secret)))
        .execute(conn)?;
    Ok(secret)
}

/// Records an accepted code: the step is used up, failures are forgotten, and a
/// first code completes the enrolment. Returns false, changing nothing, when this
/// step (or a later one) was used already, also by a concurrent request: the update
/// is conditional, so a code verifies once.
pub fn accept_code(
    conn: &mut DbConn,
    account: &Account,
    step: u64,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let step = i64::try_from(step).unwrap_or(i64::MAX);
    let changed = diesel::update(
        sa::table
            .find(&account.email)
            .filter(sa::totp_last_step.lt(step)),
    )
    .set((
        sa::totp_last_step.eq(step),
        sa::failed_attempts.eq(0),
        sa::locked_until.eq(None::<NaiveDateTime>),
        sa::totp_enrolled_at.eq(account.totp_enrolled_at.or(Some(ts(now)))),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}

/// Counts a wrong code or link; returns true when this one locked the account.
/// The count is incremented in SQL, so concurrent failures are all counted (the
/// update holds the row until commit); call inside a write transaction.
pub fn count_failure(
    conn: &mut DbConn,
    account: &Account,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    diesel::update(sa::table.find(&account.email))
        .set(sa::failed_attempts.eq(sa::failed_attempts + 1))
        .execute(conn)?;
    let failures: i32 = sa::table
        .find(&account.email)
        .select(sa::failed_attempts)
        .first(conn)?;
    let locks = failures >= MAX_FAILURES;
    if locks {
        diesel::update(sa::table.find(&account.email))
            .set((
                sa::failed_attempts.eq(0),
                sa::locked_until.eq(Some(ts(now + LOCKOUT))),
            ))
            .execute(conn)?;
    }
    Ok(locks)
}

/// Forgets the second factor (a lost phone) and ends the address's sessions: the
/// next sign-in enrols again.
/// Returns false when there is no such account.
pub fn reset_totp(conn: &mut DbConn, email: &str) -> QueryResult<bool> {
    let email = email.to_lowercase();
    // Sessions signed in with the old factor end too: the phone may be in other hands.
    super::sessions::end_all_of(conn, &email)?;
    let changed = diesel::update(sa::table.find(&email))
        .set((
            sa::totp_secret.eq(None::<String>),
            sa::totp_enrolled_at.eq(None::<NaiveDateTime>),
            sa::totp_last_step.eq(0),
            sa::failed_attempts.eq(0),
            sa::locked_until.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)?;
    Ok(changed > 0)
}

/// What an operator's `coordinators reset-totp` does: [`reset_totp`] in a write
/// transaction, then an audit row once it is done. Returns false, auditing nothing,
/// when there is no such account.
pub fn reset_totp_by_operator(
    conn: &mut DbConn,
    email: &str,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let known = write_tx(conn, |conn| reset_totp(conn, email.trim()))?;
    if known {
        audit::record(conn, "operator", Action::ResetTotp, None, Outcome::Ok, now)?;
    }
    Ok(known)
}

/// Schools whose coordinator or deputy is `email`, compared without case. Both
/// backends index `lower()` of both columns (migration 000006).
// BACKEND-NEUTRAL SQL: `lower` and `OR` read the same on PostgreSQL and SQLite.
type Backend = <DbConn as diesel::Connection>::Backend;

fn staffed_by(
    email: &str,
) -> Box<dyn BoxableExpression<schools::table, Backend, SqlType = diesel::sql_types::Bool>> {
    use diesel::sql_types::Text;
    let email = email.to_lowercase();
    Box::new(
        diesel::dsl::sql::<diesel::sql_types::Bool>("(lower(coordinator_email) = ")
            .bind::<Text, _>(email.clone())
            .sql(" OR lower(deputy_email) = ")
            .bind::<Text, _>(email)
            .sql(")"),
    )
}

/// The schools whose coordinator or deputy this address is.
pub fn schools_of(conn: &mut DbConn, email: &str) -> QueryResult<Vec<String>> {
    schools::table
        .filter(staffed_by(email))
        .select(schools::brin)
        .load(conn)
}

/// The name the registry gives this address (as coordinator or deputy of any
/// school), or None when the address is not one of them.
pub fn name_of(conn: &mut DbConn, email: &str) -> QueryResult<Option<String>> {
    let found: Option<(String, String, Option<String>)> = schools::table
        .filter(staffed_by(email))
        .select((
            schools::coordinator_name,
            schools::coordinator_email,
            schools::deputy_name,
        ))
        .first(conn)
        .optional()?;
    Ok(found.map(|(c_name, c_email, d_name)| {
        if c_email.eq_ignore_ascii_case(email) {
            c_name
        } else {
            d_name.unwrap_or_default()
        }
    }))
}

/// The locale of the first school (by BRIN) whose coordinator or deputy this is.
pub fn locale_of(conn: &mut DbConn, email: &str) -> QueryResult<Option<String>> {
    schools::table
        .filter(staffed_by(email))
        .order(schools::brin)
        .select(schools::locale)
        .first(conn)
        .optional()
}
