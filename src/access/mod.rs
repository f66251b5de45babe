//! Who may do what: the sole owner of link tokens, staff accounts, sessions, TOTP,
//! API keys, operators and the audit log; and signing in to the portal, which uses them all.

pub mod accounts;
pub mod api_keys;
pub mod audit;
pub mod links;
pub mod locales;
pub mod operators;
pub mod sessions;
pub mod sign_in;
pub mod totp;
