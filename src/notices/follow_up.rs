//! Follow-up of notices no one acknowledged: a reminder to the coordinator and the
//! deputy, then an escalation to Veilig Thuis; and the retention purge. Each notice
//! is claimed in the same transaction that records the step, so several replicas never repeat one.

use super::lifecycle;
use super::retention::{self, Retention};
use super::NoticeStatus;
use crate::clock::SharedClock;
use crate::contract::outbound::EscalationLevel;
use crate::db::schema::{notices, schools};
use crate::db::{self, ts, write_tx, DbConn, DbError, Pool};
use crate::delivery::kinds::{Kind, Recipient};
use crate::delivery::queue::{self, NewDelivery, Policy};
use crate::outbox::Outbox;
use crate::telemetry::Metrics;
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub struct FollowUp {
    pub pool: Pool,
    pub clock: SharedClock,
    pub metrics: Arc<Metrics>,
    pub policy: Policy,
    /// Where escalations are published.
    pub outbox: Outbox,
    pub reminder_after: Duration,
    pub escalation_after: Duration,
    pub interval: std::time::Duration,
    pub retention: Retention,
    pub mail_wake: Arc<Notify>,
    /// Cancelled on a stop: no further round starts.
    pub stop: CancellationToken,
}

/// Notices handled per transaction.
const BATCH: i64 = 500;

impl FollowUp {
    /// Follows up every `interval` until stopped. A round in progress finishes: each
    /// of its steps is one transaction.
    pub async fn run(self: Arc<Self>) {
        while !self.stop.is_cancelled() {
            if let Err(e) = self.tick().await {
                tracing::warn!(error = %e, "follow-up of notices failed; trying again later");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = self.stop.cancelled() => {}
            }
        }
        tracing::info!("follow-up of notices stopped");
    }

    async fn tick(&self) -> Result<(), DbError> {
        let (policy, now) = (self.policy.clone(), self.clock.now());
        let exchange = self.outbox.exchange.clone();
        let (remind_after, escalate_after) = (self.reminder_after, self.escalation_after);
        let retention = self.retention;
        let (reminded, escalated, purged, overdue) = db::run(&self.pool, move |conn| {
            let reminded = remind(conn, &policy, now, remind_after)?;
            let escalated = escalate(conn, &exchange, now, escalate_after)?;
            let purged = retention::purge(conn, retention, now)?;
            Ok::<_, DbError>((reminded, escalated, purged, overdue(conn, now)?))
        })
        .await?;
        self.metrics.overdue.set(overdue);
        if purged > 0 {
            self.metrics.purged.inc_by(purged as u64);
            tracing::info!(notices = purged, "personal data of notices purged");
        }
        if reminded > 0 {
            self.metrics.reminders.inc_by(reminded as u64);
            tracing::info!(notices = reminded, "reminders queued");
            self.mail_wake.notify_one();
        }
        if escalated > 0 {
            let level = EscalationLevel::Unacknowledged.as_str();
            self.metrics
                .escalations
                .with_label_values(&[level])
                .inc_by(escalated as u64);
            tracing::info!(notices = escalated, level, "notices escalated");
            self.outbox.wake_relay();
        }
        Ok(())
    }
}

/// The notices no one acknowledged, escalated or withdrew, due at or before a cutoff,
/// the oldest first.
macro_rules! open_due {
    ($cutoff:expr) => {
        notices::table
            .filter(notices::acknowledged_at.is_null())
            .filter(notices::escalated_at.is_null())
            .filter(notices::status.ne(NoticeStatus::Withdrawn))
            .filter(notices::due_at.le($cutoff))
            .order(notices::due_at)
            .limit(BATCH)
            .select(notices::id)
    };
}

/// How many notices are past due, unacknowledged and not withdrawn: what operators
/// alert on.
pub fn overdue(conn: &mut DbConn, now: DateTime<Utc>) -> QueryResult<i64> {
    notices::table
        .filter(notices::acknowledged_at.is_null())
        .filter(notices::status.ne(NoticeStatus::Withdrawn))
        .filter(notices::due_at.lt(ts(now)))
        .count()
        .get_result(conn)
}

/// Queues a reminder to the coordinator and the deputy of each notice whose due time
/// passed `after` ago without an acknowledgement. Returns how many notices.
pub fn remind(
    conn: &mut DbConn,
    policy: &Policy,
    now: DateTime<Utc>,
    after: Duration,
) -> QueryResult<usize> {
    write_tx(conn, |conn| {
        let not_reminded = open_due!(ts(now - after)).filter(notices::reminded_at.is_null());
        let ids: Vec<String> = crate::skip_locked!(conn, not_reminded);
        diesel::update(notices::table.filter(notices::id.eq_any(&ids)))
            .set(notices::reminded_at.eq(Some(ts(now))))
            .execute(conn)?;
        let with_deputy: Vec<(String, bool)> = notices::table
            .inner_join(schools::table)
            .filter(notices::id.eq_any(&ids))
            .select((notices::id, schools::deputy_email.is_not_null()))
            .load(conn)?;
        let mut reminders = Vec::new();
        for (id, has_deputy) in &with_deputy {
            let mut to = vec![Recipient::Coordinator];
            if *has_deputy {
                to.push(Recipient::Deputy);
            }
            reminders.extend(
                to.into_iter()
                    .map(|who| NewDelivery::new(policy, id, Kind::Reminder, who, now)),
            );
        }
        queue::enqueue(conn, &reminders)?;
        Ok(ids.len())
    })
}

/// Escalates each notice whose due time passed `after` ago without an
/// acknowledgement. Returns how many.
pub fn escalate(
    conn: &mut DbConn,
    exchange: &str,
    now: DateTime<Utc>,
    after: Duration,
) -> QueryResult<usize> {
    write_tx(conn, |conn| {
        let ids: Vec<String> = crate::skip_locked!(conn, open_due!(ts(now - after)));
        let level = EscalationLevel::Unacknowledged;
        lifecycle::escalate(conn, &ids, level, exchange, now)
    })
}
