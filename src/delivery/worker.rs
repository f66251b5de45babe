//! The email worker: claims due emails, sends them concurrently, and records each
//! result as soon as the server has answered. On a stop it finishes and records the
//! emails on their way, and gives back the ones it claimed but did not start.

use super::compose;
use super::kinds::{Failure, Kind, State};
use super::queue::{self, Attempt, Claimed, Finished, Notices, Policy};
use super::templates::Templates;
use super::transport::{Mailer, SendError};
use crate::clock::SharedClock;
use crate::contract::outbound::EscalationLevel;
use crate::db::{self, DbError, Pool};
use crate::outbox::Outbox;
use crate::retry::{delay_for, Backoff};
use crate::telemetry::Metrics;
use futures_util::StreamExt;
use lettre::message::Mailbox;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio_util::sync::CancellationToken;

pub struct Worker {
    pub pool: Pool,
    pub clock: SharedClock,
    pub metrics: Arc<Metrics>,
    pub mailer: Arc<Mailer>,
    pub templates: Arc<Templates>,
    pub policy: Policy,
    /// The notices the emails are about: where they go, and what their fate does.
    pub notices: Arc<dyn Notices>,
    pub from: Mailbox,
    pub public_url: String,
    /// Emails on their way at once.
    pub concurrency: usize,
    /// How long a claim lasts: longer than any send can take.
    pub lease: chrono::Duration,
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Woken when new emails are queued.
    pub wake: Arc<Notify>,
    /// Woken after an escalation was queued.
    pub outbox: Outbox,
    /// Cancelled on a stop: claim no more, finish the emails on their way.
    pub stop: CancellationToken,
}

/// A finished attempt on its way to be recorded, and whom to tell once it is.
type Done = (Claimed, Attempt, oneshot::Sender<()>);

/// Rechecks for emails whose retry came due even when nothing woke the worker.
const POLL: Duration = Duration::from_secs(1);

