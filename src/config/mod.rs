//! Typed configuration from environment variables, read and checked once at startup
//! into plain sections, one per subsystem, each handed to it by value. Every error
//! names the variable, and never echoes a secret value. Imports nothing from the
//! crate: the sections are plain data.

mod amqp;
mod db;
mod follow_up;
mod intake;
mod keys;
mod mail;
mod org;
mod portal;
mod proxies;
pub mod vars;

pub use amqp::{AmqpConfig, AmqpNames};
pub use db::{DbConfig, DbUrl};
pub use follow_up::FollowUpConfig;
pub use intake::IntakeConfig;
pub use keys::{is_key_id, parse as keys_from, DataKey, DataKeysConfig, DEV_DATA_KEYS};
pub use mail::{smtp_url, MailConfig};
pub use org::OrgConfig;
pub use portal::PortalConfig;
pub use proxies::TrustedProxies;
pub use vars::{DEFAULT_MAIL_FROM, DEV_BSN_KEY};

use chrono::{DateTime, Utc};
use vars::{err, Reader};

#[derive(Debug, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
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

/// The whole configuration: a few process-wide settings and one section per
/// subsystem. Hand-written `Debug` in the sections keeps keys and URLs with
/// passwords out of logs.
#[derive(Debug, Clone)]
pub struct Config {
    pub env: Environment,
    pub log_format: LogFormat,
    /// `SCHOOLSIGNAL_NOW`: the clock starts here.
    pub now: Option<DateTime<Utc>>,
    pub db: DbConfig,
    pub amqp: AmqpConfig,
    pub intake: IntakeConfig,
    /// `SCHOOLSIGNAL_DATA_KEYS`: what seals personal data at rest.
    pub data_keys: DataKeysConfig,
    /// Development only: store personal data in the clear, so a benchmark can
    /// measure what sealing costs.
    pub unsealed: bool,
    pub mail: MailConfig,
    pub follow_up: FollowUpConfig,
    pub portal: PortalConfig,
    /// Who runs the service, as every email and page names it.
    pub org: OrgConfig,
    /// Whether schools with simulated addresses may be imported and served: always
    /// in development, in production only with
    /// `SCHOOLSIGNAL_ALLOW_SIMULATED_SCHOOLS=true`.
    pub simulated_schools: bool,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Logs the `SCHOOLSIGNAL_*` variables that mean nothing to us, once logging runs.
    /// A warning, not an error: Kubernetes injects `SCHOOLSIGNAL_SERVICE_*` itself.
    pub fn warn_unknown_variables() {
        for (name, _) in std::env::vars() {
            if name.starts_with("SCHOOLSIGNAL_") && !vars::is_known(&name) {
                tracing::warn!(variable = %name, "unknown configuration variable ignored");
            }
        }
    }

    /// Reads configuration through `get`, so tests can pass a map.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let r = Reader::new(get);
        let env = environment(&r)?;
        let allow_simulated = allow_simulated(&r)?;
        let config = Config {
            env,
            log_format: log_format(&r, env)?,
            now: now(&r)?,
            db: DbConfig::read(&r)?,
            amqp: AmqpConfig::read(&r)?,
            intake: IntakeConfig::read(&r)?,
            data_keys: DataKeysConfig::read(&r)?,
            unsealed: r.parsed("SCHOOLSIGNAL_UNSEALED_FOR_BENCHMARK")?,
            mail: MailConfig::read(&r)?,
            follow_up: FollowUpConfig::read(&r)?,
            portal: PortalConfig::read(&r)?,
            org: OrgConfig::read(&r)?,
            simulated_schools: env != Environment::Production || allow_simulated,
        };
        if env == Environment::Production {
            check_production(&r, &config)?;
        }
        Ok(config)
    }
}

