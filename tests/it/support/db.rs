//! A database of its own per test, seeding, and the checks tests make on it.

use super::{contracts_dir, fixture, unique, Backend, BSN_KEY};
use diesel::prelude::*;
use schoolsignal::db::{self, DbUrl, Pool};

fn pg_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A database of its own for one test.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for TestDb {
    /// A PostgreSQL test database is dropped at the end, so runs do not fill the
    /// server; whatever still holds a connection (a killed service's pool) is cut off.
    fn drop(&mut self) {
        if self.backend != Backend::Postgres {
            return;
        }
        let Some(name) = self.url.rsplit('/').next() else {
            return;
        };
        if let Ok(mut admin) = <PgConnection as diesel::Connection>::establish(&pg_admin_url()) {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut admin);
        }
    }
}

impl TestDb {
    pub fn create(backend: Backend) -> Self {
        match backend {
            Backend::Postgres => Self::postgres(),
            Backend::Sqlite => Self::sqlite(),
        }
    }

    fn postgres() -> Self {
        let name = format!("ss_{}", unique());
        let mut admin = <PgConnection as diesel::Connection>::establish(&pg_admin_url())
            .expect("PostgreSQL must run on 127.0.0.1:5432 (see .ci/run)");
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .unwrap();
        let base = pg_admin_url();
        let url = format!("{}/{name}", &base[..base.rfind('/').unwrap()]);
        Self {
            backend: Backend::Postgres,
            url,
            _dir: None,
        }
    }

    fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("schoolsignal.db").display());
        Self {
            backend: Backend::Sqlite,
            url,
            _dir: Some(dir),
        }
    }

    pub fn pool(&self) -> Pool {
        db::pool(&DbUrl::parse(&self.url).unwrap(), 4)
    }
}

/// Imports the test schools and the contract's registry example, and creates an API key.
pub fn seed(pool: &Pool) -> String {
    use schoolsignal::registry::{enrollments, schools, KeyedHasher};
    let mut conn = pool.get().unwrap();
    db::migrate::run_pending(&mut conn).unwrap();
    let now = chrono::Utc::now();
    schools::import(
        &mut conn,
        std::fs::File::open(fixture("schools.csv")).unwrap(),
        db::ts(now),
        schools::Simulated::Allowed,
    )
    .unwrap();
    let registry = std::fs::File::open(contracts_dir().join("registry-example.csv")).unwrap();
    let hasher = KeyedHasher::new(BSN_KEY.as_bytes());
    let keys = super::dev_keyring();
    enrollments::import(&mut conn, (&hasher, &keys), registry).unwrap();
    use schoolsignal::access::api_keys::{create, Mode};
    create(
        &mut conn,
        "police-test",
        &["events:write".into()],
        Mode::Live,
        now,
    )
    .unwrap()
}

pub fn count_rows(pool: &Pool, table: &str) -> i64 {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = pool.get().unwrap();
    diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"))
        .get_result::<N>(&mut *conn)
        .map(|r| r.n)
        .unwrap_or(-1)
}

/// The decisions recorded for an event, in child order.
pub fn decisions_of(pool: &Pool, id: &str) -> Vec<String> {
    use schoolsignal::db::schema::decisions::dsl::*;
    let mut conn = pool.get().unwrap();
    decisions
        .filter(event_id.eq(id))
        .order(child_index)
        .select(outcome)
        .load(&mut *conn)
        .unwrap()
}

/// The notice of school `brin`: its id and whether it is acknowledged.
pub fn notice_of(pool: &Pool, brin: &str) -> (String, bool) {
    use schoolsignal::db::schema::notices::dsl::*;
    let mut conn = pool.get().unwrap();
    notices
        .filter(school_brin.eq(brin))
        .select((id, acknowledged_at.is_not_null()))
        .first(&mut *conn)
        .unwrap()
}

/// Whether the notice was closed.
pub fn is_closed(pool: &Pool, notice: &str) -> bool {
    use schoolsignal::db::schema::notices::dsl::*;
    let mut conn = pool.get().unwrap();
    notices
        .find(notice)
        .select(closed_at.is_not_null())
        .first(&mut *conn)
        .unwrap()
}

/// One row of `deliveries`, as the tests read it.
#[derive(Debug, Clone, Queryable)]
pub struct Delivery {
    pub notice_id: String,
    pub kind: String,
    pub recipient: String,
    pub state: String,
    pub message_id: String,
    pub attempts: i32,
    pub sent_to: Option<String>,
    pub last_error: Option<String>,
}

pub fn deliveries(pool: &Pool) -> Vec<Delivery> {
    use schoolsignal::db::schema::deliveries as d;
    let mut conn = pool.get().unwrap();
    d::table
        .order(d::id)
        .select((
            d::notice_id,
            d::kind,
            d::recipient,
            d::state,
            d::message_id,
            d::attempts,
            d::sent_to,
            d::last_error,
        ))
        .load(&mut *conn)
        .unwrap()
}
