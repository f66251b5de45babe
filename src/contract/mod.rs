//! The wire contracts (`../shared/contracts/README.md`) and their validation.

pub mod bsn;
pub mod home_visit;
pub mod outbound;
pub mod reason;

pub use bsn::Bsn;
pub use home_visit::{Child, HomeVisit, Limits, Status};
pub use reason::{Reason, Rejection};

/// The most a message body may hold.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
