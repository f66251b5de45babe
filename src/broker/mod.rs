//! The AMQP side of the service: the topology of contract section 1, the intake
//! consumer, and the relay that publishes the outbox with publisher confirms. Both
//! transports live here so that lapin stays out of the domain.

pub mod consumer;
pub mod relay;
pub mod topology;

pub use topology::{connect, declare_exchange, declare_intake};
