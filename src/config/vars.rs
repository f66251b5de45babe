//! The table of every variable the service reads, with its default and meaning, and
//! the reader that parses them. A name missing from the table cannot be read, and
//! the table is also the list of known names that `warn_unknown_variables` uses.

use super::ConfigError;
use std::str::FromStr;

/// One variable: its name, its default as text (empty: none), and what it sets.
pub struct Var {
    pub name: &'static str,
    pub default: &'static str,
    pub meaning: &'static str,
}

const fn var(name: &'static str, default: &'static str, meaning: &'static str) -> Var {
    Var {
        name,
        default,
        meaning,
    }
}

/// The BSN key used when none is configured. Refused in production.
pub const DEV_BSN_KEY: &str = "schoolsignal-development-key-not-for-production-use";
pub const DEFAULT_MAIL_FROM: &str = "Schoolsignaal <noreply@localhost>";

pub const VARIABLES: &[Var] = &[
    var(
        "SCHOOLSIGNAL_ENV",
        "development",
        "`development` or `production`",
    ),
    var(
        "SCHOOLSIGNAL_LOG_FORMAT",
        "",
        "`text` or `json`; json in production",
    ),
    var(
        "SCHOOLSIGNAL_NOW",
        "",
        "start the clock at this RFC 3339 instant",
    ),
    var(
        "DATABASE_URL",
        "sqlite://./var/schoolsignal.db",
        "postgres://… or sqlite://PATH",
    ),
    var(
        "SCHOOLSIGNAL_DB_POOL_SIZE",
        "10",
        "database connections per process",
    ),
    var(
        "AMQP_URL",
        "amqp://guest:guest@127.0.0.1:5672/%2f",
        "the broker",
    ),
    var(
        "SCHOOLSIGNAL_AMQP_INBOUND_EXCHANGE",
        "police.events",
        "where police publish",
    ),
    var(
        "SCHOOLSIGNAL_AMQP_QUEUE",
        "schoolsignal.home_visits",
        "the intake quorum queue",
    ),
    var(
        "SCHOOLSIGNAL_AMQP_BINDING_KEY",
        "home_visit.*",
        "the queue's binding",
    ),
    var(
        "SCHOOLSIGNAL_AMQP_DEAD_EXCHANGE",
        "schoolsignal.dead",
        "dead letters",
    ),
    var(
        "SCHOOLSIGNAL_AMQP_DEAD_QUEUE",
        "schoolsignal.home_visits.dead",
        "dead letters",
    ),
    var(
        "SCHOOLSIGNAL_AMQP_OUTBOUND_EXCHANGE",
        "schoolsignal.events",
        "what we publish",
    ),
    var(
        "SCHOOLSIGNAL_AMQP_PREFETCH",
        "500",
        "unacked messages per consumer",
    ),
    var(
        "SCHOOLSIGNAL_AMQP_DELIVERY_LIMIT",
        "10",
        "x-delivery-limit of the queue",
    ),
    var(
        "SCHOOLSIGNAL_DEAD_LETTER_DAYS",
        "14",
        "rejected events expire from the dead-letter queue after this",
    ),
    var(
        "SCHOOLSIGNAL_INTAKE_BATCH",
        "250",
        "events decided per transaction",
    ),
    var(
        "SCHOOLSIGNAL_BSN_KEY",
        "",
        "HMAC key for BSNs, at least 32 bytes",
    ),
    var(
        "SCHOOLSIGNAL_DATA_KEYS",
        "",
        "`ID:BASE64,…` AEAD keys for personal data at rest; the first seals",
    ),
    var(
        "SCHOOLSIGNAL_UNSEALED_FOR_BENCHMARK",
        "false",
        "development only: store personal data unsealed, to measure sealing's cost",
    ),
    var(
        "SCHOOLSIGNAL_VISIT_WINDOW_DAYS",
        "14",
        "older visits are `too_old`",
    ),
    var("SCHOOLSIGNAL_SCHOOL_AGE_MIN", "4", "youngest school age"),
    var("SCHOOLSIGNAL_SCHOOL_AGE_MAX", "18", "oldest school age"),
    var(
        "SCHOOLSIGNAL_FAULT_ABORT_AFTER_COMMITS",
        "",
        "test aid; refused in production",
    ),
    var("SMTP_URL", "", "smtp:// or smtps://; unset: .eml files"),
    var("SCHOOLSIGNAL_MAIL_FROM", DEFAULT_MAIL_FROM, "the sender"),
    var(
        "SCHOOLSIGNAL_MAIL_TEMPLATES",
        "",
        "a folder of template overrides",
    ),
    var(
        "SCHOOLSIGNAL_MAIL_DIR",
        "./var/outbox",
        "where .eml files go",
    ),
    var(
        "SCHOOLSIGNAL_MAIL_CONCURRENCY",
        "32",
        "emails on their way at once",
    ),
    var(
        "SCHOOLSIGNAL_MAIL_TIMEOUT_SECONDS",
        "30",
        "the longest one send may take",
    ),
    var(
        "SCHOOLSIGNAL_MAIL_LEASE_SECONDS",
        "120",
        "how long a claim holds an email",
    ),
    var(
        "SCHOOLSIGNAL_MAIL_RETRY_BASE_MS",
        "30000",
        "first retry delay",
    ),
    var(
        "SCHOOLSIGNAL_MAIL_RETRY_MAX_SECONDS",
        "1800",
        "longest retry delay",
    ),
    var(
        "SCHOOLSIGNAL_MAIL_GIVE_UP_HOURS",
        "24",
        "an unsent email then expires",
    ),
    var(
        "SCHOOLSIGNAL_LINK_VALID_DAYS",
        "7",
        "how long an email's link works",
    ),
    var(
        "SCHOOLSIGNAL_REMINDER_DELAY_MINUTES",
        "60",
        "after due_at, a reminder",
    ),
    var(
        "SCHOOLSIGNAL_ESCALATION_DELAY_MINUTES",
        "180",
        "after due_at, escalation",
    ),
    var(
        "SCHOOLSIGNAL_FOLLOW_UP_INTERVAL_SECONDS",
        "30",
        "how often follow-up runs",
    ),
    var(
        "SCHOOLSIGNAL_RETENTION_DAYS",
        "30",
        "personal data kept after closing; 0 erases it on closing",
    ),
    var(
        "SCHOOLSIGNAL_PUBLIC_URL",
        "http://localhost:8080",
        "the portal's address",
    ),
    var("SCHOOLSIGNAL_BIND", "127.0.0.1:8080", "where HTTP listens"),
    var(
        "SCHOOLSIGNAL_REQUEST_TIMEOUT_SECONDS",
        "15",
        "the head, then body and answer, each within this",
    ),
    var(
        "SCHOOLSIGNAL_METRICS_BIND",
        "127.0.0.1:9090",
        "where /metrics and /health listen; never the portal's address",
    ),
    var(
        "SCHOOLSIGNAL_TRUSTED_PROXIES",
        "",
        "IPs or CIDRs whose X-Forwarded-For counts",
    ),
    var(
        "SCHOOLSIGNAL_ORG_NAME",
        "Gemeente Voorbeeldstad",
        "who runs the service, named in every email and page",
    ),
    var(
        "SCHOOLSIGNAL_ORG_PHONE",
        "020 000 0000",
        "the number a coordinator can call to check a message",
    ),
    var(
        "SCHOOLSIGNAL_ORG_EMAIL",
        "schoolsignaal@voorbeeldstad.example",
        "the organisation's contact address",
    ),
    var(
        "SCHOOLSIGNAL_ORG_URL",
        "https://voorbeeldstad.example",
        "the organisation's website",
    ),
    var(
        "SCHOOLSIGNAL_SECURITY_CONTACT",
        "",
        "security.txt's Contact; the organisation's address by default",
    ),
    var(
        "SCHOOLSIGNAL_ALLOW_SIMULATED_SCHOOLS",
        "false",
        "`true`: production takes schools at @simulator.schoolsignal.invalid",
    ),
];

