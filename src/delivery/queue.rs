//! The email queue: one row per email to one recipient, claimed by lease, ended in a
//! final state an operator can see. It owns the `deliveries` table and nothing else:
//! what it needs to know or do about the notices its emails are about goes through
//! [`Notices`], which the notices stage implements.

use super::kinds::{Failure, Kind, Recipient, State};
use crate::access::links::{self, NewLink};
use crate::db::schema::deliveries as d;
use crate::db::{ts, write_tx, DbConn, CHUNK};
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use std::collections::{BTreeSet, HashMap};

/// What the queue needs to know from configuration.
#[derive(Debug, Clone)]
pub struct Policy {
    /// A delivery not sent by then expires.
    pub give_up_after: Duration,
    /// The domain of the `Message-ID`s.
    pub message_domain: String,
    /// How long the link in an email stays valid.
    pub link_valid_for: Duration,
}

/// Where the emails about one notice go, and whether it was withdrawn.
#[derive(Debug, Clone)]
pub struct Addressee {
    pub withdrawn: bool,
    pub due_at: Option<NaiveDateTime>,
    pub received_at: Option<NaiveDateTime>,
    pub school_name: String,
    pub locale: String,
    /// Name and address.
    pub coordinator: (String, String),
    pub deputy: Option<(String, String)>,
}

/// What the queue asks of the notices its emails are about. Every call runs inside
/// the queue's own transaction.
pub trait Notices: Send + Sync {
    /// Where the emails about these notices go.
    fn addressees(
        &self,
        conn: &mut DbConn,
        notice_ids: &[String],
    ) -> QueryResult<HashMap<String, Addressee>>;

    /// Locks these notices until the commit, in the order a withdrawal locks them,
    /// and returns the ones withdrawn.
    fn lock_withdrawn(&self, conn: &mut DbConn, notice_ids: &[&str]) -> QueryResult<Vec<String>>;

    /// The notice email about each of these reached a mail server.
    fn delivered(
        &self,
        conn: &mut DbConn,
        notice_ids: &[&str],
        now: DateTime<Utc>,
    ) -> QueryResult<()>;

    /// The notice email about each failed for good to that recipient: the deputy
    /// gets it, or the notice is escalated. Returns the number of escalations.
    fn undeliverable(
        &self,
        conn: &mut DbConn,
        failed: &[(&str, Recipient)],
        now: DateTime<Utc>,
    ) -> QueryResult<usize>;
}

#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub notice_id: String,
    pub kind: Kind,
    pub recipient: Recipient,
    pub message_id: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

impl NewDelivery {
    pub fn new(
        policy: &Policy,
        notice_id: &str,
        kind: Kind,
        recipient: Recipient,
        now: DateTime<Utc>,
    ) -> Self {
        NewDelivery {
            notice_id: notice_id.to_string(),
            kind,
            recipient,
            message_id: format!("<{}@{}>", uuid::Uuid::new_v4(), policy.message_domain),
            created_at: ts(now),
            expires_at: ts(now + policy.give_up_after),
        }
    }
}

/// Queues emails. A second email of the same kind to the same recipient about the
/// same notice is silently not queued: the unique key makes "twice" impossible.
pub fn enqueue(conn: &mut DbConn, rows: &[NewDelivery]) -> QueryResult<()> {
    for chunk in rows.chunks(CHUNK) {
        // Tuples, not the struct: diesel's SQLite upsert takes many rows only so.
        let values: Vec<_> = chunk
            .iter()
            .map(|r| {
                (
                    d::notice_id.eq(&r.notice_id),
                    d::kind.eq(r.kind),
                    d::recipient.eq(r.recipient),
                    d::state.eq(State::Pending),
                    d::message_id.eq(&r.message_id),
                    d::attempts.eq(0),
                    d::created_at.eq(r.created_at),
                    d::next_attempt_at.eq(r.created_at),
                    d::expires_at.eq(r.expires_at),
                )
            })
            .collect();
        // BACKEND-SPECIFIC: upserts are not in diesel's multi-backend subset.
        crate::per_backend!(conn => diesel::insert_into(d::table)
            .values(&values)
            .on_conflict_do_nothing()
            .execute(conn))?;
    }
    Ok(())
}

