//! Link tokens: the secret in an email's link. Random (256 bits), stored only as a
//! hash, bound to an address (and to a notice, for a notice email's link), single
//! use, and with an end. This module is their only owner.

use crate::db::schema::access_tokens as t;
use crate::db::{ts, DbConn, CHUNK};
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use sha2::{Digest, Sha256};

/// A random secret of 256 bits, hex-encoded.
pub fn random_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Whether `token` has the form [`random_secret`] gives: 64 lowercase hex digits.
/// Anything else was never issued, and is answered without a lookup.
pub fn is_well_formed(token: &str) -> bool {
    token.len() == 64
        && token
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// How a link token is stored. A link's token is hashed the same way to find it.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A link to issue: to `email`, about `notice_id` (None for a sign-in link).
pub struct NewLink<'a> {
    pub notice_id: Option<&'a str>,
    pub email: &'a str,
}

/// Issues one token per link, valid for `valid_for`; returns the secrets, in order.
pub fn issue(
    conn: &mut DbConn,
    links: &[NewLink],
    valid_for: Duration,
    now: DateTime<Utc>,
) -> QueryResult<Vec<String>> {
    let secrets: Vec<String> = links.iter().map(|_| random_secret()).collect();
    let rows: Vec<_> = links
        .iter()
        .zip(&secrets)
        .map(|(link, secret)| {
            (
                t::token_hash.eq(token_hash(secret)),
                t::notice_id.eq(link.notice_id),
                t::recipient_email.eq(link.email),
                t::created_at.eq(ts(now)),
                t::expires_at.eq(ts(now + valid_for)),
            )
        })
        .collect();
    crate::insert_chunks!(conn, t::table, rows);
    Ok(secrets)
}

/// Forgets tokens whose link was never sent, or was refused by the mail server.
pub fn forget(conn: &mut DbConn, secrets: &[&str]) -> QueryResult<()> {
    let hashes: Vec<String> = secrets.iter().map(|s| token_hash(s)).collect();
    for chunk in hashes.chunks(CHUNK) {
        diesel::delete(t::table.filter(t::token_hash.eq_any(chunk))).execute(conn)?;
    }
    Ok(())
}

/// A stored link, found by its token's hash.
#[derive(Debug, Clone, Queryable)]
pub struct Link {
    /// None for a sign-in link, which leads to the list.
    pub notice_id: Option<String>,
    pub recipient_email: String,
    pub expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
}

/// The link whose token hashes to `hash`, if there is one.
pub fn find(conn: &mut DbConn, hash: &str) -> QueryResult<Option<Link>> {
    t::table
        .find(hash)
        .select((t::notice_id, t::recipient_email, t::expires_at, t::used_at))
        .first(conn)
        .optional()
}

/// Marks a link used. Returns false, changing nothing, when it was used already.
/// The update is conditional, so that of two concurrent redemptions exactly one
/// changes the row: the other waits for the first's commit, then finds it used.
pub fn claim(conn: &mut DbConn, hash: &str, now: DateTime<Utc>) -> QueryResult<bool> {
    let claimed = diesel::update(t::table.find(hash).filter(t::used_at.is_null()))
        .set(t::used_at.eq(Some(ts(now))))
        .execute(conn)?;
    Ok(claimed == 1)
}

/// How many sign-in links (links without a notice) `email` was issued after `since`.
pub fn sign_in_links_since(
    conn: &mut DbConn,
    email: &str,
    since: DateTime<Utc>,
) -> QueryResult<i64> {
    t::table
        .filter(t::recipient_email.eq(email))
        .filter(t::notice_id.is_null())
        .filter(t::created_at.gt(ts(since)))
        .count()
        .get_result(conn)
}

/// Forgets every link to these notices, a chunk at a time: once a notice's data is
/// purged, its links lead nowhere.
pub fn forget_for_notices(conn: &mut DbConn, notice_ids: &[String]) -> QueryResult<usize> {
    let mut forgotten = 0;
    for chunk in notice_ids.chunks(CHUNK) {
        forgotten += diesel::delete(t::table.filter(t::notice_id.eq_any(chunk))).execute(conn)?;
    }
    Ok(forgotten)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_issued_form_is_well_formed() {
        assert!(is_well_formed(&random_secret()));
        assert!(!is_well_formed(&random_secret().to_uppercase()));
        assert!(!is_well_formed(&random_secret()[..63]));
        assert!(!is_well_formed("../../login"));
        assert!(!is_well_formed(""));
    }
}
