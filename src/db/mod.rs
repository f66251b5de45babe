//! The database: one connection type over PostgreSQL and SQLite, a pool, and migrations.
//!
//! Domain code talks to [`DbConn`] through diesel's query builder. Whatever differs
//! per backend lives in [`backend`]: the only place that matches on the connection.

pub mod backend;
pub mod keys;
pub mod migrate;
pub mod schema;
mod text_enum;

pub use text_enum::UnknownValue;

pub use crate::config::DbUrl;
pub use backend::write_tx;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection};
use std::time::Duration;

#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

pub type Pool = r2d2::Pool<Manager>;
pub type PooledConn = r2d2::PooledConnection<Manager>;

/// Opens connections of the backend the URL names.
#[derive(Debug, Clone)]
pub struct Manager {
    url: DbUrl,
}

impl ManageConnection for Manager {
    type Connection = DbConn;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConn, r2d2::Error> {
        match &self.url {
            DbUrl::Postgres(url) => PgConnection::establish(url)
                .map(DbConn::Pg)
                .map_err(r2d2::Error::ConnectionError),
            DbUrl::Sqlite(path) => {
                let mut conn =
                    SqliteConnection::establish(path).map_err(r2d2::Error::ConnectionError)?;
                backend::prepare_sqlite(&mut conn).map_err(r2d2::Error::QueryError)?;
                Ok(DbConn::Sqlite(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), r2d2::Error> {
        diesel::sql_query("SELECT 1")
            .execute(conn)
            .map(|_| ())
            .map_err(r2d2::Error::QueryError)
    }

    /// Asked when a connection goes back to the pool. diesel marks a connection whose
    /// server went away (a restart, a failover, a terminated backend) as broken after
    /// the query that found out, so the pool drops it instead of handing it out again.
    fn has_broken(&self, conn: &mut DbConn) -> bool {
        diesel::r2d2::R2D2Connection::is_broken(conn)
    }
}

/// Builds the pool. It does not wait for the database: the service starts and
/// reports not-ready until the database answers.
pub fn pool(url: &DbUrl, size: u32) -> Pool {
    if let DbUrl::Sqlite(path) = url {
        if let Some(dir) = std::path::Path::new(path).parent() {
            let _ = std::fs::create_dir_all(dir);
        }
    }
    r2d2::Pool::builder()
        .max_size(size)
        .min_idle(Some(0))
        .connection_timeout(Duration::from_secs(5))
        // No round trip per check-out: a broken connection is dropped when it comes
        // back (`has_broken`), and the work that hit it is retried.
        .test_on_check_out(false)
        .build_unchecked(Manager { url: url.clone() })
}

/// Errors at the database boundary.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database unavailable: {0}")]
    Unavailable(#[from] r2d2::PoolError),
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("database task failed")]
    Task,
}

/// Runs blocking database work on tokio's blocking pool.
pub async fn run<T, F>(pool: &Pool, f: F) -> Result<T, DbError>
where
    F: FnOnce(&mut DbConn) -> Result<T, DbError> + Send + 'static,
    T: Send + 'static,
{
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get()?;
        f(&mut conn)
    })
    .await
    .map_err(|_| DbError::Task)?
}

/// The database is unreachable or cut the connection: wait and try again, for as long
/// as it takes, holding on to the work.
pub fn is_outage(e: &DbError) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    matches!(
        e,
        DbError::Unavailable(_)
            | DbError::Query(Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _))
    )
}

/// A lost race with another transaction (a unique key taken meanwhile, a
/// serialization failure, a deadlock or a busy SQLite file): running it again
/// usually succeeds, but not forever, so callers bound these retries.
pub fn is_lost_race(e: &DbError) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    matches!(
        e,
        DbError::Query(Error::DatabaseError(
            DatabaseErrorKind::UniqueViolation
                | DatabaseErrorKind::SerializationFailure
                | DatabaseErrorKind::Unknown,
            _
        ))
    )
}

/// Cheap check for `/readyz`.
pub fn ping(conn: &mut DbConn) -> Result<(), DbError> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    Ok(())
}

/// Rows per statement in set-wise reads and writes: well under SQLite's limit of
/// 32,766 bound values, even for the widest table.
pub const CHUNK: usize = 500;

/// Timestamps are stored as UTC without a zone, the one timestamp type both backends share.
pub fn ts(t: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDateTime {
    t.naive_utc()
}

/// Runs `f` in a write transaction that is always rolled back, and returns what it
/// returned: a rehearsal that takes the same locks and makes the same writes as the
/// real thing, and leaves nothing behind.
pub fn rolled_back_tx<T>(
    conn: &mut DbConn,
    f: impl FnOnce(&mut DbConn) -> QueryResult<T>,
) -> QueryResult<T> {
    enum Undo<T> {
        Done(T),
        Failed(diesel::result::Error),
    }
    impl<T> From<diesel::result::Error> for Undo<T> {
        fn from(e: diesel::result::Error) -> Self {
            Undo::Failed(e)
        }
    }
    let undone = write_tx::<std::convert::Infallible, Undo<T>>(conn, |conn| match f(conn) {
        Ok(value) => Err(Undo::Done(value)),
        Err(e) => Err(Undo::Failed(e)),
    });
    match undone {
        Ok(never) => match never {},
        Err(Undo::Done(value)) => Ok(value),
        Err(Undo::Failed(e)) => Err(e),
    }
}
