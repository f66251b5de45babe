//! BACKEND-SPECIFIC: the one place that matches on the backend. Everything else goes
//! through diesel's multi-backend subset, or through the macros and functions here.

use super::DbConn;
use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness};

/// Runs the same block against the inner connection of either backend, for diesel
/// features the multi-backend connection does not offer (upserts).
#[macro_export]
macro_rules! per_backend {
    ($conn:ident => $body:expr) => {
        match $conn {
            $crate::db::DbConn::Pg($conn) => $body,
            $crate::db::DbConn::Sqlite($conn) => $body,
        }
    };
}

/// Inserts `rows` into `table`, [`CHUNK`](super::CHUNK) rows per statement. Returns
/// early with `?`.
#[macro_export]
macro_rules! insert_chunks {
    ($conn:ident, $table:path, $rows:expr) => {
        for chunk in $rows.chunks($crate::db::CHUNK) {
            $crate::per_backend!($conn => diesel::insert_into($table).values(chunk).execute($conn))?;
        }
    };
}

/// Loads `query` with its rows locked, skipping rows another transaction holds.
/// Returns early with `?`.
#[macro_export]
macro_rules! skip_locked {
    ($conn:ident, $query:expr) => {
        match $conn {
            // Replicas skip each other's rows instead of waiting.
            $crate::db::DbConn::Pg(pg) => $query.for_update().skip_locked().load(pg)?,
            // SQLite: the write transaction already makes this the only writer.
            $crate::db::DbConn::Sqlite(_) => $query.load($conn)?,
        }
    };
}

/// Loads `query` with its rows locked until the commit. Returns early with `?`.
#[macro_export]
macro_rules! locked {
    ($conn:ident, $query:expr) => {
        match $conn {
            $crate::db::DbConn::Pg(pg) => $query.for_update().load(pg)?,
            // SQLite has one writer at a time.
            $crate::db::DbConn::Sqlite(_) => $query.load($conn)?,
        }
    };
}

/// A transaction that writes. On SQLite it starts with `BEGIN IMMEDIATE`, which takes
/// the write lock up front: two deferred transactions that both upgrade to writing
/// would otherwise fail with SQLITE_BUSY instead of waiting.
pub fn write_tx<T, E>(
    conn: &mut DbConn,
    f: impl FnOnce(&mut DbConn) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    let DbConn::Sqlite(inner) = conn else {
        return conn.transaction(f);
    };
    // diesel's MultiConnection only knows deferred BEGIN. The inner connection's
    // transaction manager starts this one, so that diesel knows it is open and nests
    // savepoints inside it.
    AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")?;
    let result = f(conn);
    let DbConn::Sqlite(inner) = conn else {
        unreachable!("the connection is still SQLite")
    };
    match result {
        Ok(value) => {
            AnsiTransactionManager::commit_transaction(inner)?;
            Ok(value)
        }
        Err(e) => {
            AnsiTransactionManager::rollback_transaction(inner)?;
            Err(e)
        }
    }
}

/// WAL lets readers run beside the one writer; synchronous=FULL makes a commit
/// durable before a message is acked.
pub fn prepare_sqlite(conn: &mut SqliteConnection) -> QueryResult<()> {
    for pragma in [
        "PRAGMA journal_mode = WAL",
        "PRAGMA synchronous = FULL",
        "PRAGMA busy_timeout = 10000",
        "PRAGMA foreign_keys = ON",
    ] {
        diesel::sql_query(pragma).execute(conn)?;
    }
    Ok(())
}

/// Runs the pending migrations of the connection's backend; returns how many ran. On
/// PostgreSQL under a session-level advisory lock (`lock_key`): a second replica
/// waits there and then finds nothing left to run.
pub fn run_migrations(
    conn: &mut DbConn,
    postgres: EmbeddedMigrations,
    sqlite: EmbeddedMigrations,
    lock_key: i64,
) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
    match conn {
        DbConn::Pg(pg) => {
            diesel::sql_query(format!("SELECT pg_advisory_lock({lock_key})")).execute(pg)?;
            let ran = pg.run_pending_migrations(postgres).map(|v| v.len());
            diesel::sql_query(format!("SELECT pg_advisory_unlock({lock_key})")).execute(pg)?;
            ran
        }
        DbConn::Sqlite(lite) => lite.run_pending_migrations(sqlite).map(|v| v.len()),
    }
}

/// A value bound to a raw statement.
#[derive(Debug, Clone)]
pub enum Bind {
    BigInt(i64),
    Text(String),
    Timestamp(chrono::NaiveDateTime),
}

/// A raw statement written with `?` placeholders, with its values bound, for either
/// backend.
macro_rules! bound {
    ($sql:expr, $binds:expr) => {{
        let mut query = diesel::sql_query($sql).into_boxed();
        for bind in $binds {
            query = match bind {
                Bind::BigInt(v) => query.bind::<BigInt, _>(*v),
                Bind::Text(v) => query.bind::<Text, _>(v.clone()),
                Bind::Timestamp(v) => query.bind::<Timestamp, _>(*v),
            };
        }
        query
    }};
}

/// Runs raw SQL written with `?` placeholders, numbered `$1, $2, …` for PostgreSQL.
/// For the rare statement diesel's builder cannot express (per-row values in one
/// `UPDATE`, a column named at run time). Returns the number of rows changed.
pub fn execute_raw(conn: &mut DbConn, sql: &str, binds: &[Bind]) -> QueryResult<usize> {
    match conn {
        DbConn::Pg(pg) => bound!(numbered(sql), binds).execute(pg),
        DbConn::Sqlite(lite) => bound!(sql.to_string(), binds).execute(lite),
    }
}

/// Loads the rows of a raw query written with `?` placeholders.
pub fn load_raw<T>(conn: &mut DbConn, sql: &str, binds: &[Bind]) -> QueryResult<Vec<T>>
where
    T: 'static
        + diesel::QueryableByName<diesel::pg::Pg>
        + diesel::QueryableByName<diesel::sqlite::Sqlite>,
{
    match conn {
        DbConn::Pg(pg) => bound!(numbered(sql), binds).load(pg),
        DbConn::Sqlite(lite) => bound!(sql.to_string(), binds).load(lite),
    }
}

/// The id that the last insert on this connection gave its row.
pub fn last_insert_id(conn: &mut DbConn) -> QueryResult<i64> {
    let function = match conn {
        // The insert's own `nextval` on its serial column, in this session.
        DbConn::Pg(_) => "lastval()",
        DbConn::Sqlite(_) => "last_insert_rowid()",
    };
    diesel::select(diesel::dsl::sql::<BigInt>(function)).get_result(conn)
}

/// SQL for the key id of a sealed value in `column` (`s1.<key id>.…`).
pub fn sealed_key_id(conn: &DbConn, column: &str) -> String {
    match conn {
        DbConn::Pg(_) => format!("split_part({column}, '.', 2)"),
        DbConn::Sqlite(_) => format!("substr({column}, 4, instr(substr({column}, 4), '.') - 1)"),
    }
}

/// `?` placeholders as PostgreSQL's `$1, $2, …`.
fn numbered(sql: &str) -> String {
    let mut n = 0;
    sql.split('?')
        .enumerate()
        .map(|(i, part)| {
            if i == 0 {
                part.to_string()
            } else {
                n += 1;
                format!("${n}{part}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_are_numbered_for_postgres() {
        assert_eq!(
            super::numbered("UPDATE t SET a = ? WHERE id IN (?, ?)"),
            "UPDATE t SET a = $1 WHERE id IN ($2, $3)"
        );
    }
}
