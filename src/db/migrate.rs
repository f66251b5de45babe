//! Embedded migrations, one set per backend.

use super::{backend, DbConn, DbError};
use diesel_migrations::{embed_migrations, EmbeddedMigrations};

const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// Arbitrary constant shared by every replica: the advisory lock that serialises
/// migrations when several replicas start at once.
const MIGRATION_LOCK_KEY: i64 = 0x5C00_1516;

/// Runs pending migrations and returns how many ran.
pub fn run_pending(conn: &mut DbConn) -> Result<usize, DbError> {
    backend::run_migrations(conn, POSTGRES, SQLITE, MIGRATION_LOCK_KEY)
        .map_err(|e| DbError::Query(diesel::result::Error::QueryBuilderError(e)))
}