/// A claimed email with all it needs to be sent. No `Debug`: it holds the token.
pub struct Claimed {
    pub id: i64,
    pub notice_id: String,
    pub kind: Kind,
    pub recipient: Recipient,
    pub message_id: String,
    /// The attempt this claim made. A later claim of the same email raises it, so it
    /// proves who holds the email: results and renewals are guarded by it.
    pub attempts: i32,
    /// Until when this claim holds the email (by the service clock).
    pub lease_until: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub due_at: Option<NaiveDateTime>,
    pub received_at: Option<NaiveDateTime>,
    pub school_name: String,
    pub locale: String,
    pub to_name: String,
    pub to_email: String,
    /// The secret of the link, for kinds that carry one. Only its hash is stored.
    pub token: Option<String>,
}

impl Claimed {
    fn holder(&self) -> LeaseHolder {
        LeaseHolder {
            id: self.id,
            attempts: self.attempts,
        }
    }
}

#[derive(Queryable)]
struct DueRow {
    id: i64,
    notice_id: String,
    #[diesel(deserialize_as = String)]
    kind: Kind,
    #[diesel(deserialize_as = String)]
    recipient: Recipient,
    message_id: String,
    attempts: i32,
    expires_at: NaiveDateTime,
}

/// What one claim took: the emails to send, and how many it cancelled instead.
#[derive(Default)]
pub struct Claims {
    pub claimed: Vec<Claimed>,
    pub cancelled: usize,
}

/// Claims up to `limit` due emails for `lease`, and issues the link token of each.
/// Emails about a notice withdrawn meanwhile are cancelled here instead of sent.
pub fn claim(
    conn: &mut DbConn,
    notices: &dyn Notices,
    policy: &Policy,
    now: DateTime<Utc>,
    lease: Duration,
    limit: i64,
) -> QueryResult<Claims> {
    write_tx(conn, |conn| {
        let rows = lock_due(conn, now, limit)?;
        if rows.is_empty() {
            return Ok(Claims::default());
        }
        let notice_ids: Vec<String> = rows.iter().map(|r| r.notice_id.clone()).collect();
        let addressees = notices.addressees(conn, &notice_ids)?;
        let lease_until = ts(now + lease);
        let (mut claimed, cancelled): (Vec<Claimed>, Vec<i64>) =
            rows.into_iter()
                .fold((Vec::new(), Vec::new()), |(mut ok, mut no), row| {
                    match into_claimed(row, &addressees, lease_until) {
                        Ok(c) => ok.push(c),
                        Err(id) => no.push(id),
                    }
                    (ok, no)
                });
        let cancelled = finish_all(conn, &cancelled, State::Cancelled, now)?;
        let claimed_ids: Vec<i64> = claimed.iter().map(|c| c.id).collect();
        diesel::update(d::table.filter(d::id.eq_any(&claimed_ids)))
            .set((
                d::lease_until.eq(Some(lease_until)),
                d::attempts.eq(d::attempts + 1),
            ))
            .execute(conn)?;
        issue_tokens(conn, policy, &mut claimed, now)?;
        Ok(Claims { claimed, cancelled })
    })
}

/// The due emails, locked (skipping those another replica holds), oldest first.
fn lock_due(conn: &mut DbConn, now: DateTime<Utc>, limit: i64) -> QueryResult<Vec<DueRow>> {
    let now_ts = ts(now);
    let due = d::table
        .filter(d::state.eq(State::Pending))
        .filter(d::next_attempt_at.le(now_ts))
        .filter(d::lease_until.is_null().or(d::lease_until.lt(now_ts)))
        .order(d::next_attempt_at)
        .limit(limit)
        .select(d::id);
    let ids: Vec<i64> = crate::skip_locked!(conn, due);
    d::table
        .filter(d::id.eq_any(&ids))
        .order(d::next_attempt_at)
        .select((
            d::id,
            d::notice_id,
            d::kind,
            d::recipient,
            d::message_id,
            d::attempts,
            d::expires_at,
        ))
        .load(conn)
}

