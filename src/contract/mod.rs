//! The wire contracts (`../shared/contracts/README.md`) and their validation.

pub mod bsn;
pub mod home_visit;
pub mod outbound;
pub mod reason;
pub mod school_signal;

pub use bsn::Bsn;
pub use home_visit::{Child, HomeVisit, Limits, Status};
pub use reason::{Reason, Rejection};
pub use school_signal::{SchoolSignal, SIGNAL_SCHEMA};

/// The most a message body may hold.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
