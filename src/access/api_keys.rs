//! API keys for police systems and admin clients: random, shown once, stored hashed.

use super::links::token_hash as hash;
use crate::db::schema::api_keys;
use crate::db::{ts, DbConn};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use rand::TryRngCore;

pub const SCOPES: &[&str] = &["events:write"];
const PREFIX: &str = "ssk_";
/// A test key says what it is, so it is not mistaken for a live one in a config file.
const TEST_PREFIX: &str = "ssk_test_";

crate::text_enum! {
    /// What a key's requests do.
    pub enum Mode {
        /// The real thing: events are decided, notices made, emails sent.
        Live = "live",
        /// For a police system's integration tests: an event is validated and decided
        /// against the real registry, answered as a live key would be, and then
        /// rolled back, so it leaves no notice, email, outcome message or inbox row.
        Test = "test",
    }
}

/// A presented key that exists: who it is (for the audit log), what it may do and
/// in which mode.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub mode: Mode,
}

#[derive(Queryable)]
struct KeyRow {
    id: String,
    name: String,
    scopes: String,
    #[diesel(deserialize_as = String)]
    mode: Mode,
}

/// Creates a key and returns it in the clear, the only time it exists so.
pub fn create(
    conn: &mut DbConn,
    name: &str,
    scopes: &[String],
    mode: Mode,
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
    let prefix = match mode {
        Mode::Live => PREFIX,
        Mode::Test => TEST_PREFIX,
    };
    let key = format!("{prefix}{}", hex::encode(bytes));
    diesel::insert_into(api_keys::table)
        .values((
            api_keys::id.eq(uuid::Uuid::new_v4().to_string()),
            api_keys::name.eq(name.trim()),
            api_keys::key_hash.eq(hash(&key)),
            api_keys::scopes.eq(scopes.join(" ")),
            api_keys::created_at.eq(ts(now)),
            api_keys::mode.eq(mode),
        ))
        .execute(conn)
        .map_err(|e| format!("could not store the key: {e}"))?;
    Ok(key)
}

/// The key presented, or `None` when no such key exists.
pub fn lookup(conn: &mut DbConn, key: &str) -> QueryResult<Option<KeyInfo>> {
    let row: Option<KeyRow> = api_keys::table
        .filter(api_keys::key_hash.eq(hash(key)))
        .select((
            api_keys::id,
            api_keys::name,
            api_keys::scopes,
            api_keys::mode,
        ))
        .first(conn)
        .optional()?;
    Ok(row.map(|r| KeyInfo {
        id: r.id,
        name: r.name,
        scopes: r.scopes.split_whitespace().map(str::to_string).collect(),
        mode: r.mode,
    }))
}