/// The claimed email, or its id when it is to be cancelled instead: its notice was
/// withdrawn (and it is not the "please disregard"), or it has no such recipient.
fn into_claimed(
    row: DueRow,
    addressees: &HashMap<String, Addressee>,
    lease_until: NaiveDateTime,
) -> Result<Claimed, i64> {
    let to = addressees.get(&row.notice_id).ok_or(row.id)?;
    if to.withdrawn && row.kind != Kind::Withdrawal {
        return Err(row.id);
    }
    let (to_name, to_email) = match row.recipient {
        Recipient::Deputy => to.deputy.clone().ok_or(row.id)?,
        Recipient::Coordinator => to.coordinator.clone(),
    };
    Ok(Claimed {
        id: row.id,
        notice_id: row.notice_id,
        kind: row.kind,
        recipient: row.recipient,
        message_id: row.message_id,
        // This claim's attempt: the update in `claim` counts it.
        attempts: row.attempts + 1,
        lease_until,
        expires_at: row.expires_at,
        due_at: to.due_at,
        received_at: to.received_at,
        school_name: to.school_name.clone(),
        locale: to.locale.clone(),
        to_name,
        to_email,
        token: None,
    })
}

/// A link token for each email that carries a link, bound to its notice and address.
fn issue_tokens(
    conn: &mut DbConn,
    policy: &Policy,
    claimed: &mut [Claimed],
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let mut with_link: Vec<&mut Claimed> = claimed
        .iter_mut()
        .filter(|c| c.kind.carries_link())
        .collect();
    let links: Vec<NewLink> = with_link
        .iter()
        .map(|c| NewLink {
            notice_id: Some(&c.notice_id),
            email: &c.to_email,
        })
        .collect();
    let secrets = links::issue(conn, &links, policy.link_valid_for, now)?;
    for (c, secret) in with_link.iter_mut().zip(secrets) {
        c.token = Some(secret);
    }
    Ok(())
}

/// Which claim of which email: the attempt number the claim gave it.
#[derive(Debug, Clone, Copy)]
pub struct LeaseHolder {
    pub id: i64,
    pub attempts: i32,
}

/// Extends this claim's lease on one email right before it is sent, and returns the
/// new end. None when the claim no longer holds it: another worker claimed it after
/// the lease ran out (and may have finished or cancelled it). Then it must not be
/// sent.
pub fn renew(
    conn: &mut DbConn,
    email: &LeaseHolder,
    now: DateTime<Utc>,
    lease: Duration,
) -> QueryResult<Option<NaiveDateTime>> {
    let until = ts(now + lease);
    let changed = diesel::update(held(email))
        .set(d::lease_until.eq(Some(until)))
        .execute(conn)?;
    Ok((changed == 1).then_some(until))
}

/// Gives back emails a claim holds but did not start to send (the worker is
/// stopping), so that another worker takes them at once instead of when their lease
/// runs out. Their links were never sent, so they go. The attempt number stays spent:
/// no number is given to two claims. Returns how many were given back.
pub fn release(conn: &mut DbConn, emails: &[Claimed]) -> QueryResult<usize> {
    write_tx(conn, |conn| {
        let mut released = 0;
        for email in emails {
            released += diesel::update(held(&email.holder()))
                .set(d::lease_until.eq(None::<NaiveDateTime>))
                .execute(conn)?;
        }
        let unsent: Vec<&str> = emails.iter().filter_map(|e| e.token.as_deref()).collect();
        links::forget(conn, &unsent)?;
        Ok(released)
    })
}