fn environment(r: &Reader<impl Fn(&str) -> Option<String>>) -> Result<Environment, ConfigError> {
    match r.text("SCHOOLSIGNAL_ENV").as_str() {
        "development" => Ok(Environment::Development),
        "production" => Ok(Environment::Production),
        _ => Err(err(
            "SCHOOLSIGNAL_ENV",
            "must be `development` or `production`",
        )),
    }
}

fn log_format(
    r: &Reader<impl Fn(&str) -> Option<String>>,
    env: Environment,
) -> Result<LogFormat, ConfigError> {
    match r.set("SCHOOLSIGNAL_LOG_FORMAT").as_deref() {
        None if env == Environment::Production => Ok(LogFormat::Json),
        None | Some("text") => Ok(LogFormat::Text),
        Some("json") => Ok(LogFormat::Json),
        Some(_) => Err(err("SCHOOLSIGNAL_LOG_FORMAT", "must be `json` or `text`")),
    }
}

fn allow_simulated(r: &Reader<impl Fn(&str) -> Option<String>>) -> Result<bool, ConfigError> {
    match r.text("SCHOOLSIGNAL_ALLOW_SIMULATED_SCHOOLS").trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(err(
            "SCHOOLSIGNAL_ALLOW_SIMULATED_SCHOOLS",
            "must be `true` or `false`",
        )),
    }
}

fn now(r: &Reader<impl Fn(&str) -> Option<String>>) -> Result<Option<DateTime<Utc>>, ConfigError> {
    let Some(v) = r.set("SCHOOLSIGNAL_NOW") else {
        return Ok(None);
    };
    DateTime::parse_from_rfc3339(&v)
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|_| err("SCHOOLSIGNAL_NOW", "must be RFC 3339 with an offset"))
}

