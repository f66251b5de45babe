//! Who may do what: the sole owner of link tokens, staff accounts, sessions, TOTP,
//! API keys and the audit log.

pub mod accounts;
pub mod api_keys;
pub mod audit;
pub mod links;
pub mod sessions;
pub mod totp;