/// One email, while the claim that gave it `attempts` holds it: still pending, and
/// not claimed again since. Every result and renewal is written through this guard.
type Held = diesel::dsl::Filter<
    diesel::dsl::Filter<diesel::dsl::Find<d::table, i64>, diesel::dsl::Eq<d::state, State>>,
    diesel::dsl::Eq<d::attempts, i32>,
>;

fn held(email: &LeaseHolder) -> Held {
    d::table
        .find(email.id)
        .filter(d::state.eq(State::Pending))
        .filter(d::attempts.eq(email.attempts))
}

/// What became of one attempt to send.
#[derive(Debug, Clone)]
pub enum Attempt {
    Sent,
    /// Worth trying again at `retry_at`.
    Transient {
        error: Failure,
        retry_at: DateTime<Utc>,
    },
    Permanent {
        error: Failure,
    },
}

impl Attempt {
    /// How the attempt ended, for the log.
    pub fn outcome(&self) -> &'static str {
        match self {
            Attempt::Sent => "sent",
            Attempt::Transient { .. } => "transient_failure",
            Attempt::Permanent { .. } => "permanent_failure",
        }
    }

    pub fn error(&self) -> Option<&Failure> {
        match self {
            Attempt::Sent => None,
            Attempt::Transient { error, .. } | Attempt::Permanent { error } => Some(error),
        }
    }
}

/// An email whose attempt ended, and how.
pub struct Finished<'a> {
    pub email: &'a Claimed,
    pub attempt: Attempt,
}

/// What finishing a set of attempts changed, for metrics.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Finish {
    pub sent: usize,
    pub retried: usize,
    pub permanent_failures: usize,
    pub expired: usize,
    pub escalations: usize,
}

/// Records attempts in one transaction. A notice email that failed for good is
/// handed to [`Notices::undeliverable`]: the deputy gets it, or the notice is
/// escalated.
///
/// A failure is recorded only while this claim still holds the email (its attempt
/// number is the latest): a worker whose lease ran out does not overwrite the result
/// of the one that took over. An email the server accepted is recorded as sent
/// whoever holds it and whatever its state, because that is what happened.
///
/// A transient failure is retried until the email expires, and the last attempt is
/// made at `expires_at` itself: the email expires only when that one fails too.
pub fn finish(
    conn: &mut DbConn,
    notices: &dyn Notices,
    policy: &Policy,
    done: &[Finished],
    now: DateTime<Utc>,
) -> QueryResult<Finish> {
    write_tx(conn, |conn| {
        let mut summary = Finish::default();
        let sent: Vec<&Claimed> = done
            .iter()
            .filter(|f| matches!(f.attempt, Attempt::Sent))
            .map(|f| f.email)
            .collect();
        summary.sent = mark_sent(conn, notices, policy, &sent, now)?;
        let failed_for_good = record_failures(conn, done, now, &mut summary)?;
        forget_undelivered_tokens(conn, done)?;
        let failed: Vec<(&str, Recipient)> = failed_for_good
            .iter()
            .filter(|c| c.kind == Kind::Notice)
            .map(|c| (c.notice_id.as_str(), c.recipient))
            .collect();
        summary.escalations = notices.undeliverable(conn, &failed, now)?;
        Ok(summary)
    })
}

/// Records each failed attempt, while its claim holds the email; returns the emails
/// that failed for good.
fn record_failures<'a>(
    conn: &mut DbConn,
    done: &[Finished<'a>],
    now: DateTime<Utc>,
    summary: &mut Finish,
) -> QueryResult<Vec<&'a Claimed>> {
    let mut failed_for_good = Vec::new();
    for f in done {
        let email = f.email;
        match &f.attempt {
            Attempt::Sent => {}
            Attempt::Transient { error, retry_at } if ts(now) < email.expires_at => {
                let retry_at = ts(*retry_at).min(email.expires_at);
                if retry_later(conn, email, error, retry_at)? {
                    summary.retried += 1;
                }
            }
            Attempt::Transient { error, .. } => {
                if finish_claimed(conn, email, State::Expired, error, now)? {
                    summary.expired += 1;
                    failed_for_good.push(email);
                }
            }
            Attempt::Permanent { error } => {
                if finish_claimed(conn, email, State::PermanentFailure, error, now)? {
                    summary.permanent_failures += 1;
                    failed_for_good.push(email);
                }
            }
        }
    }
    Ok(failed_for_good)
}

