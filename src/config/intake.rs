//! The intake section: batching, the BSN key and the contract's limits.

use super::vars::{err, Reader, DEV_BSN_KEY};
use super::ConfigError;

#[derive(Clone)]
pub struct IntakeConfig {
    /// Events decided per transaction.
    pub batch: usize,
    /// The HMAC key for BSNs. Never logged.
    pub bsn_key: Vec<u8>,
    pub visit_window_days: i64,
    pub school_age: std::ops::RangeInclusive<u32>,
    /// Development only: abort the process after this many committed intake batches,
    /// before their acks, so tests can prove that a redelivery has no second effect.
    pub fault_abort_after_commits: Option<u64>,
}

impl std::fmt::Debug for IntakeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntakeConfig")
            .field("batch", &self.batch)
            .finish_non_exhaustive()
    }
}

impl IntakeConfig {
    pub(super) fn read(r: &Reader<impl Fn(&str) -> Option<String>>) -> Result<Self, ConfigError> {
        let bsn_key = r
            .set("SCHOOLSIGNAL_BSN_KEY")
            .unwrap_or_else(|| DEV_BSN_KEY.into())
            .into_bytes();
        if bsn_key.len() < 32 {
            return Err(err(
                "SCHOOLSIGNAL_BSN_KEY",
                "must be at least 32 bytes long",
            ));
        }
        let min = r.number("SCHOOLSIGNAL_SCHOOL_AGE_MIN", 0..=30)?;
        let max = r.number("SCHOOLSIGNAL_SCHOOL_AGE_MAX", 0..=30)?;
        if min > max {
            return Err(err(
                "SCHOOLSIGNAL_SCHOOL_AGE_MIN",
                "must not be above SCHOOLSIGNAL_SCHOOL_AGE_MAX",
            ));
        }
        Ok(IntakeConfig {
            batch: r.number("SCHOOLSIGNAL_INTAKE_BATCH", 1..=5000)?,
            bsn_key,
            visit_window_days: r.number("SCHOOLSIGNAL_VISIT_WINDOW_DAYS", 1..=365)?,
            school_age: min..=max,
            fault_abort_after_commits: r
                .optional_number("SCHOOLSIGNAL_FAULT_ABORT_AFTER_COMMITS", 1..=u64::MAX)?,
        })
    }
}
