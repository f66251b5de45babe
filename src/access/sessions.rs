//! Server-side sessions: the cookie holds a random id, the database its hash. A
//! session starts when a link is redeemed and is verified once the second factor is.

use super::links::{random_secret, token_hash};
use crate::db::schema::{notices, schools, sessions};
use crate::db::{ts, DbConn};
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;

/// Idle and absolute lifetimes.
pub const IDLE: Duration = Duration::minutes(30);
pub const ABSOLUTE: Duration = Duration::hours(12);
const TOUCH_EVERY: Duration = Duration::minutes(1);

#[derive(Debug, Clone, Queryable)]
pub struct Session {
    pub id_hash: String,
    pub email: String,
    pub csrf_token: String,
    pub notice_id: Option<String>,
    pub created_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
    pub verified_at: Option<NaiveDateTime>,
}

impl Session {
    pub fn verified(&self) -> bool {
        self.verified_at.is_some()
    }
}

/// Session ids are stored the way link tokens are: as a hash.
pub fn hash(value: &str) -> String {
    token_hash(value)
}

/// Starts a session; returns the cookie value, which only the browser keeps.
pub fn start(
    conn: &mut DbConn,
    email: &str,
    notice_id: Option<&str>,
    now: DateTime<Utc>,
) -> QueryResult<String> {
    let id = random_secret();
    diesel::insert_into(sessions::table)
        .values((
            sessions::id_hash.eq(hash(&id)),
            sessions::email.eq(email),
            sessions::csrf_token.eq(random_secret()),
            sessions::notice_id.eq(notice_id),
            sessions::created_at.eq(ts(now)),
            sessions::last_seen_at.eq(ts(now)),
        ))
        .execute(conn)?;
    Ok(id)
}

/// The live session for a cookie value, touched; an expired one is ended.
pub fn find(conn: &mut DbConn, cookie: &str, now: DateTime<Utc>) -> QueryResult<Option<Session>> {
    Ok(find_with_locale(conn, cookie, now)?.map(|(session, _)| session))
}

/// Like [`find`], with the locale of the school of the session's notice (None for a
/// session without one), read in the same query.
pub fn find_with_locale(
    conn: &mut DbConn,
    cookie: &str,
    now: DateTime<Utc>,
) -> QueryResult<Option<(Session, Option<String>)>> {
    let id_hash = hash(cookie);
    let found: Option<(Session, Option<String>)> = sessions::table
        .left_join(notices::table.on(sessions::notice_id.eq(notices::id.nullable())))
        .left_join(schools::table.on(schools::brin.eq(notices::school_brin)))
        .filter(sessions::id_hash.eq(&id_hash))
        .select((sessions::all_columns, schools::locale.nullable()))
        .first(conn)
        .optional()?;
    let Some((session, locale)) = found else {
        return Ok(None);
    };
    let now_ts = ts(now);
    if now_ts - session.last_seen_at > IDLE || now_ts - session.created_at > ABSOLUTE {
        end(conn, &id_hash)?;
        return Ok(None);
    }
    // Touched at most once a minute: the idle limit keeps its meaning, and most
    // requests write nothing for it.
    if now_ts - session.last_seen_at > TOUCH_EVERY {
        diesel::update(sessions::table.find(&id_hash))
            .set(sessions::last_seen_at.eq(now_ts))
            .execute(conn)?;
    }
    Ok(Some((session, locale)))
}

pub fn mark_verified(conn: &mut DbConn, id_hash: &str, now: DateTime<Utc>) -> QueryResult<()> {
    diesel::update(sessions::table.find(id_hash))
        .set(sessions::verified_at.eq(Some(ts(now))))
        .execute(conn)?;
    Ok(())
}

pub fn end(conn: &mut DbConn, id_hash: &str) -> QueryResult<()> {
    diesel::delete(sessions::table.find(id_hash)).execute(conn)?;
    Ok(())
}

/// Ends every session of an address.
pub fn end_all_of(conn: &mut DbConn, email: &str) -> QueryResult<()> {
    diesel::delete(sessions::table.filter(sessions::email.eq(email))).execute(conn)?;
    Ok(())
}

/// Compares secrets in constant time.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}
