//! API keys for police systems and admin clients: random, shown once, stored hashed.

use super::links::token_hash as hash;
use crate::db::schema::api_keys;
use crate::db::{ts, DbConn};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use rand::TryRngCore;

pub const SCOPES: &[&str] = &["events:write"];
const PREFIX: &str = "ssk_";

/// Creates a key and returns it in the clear, the only time it exists so.
pub fn create(
    conn: &mut DbConn,
    name: &str,
    scopes: &[String],
    now: DateTime<Utc>,
) -> Result<String, String> {
    if name.trim().is_empty() || name.len() > 100 {
        return Err("--name must be 1 to 100 characters".into());
    }
    if scopes.is_empty() {
        return Err(format!("give at least one --scope ({})", SCOPES.join(", ")));
    }
    if let Some(bad) = scopes.iter().find(|s| !SCOPES.contains(&s.as_str())) {
        return Err(format!(
            "unknown scope `{bad}`; known: {}",
            SCOPES.join(", ")
        ));
    }
    // 256 bits from the OS generator: a key cannot be guessed, so a plain SHA-256
    // of it is a safe thing to store.
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|_| "no randomness available")?;
    let key = format!("{PREFIX}{}", hex::encode(bytes));
    diesel::insert_into(api_keys::table)
        .values((
            api_keys::id.eq(uuid::Uuid::new_v4().to_string()),
            api_keys::name.eq(name.trim()),
            api_keys::key_hash.eq(hash(&key)),
            api_keys::scopes.eq(scopes.join(" ")),
            api_keys::created_at.eq(ts(now)),
        ))
        .execute(conn)
        .map_err(|e| format!("could not store the key: {e}"))?;
    Ok(key)
}

/// The scopes of a presented key, or `None` when no such key exists.
pub fn scopes_of(conn: &mut DbConn, key: &str) -> QueryResult<Option<Vec<String>>> {
    let scopes: Option<String> = api_keys::table
        .filter(api_keys::key_hash.eq(hash(key)))
        .select(api_keys::scopes)
        .first(conn)
        .optional()?;
    Ok(scopes.map(|s| s.split_whitespace().map(str::to_string).collect()))
}
