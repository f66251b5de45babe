//! Delivery: notice emails, their templates and transports.

pub mod templates;
