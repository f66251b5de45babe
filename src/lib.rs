//! schoolsignal: police home-visit events in, discreet school notices out.
//!
//! Stages, each in its own folder: `contract` (wire types and validation), `intake`
//! (AMQP and HTTPS), `registry` (schools, enrollments, consent), `notices` (the
//! decision), `relay` (outbound messages), `api` (HTTP surface), `db`.

pub mod api;
pub mod app;
pub mod broker;
pub mod cli;
pub mod clock;
pub mod config;
pub mod contract;
pub mod db;
pub mod delivery;
pub mod intake;
pub mod notices;
pub mod portal;
pub mod registry;
pub mod relay;
pub mod retry;
pub mod telemetry;
