//! The outbound relay: drains the outbox to RabbitMQ with publisher confirms.
//! A row is marked published only after the broker confirmed it, so a broker outage
//! delays messages but loses none. On a stop it settles its batch and takes no other.

use super::topology as broker;
use crate::clock::SharedClock;
use crate::db::{self, DbError, Pool};
use crate::outbox::{self, Outbox, OutboxMessage};
use crate::retry::{self, Backoff};
use crate::sealing::Keyring;
use crate::telemetry::Metrics;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const BATCH: i64 = 500;
const LEASE_SECONDS: i64 = 60;
const IDLE_POLL: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    #[error(transparent)]
    Db(#[from] DbError),
}

pub struct Relay {
    pub pool: Pool,
    pub clock: SharedClock,
    pub metrics: Arc<Metrics>,
    /// Opens the sealed bodies (signals) before they are published.
    pub keys: Arc<Keyring>,
    pub amqp_url: String,
    /// The exchange it declares, and the wake-up it waits on.
    pub outbox: Outbox,
    /// Cancelled on a stop: settle the batch in hand, claim no more.
    pub stop: CancellationToken,
}

impl Relay {
    pub async fn run(self: Arc<Self>) {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        while !self.stop.is_cancelled() {
            if let Err(e) = self.session(&mut backoff).await {
                tracing::warn!(error = %e, "outbox relay interrupted; retrying");
            }
            let _ = tokio::time::timeout(backoff.next_delay(), self.stop.cancelled()).await;
        }
        tracing::info!("outbox relay stopped");
    }

    async fn session(&self, backoff: &mut Backoff) -> Result<(), RelayError> {
        let (conn, channel) = tokio::select! {
            opened = self.open() => opened?,
            _ = self.stop.cancelled() => return Ok(()),
        };
        tracing::info!("outbox relay connected");
        while !self.stop.is_cancelled() {
            let now = self.clock.now();
            let keys = self.keys.clone();
            let batch = db::run(&self.pool, move |conn| {
                Ok(outbox::claim(
                    conn,
                    &keys,
                    now,
                    chrono::Duration::seconds(LEASE_SECONDS),
                    BATCH,
                )?)
            })
            .await?;
            if batch.is_empty() {
                backoff.reset();
                let wake = self.outbox.wakeup();
                tokio::select! {
                    _ = tokio::time::timeout(IDLE_POLL, wake.notified()) => {}
                    _ = self.stop.cancelled() => {}
                }
                continue;
            }
            let ids: Vec<i64> = batch.iter().map(|m| m.id).collect();
            match publish_all(&channel, &batch).await {
                Ok(refused) => self.settle(&batch, refused).await?,
                Err(e) => {
                    // Give the rows back now rather than when the lease runs out.
                    let retry_at = self.clock.now() + chrono::Duration::seconds(1);
                    let _ =
                        db::run(&self.pool, move |c| Ok(outbox::release(c, &ids, retry_at)?)).await;
                    return Err(e.into());
                }
            }
        }
        conn.close(200, "schoolsignal stopping".into()).await?;
        Ok(())
    }

    async fn open(&self) -> Result<(lapin::Connection, Channel), RelayError> {
        let conn = broker::connect(&self.amqp_url).await?;
        let channel = conn.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        broker::declare_exchange(&channel, &self.outbox.exchange).await?;
        Ok((conn, channel))
    }

    /// Marks confirmed rows published; schedules refused ones for a later try.
    async fn settle(
        &self,
        batch: &[OutboxMessage],
        refused: HashSet<i64>,
    ) -> Result<(), RelayError> {
        let now = self.clock.now();
        let confirmed: Vec<i64> = batch
            .iter()
            .map(|m| m.id)
            .filter(|id| !refused.contains(id))
            .collect();
        let retries: Vec<(i64, i32)> = batch
            .iter()
            .filter(|m| refused.contains(&m.id))
            .map(|m| (m.id, m.attempts))
            .collect();
        let counts = (confirmed.len() as u64, retries.len() as u64);
        db::run(&self.pool, move |conn| {
            outbox::mark_published(conn, &confirmed, now)?;
            for (id, attempts) in retries {
                let delay = retry::delay_for(
                    Duration::from_secs(1),
                    Duration::from_secs(300),
                    attempts.max(0) as u32,
                );
                let at = now + chrono::Duration::from_std(delay).unwrap_or_default();
                outbox::release(conn, &[id], at)?;
            }
            Ok(())
        })
        .await?;
        // Counted once recorded: a batch whose record failed is settled again.
        self.metrics.published.inc_by(counts.0);
        self.metrics.publish_failures.inc_by(counts.1);
        Ok(())
    }
}

/// Publishes a batch and waits for every confirm. Returns the ids the broker refused.
async fn publish_all(channel: &Channel, batch: &[OutboxMessage]) -> lapin::Result<HashSet<i64>> {
    let mut pending = Vec::with_capacity(batch.len());
    for m in batch {
        let props = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(2)
            .with_message_id(m.message_id.as_str().into())
            .with_type(m.message_type.as_str().into())
            .with_app_id("schoolsignal".into());
        let confirm = channel
            .basic_publish(
                m.exchange.as_str().into(),
                m.routing_key.as_str().into(),
                BasicPublishOptions::default(),
                m.body.as_bytes(),
                props,
            )
            .await?;
        pending.push((m.id, confirm));
    }
    let mut refused = HashSet::new();
    for (id, confirm) in pending {
        if !confirm.await?.is_ack() {
            refused.insert(id);
        }
    }
    Ok(refused)
}
