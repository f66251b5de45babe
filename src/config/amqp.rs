//! The broker section: where to connect and the names of contract section 1.

use super::vars::{err, Reader};
use super::ConfigError;

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

    fn read(r: &Reader<impl Fn(&str) -> Option<String>>) -> Self {
        AmqpNames {
            inbound_exchange: r.text("SCHOOLSIGNAL_AMQP_INBOUND_EXCHANGE"),
            queue: r.text("SCHOOLSIGNAL_AMQP_QUEUE"),
            binding_key: r.text("SCHOOLSIGNAL_AMQP_BINDING_KEY"),
            dead_exchange: r.text("SCHOOLSIGNAL_AMQP_DEAD_EXCHANGE"),
            dead_queue: r.text("SCHOOLSIGNAL_AMQP_DEAD_QUEUE"),
            outbound_exchange: r.text("SCHOOLSIGNAL_AMQP_OUTBOUND_EXCHANGE"),
        }
    }
}

#[derive(Clone)]
pub struct AmqpConfig {
    /// May hold a password: never logged.
    pub url: String,
    pub names: AmqpNames,
    pub prefetch: u16,
    pub delivery_limit: u32,
    /// How long a dead letter (a rejected event, with its personal data) is kept.
    pub dead_letter_ttl: std::time::Duration,
}

impl std::fmt::Debug for AmqpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpConfig")
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

impl AmqpConfig {
    pub(super) fn read(r: &Reader<impl Fn(&str) -> Option<String>>) -> Result<Self, ConfigError> {
        let url = r.text("AMQP_URL");
        if !url.starts_with("amqp://") && !url.starts_with("amqps://") {
            return Err(err("AMQP_URL", "must start with amqp:// or amqps://"));
        }
        Ok(AmqpConfig {
            url,
            names: AmqpNames::read(r),
            prefetch: r.number("SCHOOLSIGNAL_AMQP_PREFETCH", 1..=10_000)?,
            delivery_limit: r.number("SCHOOLSIGNAL_AMQP_DELIVERY_LIMIT", 1..=1000)?,
            dead_letter_ttl: r.duration(
                "SCHOOLSIGNAL_DEAD_LETTER_DAYS",
                std::time::Duration::from_secs(86_400),
                1..=365,
            )?,
        })
    }
}
