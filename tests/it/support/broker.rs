//! AMQP on the test's side: publishing as a police system would, and reading what the
//! service sent.

use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use schoolsignal::config::AmqpNames;
use std::time::{Duration, Instant};

pub fn amqp_url() -> String {
    std::env::var("TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

pub struct Broker {
    pub conn: Connection,
    pub channel: Channel,
    pub names: AmqpNames,
    pub outcomes_queue: String,
}

/// The service's default `SCHOOLSIGNAL_DEAD_LETTER_DAYS`, 14.
pub const DEAD_LETTER_TTL: Duration = Duration::from_secs(14 * 86_400);

impl Broker {
    pub async fn connect(url: &str, names: AmqpNames) -> Self {
        // Bounded: a broker that accepts connections and never answers fails the
        // test instead of hanging the run.
        let conn = tokio::time::timeout(
            Duration::from_secs(30),
            Connection::connect(url, ConnectionProperties::default()),
        )
        .await
        .expect("RabbitMQ did not answer within 30 s")
        .expect("RabbitMQ must run");
        let channel = conn.create_channel().await.unwrap();
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        let outcomes_queue = format!("{}.test-outcomes", names.outbound_exchange);
        let broker = Self {
            conn,
            channel,
            names,
            outcomes_queue,
        };
        broker.declare().await;
        broker
    }

    /// The inbound exchange and a queue that collects our outcome messages. Declared
    /// before the service starts so that no message goes unrouted.
    pub async fn declare(&self) {
        // The intake queue exists before the service first starts, as in production,
        // so events published before a start are kept. Same arguments as the service.
        let limits = (10, DEAD_LETTER_TTL);
        schoolsignal::broker::declare_intake(&self.conn, &self.channel, &self.names, limits)
            .await
            .unwrap();
        for ex in [&self.names.inbound_exchange, &self.names.outbound_exchange] {
            schoolsignal::broker::declare_exchange(&self.channel, ex)
                .await
                .unwrap();
        }
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        self.declare_bound(&self.outcomes_queue, "notice.outcome.v1", durable)
            .await;
    }

    /// A queue of the test's own bound to the outbound exchange with `routing_key`
    /// (e.g. `notice.escalated.v1`). Exclusive to this connection, so the broker
    /// removes it when the test ends, whether it passed or not.
    pub async fn bind_outbound(&self, routing_key: &str) -> String {
        let queue = format!("{}.test-{routing_key}", self.names.outbound_exchange);
        let exclusive = QueueDeclareOptions {
            exclusive: true,
            ..Default::default()
        };
        self.declare_bound(&queue, routing_key, exclusive).await;
        queue
    }

    /// Declares `queue` and binds it to the outbound exchange with `routing_key`.
    async fn declare_bound(&self, queue: &str, routing_key: &str, options: QueueDeclareOptions) {
        self.channel
            .queue_declare(queue.into(), options, FieldTable::default())
            .await
            .unwrap();
        self.channel
            .queue_bind(
                queue.into(),
                self.names.outbound_exchange.as_str().into(),
                routing_key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
    }

    /// Publishes as a police system would, and waits for the broker's confirm.
    pub async fn publish(&self, body: &[u8]) {
        self.publish_with(body, json_props(body)).await
    }

    pub async fn publish_with(&self, body: &[u8], props: BasicProperties) {
        let confirm = self.send_with(body, props).await.await.unwrap();
        assert!(confirm.is_ack());
    }

    /// Publishes without waiting; the caller awaits the confirm.
    pub async fn send(&self, body: &[u8]) -> lapin::PublisherConfirm {
        self.send_with(body, json_props(body)).await
    }

    /// Publishes many bodies and waits for all confirms once.
    pub async fn publish_many(&self, bodies: &[Vec<u8>]) {
        let mut confirms = Vec::with_capacity(bodies.len());
        for body in bodies {
            confirms.push(self.send(body).await);
        }
        for c in confirms {
            assert!(c.await.unwrap().is_ack());
        }
    }

    async fn send_with(&self, body: &[u8], props: BasicProperties) -> lapin::PublisherConfirm {
        self.channel
            .basic_publish(
                self.names.inbound_exchange.as_str().into(),
                "home_visit.v1".into(),
                BasicPublishOptions::default(),
                body,
                props,
            )
            .await
            .unwrap()
    }

    /// Takes up to `n` messages from a queue, waiting at most `timeout` for them.
    pub async fn take(
        &self,
        queue: &str,
        n: usize,
        timeout: Duration,
    ) -> Vec<lapin::message::BasicGetMessage> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        while out.len() < n && Instant::now() < deadline {
            match self
                .channel
                .basic_get(queue.into(), BasicGetOptions { no_ack: true })
                .await
                .unwrap()
            {
                Some(m) => out.push(m),
                None => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        out
    }

    pub async fn message_count(&self, queue: &str) -> u32 {
        self.channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap()
            .message_count()
    }

    /// Removes what a test declared. Stop the test's services first (drop a
    /// `ServiceProcess`; `TestApp::cleanup` stops its own): a running service would
    /// declare its queues again and leave them behind.
    pub async fn cleanup(&self) {
        for q in [
            &self.names.queue,
            &self.names.dead_queue,
            &self.outcomes_queue,
        ] {
            let _ = self
                .channel
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
        for ex in [
            &self.names.inbound_exchange,
            &self.names.dead_exchange,
            &self.names.outbound_exchange,
        ] {
            let _ = self
                .channel
                .exchange_delete(ex.as_str().into(), ExchangeDeleteOptions::default())
                .await;
        }
    }
}

pub fn json_props(body: &[u8]) -> BasicProperties {
    let mut props = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_type("police.home_visit.v1".into());
    if let Some(id) = schoolsignal::contract::home_visit::event_id_of(body) {
        props = props.with_message_id(id.to_string().into());
    }
    props
}

pub fn header_str(props: &BasicProperties, name: &str) -> Option<String> {
    match props.headers().as_ref()?.inner().get(name)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_string()),
        _ => None,
    }
}
