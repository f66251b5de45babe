//! The integration tests, as one test binary: the support code compiles and links
//! once, not once per test file. Each module is one former test file; its tests are
//! named by the module (`portal::postgres::link_to_acknowledgement`), so
//! `cargo test portal::` runs one of them.

mod support;

mod accessibility;
mod browser;
mod container;
mod contract_examples;
mod delivery;
mod delivery_resilience;
mod first_use;
mod http_boundary;
mod mail_links;
mod monitoring;
mod openapi;
mod operator;
mod portal;
mod privacy_at_rest;
mod registry_cli;
mod report;
mod resilience;
mod retention;
mod simulated_schools;
mod test_keys;
