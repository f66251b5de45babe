//! Intake: whatever transport brought an event (the AMQP consumer in `broker`, or
//! `POST /v1/events` in `http::api`), [`Intake`] validates it and decides a whole
//! batch in one transaction.

use crate::access::api_keys::Mode;
use crate::clock::SharedClock;
use crate::contract::home_visit::{self, HomeVisit, Limits};
use crate::contract::{Reason, Rejection, MAX_BODY_BYTES};
use crate::db::{self, DbError, Pool};
use crate::delivery::kinds::State;
use crate::delivery::queue::Policy;
use crate::notices::decide::{self, Decided, Received, Rules, Verdict};
use crate::outbox::Outbox;
use crate::registry::KeyedHasher;
use crate::retry::Backoff;
use crate::sealing::Keyring;
use crate::telemetry::Metrics;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How often a batch that lost a race to another transaction is run again before
/// its events are tried one by one.
const RACE_RETRIES: usize = 5;

/// The body as a fingerprint sees it: a republish with its keys in another order or
/// other whitespace is the same event, not an `event_id_conflict`. serde_json's map
/// keeps keys sorted (as long as its `preserve_order` feature stays off; a unit
/// test checks).
fn canonical(value: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("a parsed value serialises")
}

/// Everything both transports do to a body before any database work: the size
/// limit, JSON, the contract's checks and the body's fingerprint. Pure, so that the
/// fuzz target (`fuzz/fuzz_targets/event_decode.rs`) runs exactly this path;
/// `limits.now` is the time of receipt.
pub fn validate_body(
    body: &[u8],
    limits: Limits,
    hasher: &KeyedHasher,
    source: &'static str,
) -> Result<Received, Rejection> {
    if body.len() > MAX_BODY_BYTES {
        return Err(Rejection::new(Reason::TooLarge));
    }
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| Rejection::new(Reason::MalformedJson))?;
    let event = HomeVisit::from_value(&value, limits)?;
    Ok(Received {
        event,
        body_hash: hasher.body(&canonical(&value)),
        received_at: limits.now,
        source,
    })
}

pub struct Intake {
    pub pool: Pool,
    pub clock: SharedClock,
    pub hasher: KeyedHasher,
    /// Seals the children's data in the notices.
    pub keys: Arc<Keyring>,
    pub metrics: Arc<Metrics>,
    pub window_days: i64,
    pub school_age: std::ops::RangeInclusive<u32>,
    /// Where outcome messages go; its relay is woken after each commit.
    pub outbox: Outbox,
    pub delivery: Policy,
    /// Woken after a commit that queued emails.
    pub mail_wake: Arc<Notify>,
    /// Test aid, refused in production (`SCHOOLSIGNAL_FAULT_ABORT_AFTER_COMMITS`).
    pub abort_after_commits: Option<AbortAfterCommits>,
}

/// Aborts the process right after the n-th intake commit: before the ack, and before
/// the relay is woken, so that the tests can prove that a redelivery has no second
/// effect, on the decisions or on the outcome messages.
pub struct AbortAfterCommits {
    after: u64,
    commits: AtomicU64,
}

impl AbortAfterCommits {
    pub fn new(after: u64) -> Self {
        Self {
            after,
            commits: AtomicU64::new(0),
        }
    }

    fn committed(&self) {
        if self.commits.fetch_add(1, Ordering::SeqCst) + 1 >= self.after {
            tracing::warn!("SCHOOLSIGNAL_FAULT_ABORT_AFTER_COMMITS reached; aborting before ack");
            std::process::abort();
        }
    }
}

impl Intake {
    /// Validates a message body against the contract (see [`validate_body`]).
    pub fn validate(&self, body: &[u8], source: &'static str) -> Result<Received, Rejection> {
        let limits = Limits {
            now: self.clock.now(),
            window_days: self.window_days,
        };
        validate_body(body, limits, &self.hasher, source)
    }

    /// Counts and logs a rejection. The log holds the reason, the offending field's
    /// name and the event id when it is a well-formed UUID: never a value. A test
    /// key's rejection is counted apart.
    pub fn note_rejection(
        &self,
        rejection: &Rejection,
        body: &[u8],
        source: &'static str,
        mode: Mode,
    ) {
        if mode == Mode::Test {
            self.metrics
                .test_events
                .with_label_values(&["rejected"])
                .inc();
        } else {
            self.metrics.events.with_label_values(&["rejected"]).inc();
            self.metrics
                .rejected
                .with_label_values(&[rejection.reason.as_str()])
                .inc();
        }
        let event_id = home_visit::event_id_of(body).map(|u| u.to_string());
        tracing::warn!(
            reason = rejection.reason.as_str(),
            field = rejection.field.as_deref().unwrap_or(""),
            event_id = event_id.as_deref().unwrap_or(""),
            source,
            mode = mode.as_str(),
            "event rejected"
        );
    }

    /// Decides a batch in one transaction. Retries outages for as long as they last
    /// and lost races [`RACE_RETRIES`] times, with backoff; gives up (for the caller
    /// to split the batch) on other errors, so a batch that always fails cannot
    /// hold the queue.
    pub async fn accept(&self, batch: Vec<Received>) -> Result<Vec<Verdict>, DbError> {
        self.decide(batch, Mode::Live).await
    }

    /// Decides a batch as [`Intake::accept`] does, against the real registry and with
    /// the same writes, in a transaction that is always rolled back: what a test key
    /// gets. Nothing is kept, so no notice, email, outcome message or inbox row can
    /// come of it, and nothing is woken.
    pub async fn rehearse(&self, batch: Vec<Received>) -> Result<Vec<Verdict>, DbError> {
        self.decide(batch, Mode::Test).await
    }

