//! The data keys this database has seen, and the walks over every sealed column:
//! `keys rotate` re-seals under the current key, `keys check` counts values per key.

use super::backend::{self, Bind};
use super::schema::key_fingerprints as kf;
use super::{ts, write_tx, DbConn};
use crate::sealing::{Column, Keyring, RowKey, SealError, PREFIX, SEALED};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

/// `key_fingerprints.purpose` of the data keys.
const DATA: &str = "data";

/// The id of the key that comes with the source (`DEV_DATA_KEYS`).
const DEV_KEY_ID: &str = "dev";

/// Errors of the key checks and walks. None names a value or a person.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "SCHOOLSIGNAL_DATA_KEYS: key `{0}` is not the key this database knows by that id \
         (its fingerprint differs); refusing to run, so that nothing is sealed that no one \
         can open. Give the key its right secret, or a new id."
    )]
    Mismatch(String),
    #[error(
        "SCHOOLSIGNAL_DATA_KEYS: this database holds data sealed under keys of your own, \
         so the development key is refused here"
    )]
    DevelopmentKey,
    #[error("{column}: {error}")]
    Unreadable { column: String, error: SealError },
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

/// Records the fingerprint of each configured key the first time the database sees
/// it, and refuses a key whose id it knows with another fingerprint, or the
/// development key once keys of one's own were used. Runs before anything is written.
pub fn register(conn: &mut DbConn, keys: &Keyring, now: DateTime<Utc>) -> Result<(), KeyError> {
    write_tx(conn, |conn| {
        let known: Vec<(String, String)> = kf::table
            .filter(kf::purpose.eq(DATA))
            .select((kf::key_id, kf::fingerprint))
            .load(conn)?;
        for (id, fingerprint) in keys.fingerprints() {
            match known.iter().find(|(k, _)| k == id) {
                Some((_, f)) if f != fingerprint => return Err(KeyError::Mismatch(id.into())),
                Some(_) => {}
                None => record(conn, id, fingerprint, now)?,
            }
        }
        let own_keys = known.iter().any(|(id, _)| id != DEV_KEY_ID);
        if own_keys && keys.current_id() == DEV_KEY_ID {
            return Err(KeyError::DevelopmentKey);
        }
        Ok(())
    })
}

fn record(conn: &mut DbConn, id: &str, fingerprint: &str, now: DateTime<Utc>) -> QueryResult<()> {
    let row = (
        kf::purpose.eq(DATA),
        kf::key_id.eq(id),
        kf::fingerprint.eq(fingerprint),
        kf::recorded_at.eq(ts(now)),
    );
    // A replica starting at the same moment may record it first; the next start
    // compares against its row.
    crate::per_backend!(conn => diesel::insert_into(kf::table)
        .values(row)
        .on_conflict_do_nothing()
        .execute(conn))?;
    Ok(())
}

/// How many values of one sealed column are sealed under one key; `key_id` is None
/// for values still in the clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCount {
    pub column: String,
    pub key_id: Option<String>,
    pub values: i64,
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = Text)]
    key_id: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The values of every sealed column, counted by the key that sealed them.
pub fn check(conn: &mut DbConn) -> QueryResult<Vec<KeyCount>> {
    let mut counts = Vec::new();
    for column in SEALED {
        let name = column.name;
        let key_id = backend::sealed_key_id(conn, name);
        let sql = format!(
            "SELECT CASE WHEN {name} LIKE '{PREFIX}%' THEN {key_id} ELSE '' END AS key_id, \
             COUNT(*) AS n FROM {table} WHERE {where_} GROUP BY 1 ORDER BY 1",
            table = column.table,
            where_ = present(column),
        );
        for row in backend::load_raw::<CountRow>(conn, &sql, &[])? {
            counts.push(KeyCount {
                column: qualified(column),
                key_id: (!row.key_id.is_empty()).then_some(row.key_id),
                values: row.n,
            });
        }
    }
    Ok(counts)
}

#[derive(QueryableByName)]
struct StoredRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    row_name: String,
    #[diesel(sql_type = Text)]
    value: String,
}

/// Re-seals up to `batch` values of `column` that are not sealed under the current
/// key (clear ones included), in one transaction. Returns how many it re-sealed; 0
/// when the column is done. Safe beside a running service: a value changed or
/// erased meanwhile is left to it (the update matches the old value), and a later
/// batch takes it up again if it still needs it.
pub fn rotate_batch(
    conn: &mut DbConn,
    keys: &Keyring,
    column: Column,
    batch: i64,
) -> Result<usize, KeyError> {
    let (id, id_match) = match column.key {
        RowKey::Text(k) => (k.to_string(), format!("{k} = ?")),
        RowKey::BigInt(k) => (
            format!("CAST({k} AS TEXT)"),
            format!("{k} = CAST(? AS BIGINT)"),
        ),
    };
    let (table, name, row) = (column.table, column.name, column.row);
    let select = format!(
        "SELECT {id} AS id, {row} AS row_name, {name} AS value FROM {table} \
         WHERE {where_} AND {name} NOT LIKE ? ORDER BY {id} LIMIT {batch}",
        where_ = present(&column),
    );
    let update = format!("UPDATE {table} SET {name} = ? WHERE {id_match} AND {name} = ?");
    let current = Bind::Text(format!("{PREFIX}{}.%", keys.current_id()));
    write_tx(conn, |conn| {
        let rows: Vec<StoredRow> = backend::load_raw(conn, &select, &[current])?;
        for stored in &rows {
            let place = column.at(&stored.row_name);
            let plain = keys
                .open(place, &stored.value)
                .map_err(|error| KeyError::Unreadable {
                    column: qualified(&column),
                    error,
                })?;
            let binds = [
                Bind::Text(keys.seal(place, &plain)),
                Bind::Text(stored.id.clone()),
                Bind::Text(stored.value.clone()),
            ];
            backend::execute_raw(conn, &update, &binds)?;
        }
        Ok(rows.len())
    })
}

/// The rows of `column` that hold a sealed value.
fn present(column: &Column) -> String {
    match column.only {
        Some(only) => format!("{} IS NOT NULL AND {only}", column.name),
        None => format!("{} IS NOT NULL", column.name),
    }
}

fn qualified(column: &Column) -> String {
    format!("{}.{}", column.table, column.name)
}