/// Marks emails sent and their notices delivered. A notice withdrawn while its email
/// was on its way gets the "please disregard" email now. Returns how many emails
/// changed to sent (an email sent twice is counted once).
fn mark_sent(
    conn: &mut DbConn,
    notices: &dyn Notices,
    policy: &Policy,
    sent: &[&Claimed],
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    let mut changed = 0;
    for chunk in sent.chunks(CHUNK) {
        let about_notice = |c: &&&Claimed| c.kind.carries_link();
        let notice_ids: Vec<&str> = chunk
            .iter()
            .filter(about_notice)
            .map(|c| c.notice_id.as_str())
            .collect();
        // Locks the notices first, in the order a withdrawal does, so that a
        // withdrawal either sees this email sent or is seen by this check.
        let withdrawn = notices.lock_withdrawn(conn, &notice_ids)?;
        changed += set_sent(conn, chunk, now)?;
        let delivered: Vec<&str> = chunk
            .iter()
            .filter(|c| c.kind == Kind::Notice)
            .map(|c| c.notice_id.as_str())
            .collect();
        notices.delivered(conn, &delivered, now)?;
        let disregard: Vec<NewDelivery> = chunk
            .iter()
            .filter(|c| about_notice(c) && withdrawn.contains(&c.notice_id))
            .map(|c| NewDelivery::new(policy, &c.notice_id, Kind::Withdrawal, c.recipient, now))
            .collect();
        enqueue(conn, &disregard)?;
    }
    Ok(changed)
}

/// Deletes the link tokens of emails the server refused: no one holds them. After a
/// timeout or a broken connection the email may have arrived, so its link stays.
fn forget_undelivered_tokens(conn: &mut DbConn, done: &[Finished]) -> QueryResult<()> {
    let refused: Vec<&str> = done
        .iter()
        .filter(|f| match &f.attempt {
            Attempt::Sent => false,
            Attempt::Permanent { .. } => true,
            Attempt::Transient { error, .. } => error.refused_by_server(),
        })
        .filter_map(|f| f.email.token.as_deref())
        .collect();
    links::forget(conn, &refused)
}

/// Marks emails sent, each with the address it went to, in one statement; returns
/// how many changed. Whatever state an email was left in by a claim that lost it
/// (pending, cancelled by a withdrawal, failed), the server accepted it: it is sent.
fn set_sent(conn: &mut DbConn, sent: &[&Claimed], now: DateTime<Utc>) -> QueryResult<usize> {
    use crate::db::backend::{execute_raw, Bind};
    if sent.is_empty() {
        return Ok(0);
    }
    let cases = " WHEN ? THEN ?".repeat(sent.len());
    let ids = vec!["?"; sent.len()].join(", ");
    // Raw SQL, because diesel has no per-row values in one UPDATE.
    let sql = format!(
        "UPDATE deliveries SET state = ?, lease_until = NULL, finished_at = ?, \
         sent_to = CASE id{cases} END WHERE state <> ? AND id IN ({ids})"
    );
    let sent_state = Bind::Text(State::Sent.as_str().to_string());
    let mut binds = vec![sent_state.clone(), Bind::Timestamp(ts(now))];
    for c in sent {
        binds.extend([Bind::BigInt(c.id), Bind::Text(c.to_email.clone())]);
    }
    binds.push(sent_state);
    binds.extend(sent.iter().map(|c| Bind::BigInt(c.id)));
    execute_raw(conn, &sql, &binds)
}

