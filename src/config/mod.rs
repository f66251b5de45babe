//! Typed configuration from environment variables, checked once at startup.
//! Every error names the variable, and never echoes a secret value.

use chrono::{DateTime, Utc};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// The BSN key used when none is configured. Refused in production.
pub const DEV_BSN_KEY: &str = "schoolsignal-development-key-not-for-production-use";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://./var/schoolsignal.db";
pub const DEFAULT_MAIL_FROM: &str = "Schoolsignaal <noreply@localhost>";
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

#[derive(Debug, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

fn err(var: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        message: message.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Names of the AMQP objects. Every one is the contract's default and can be renamed.
#[derive(Debug, Clone)]
pub struct AmqpNames {
    pub inbound_exchange: String,
    pub queue: String,
    pub binding_key: String,
    pub dead_exchange: String,
    pub dead_queue: String,
    pub outbound_exchange: String,
}

impl AmqpNames {
    /// The contract's names, each with `prefix` in front (tests use a unique prefix).
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            inbound_exchange: format!("{prefix}police.events"),
            queue: format!("{prefix}schoolsignal.home_visits"),
            binding_key: "home_visit.*".into(),
            dead_exchange: format!("{prefix}schoolsignal.dead"),
            dead_queue: format!("{prefix}schoolsignal.home_visits.dead"),
            outbound_exchange: format!("{prefix}schoolsignal.events"),
        }
    }
}

#[derive(Clone)]
pub struct Config {
    pub env: Environment,
    pub log_format: LogFormat,
    pub database_url: String,
    pub db_pool_size: u32,
    pub amqp_url: String,
    pub amqp: AmqpNames,
    pub amqp_prefetch: u16,
    pub amqp_delivery_limit: u32,
    pub intake_batch: usize,
    pub smtp_url: Option<String>,
    pub public_url: String,
    pub bind: SocketAddr,
    /// Proxies (IPs or CIDRs) whose `X-Forwarded-For` names the portal's client.
    pub trusted_proxies: crate::http::portal::TrustedProxies,
    pub bsn_key: Vec<u8>,
    pub now: Option<DateTime<Utc>>,
    pub visit_window_days: i64,
    pub school_age_min: u32,
    pub school_age_max: u32,
    /// Development only: abort the process after this many committed intake batches,
    /// before their acks, so tests can prove that a redelivery has no second effect.
    pub fault_abort_after_commits: Option<u64>,
    pub mail: MailConfig,
}

/// Email delivery, reminders, escalation and retention.
#[derive(Debug, Clone)]
pub struct MailConfig {
    pub from: String,
    /// A folder whose files replace the built-in templates.
    pub templates: Option<PathBuf>,
    /// Where `.eml` files go when no `SMTP_URL` is set.
    pub dir: PathBuf,
    pub concurrency: usize,
    pub timeout: Duration,
    pub lease: Duration,
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub give_up_after: Duration,
    pub link_valid_for: Duration,
    pub reminder_after: Duration,
    pub escalation_after: Duration,
    pub follow_up_interval: Duration,
    /// Personal data of closed and withdrawn notices is kept this long.
    pub retention_after_close: Duration,
}

