//! Delivery: the notice emails. Intake queues them in `deliveries`; the worker
//! claims, renders and sends them and records the result; a notice that no one
//! could be sent falls back to the deputy, then escalates.

pub mod message;
pub mod queue;
pub mod templates;
pub mod transport;
pub mod worker;
