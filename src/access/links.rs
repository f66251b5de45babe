//! Link tokens: the secret in an email's link. Random (256 bits), stored only as a
//! hash, bound to an address (and to a notice, for a notice email's link), single
//! use, and with an end. This module is their only owner.

use crate::db::schema::access_tokens as t;
use crate::db::{ts, DbConn, CHUNK};
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use sha2::{Digest, Sha256};

/// A random secret of 256 bits, hex-encoded.
pub fn random_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
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