impl MailConfig {
    fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let minutes = |var, default, max| -> Result<Duration, ConfigError> {
            Ok(Duration::from_secs(
                60 * number(get, var, default, 0..=max)?,
            ))
        };
        let from = get("SCHOOLSIGNAL_MAIL_FROM").unwrap_or_else(|| DEFAULT_MAIL_FROM.into());
        if from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(err(
                "SCHOOLSIGNAL_MAIL_FROM",
                "must be an address, optionally with a name: `Name <user@example.org>`",
            ));
        }
        let mail = MailConfig {
            from,
            templates: get("SCHOOLSIGNAL_MAIL_TEMPLATES").map(PathBuf::from),
            dir: get("SCHOOLSIGNAL_MAIL_DIR")
                .map_or_else(|| PathBuf::from("./var/outbox"), PathBuf::from),
            concurrency: number(get, "SCHOOLSIGNAL_MAIL_CONCURRENCY", 32, 1..=256)?,
            timeout: Duration::from_secs(number(
                get,
                "SCHOOLSIGNAL_MAIL_TIMEOUT_SECONDS",
                30,
                1..=600,
            )?),
            lease: Duration::from_secs(number(
                get,
                "SCHOOLSIGNAL_MAIL_LEASE_SECONDS",
                120,
                2..=3600,
            )?),
            retry_base: Duration::from_millis(number(
                get,
                "SCHOOLSIGNAL_MAIL_RETRY_BASE_MS",
                30_000,
                10..=3_600_000,
            )?),
            retry_max: Duration::from_secs(number(
                get,
                "SCHOOLSIGNAL_MAIL_RETRY_MAX_SECONDS",
                1800,
                1..=86_400,
            )?),
            give_up_after: Duration::from_secs(
                3600 * number(get, "SCHOOLSIGNAL_MAIL_GIVE_UP_HOURS", 24, 1..=168)?,
            ),
            link_valid_for: Duration::from_secs(
                86_400 * number(get, "SCHOOLSIGNAL_LINK_VALID_DAYS", 7, 1..=60)?,
            ),
            reminder_after: minutes("SCHOOLSIGNAL_REMINDER_DELAY_MINUTES", 60, 7 * 24 * 60)?,
            escalation_after: minutes("SCHOOLSIGNAL_ESCALATION_DELAY_MINUTES", 180, 14 * 24 * 60)?,
            follow_up_interval: Duration::from_secs(number(
                get,
                "SCHOOLSIGNAL_FOLLOW_UP_INTERVAL_SECONDS",
                30,
                1..=3600,
            )?),
            retention_after_close: Duration::from_secs(
                86_400 * number(get, "SCHOOLSIGNAL_RETENTION_DAYS", 30, 1..=3650)?,
            ),
        };
        if mail.lease <= mail.timeout {
            return Err(err(
                "SCHOOLSIGNAL_MAIL_LEASE_SECONDS",
                "must be longer than SCHOOLSIGNAL_MAIL_TIMEOUT_SECONDS, or a slow send would be taken over and sent twice",
            ));
        }
        if mail.escalation_after < mail.reminder_after {
            return Err(err(
                "SCHOOLSIGNAL_ESCALATION_DELAY_MINUTES",
                "must not be shorter than SCHOOLSIGNAL_REMINDER_DELAY_MINUTES",
            ));
        }
        Ok(mail)
    }
}

impl std::fmt::Debug for Config {
    // Hand-written so the BSN key and URLs with passwords never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("env", &self.env)
            .field("bind", &self.bind)
            .field("amqp", &self.amqp)
            .finish_non_exhaustive()
    }
}

