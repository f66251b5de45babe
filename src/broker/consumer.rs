//! The AMQP consumer: batches deliveries, decides them in one transaction, and acks
//! only after the commit. Rejected messages are republished to the dead-letter
//! exchange with the header `x-schoolsignal-reason` before their ack, because a plain
//! `basic_reject` cannot add a header. On a stop it finishes its batch, then closes
//! its channel, which hands the messages it prefetched back to the broker at once.

use super::topology as broker;
use crate::access::api_keys::Mode;
use crate::config::{AmqpConfig, AmqpNames};
use crate::contract::{Reason, Rejection};
use crate::intake::Intake;
use crate::notices::decide::{Received, Verdict};
use crate::retry::Backoff;
use futures_util::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, Consumer as Deliveries};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const REASON_HEADER: &str = "x-schoolsignal-reason";

#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    #[error("the broker closed the consumer")]
    Cancelled,
    #[error("the broker did not confirm a dead-lettered message")]
    NotConfirmed,
}

pub struct Consumer {
    pub intake: Arc<Intake>,
    pub url: String,
    pub names: AmqpNames,
    pub prefetch: u16,
    pub delivery_limit: u32,
    /// How long a dead letter is kept (`SCHOOLSIGNAL_DEAD_LETTER_DAYS`).
    pub dead_letter_ttl: Duration,
    pub batch_max: usize,
    pub connected: Arc<AtomicBool>,
    stop: CancellationToken,
}

/// A consuming session: the intake channel, the confirming channel for dead letters,
/// and the stream of deliveries.
struct Session {
    conn: Connection,
    channel: Channel,
    dead: Channel,
    deliveries: Deliveries,
}

impl Consumer {
    /// The consumer of `amqp`'s queue, deciding up to `batch_max` events at a time.
    pub fn new(
        intake: Arc<Intake>,
        amqp: AmqpConfig,
        batch_max: usize,
        connected: Arc<AtomicBool>,
        stop: CancellationToken,
    ) -> Self {
        Self {
            intake,
            url: amqp.url,
            names: amqp.names,
            prefetch: amqp.prefetch,
            delivery_limit: amqp.delivery_limit,
            dead_letter_ttl: amqp.dead_letter_ttl,
            batch_max,
            connected,
            stop,
        }
    }

    /// Consumes until stopped: connects, declares the topology, and after any failure
    /// reconnects with backoff. Unacked messages return to the queue when a
    /// connection drops, so nothing is lost.
    pub async fn run(self: Arc<Self>) {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        while !self.stop.is_cancelled() {
            let result = self.session(&mut backoff).await;
            self.set_connected(false);
            if let Err(e) = result {
                tracing::warn!(error = %e, "intake consumer disconnected; reconnecting");
            }
            let _ = tokio::time::timeout(backoff.next_delay(), self.stop.cancelled()).await;
        }
        tracing::info!("intake consumer stopped");
    }

    fn set_connected(&self, up: bool) {
        self.connected.store(up, Ordering::SeqCst);
        self.intake.metrics.broker_up.set(up as i64);
    }

    async fn session(&self, backoff: &mut Backoff) -> Result<(), ConsumerError> {
        let mut session = tokio::select! {
            session = self.open() => session?,
            _ = self.stop.cancelled() => return Ok(()),
        };
        self.set_connected(true);
        backoff.reset();
        tracing::info!(queue = %self.names.queue, "intake consumer connected");
        loop {
            let first = tokio::select! {
                biased;
                _ = self.stop.cancelled() => break,
                next = session.deliveries.next() => next.ok_or(ConsumerError::Cancelled)??,
            };
            let mut batch = vec![first];
            // Take what is already buffered, without waiting, up to the batch size.
            while batch.len() < self.batch_max {
                match session.deliveries.next().now_or_never() {
                    Some(Some(d)) => batch.push(d?),
                    Some(None) => return Err(ConsumerError::Cancelled),
                    None => break,
                }
            }
            self.handle(&session.dead, batch).await?;
        }
        // Stopping: the broker gives the prefetched, unacked messages to another
        // consumer as soon as the channel closes, rather than when the process ends.
        session
            .channel
            .close(200, "schoolsignal stopping".into())
            .await?;
        session
            .conn
            .close(200, "schoolsignal stopping".into())
            .await?;
        Ok(())
    }

