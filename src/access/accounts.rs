//! Staff accounts: one per email address, holding the TOTP secret, the count of
//! failed attempts that leads to a lockout, and how many lockouts came in a row.

use super::audit::{self, Action, Outcome};
use crate::db::schema::{schools, staff_accounts as sa};
use crate::db::{ts, write_tx, DbConn};
use crate::sealing::{columns, Keyring, SealError};
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;

/// Wrong codes before a lockout.
pub const MAX_FAILURES: i32 = 5;
/// The first lockout; each one after it, with no accepted code in between, lasts
/// twice as long as the one before, up to [`LOCKOUT_MAX`].
pub const LOCKOUT: Duration = Duration::minutes(15);
/// The longest lockout. An operator's `coordinators reset-totp` lifts any lockout.
pub const LOCKOUT_MAX: Duration = Duration::hours(24);

/// How long the `nth` lockout in a row lasts (the first is 1): 15 minutes, 30, 60,
/// …, at most [`LOCKOUT_MAX`].
pub fn lockout_for(nth: i32) -> Duration {
    let doublings = nth.saturating_sub(1).clamp(0, 16) as u32;
    let minutes = LOCKOUT.num_minutes().saturating_mul(1 << doublings);
    Duration::minutes(minutes).min(LOCKOUT_MAX)
}

#[derive(Debug, Clone, Queryable)]
pub struct Account {
    pub email: String,
    pub totp_secret: Option<String>,
    pub totp_enrolled_at: Option<NaiveDateTime>,
    pub totp_last_step: i64,
    pub failed_attempts: i32,
    pub locked_until: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    /// Lockouts since the last accepted code.
    pub lockouts: i32,
}

impl Account {
    /// The TOTP secret, opened; None before enrolment began.
    pub fn secret(&self, keys: &Keyring) -> Result<Option<String>, SealError> {
        let place = columns::TOTP_SECRET.at(&self.email);
        keys.open_opt(place, self.totp_secret.as_deref())
    }

    pub fn locked(&self, now: DateTime<Utc>) -> bool {
        self.locked_until.is_some_and(|until| until > ts(now))
    }

    /// Whether a lockout ran out: the failures it counted are done with.
    fn lockout_over(&self, now: DateTime<Utc>) -> bool {
        self.locked_until.is_some_and(|until| until <= ts(now))
    }
}

/// The account for `email`, created on first use.
pub fn ensure(conn: &mut DbConn, email: &str, now: DateTime<Utc>) -> QueryResult<Account> {
    create(conn, email, now)?;
    sa::table.find(email).first(conn)
}

/// Like [`ensure`], with the row locked until the transaction ends (`SELECT … FOR
/// UPDATE` on PostgreSQL; on SQLite the write transaction is the only writer). What
/// is decided from it (locked or not, how many failures) then still holds when it
/// is written: concurrent requests for one account take their turn. Call inside a
/// write transaction.
pub fn lock(conn: &mut DbConn, email: &str, now: DateTime<Utc>) -> QueryResult<Account> {
    create(conn, email, now)?;
    let rows: Vec<Account> = crate::locked!(conn, sa::table.find(email));
    rows.into_iter()
        .next()
        .ok_or(diesel::result::Error::NotFound)
}

fn create(conn: &mut DbConn, email: &str, now: DateTime<Utc>) -> QueryResult<()> {
    let row = (sa::email.eq(email), sa::created_at.eq(ts(now)));
    // BACKEND-SPECIFIC: upserts are not in diesel's multi-backend subset.
    crate::per_backend!(conn => diesel::insert_into(sa::table)
        .values(row)
        .on_conflict_do_nothing()
        .execute(conn))?;
    Ok(())
}

/// Stores a secret to enrol with, sealed, unless one is waiting already (so
/// reloading the page does not invalidate a QR code just scanned).
pub fn pending_secret(conn: &mut DbConn, keys: &Keyring, account: &Account) -> QueryResult<String> {
    if let Some(secret) = account.secret(keys)? {
        return Ok(secret);
    }
    let secret = super::totp::new_secret();
    let sealed = keys.seal(columns::TOTP_SECRET.at(&account.email), &secret);
    diesel::update(sa::table.find(&account.email))
        .set(sa::totp_secret.eq(Some(sealed)))
        .execute(conn)?;
    Ok(secret)
}

/// Records an accepted code: the step is used up, failures and lockouts are
/// forgotten, and a first code completes the enrolment. Returns false, changing
/// nothing, when this step (or a later one) was used already, or while the account
/// is locked: the update is conditional, so a code verifies once, and never during
/// a lockout. Call with the row locked ([`lock`]), after checking [`Account::locked`].
pub fn accept_code(
    conn: &mut DbConn,
    account: &Account,
    step: u64,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let step = i64::try_from(step).unwrap_or(i64::MAX);
    let unlocked = sa::locked_until.is_null().or(sa::locked_until.le(ts(now)));
    let changed = diesel::update(
        sa::table
            .find(&account.email)
            .filter(sa::totp_last_step.lt(step))
            .filter(unlocked),
    )
    .set((
        sa::totp_last_step.eq(step),
        sa::failed_attempts.eq(0),
        sa::locked_until.eq(None::<NaiveDateTime>),
        sa::lockouts.eq(0),
        sa::totp_enrolled_at.eq(account.totp_enrolled_at.or(Some(ts(now)))),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}

/// Counts a wrong code; returns true when this one locked the account. Call with
/// the row locked ([`lock`]) and only while it is not locked: then `account` is
/// what the row holds, and the count written is the one read plus one, whatever
/// other requests for the account do meanwhile. A lockout keeps its count (the
/// row shows the failures that caused it); the first failure after it has run out
/// starts a new count. The lockout's length doubles with each one in a row.
pub fn count_failure(
    conn: &mut DbConn,
    account: &Account,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let fresh = account.lockout_over(now);
    let failures = if fresh {
        1
    } else {
        account.failed_attempts + 1
    };
    let locks = failures >= MAX_FAILURES;
    let lockouts = account.lockouts + i32::from(locks);
    let until = match (locks, fresh) {
        (true, _) => Some(ts(now + lockout_for(lockouts))),
        (false, true) => None,
        (false, false) => account.locked_until,
    };
    diesel::update(sa::table.find(&account.email))
        .set((
            sa::failed_attempts.eq(failures),
            sa::lockouts.eq(lockouts),
            sa::locked_until.eq(until),
        ))
        .execute(conn)?;
    Ok(locks)
}

/// Forgets the second factor (a lost phone), lifts any lockout and ends the
/// address's sessions: the next sign-in enrols again.
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
            sa::lockouts.eq(0),
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