const KNOWN: &[&str] = &[
    "SCHOOLSIGNAL_ENV",
    "SCHOOLSIGNAL_LOG_FORMAT",
    "SCHOOLSIGNAL_DB_POOL_SIZE",
    "SCHOOLSIGNAL_AMQP_INBOUND_EXCHANGE",
    "SCHOOLSIGNAL_AMQP_QUEUE",
    "SCHOOLSIGNAL_AMQP_BINDING_KEY",
    "SCHOOLSIGNAL_AMQP_DEAD_EXCHANGE",
    "SCHOOLSIGNAL_AMQP_DEAD_QUEUE",
    "SCHOOLSIGNAL_AMQP_OUTBOUND_EXCHANGE",
    "SCHOOLSIGNAL_AMQP_PREFETCH",
    "SCHOOLSIGNAL_AMQP_DELIVERY_LIMIT",
    "SCHOOLSIGNAL_INTAKE_BATCH",
    "SCHOOLSIGNAL_PUBLIC_URL",
    "SCHOOLSIGNAL_BIND",
    "SCHOOLSIGNAL_TRUSTED_PROXIES",
    "SCHOOLSIGNAL_BSN_KEY",
    "SCHOOLSIGNAL_NOW",
    "SCHOOLSIGNAL_VISIT_WINDOW_DAYS",
    "SCHOOLSIGNAL_SCHOOL_AGE_MIN",
    "SCHOOLSIGNAL_SCHOOL_AGE_MAX",
    "SCHOOLSIGNAL_FAULT_ABORT_AFTER_COMMITS",
    "SCHOOLSIGNAL_MAIL_FROM",
    "SCHOOLSIGNAL_MAIL_TEMPLATES",
    "SCHOOLSIGNAL_MAIL_DIR",
    "SCHOOLSIGNAL_MAIL_CONCURRENCY",
    "SCHOOLSIGNAL_MAIL_TIMEOUT_SECONDS",
    "SCHOOLSIGNAL_MAIL_LEASE_SECONDS",
    "SCHOOLSIGNAL_MAIL_RETRY_BASE_MS",
    "SCHOOLSIGNAL_MAIL_RETRY_MAX_SECONDS",
    "SCHOOLSIGNAL_MAIL_GIVE_UP_HOURS",
    "SCHOOLSIGNAL_LINK_VALID_DAYS",
    "SCHOOLSIGNAL_REMINDER_DELAY_MINUTES",
    "SCHOOLSIGNAL_ESCALATION_DELAY_MINUTES",
    "SCHOOLSIGNAL_FOLLOW_UP_INTERVAL_SECONDS",
    "SCHOOLSIGNAL_RETENTION_DAYS",
];

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Logs the `SCHOOLSIGNAL_*` variables that mean nothing to us, once logging runs.
    /// A warning, not an error: Kubernetes injects `SCHOOLSIGNAL_SERVICE_*` itself.
    pub fn warn_unknown_variables() {
        for (name, _) in std::env::vars() {
            if name.starts_with("SCHOOLSIGNAL_") && !KNOWN.contains(&name.as_str()) {
                tracing::warn!(variable = %name, "unknown configuration variable ignored");
            }
        }
    }

    /// Reads configuration through `get`, so tests can pass a map.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let env = match get("SCHOOLSIGNAL_ENV").as_deref() {
            None | Some("development") => Environment::Development,
            Some("production") => Environment::Production,
            Some(_) => {
                return Err(err(
                    "SCHOOLSIGNAL_ENV",
                    "must be `development` or `production`",
                ))
            }
        };
        let log_format = match get("SCHOOLSIGNAL_LOG_FORMAT").as_deref() {
            None if env == Environment::Production => LogFormat::Json,
            None => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some("text") => LogFormat::Text,
            Some(_) => return Err(err("SCHOOLSIGNAL_LOG_FORMAT", "must be `json` or `text`")),
        };
        let database_url = get("DATABASE_URL");
        let amqp_url = get("AMQP_URL");
        let public_url = get("SCHOOLSIGNAL_PUBLIC_URL");
        let bsn_key = get("SCHOOLSIGNAL_BSN_KEY");
        let names = AmqpNames::with_prefix("");
        let name = |var: &'static str, default: String| get(var).unwrap_or(default);

        let config = Config {
            env,
            log_format,
            database_url: database_url
                .clone()
                .unwrap_or_else(|| DEFAULT_DATABASE_URL.into()),
            db_pool_size: number(&get, "SCHOOLSIGNAL_DB_POOL_SIZE", 10, 1..=200)?,
            amqp_url: amqp_url.clone().unwrap_or_else(|| DEFAULT_AMQP_URL.into()),
            amqp: AmqpNames {
                inbound_exchange: name(
                    "SCHOOLSIGNAL_AMQP_INBOUND_EXCHANGE",
                    names.inbound_exchange,
                ),
                queue: name("SCHOOLSIGNAL_AMQP_QUEUE", names.queue),
                binding_key: name("SCHOOLSIGNAL_AMQP_BINDING_KEY", names.binding_key),
                dead_exchange: name("SCHOOLSIGNAL_AMQP_DEAD_EXCHANGE", names.dead_exchange),
                dead_queue: name("SCHOOLSIGNAL_AMQP_DEAD_QUEUE", names.dead_queue),
                outbound_exchange: name(
                    "SCHOOLSIGNAL_AMQP_OUTBOUND_EXCHANGE",
                    names.outbound_exchange,
                ),
            },
            amqp_prefetch: number(&get, "SCHOOLSIGNAL_AMQP_PREFETCH", 500, 1..=10_000)?,
            amqp_delivery_limit: number(&get, "SCHOOLSIGNAL_AMQP_DELIVERY_LIMIT", 10, 1..=1000)?,
            intake_batch: number(&get, "SCHOOLSIGNAL_INTAKE_BATCH", 250, 1..=5000)?,
            smtp_url: get("SMTP_URL"),
            public_url: public_url
                .clone()
                .unwrap_or_else(|| "http://localhost:8080".into()),
            bind: parse(&get, "SCHOOLSIGNAL_BIND", "127.0.0.1:8080")?,
            trusted_proxies: crate::http::portal::TrustedProxies::parse(
                &get("SCHOOLSIGNAL_TRUSTED_PROXIES").unwrap_or_default(),
            )
            .map_err(|why| err("SCHOOLSIGNAL_TRUSTED_PROXIES", why))?,
            bsn_key: bsn_key
                .clone()
                .unwrap_or_else(|| DEV_BSN_KEY.into())
                .into_bytes(),
            now: match get("SCHOOLSIGNAL_NOW") {
                None => None,
                Some(v) => Some(
                    DateTime::parse_from_rfc3339(&v)
                        .map_err(|_| err("SCHOOLSIGNAL_NOW", "must be RFC 3339 with an offset"))?
                        .with_timezone(&Utc),
                ),
            },
            visit_window_days: number(&get, "SCHOOLSIGNAL_VISIT_WINDOW_DAYS", 14, 1..=365)?,
            school_age_min: number(&get, "SCHOOLSIGNAL_SCHOOL_AGE_MIN", 4, 0..=30)?,
            school_age_max: number(&get, "SCHOOLSIGNAL_SCHOOL_AGE_MAX", 18, 0..=30)?,
            fault_abort_after_commits: match get("SCHOOLSIGNAL_FAULT_ABORT_AFTER_COMMITS") {
                None => None,
                Some(_) => Some(number(
                    &get,
                    "SCHOOLSIGNAL_FAULT_ABORT_AFTER_COMMITS",
                    1,
                    1..=u64::MAX,
                )?),
            },
            mail: MailConfig::from_lookup(&get)?,
        };
        config.check_shape()?;
        if let Some(url) = &config.smtp_url {
            crate::delivery::transport::lettre_url(url)?;
        }
        if env == Environment::Production {
            config.check_production(database_url, amqp_url, public_url, bsn_key)?;
        }
        Ok(config)
    }

    fn check_shape(&self) -> Result<(), ConfigError> {
        crate::db::DbUrl::parse(&self.database_url)?;
        if !self.amqp_url.starts_with("amqp://") && !self.amqp_url.starts_with("amqps://") {
            return Err(err("AMQP_URL", "must start with amqp:// or amqps://"));
        }
        if !self.public_url.starts_with("http://") && !self.public_url.starts_with("https://") {
            return Err(err(
                "SCHOOLSIGNAL_PUBLIC_URL",
                "must start with http:// or https://",
            ));
        }
        if self.bsn_key.len() < 32 {
            return Err(err(
                "SCHOOLSIGNAL_BSN_KEY",
                "must be at least 32 bytes long",
            ));
        }
        if self.school_age_min > self.school_age_max {
            return Err(err(
                "SCHOOLSIGNAL_SCHOOL_AGE_MIN",
                "must not be above SCHOOLSIGNAL_SCHOOL_AGE_MAX",
            ));
        }
        Ok(())
    }

    /// Production refuses every development default: an operator must choose each one.
    fn check_production(
        &self,
        database_url: Option<String>,
        amqp_url: Option<String>,
        public_url: Option<String>,
        bsn_key: Option<String>,
    ) -> Result<(), ConfigError> {
        if database_url.is_none() {
            return Err(err("DATABASE_URL", "must be set in production"));
        }
        if amqp_url.is_none() {
            return Err(err("AMQP_URL", "must be set in production"));
        }
        if self.smtp_url.is_none() {
            return Err(err("SMTP_URL", "must be set in production"));
        }
        match public_url {
            Some(url) if url.starts_with("https://") => {}
            _ => {
                return Err(err(
                    "SCHOOLSIGNAL_PUBLIC_URL",
                    "must be set to an https:// address in production",
                ))
            }
        }
        if bsn_key.is_none() || self.bsn_key == DEV_BSN_KEY.as_bytes() {
            return Err(err(
                "SCHOOLSIGNAL_BSN_KEY",
                "must be set to a secret of your own in production",
            ));
        }
        if self.mail.from == DEFAULT_MAIL_FROM {
            return Err(err(
                "SCHOOLSIGNAL_MAIL_FROM",
                "must be set to your own sender address in production",
            ));
        }
        if self.fault_abort_after_commits.is_some() {
            return Err(err(
                "SCHOOLSIGNAL_FAULT_ABORT_AFTER_COMMITS",
                "is a test aid and is refused in production",
            ));
        }
        Ok(())
    }
}

