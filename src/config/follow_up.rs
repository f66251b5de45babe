//! The follow-up section: reminders, escalation and retention.

use super::vars::{err, Reader};
use super::ConfigError;
use std::time::Duration;

const MINUTE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(86_400);

#[derive(Debug, Clone)]
pub struct FollowUpConfig {
    pub reminder_after: Duration,
    pub escalation_after: Duration,
    pub interval: Duration,
    /// Personal data of closed and withdrawn notices is kept this long; zero erases
    /// it when the notice is closed.
    pub retention_after_close: Duration,
}

impl FollowUpConfig {
    pub(super) fn read(r: &Reader<impl Fn(&str) -> Option<String>>) -> Result<Self, ConfigError> {
        let follow_up = FollowUpConfig {
            reminder_after: r.duration(
                "SCHOOLSIGNAL_REMINDER_DELAY_MINUTES",
                MINUTE,
                0..=7 * 24 * 60,
            )?,
            escalation_after: r.duration(
                "SCHOOLSIGNAL_ESCALATION_DELAY_MINUTES",
                MINUTE,
                0..=14 * 24 * 60,
            )?,
            interval: r.duration(
                "SCHOOLSIGNAL_FOLLOW_UP_INTERVAL_SECONDS",
                Duration::from_secs(1),
                1..=3600,
            )?,
            retention_after_close: r.duration("SCHOOLSIGNAL_RETENTION_DAYS", DAY, 0..=3650)?,
        };
        if follow_up.escalation_after < follow_up.reminder_after {
            return Err(err(
                "SCHOOLSIGNAL_ESCALATION_DELAY_MINUTES",
                "must not be shorter than SCHOOLSIGNAL_REMINDER_DELAY_MINUTES",
            ));
        }
        Ok(follow_up)
    }
}
