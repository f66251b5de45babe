//! Embedded migrations, one set per backend.

use super::{DbConn, DbError};
use diesel::prelude::*;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// Arbitrary constant shared by every replica: the advisory lock that serialises
/// migrations when several replicas start at once.
const MIGRATION_LOCK_KEY: i64 = 0x5C00_1516;

/// Runs pending migrations and returns how many ran.
pub fn run_pending(conn: &mut DbConn) -> Result<usize, DbError> {
    let failed = |e: Box<dyn std::error::Error + Send + Sync>| {
        DbError::Query(diesel::result::Error::QueryBuilderError(e))
    };
    match conn {
        // BACKEND-SPECIFIC: a session-level advisory lock; the second replica waits
        // here and then finds nothing left to run.
        DbConn::Pg(pg) => {
            diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
                .execute(pg)?;
            let ran = pg.run_pending_migrations(POSTGRES).map(|v| v.len());
            diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))
                .execute(pg)?;
            ran.map_err(failed)
        }
        DbConn::Sqlite(sqlite) => sqlite
            .run_pending_migrations(SQLITE)
            .map(|v| v.len())
            .map_err(failed),
    }
}
