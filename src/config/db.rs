//! The database section.

use super::vars::{err, Reader};
use super::ConfigError;

/// Which backend a `DATABASE_URL` names. Chosen from the URL, never by trial, so a
/// PostgreSQL URL never silently becomes a SQLite file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbUrl {
    Postgres(String),
    Sqlite(String),
}

impl DbUrl {
    pub fn parse(url: &str) -> Result<Self, ConfigError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(url.to_string()))
        } else if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(err(
                    "DATABASE_URL",
                    "sqlite:// needs a file path, e.g. sqlite://./var/schoolsignal.db",
                ));
            }
            Ok(Self::Sqlite(path.to_string()))
        } else {
            Err(err(
                "DATABASE_URL",
                "must start with postgres://, postgresql:// or sqlite://",
            ))
        }
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Postgres(_) => "postgres",
            Self::Sqlite(_) => "sqlite",
        }
    }
}

#[derive(Clone)]
pub struct DbConfig {
    /// May hold a password: never logged.
    pub url: DbUrl,
    pub pool_size: u32,
}

impl std::fmt::Debug for DbConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbConfig")
            .field("backend", &self.url.backend_name())
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

impl DbConfig {
    pub(super) fn read(r: &Reader<impl Fn(&str) -> Option<String>>) -> Result<Self, ConfigError> {
        Ok(DbConfig {
            url: DbUrl::parse(&r.text("DATABASE_URL"))?,
            pool_size: r.number("SCHOOLSIGNAL_DB_POOL_SIZE", 1..=200)?,
        })
    }
}