    async fn decide(&self, batch: Vec<Received>, mode: Mode) -> Result<Vec<Verdict>, DbError> {
        let batch = Arc::new(batch);
        let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(10));
        let mut races = 0;
        loop {
            let e = match self.try_accept(batch.clone(), mode).await {
                Ok(decided) if mode == Mode::Test => {
                    self.after_rehearsal(&batch, &decided);
                    return Ok(decided.verdicts);
                }
                Ok(decided) => {
                    if let Some(fault) = &self.abort_after_commits {
                        fault.committed();
                    }
                    self.after_commit(&batch, &decided);
                    return Ok(decided.verdicts);
                }
                Err(e) => e,
            };
            let retry = db::is_outage(&e) || (db::is_lost_race(&e) && races < RACE_RETRIES);
            if !retry {
                return Err(e);
            }
            races += usize::from(!db::is_outage(&e));
            tracing::warn!(error = %e, events = batch.len(), "intake transaction failed; retrying");
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }

    async fn try_accept(&self, batch: Arc<Vec<Received>>, mode: Mode) -> Result<Decided, DbError> {
        let hasher = self.hasher.clone();
        let school_age = self.school_age.clone();
        let exchange = self.outbox.exchange.clone();
        let clock = self.clock.clone();
        let delivery = self.delivery.clone();
        let keys = self.keys.clone();
        db::run(&self.pool, move |conn| {
            let rules = Rules {
                delivery: &delivery,
                hasher: &hasher,
                keys: &keys,
                school_age,
                outbound_exchange: &exchange,
                now: clock.now(),
            };
            let decide = |conn: &mut db::DbConn| decide::decide_batch(conn, &rules, &batch);
            match mode {
                Mode::Live => db::write_tx(conn, decide),
                Mode::Test => db::rolled_back_tx(conn, decide),
            }
            .map_err(DbError::from)
        })
        .await
    }

    /// Counts a test key's events apart and logs them; there is nothing to wake.
    fn after_rehearsal(&self, batch: &[Received], decided: &Decided) {
        for (r, verdict) in batch.iter().zip(&decided.verdicts) {
            let result = match verdict {
                Verdict::New(decisions) => {
                    for d in decisions {
                        self.metrics
                            .test_decisions
                            .with_label_values(&[d.outcome.as_str()])
                            .inc();
                    }
                    "accepted"
                }
                Verdict::Duplicate(_) => "duplicate",
                Verdict::Conflict => "rejected",
            };
            self.metrics.test_events.with_label_values(&[result]).inc();
            tracing::info!(event_id = %r.event.event_id, result, source = r.source,
                "test event decided and rolled back");
        }
    }

    fn after_commit(&self, batch: &[Received], decided: &Decided) {
        let now = self.clock.now();
        self.metrics
            .deliveries
            .with_label_values(&[State::Cancelled.as_str()])
            .inc_by(decided.cancelled_emails as u64);
        for (r, verdict) in batch.iter().zip(&decided.verdicts) {
            let waited = (now - r.received_at).to_std().unwrap_or_default();
            self.metrics.commit_seconds.observe(waited.as_secs_f64());
            let event_id = r.event.event_id.to_string();
            match verdict {
                Verdict::New(decisions) => {
                    self.metrics.events.with_label_values(&["accepted"]).inc();
                    for d in decisions {
                        self.metrics
                            .decisions
                            .with_label_values(&[d.outcome.as_str()])
                            .inc();
                    }
                    let outcomes: Vec<&str> =
                        decisions.iter().map(|d| d.outcome.as_str()).collect();
                    tracing::info!(%event_id, incident_id = %r.event.incident_id, revision = r.event.revision,
                        outcomes = ?outcomes, source = r.source, "event decided");
                }
                Verdict::Duplicate(_) => {
                    self.metrics.events.with_label_values(&["duplicate"]).inc();
                    tracing::info!(%event_id, source = r.source, "event seen before; no new effect");
                }
                Verdict::Conflict => {
                    let conflict = Rejection::new(Reason::EventIdConflict);
                    self.note_rejection(&conflict, &[], r.source, Mode::Live);
                    tracing::warn!(%event_id, "event id reused with a different body; the first version stands");
                }
            }
        }
        self.outbox.wake_relay();
        self.mail_wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn key_order_and_whitespace_do_not_change_the_fingerprint() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{"schema":"x","event_id":"e","children":[{"b":1,"a":2}]}"#)
                .unwrap();
        let b: serde_json::Value = serde_json::from_str(
            r#"{ "children": [ {"a": 2, "b": 1} ], "event_id": "e", "schema": "x" }"#,
        )
        .unwrap();
        assert_eq!(super::canonical(&a), super::canonical(&b));
        let c: serde_json::Value =
            serde_json::from_str(r#"{"schema":"x","event_id":"e","children":[{"b":1,"a":3}]}"#)
                .unwrap();
        assert_ne!(super::canonical(&a), super::canonical(&c));
    }

    /// Found by the `event_decode` fuzz target: serde_json's default float parsing
    /// can miss the nearest f64, so a body written in its own canonical form got
    /// another fingerprint (an `event_id_conflict` for a re-serialised republish).
    #[test]
    fn the_canonical_form_has_the_same_fingerprint() {
        for number in [
            "19999999999999900000013371215493478744062",
            "2.2250738585072011e-308",
            "52.090737399999994",
        ] {
            let body = format!(r#"{{"schema":"x","extra":{number}}}"#);
            let once: serde_json::Value = serde_json::from_str(&body).unwrap();
            let twice: serde_json::Value =
                serde_json::from_slice(&super::canonical(&once)).unwrap();
            assert_eq!(
                super::canonical(&once),
                super::canonical(&twice),
                "{number}"
            );
        }
    }
}
