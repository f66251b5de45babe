//! The AMQP connection and the topology of contract section 1, shared by the intake
//! consumer and the outbox relay.

use crate::config::AmqpNames;
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use std::time::Duration;

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
/// explicit delivery limit (RabbitMQ 3.x has no default), and the dead-letter queue,
/// whose messages expire after `dead_letter_ttl`.
pub async fn declare_intake(
    conn: &Connection,
    channel: &Channel,
    names: &AmqpNames,
    (delivery_limit, dead_letter_ttl): (u32, Duration),
) -> lapin::Result<()> {
    declare_exchange(channel, &names.inbound_exchange).await?;
    declare_exchange(channel, &names.dead_exchange).await?;
    declare_dead_queue(conn, names, dead_letter_ttl).await?;
    channel
        .queue_bind(
            names.dead_queue.as_str().into(),
            names.dead_exchange.as_str().into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut args = quorum();
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(names.dead_exchange.as_str().into()),
    );
    args.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongLongInt(delivery_limit.into()),
    );
    channel
        .queue_declare(names.queue.as_str().into(), durable(), args)
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

/// A rejected event keeps its body, with names and BSNs, in the dead-letter queue;
/// the retention purge never reaches RabbitMQ, so the messages expire by themselves.
/// A queue declared by a version without the TTL cannot be changed in place
/// (RabbitMQ refuses other arguments with 406): it is used as it is, with a warning
/// that names the way out, so that intake never stops over it. Its own channel,
/// because a refusal closes the channel.
async fn declare_dead_queue(
    conn: &Connection,
    names: &AmqpNames,
    ttl: Duration,
) -> lapin::Result<()> {
    let queue = names.dead_queue.as_str();
    let mut args = quorum();
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    args.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ttl_ms));
    let declared = conn
        .create_channel()
        .await?
        .queue_declare(queue.into(), durable(), args)
        .await;
    match declared {
        Ok(_) => Ok(()),
        Err(e) if is_precondition_failed(&e) => {
            tracing::warn!(
                queue,
                "the dead-letter queue exists without a message TTL, so its messages never                  expire: read them, then delete the queue (README, \"Dead letters\"); the \
                 next start declares it with the TTL"
            );
            let passive = QueueDeclareOptions {
                passive: true,
                ..Default::default()
            };
            let channel = conn.create_channel().await?;
            channel
                .queue_declare(queue.into(), passive, FieldTable::default())
                .await
                .map(|_| ())
        }
        Err(e) => Err(e),
    }
}

fn is_precondition_failed(e: &lapin::Error) -> bool {
    matches!(e.kind(), lapin::ErrorKind::ProtocolError(amqp) if amqp.get_id() == 406)
}

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..Default::default()
    }
}

fn quorum() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    args
}