/// Production refuses every development default: an operator must choose each one.
fn check_production(
    r: &Reader<impl Fn(&str) -> Option<String>>,
    config: &Config,
) -> Result<(), ConfigError> {
    for var in ["DATABASE_URL", "AMQP_URL", "SMTP_URL"] {
        if r.set(var).is_none() {
            return Err(err(var, "must be set in production"));
        }
    }
    if !config.portal.public_url.starts_with("https://")
        || r.set("SCHOOLSIGNAL_PUBLIC_URL").is_none()
    {
        return Err(err(
            "SCHOOLSIGNAL_PUBLIC_URL",
            "must be set to an https:// address in production",
        ));
    }
    if r.set("SCHOOLSIGNAL_BSN_KEY").is_none() || config.intake.bsn_key == DEV_BSN_KEY.as_bytes() {
        return Err(err(
            "SCHOOLSIGNAL_BSN_KEY",
            "must be set to a secret of your own in production",
        ));
    }
    if r.set("SCHOOLSIGNAL_DATA_KEYS").is_none() || config.data_keys.has_development_key() {
        return Err(err(
            "SCHOOLSIGNAL_DATA_KEYS",
            "must list keys of your own in production (`schoolsignal keys generate` makes one)",
        ));
    }
    if r.text("SCHOOLSIGNAL_MAIL_FROM") == DEFAULT_MAIL_FROM {
        return Err(err(
            "SCHOOLSIGNAL_MAIL_FROM",
            "must be set to your own sender address in production",
        ));
    }
    org::check_production(r, &config.org)?;
    if config.unsealed {
        return Err(err(
            "SCHOOLSIGNAL_UNSEALED_FOR_BENCHMARK",
            "is a benchmark aid and is refused in production",
        ));
    }
    if config.intake.fault_abort_after_commits.is_some() {
        return Err(err(
            "SCHOOLSIGNAL_FAULT_ABORT_AFTER_COMMITS",
            "is a test aid and is refused in production",
        ));
    }
    Ok(())
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
        assert_eq!(c.db.url, DbUrl::Sqlite("./var/schoolsignal.db".into()));
        assert_eq!(c.amqp.names.queue, "schoolsignal.home_visits");
        assert_eq!(c.intake.visit_window_days, 14);
        for v in vars::VARIABLES {
            if !v.default.is_empty() && v.name != "SCHOOLSIGNAL_LOG_FORMAT" {
                let set = load(&[(v.name, v.default)]).unwrap();
                assert_eq!(format!("{set:?}"), format!("{c:?}"), "{}", v.name);
            }
        }
    }

    #[test]
    fn the_readme_lists_every_variable() {
        let readme = include_str!("../../README.md");
        for v in vars::VARIABLES {
            let short = v.name.rsplit_once('_').map(|(_, tail)| format!("_{tail}`"));
            let listed = readme.contains(&format!("`{}`", v.name))
                || short.is_some_and(|s| readme.contains(&s));
            assert!(
                listed,
                "{} is not in the README's configuration table",
                v.name
            );
        }
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
        let e = load(&[("SCHOOLSIGNAL_METRICS_BIND", "localhost")]).unwrap_err();
        assert_eq!(e.var, "SCHOOLSIGNAL_METRICS_BIND");
        let e = load(&[("SCHOOLSIGNAL_METRICS_BIND", "0.0.0.0:8080")]).unwrap_err();
        assert_eq!(e.var, "SCHOOLSIGNAL_METRICS_BIND", "the portal's port");
        assert_eq!(
            load(&[]).unwrap().portal.metrics_bind,
            "127.0.0.1:9090".parse().unwrap()
        );
        let e = load(&[("SCHOOLSIGNAL_TRUSTED_PROXIES", "10.0.0.0/99")]).unwrap_err();
        assert_eq!(e.var, "SCHOOLSIGNAL_TRUSTED_PROXIES");
        let c = load(&[("SCHOOLSIGNAL_TRUSTED_PROXIES", "10.0.0.0/8, ::1")]).unwrap();
        assert!(c
            .portal
            .trusted_proxies
            .contains("10.1.2.3".parse().unwrap()));
        assert!(!c
            .portal
            .trusted_proxies
            .contains("11.1.2.3".parse().unwrap()));
        assert_eq!(
            load(&[]).unwrap().portal.trusted_proxies,
            Default::default()
        );
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
            (
                "SCHOOLSIGNAL_DATA_KEYS",
                "2026a:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
            ),
            ("SCHOOLSIGNAL_ORG_NAME", "Gemeente Utrecht"),
            ("SCHOOLSIGNAL_ORG_PHONE", "14 030"),
            ("SCHOOLSIGNAL_ORG_EMAIL", "schoolsignaal@utrecht.nl"),
            ("SCHOOLSIGNAL_ORG_URL", "https://www.utrecht.nl"),
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
        let mut dev_data_key = full.to_vec();
        dev_data_key[7] = ("SCHOOLSIGNAL_DATA_KEYS", DEV_DATA_KEYS);
        let e = load(&dev_data_key).unwrap_err();
        assert_eq!(e.var, "SCHOOLSIGNAL_DATA_KEYS");
        let mut unsealed = full.to_vec();
        unsealed.push(("SCHOOLSIGNAL_UNSEALED_FOR_BENCHMARK", "true"));
        let e = load(&unsealed).unwrap_err();
        assert_eq!(e.var, "SCHOOLSIGNAL_UNSEALED_FOR_BENCHMARK");
        let mut plain = full.to_vec();
        plain[11] = ("SCHOOLSIGNAL_ORG_URL", "http://www.utrecht.nl");
        assert_eq!(load(&plain).unwrap_err().var, "SCHOOLSIGNAL_ORG_URL");
        let mut fault = full.to_vec();
        fault.push(("SCHOOLSIGNAL_FAULT_ABORT_AFTER_COMMITS", "1"));
        assert_eq!(
            load(&fault).unwrap_err().var,
            "SCHOOLSIGNAL_FAULT_ABORT_AFTER_COMMITS"
        );
    }
}
