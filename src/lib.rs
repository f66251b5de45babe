//! schoolsignal: police home-visit events in, discreet school notices out.
//!
//! Imports run one way, from the bottom of this list to the top of it:
//! - support: `config`, `contract`, `clock`, `retry`, `locale`, `telemetry`;
//! - `db`: connections, pool, schema, migrations; `db::backend` is the one place that
//!   differs per backend;
//! - the domain: `registry`, `access`, `delivery`, `outbox`, then `notices`;
//! - `report`: the timeliness report and the operator dashboard's reads, over them;
//! - the transports: `intake` (validate and accept), `broker` (AMQP in and out),
//!   `http` (the API and the portal);
//! - `app` (the wiring), then `cli`.
//!
//! `layering`'s test fails on an import that points back up.

pub mod access;
pub mod app;
pub mod broker;
pub mod cli;
pub mod clock;
pub mod config;
pub mod contract;
pub mod db;
pub mod delivery;
pub mod http;
pub mod intake;
pub mod layering;
pub mod locale;
pub mod notices;
pub mod outbox;
pub mod registry;
pub mod report;
pub mod retry;
pub mod sealing;
pub mod telemetry;