/// Whether the service reads a variable of this name.
pub fn is_known(name: &str) -> bool {
    VARIABLES.iter().any(|v| v.name == name)
}

fn default_of(name: &str) -> &'static str {
    VARIABLES
        .iter()
        .find(|v| v.name == name)
        .map(|v| v.default)
        .unwrap_or_else(|| panic!("{name} is not in config::vars::VARIABLES"))
}

pub fn err(var: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        message: message.into(),
    }
}

/// Reads variables through a lookup (the environment, or a map in tests). A blank
/// value counts as unset.
pub struct Reader<F: Fn(&str) -> Option<String>> {
    lookup: F,
}

impl<F: Fn(&str) -> Option<String>> Reader<F> {
    pub fn new(lookup: F) -> Self {
        Reader { lookup }
    }

    /// The value set, if any.
    pub fn set(&self, var: &'static str) -> Option<String> {
        default_of(var); // only names in the table are read
        (self.lookup)(var).filter(|v| !v.trim().is_empty())
    }

    /// The value set, else the table's default.
    pub fn text(&self, var: &'static str) -> String {
        self.set(var).unwrap_or_else(|| default_of(var).to_string())
    }

    /// A value parsed with `FromStr`.
    pub fn parsed<T: FromStr>(&self, var: &'static str) -> Result<T, ConfigError> {
        self.text(var).trim().parse().map_err(|_| {
            err(
                var,
                format!("cannot be parsed (default `{}`)", default_of(var)),
            )
        })
    }

    /// A whole number in `range`.
    pub fn number<T>(
        &self,
        var: &'static str,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let value: T = self
            .text(var)
            .trim()
            .parse()
            .map_err(|_| err(var, "must be a whole number"))?;
        if !range.contains(&value) {
            return Err(err(
                var,
                format!("must be from {} to {}", range.start(), range.end()),
            ));
        }
        Ok(value)
    }

    /// A number of `unit`s in `range`, as a duration.
    pub fn duration(
        &self,
        var: &'static str,
        unit: std::time::Duration,
        range: std::ops::RangeInclusive<u32>,
    ) -> Result<std::time::Duration, ConfigError> {
        Ok(unit * self.number(var, range)?)
    }

    /// An optional whole number in `range`: None when unset.
    pub fn optional_number<T>(
        &self,
        var: &'static str,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<Option<T>, ConfigError>
    where
        T: FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        match self.set(var) {
            None => Ok(None),
            Some(_) => self.number(var, range).map(Some),
        }
    }
}