fn parse<T: FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: &str,
) -> Result<T, ConfigError> {
    let raw = get(var).unwrap_or_else(|| default.to_string());
    raw.trim()
        .parse()
        .map_err(|_| err(var, format!("cannot be parsed (default `{default}`)")))
}

fn number<T>(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ConfigError>
where
    T: FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let value: T = match get(var) {
        None => default,
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|_| err(var, "must be a whole number"))?,
    };
    if !range.contains(&value) {
        return Err(err(
            var,
            format!("must be from {} to {}", range.start(), range.end()),
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_the_embedded_development_setup() {
        let c = load(&[]).unwrap();
        assert_eq!(c.env, Environment::Development);
        assert_eq!(c.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(c.amqp.queue, "schoolsignal.home_visits");
        assert_eq!(c.visit_window_days, 14);
    }

    #[test]
    fn errors_name_the_variable() {
        let e = load(&[("SCHOOLSIGNAL_AMQP_PREFETCH", "lots")]).unwrap_err();
        assert_eq!(e.var, "SCHOOLSIGNAL_AMQP_PREFETCH");
        let e = load(&[("DATABASE_URL", "mysql://x")]).unwrap_err();
        assert_eq!(e.var, "DATABASE_URL");
        let e = load(&[("SCHOOLSIGNAL_NOW", "tomorrow")]).unwrap_err();
        assert_eq!(e.var, "SCHOOLSIGNAL_NOW");
        let e = load(&[("SCHOOLSIGNAL_BSN_KEY", "short")]).unwrap_err();
        assert_eq!(e.var, "SCHOOLSIGNAL_BSN_KEY");
        let e = load(&[("SCHOOLSIGNAL_TRUSTED_PROXIES", "10.0.0.0/99")]).unwrap_err();
        assert_eq!(e.var, "SCHOOLSIGNAL_TRUSTED_PROXIES");
        let c = load(&[("SCHOOLSIGNAL_TRUSTED_PROXIES", "10.0.0.0/8, ::1")]).unwrap();
        assert!(c.trusted_proxies.contains("10.1.2.3".parse().unwrap()));
        assert!(!c.trusted_proxies.contains("11.1.2.3".parse().unwrap()));
        assert_eq!(load(&[]).unwrap().trusted_proxies, Default::default());
    }

    #[test]
    fn production_refuses_development_defaults() {
        let full = [
            ("SCHOOLSIGNAL_ENV", "production"),
            ("DATABASE_URL", "postgres://db/schoolsignal"),
            ("AMQP_URL", "amqp://mq"),
            ("SMTP_URL", "smtp://mail"),
            ("SCHOOLSIGNAL_PUBLIC_URL", "https://signal.example.nl"),
            (
                "SCHOOLSIGNAL_BSN_KEY",
                "0123456789abcdef0123456789abcdef-prod",
            ),
            ("SCHOOLSIGNAL_MAIL_FROM", "Zorg <noreply@signal.example.nl>"),
        ];
        let prod = load(&full).unwrap();
        assert_eq!(prod.log_format, LogFormat::Json);
        for (i, (var, _)) in full.iter().enumerate().skip(1) {
            let without: Vec<_> = full
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, p)| *p)
                .collect();
            assert_eq!(load(&without).unwrap_err().var, *var);
        }
        let mut dev_key = full.to_vec();
        dev_key[5] = ("SCHOOLSIGNAL_BSN_KEY", DEV_BSN_KEY);
        assert_eq!(load(&dev_key).unwrap_err().var, "SCHOOLSIGNAL_BSN_KEY");
        let mut http = full.to_vec();
        http[4] = ("SCHOOLSIGNAL_PUBLIC_URL", "http://signal.example.nl");
        assert_eq!(load(&http).unwrap_err().var, "SCHOOLSIGNAL_PUBLIC_URL");
        let mut bad_url = full.to_vec();
        bad_url[3] = ("SMTP_URL", "smtp://mail?tls=maybe");
        assert_eq!(load(&bad_url).unwrap_err().var, "SMTP_URL");
        let mut fault = full.to_vec();
        fault.push(("SCHOOLSIGNAL_FAULT_ABORT_AFTER_COMMITS", "1"));
        assert_eq!(
            load(&fault).unwrap_err().var,
            "SCHOOLSIGNAL_FAULT_ABORT_AFTER_COMMITS"
        );
    }
}
