//! The AMQP connection and the topology of contract section 1, shared by the intake
//! consumer and the outbox relay.

use crate::config::AmqpNames;
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};

pub async fn connect(url: &str) -> lapin::Result<Connection> {
    let props = ConnectionProperties::default().with_connection_name("schoolsignal".into());
    Connection::connect(url, props).await
}

pub async fn declare_exchange(channel: &Channel, name: &str) -> lapin::Result<()> {
    channel
        .exchange_declare(
            name.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
}

/// Declares the inbound exchange, the quorum queue with its dead-letter exchange and
/// explicit delivery limit (RabbitMQ 3.x has no default), and the dead-letter queue.
pub async fn declare_intake(
    channel: &Channel,
    names: &AmqpNames,
    delivery_limit: u32,
) -> lapin::Result<()> {
    declare_exchange(channel, &names.inbound_exchange).await?;
    declare_exchange(channel, &names.dead_exchange).await?;
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let mut quorum = FieldTable::default();
    quorum.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    channel
        .queue_declare(names.dead_queue.as_str().into(), durable, quorum.clone())
        .await?;
    channel
        .queue_bind(
            names.dead_queue.as_str().into(),
            names.dead_exchange.as_str().into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut args = quorum;
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(names.dead_exchange.as_str().into()),
    );
    args.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongLongInt(delivery_limit.into()),
    );
    channel
        .queue_declare(names.queue.as_str().into(), durable, args)
        .await?;
    channel
        .queue_bind(
            names.queue.as_str().into(),
            names.inbound_exchange.as_str().into(),
            names.binding_key.as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok(())
}