impl Worker {
    pub async fn run(self: Arc<Self>) {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let recorder = tokio::spawn(self.clone().record(done_rx));
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        while !self.stop.is_cancelled() {
            let wait = match self.claim().await {
                Ok(batch) if batch.is_empty() => {
                    backoff.reset();
                    POLL
                }
                Ok(batch) => {
                    backoff.reset();
                    let unstarted = self.send_all(batch, &done_tx).await;
                    self.release(unstarted).await;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "claiming emails failed; retrying");
                    backoff.next_delay()
                }
            };
            tokio::select! {
                _ = tokio::time::timeout(wait, self.wake.notified()) => {}
                _ = self.stop.cancelled() => {}
            }
        }
        // The recorder ends once the results on their way are recorded.
        drop(done_tx);
        let _ = recorder.await;
        tracing::info!("email worker stopped");
    }

    /// Sends a claimed batch. Each send waits until its result is committed before
    /// its slot takes the next email, so a crash can repeat at most one email per
    /// slot: the one whose mark was not yet committed. Returns the emails not started
    /// because the worker is stopping.
    async fn send_all(
        &self,
        batch: Vec<Claimed>,
        done_tx: &mpsc::UnboundedSender<Done>,
    ) -> Vec<Claimed> {
        futures_util::stream::iter(batch)
            .map(|email| async {
                if self.stop.is_cancelled() {
                    return Some(email);
                }
                let email = self.hold(email).await?;
                let attempt = self.send(&email).await;
                let (recorded_tx, recorded) = oneshot::channel();
                if done_tx.send((email, attempt, recorded_tx)).is_ok() {
                    let _ = recorded.await;
                }
                None
            })
            .buffer_unordered(self.concurrency)
            .filter_map(std::future::ready)
            .collect()
            .await
    }

    /// Gives back emails claimed but not started. Should that fail, their lease runs
    /// out and another worker takes them then.
    async fn release(&self, unstarted: Vec<Claimed>) {
        if unstarted.is_empty() {
            return;
        }
        let released = db::run(&self.pool, move |conn| {
            queue::release(conn, &unstarted).map_err(DbError::from)
        })
        .await;
        match released {
            Ok(n) => tracing::info!(emails = n, "stopping: claimed emails given back"),
            Err(e) => {
                tracing::warn!(error = %e, "giving back claimed emails failed; their lease will run out")
            }
        }
    }

    async fn claim(&self) -> Result<Vec<Claimed>, DbError> {
        let (policy, notices) = (self.policy.clone(), self.notices.clone());
        let now = self.clock.now();
        let (lease, limit) = (self.lease, (self.concurrency * 4) as i64);
        let claims = db::run(&self.pool, move |conn| {
            queue::claim(conn, notices.as_ref(), &policy, now, lease, limit).map_err(DbError::from)
        })
        .await?;
        self.metrics
            .deliveries
            .with_label_values(&[State::Cancelled.as_str()])
            .inc_by(claims.cancelled as u64);
        Ok(claims.claimed)
    }

    /// The email, when this claim still holds it, with most of a lease left.
    ///
    /// A claim takes several rounds of emails, and with a slow server the later ones
    /// start long after the claim: such an email's lease is renewed first, on the
    /// condition that no other worker claimed it since (its attempt number is ours).
    /// When one did, or a withdrawal cancelled it, it is left alone. With a fast
    /// server the lease is still fresh and this costs nothing.
    async fn hold(&self, mut email: Claimed) -> Option<Claimed> {
        let now = self.clock.now();
        let left = email.lease_until - now.naive_utc();
        if left > self.lease * 3 / 4 {
            return Some(email);
        }
        let lease = self.lease;
        let (id, attempts) = (email.id, email.attempts);
        let probe = queue::LeaseHolder { id, attempts };
        let renewed = db::run(&self.pool, move |conn| {
            queue::renew(conn, &probe, now, lease).map_err(DbError::from)
        })
        .await;
        match renewed {
            Ok(Some(until)) => {
                email.lease_until = until;
                Some(email)
            }
            Ok(None) => {
                tracing::info!(
                    delivery_id = id,
                    attempt = attempts,
                    "email taken over by another claim; not sent"
                );
                None
            }
            Err(e) => {
                // Not sent now; it is claimed again once its lease runs out.
                tracing::warn!(error = %e, delivery_id = id, "renewing a lease failed");
                None
            }
        }
    }

    /// One attempt. Never panics: whatever goes wrong becomes a transient or a
    /// permanent failure.
    async fn send(&self, email: &Claimed) -> Attempt {
        let message = match self.compose(email) {
            Ok(message) => message,
            Err(error) => return Attempt::Permanent { error },
        };
        // The send ends before the lease does (with a tenth of it to spare for the
        // record and for clocks), so no other worker can take the email over while
        // it is on its way. Running out is a timeout like any other.
        let left = email.lease_until - self.clock.now().naive_utc() - self.lease / 10;
        let budget = left.to_std().unwrap_or_default();
        let sent = tokio::time::timeout(budget, self.mailer.send_attempt(message, email.attempts))
            .await
            .unwrap_or(Err(SendError::Transient(Failure::Timeout)));
        match sent {
            Ok(()) => Attempt::Sent,
            Err(SendError::Permanent(error)) => Attempt::Permanent { error },
            Err(SendError::Session(error)) => {
                let code = error.reply_code().unwrap_or("5xx");
                self.metrics
                    .mail_session_errors
                    .with_label_values(&[code])
                    .inc();
                tracing::error!(delivery_id = email.id, error = %error,
                    "the mail server refused the session (authentication or TLS): check SMTP_URL; the email is retried");
                self.retry(email, error)
            }
            Err(SendError::Transient(error)) => self.retry(email, error),
        }
    }

    /// A transient failure, to be tried again after the backoff for this attempt.
    fn retry(&self, email: &Claimed, error: Failure) -> Attempt {
        let attempt = email.attempts.max(1) as u32 - 1;
        let delay = delay_for(self.retry_base, self.retry_max, attempt);
        let retry_at = self.clock.now() + chrono::Duration::from_std(delay).unwrap_or_default();
        Attempt::Transient { error, retry_at }
    }

    fn compose(&self, email: &Claimed) -> Result<lettre::Message, Failure> {
        let link = compose::link(&self.public_url, email.token.as_deref());
        let open_by = email
            .due_at
            .map_or_else(|| self.clock.now(), |t| t.and_utc());
        compose::queued_email(&self.templates, &self.from, email, &link, open_by)
    }

    /// Records results in batches: whatever arrived while the last commit ran goes
    /// into the next one, so a mark is committed right after the server's answer.
    async fn record(self: Arc<Self>, mut done: mpsc::UnboundedReceiver<Done>) {
        let mut buffer = Vec::new();
        while done.recv_many(&mut buffer, 1000).await > 0 {
            let (results, recorded): (Vec<_>, Vec<_>) = std::mem::take(&mut buffer)
                .into_iter()
                .map(|(email, attempt, recorded)| ((email, attempt), recorded))
                .unzip();
            self.record_batch(results).await;
            for r in recorded {
                let _ = r.send(());
            }
        }
    }

    async fn record_batch(&self, results: Vec<(Claimed, Attempt)>) {
        let results = Arc::new(results);
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        loop {
            let (policy, now, batch) = (self.policy.clone(), self.clock.now(), results.clone());
            let notices = self.notices.clone();
            let outcome = db::run(&self.pool, move |conn| {
                let done: Vec<Finished> = batch
                    .iter()
                    .map(|(email, attempt)| Finished {
                        email,
                        attempt: attempt.clone(),
                    })
                    .collect();
                queue::finish(conn, notices.as_ref(), &policy, &done, now).map_err(DbError::from)
            })
            .await;
            match outcome {
                Ok(summary) => return self.after_record(&results, &summary),
                // A lost mark would send the email again: keep trying.
                Err(e) => {
                    tracing::warn!(error = %e, emails = results.len(), "recording sent emails failed; retrying");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        }
    }

    fn after_record(&self, results: &[(Claimed, Attempt)], summary: &queue::Finish) {
        self.count(summary);
        let now = self.clock.now().naive_utc();
        for (email, attempt) in results {
            if let (Attempt::Sent, Kind::Notice, Some(received)) =
                (attempt, email.kind, email.received_at)
            {
                let waited = (now - received).to_std().unwrap_or_default();
                self.metrics
                    .event_to_email_seconds
                    .observe(waited.as_secs_f64());
            }
            let error = attempt.error().map(ToString::to_string).unwrap_or_default();
            tracing::info!(delivery_id = email.id, notice_id = %email.notice_id,
                kind = email.kind.as_str(), recipient = email.recipient.as_str(),
                attempt = email.attempts, outcome = attempt.outcome(), error, "email attempt");
        }
        if summary.escalations > 0 {
            self.outbox.wake_relay();
        }
        if summary.escalations > 0 || summary.permanent_failures + summary.expired > 0 {
            // A deputy fallback may have been queued.
            self.wake.notify_one();
        }
    }

    fn count(&self, summary: &queue::Finish) {
        let m = &self.metrics;
        for (state, n) in [
            (State::Sent, summary.sent),
            (State::PermanentFailure, summary.permanent_failures),
            (State::Expired, summary.expired),
        ] {
            m.deliveries
                .with_label_values(&[state.as_str()])
                .inc_by(n as u64);
        }
        m.delivery_retries.inc_by(summary.retried as u64);
        m.escalations
            .with_label_values(&[EscalationLevel::Undeliverable.as_str()])
            .inc_by(summary.escalations as u64);
    }
}
