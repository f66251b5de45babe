//! The one place that reads the wall clock. Domain code asks a [`Clock`] for "now",
//! so tests and demos can replay fixed fixtures with `SCHOOLSIGNAL_NOW`.

use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Instant;

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

pub type SharedClock = Arc<dyn Clock>;

/// Real time.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Starts at a fixed instant and runs on in real time from there.
pub struct OffsetClock {
    start: DateTime<Utc>,
    started: Instant,
}

impl OffsetClock {
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        Self {
            start,
            started: Instant::now(),
        }
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = chrono::Duration::from_std(self.started.elapsed()).unwrap_or_default();
        self.start + elapsed
    }
}

/// The clock the configuration asks for.
pub fn from_config(now: Option<DateTime<Utc>>) -> SharedClock {
    match now {
        Some(start) => Arc::new(OffsetClock::starting_at(start)),
        None => Arc::new(SystemClock),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_clock_starts_at_the_given_instant_and_runs_on() {
        let start = DateTime::parse_from_rfc3339("2026-11-23T07:00:00+01:00")
            .unwrap()
            .with_timezone(&Utc);
        let clock = OffsetClock::starting_at(start);
        let now = clock.now();
        assert!(now >= start);
        assert!(now - start < chrono::Duration::seconds(5));
    }
}