    async fn open(&self) -> Result<Session, ConsumerError> {
        let conn = broker::connect(&self.url).await?;
        let channel = conn.create_channel().await?;
        let limits = (self.delivery_limit, self.dead_letter_ttl);
        broker::declare_intake(&conn, &channel, &self.names, limits).await?;
        channel
            .basic_qos(self.prefetch, BasicQosOptions::default())
            .await?;
        let dead = conn.create_channel().await?;
        dead.confirm_select(ConfirmSelectOptions::default()).await?;
        let deliveries = channel
            .basic_consume(
                self.names.queue.as_str().into(),
                format!("schoolsignal-{}", uuid::Uuid::new_v4()).into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(Session {
            conn,
            channel,
            dead,
            deliveries,
        })
    }

    async fn handle(&self, dead: &Channel, batch: Vec<Delivery>) -> Result<(), ConsumerError> {
        let mut rejected: Vec<(usize, Rejection)> = Vec::new();
        let mut valid: Vec<(usize, Received)> = Vec::new();
        for (i, d) in batch.iter().enumerate() {
            match self.check(d) {
                Ok(r) => valid.push((i, r)),
                Err(rejection) => rejected.push((i, rejection)),
            }
        }
        let poisoned = self.decide(&mut valid, &mut rejected).await;
        for (i, rejection) in &rejected {
            if rejection.reason != Reason::EventIdConflict {
                self.intake
                    .note_rejection(rejection, &batch[*i].data, "amqp", Mode::Live);
            }
        }
        self.dead_letter(dead, &batch, &rejected).await?;
        for &i in &poisoned {
            // Back to the queue: the broker dead-letters it after the delivery limit.
            batch[i]
                .acker
                .nack(BasicNackOptions {
                    multiple: false,
                    requeue: true,
                })
                .await?;
        }
        let done: Vec<&Delivery> = batch
            .iter()
            .enumerate()
            .filter(|(i, _)| !poisoned.contains(i))
            .map(|(_, d)| d)
            .collect();
        ack_all(&batch, &done).await
    }

    /// Decides the valid messages. Conflicts join `rejected`; returns the indices
    /// of messages whose transaction fails for a reason other than an outage.
    async fn decide(
        &self,
        valid: &mut Vec<(usize, Received)>,
        rejected: &mut Vec<(usize, Rejection)>,
    ) -> Vec<usize> {
        if valid.is_empty() {
            return Vec::new();
        }
        let (index, received): (Vec<usize>, Vec<Received>) =
            std::mem::take(valid).into_iter().unzip();
        let verdicts = match self.intake.accept(received.clone()).await {
            Ok(v) => v.into_iter().map(Some).collect::<Vec<_>>(),
            // One bad event must not hold the others back: decide them one by one.
            Err(_) => self.decide_singly(received).await,
        };
        let mut poisoned = Vec::new();
        for (i, verdict) in index.into_iter().zip(verdicts) {
            match verdict {
                Some(Verdict::Conflict) => {
                    rejected.push((i, Rejection::new(Reason::EventIdConflict)))
                }
                Some(_) => {}
                None => poisoned.push(i),
            }
        }
        poisoned
    }

    async fn decide_singly(&self, received: Vec<Received>) -> Vec<Option<Verdict>> {
        let mut out = Vec::with_capacity(received.len());
        for r in received {
            let event_id = r.event.event_id;
            match self.intake.accept(vec![r]).await {
                Ok(mut v) => out.push(v.pop()),
                Err(e) => {
                    tracing::error!(%event_id, error = %e, "event could not be stored; returned to the queue");
                    out.push(None);
                }
            }
        }
        out
    }

    fn check(&self, d: &Delivery) -> Result<Received, Rejection> {
        if let Some(ct) = d.properties.content_type() {
            let mime = ct.as_str().split(';').next().unwrap_or("").trim();
            if !mime.eq_ignore_ascii_case("application/json") {
                return Err(Rejection::new(Reason::UnsupportedContentType));
            }
        }
        self.intake.validate(&d.data, "amqp")
    }

    async fn dead_letter(
        &self,
        dead: &Channel,
        batch: &[Delivery],
        rejected: &[(usize, Rejection)],
    ) -> Result<(), ConsumerError> {
        let mut confirms = Vec::with_capacity(rejected.len());
        for (i, rejection) in rejected {
            let d = &batch[*i];
            let mut headers = d.properties.headers().clone().unwrap_or_default();
            headers.insert(
                REASON_HEADER.into(),
                AMQPValue::LongString(rejection.reason.as_str().into()),
            );
            let props: BasicProperties = d.properties.clone().with_headers(headers);
            let confirm = dead
                .basic_publish(
                    self.names.dead_exchange.as_str().into(),
                    d.routing_key.clone(),
                    BasicPublishOptions::default(),
                    &d.data,
                    props,
                )
                .await?;
            confirms.push(confirm);
        }
        for confirm in confirms {
            if !confirm.await?.is_ack() {
                return Err(ConsumerError::NotConfirmed);
            }
        }
        Ok(())
    }
}

/// Acks the handled deliveries: one `multiple` ack when they form the whole batch.
async fn ack_all(batch: &[Delivery], done: &[&Delivery]) -> Result<(), ConsumerError> {
    if done.len() == batch.len() {
        if let Some(last) = batch.last() {
            last.acker.ack(BasicAckOptions { multiple: true }).await?;
        }
        return Ok(());
    }
    for d in done {
        d.acker.ack(BasicAckOptions::default()).await?;
    }
    Ok(())
}