/// Schedules another attempt, if this claim still holds the email.
fn retry_later(
    conn: &mut DbConn,
    email: &Claimed,
    error: &Failure,
    retry_at: NaiveDateTime,
) -> QueryResult<bool> {
    let changed = diesel::update(held(&email.holder()))
        .set((
            d::next_attempt_at.eq(retry_at),
            d::lease_until.eq(None::<NaiveDateTime>),
            d::last_error.eq(Some(error.to_string())),
        ))
        .execute(conn)?;
    Ok(changed == 1)
}

/// Ends an email in a final state, if this claim still holds it.
fn finish_claimed(
    conn: &mut DbConn,
    email: &Claimed,
    final_state: State,
    error: &Failure,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let changed = diesel::update(held(&email.holder()))
        .set((
            d::state.eq(final_state),
            d::finished_at.eq(Some(ts(now))),
            d::lease_until.eq(None::<NaiveDateTime>),
            d::last_error.eq(Some(error.to_string())),
        ))
        .execute(conn)?;
    Ok(changed == 1)
}

/// Ends pending deliveries in a final state.
fn finish_all(
    conn: &mut DbConn,
    ids: &[i64],
    final_state: State,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    let mut changed = 0;
    for chunk in ids.chunks(CHUNK) {
        changed += diesel::update(
            d::table
                .filter(d::id.eq_any(chunk))
                .filter(d::state.eq(State::Pending)),
        )
        .set((
            d::state.eq(final_state),
            d::finished_at.eq(Some(ts(now))),
            d::lease_until.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)?;
    }
    Ok(changed)
}

/// For withdrawn notices: cancels their unsent emails, and queues "please disregard"
/// to everyone who already got the notice email or a reminder. An email on its way
/// (leased) is left to its worker, which checks for the withdrawal when it marks it
/// sent; if its lease ran out, the next claim cancels it (and should the first send
/// succeed after all, it is recorded as sent and "please disregard" follows).
///
/// Returns how many emails it cancelled.
pub fn withdraw(
    conn: &mut DbConn,
    policy: &Policy,
    notice_ids: &[String],
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    let now_ts = ts(now);
    let mut cancelled = 0;
    for chunk in notice_ids.chunks(CHUNK) {
        cancelled += diesel::update(
            d::table
                .filter(d::notice_id.eq_any(chunk))
                .filter(d::state.eq(State::Pending))
                .filter(d::kind.ne(Kind::Withdrawal))
                .filter(d::lease_until.is_null().or(d::lease_until.lt(now_ts))),
        )
        .set((
            d::state.eq(State::Cancelled),
            d::finished_at.eq(Some(now_ts)),
            d::lease_until.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)?;
        let disregard: Vec<NewDelivery> = reached(conn, chunk)?
            .into_iter()
            .map(|(notice_id, who)| {
                NewDelivery::new(policy, &notice_id, Kind::Withdrawal, who, now)
            })
            .collect();
        enqueue(conn, &disregard)?;
    }
    Ok(cancelled)
}

/// Whoever got the notice email or a reminder about these notices.
fn reached(conn: &mut DbConn, notice_ids: &[String]) -> QueryResult<BTreeSet<(String, Recipient)>> {
    #[derive(Queryable)]
    struct Reached {
        notice_id: String,
        #[diesel(deserialize_as = String)]
        recipient: Recipient,
    }
    let rows: Vec<Reached> = d::table
        .filter(d::notice_id.eq_any(notice_ids))
        .filter(d::kind.eq_any([Kind::Notice.as_str(), Kind::Reminder.as_str()]))
        .filter(d::state.eq(State::Sent))
        .select((d::notice_id, d::recipient))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| (r.notice_id, r.recipient))
        .collect())
}

/// The age of the oldest email still waiting to be sent, in seconds.
pub fn oldest_pending_age(conn: &mut DbConn, now: DateTime<Utc>) -> QueryResult<i64> {
    let oldest: Option<NaiveDateTime> = d::table
        .filter(d::state.eq(State::Pending))
        .select(diesel::dsl::min(d::created_at))
        .first(conn)?;
    Ok(oldest.map_or(0, |t| (ts(now) - t).num_seconds().max(0)))
}
