//! The email outbox: one row per email to one recipient, claimed by lease, ended in a
//! final state an operator can see.

use crate::db::schema::{access_tokens, deliveries as d, notices, schools};
use crate::db::{ts, write_tx, DbConn, CHUNK};
use crate::notices::{status as notice_status, Escalation};
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

pub mod kind {
    pub const NOTICE: &str = "notice";
    pub const REMINDER: &str = "reminder";
    pub const WITHDRAWAL: &str = "withdrawal";
}

pub mod recipient {
    pub const COORDINATOR: &str = "coordinator";
    pub const DEPUTY: &str = "deputy";
}

pub mod state {
    pub const PENDING: &str = "pending";
    pub const SENT: &str = "sent";
    pub const PERMANENT_FAILURE: &str = "permanent_failure";
    pub const EXPIRED: &str = "expired";
    /// The notice was withdrawn before its email left.
    pub const CANCELLED: &str = "cancelled";
    pub const FINAL: [&str; 4] = [SENT, PERMANENT_FAILURE, EXPIRED, CANCELLED];
}

/// What the queue needs to know from configuration.
#[derive(Debug, Clone)]
pub struct Policy {
    /// A delivery not sent by then expires.
    pub give_up_after: Duration,
    /// The domain of the `Message-ID`s.
    pub message_domain: String,
    /// How long the link in an email stays valid.
    pub link_valid_for: Duration,
    /// Where escalations are published.
    pub outbound_exchange: String,
    /// Counts the emails a withdrawal cancels (`deliveries_total{state="cancelled"}`);
    /// None where nothing is counted. It counts inside the withdrawing transaction,
    /// so a transaction that is rolled back and retried counts twice.
    pub cancelled: Option<prometheus::IntCounter>,
}

#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub notice_id: String,
    pub kind: &'static str,
    pub recipient: &'static str,
    pub state: &'static str,
    pub message_id: String,
    pub attempts: i32,
    pub created_at: NaiveDateTime,
    pub next_attempt_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

impl NewDelivery {
    pub fn new(
        policy: &Policy,
        notice_id: &str,
        kind: &'static str,
        recipient: &'static str,
        now: DateTime<Utc>,
    ) -> Self {
        NewDelivery {
            notice_id: notice_id.to_string(),
            kind,
            recipient,
            state: state::PENDING,
            message_id: format!("<{}@{}>", uuid::Uuid::new_v4(), policy.message_domain),
            attempts: 0,
            created_at: ts(now),
            next_attempt_at: ts(now),
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
                    d::state.eq(r.state),
                    d::message_id.eq(&r.message_id),
                    d::attempts.eq(r.attempts),
                    d::created_at.eq(r.created_at),
                    d::next_attempt_at.eq(r.next_attempt_at),
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
    pub kind: &'static str,
    pub recipient: &'static str,
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

#[derive(Queryable)]
struct ClaimRow {
    id: i64,
    notice_id: String,
    kind: String,
    recipient: String,
    message_id: String,
    attempts: i32,
    expires_at: NaiveDateTime,
    notice_status: String,
    due_at: Option<NaiveDateTime>,
    received_at: Option<NaiveDateTime>,
    school_name: String,
    locale: String,
    coordinator_name: String,
    coordinator_email: String,
    deputy_name: Option<String>,
    deputy_email: Option<String>,
}

/// Claims up to `limit` due emails for `lease`, and creates the link token of each.
/// Emails about a notice withdrawn meanwhile are cancelled here instead of sent.
pub fn claim(
    conn: &mut DbConn,
    policy: &Policy,
    now: DateTime<Utc>,
    lease: Duration,
    limit: i64,
) -> QueryResult<Claims> {
    let now_ts = ts(now);
    write_tx(conn, |conn| {
        let due = d::table
            .filter(d::state.eq(state::PENDING))
            .filter(d::next_attempt_at.le(now_ts))
            .filter(d::lease_until.is_null().or(d::lease_until.lt(now_ts)))
            .order(d::next_attempt_at)
            .limit(limit)
            .select(d::id);
        let ids: Vec<i64> = crate::skip_locked!(conn, due);
        if ids.is_empty() {
            return Ok(Claims::default());
        }
        let rows: Vec<ClaimRow> = d::table
            .inner_join(notices::table.inner_join(schools::table))
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
                notices::status,
                notices::due_at,
                notices::received_at,
                schools::name,
                schools::locale,
                schools::coordinator_name,
                schools::coordinator_email,
                schools::deputy_name,
                schools::deputy_email,
            ))
            .load(conn)?;
        let lease_until = ts(now + lease);
        let (claimed, cancelled): (Vec<_>, Vec<_>) = rows
            .into_iter()
            .map(|row| into_claimed(row, lease_until))
            .partition(|c| c.is_ok());
        let cancelled: Vec<i64> = cancelled.into_iter().filter_map(Result::err).collect();
        let cancelled = finish_all(conn, &cancelled, state::CANCELLED, None, now)?;
        let mut claimed: Vec<Claimed> = claimed.into_iter().filter_map(Result::ok).collect();
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

/// What one claim took: the emails to send, and how many it cancelled instead.
#[derive(Default)]
pub struct Claims {
    pub claimed: Vec<Claimed>,
    pub cancelled: usize,
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
    let changed = diesel::update(held(email.id, email.attempts))
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
            released += diesel::update(held(email.id, email.attempts))
                .set(d::lease_until.eq(None::<NaiveDateTime>))
                .execute(conn)?;
        }
        let unsent: Vec<String> = emails
            .iter()
            .filter_map(|e| e.token.as_deref().map(token_hash))
            .collect();
        delete_tokens(conn, &unsent)?;
        Ok(released)
    })
}

/// One email, while the claim that gave it `attempts` holds it: still pending, and
/// not claimed again since. Every result and renewal is written through this guard.
type Held = diesel::dsl::Filter<
    diesel::dsl::Filter<diesel::dsl::Find<d::table, i64>, diesel::dsl::Eq<d::state, &'static str>>,
    diesel::dsl::Eq<d::attempts, i32>,
>;

fn held(id: i64, attempts: i32) -> Held {
    d::table
        .find(id)
        .filter(d::state.eq(state::PENDING))
        .filter(d::attempts.eq(attempts))
}

/// The claimed email, or its id when it is to be cancelled instead.
fn into_claimed(row: ClaimRow, lease_until: NaiveDateTime) -> Result<Claimed, i64> {
    let kind = [kind::NOTICE, kind::REMINDER, kind::WITHDRAWAL]
        .into_iter()
        .find(|k| *k == row.kind)
        .ok_or(row.id)?;
    let withdrawn = row.notice_status == notice_status::WITHDRAWN;
    if withdrawn && kind != kind::WITHDRAWAL {
        return Err(row.id);
    }
    let (recipient, to_name, to_email) = if row.recipient == recipient::DEPUTY {
        let email = row.deputy_email.ok_or(row.id)?;
        (
            recipient::DEPUTY,
            row.deputy_name.unwrap_or_default(),
            email,
        )
    } else {
        let (name, email) = (row.coordinator_name, row.coordinator_email);
        (recipient::COORDINATOR, name, email)
    };
    Ok(Claimed {
        id: row.id,
        notice_id: row.notice_id,
        kind,
        recipient,
        message_id: row.message_id,
        // This claim's attempt: the update in `claim` counts it.
        attempts: row.attempts + 1,
        lease_until,
        expires_at: row.expires_at,
        due_at: row.due_at,
        received_at: row.received_at,
        school_name: row.school_name,
        locale: row.locale,
        to_name,
        to_email,
        token: None,
    })
}

/// A random token of 256 bits for each email that carries a link, stored as a hash
/// and bound to the notice and the address.
fn issue_tokens(
    conn: &mut DbConn,
    policy: &Policy,
    claimed: &mut [Claimed],
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let mut rows = Vec::new();
    for c in claimed.iter_mut().filter(|c| c.kind != kind::WITHDRAWAL) {
        let token = new_token();
        rows.push((
            access_tokens::token_hash.eq(token_hash(&token)),
            access_tokens::notice_id.eq(c.notice_id.clone()),
            access_tokens::recipient_email.eq(c.to_email.clone()),
            access_tokens::created_at.eq(ts(now)),
            access_tokens::expires_at.eq(ts(now + policy.link_valid_for)),
        ));
        c.token = Some(token);
    }
    crate::insert_chunks!(conn, access_tokens::table, rows);
    Ok(())
}

fn new_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// How a link token is stored. The portal hashes what it is given the same way.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// What became of one attempt to send.
#[derive(Debug, Clone)]
pub enum Attempt {
    Sent,
    /// Worth trying again at `retry_at`; `error` is a reply code or a category, never
    /// text from the server (which may echo an address).
    Transient {
        error: String,
        retry_at: DateTime<Utc>,
    },
    Permanent {
        error: String,
    },
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

/// Records attempts in one transaction. A notice email that failed for good falls
/// back to the deputy; when there is none, or the deputy's failed too, the notice is
/// escalated as undeliverable.
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
        summary.sent = mark_sent(conn, policy, &sent, now)?;
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
                    if finish_claimed(conn, email, state::EXPIRED, error, now)? {
                        summary.expired += 1;
                        failed_for_good.push(email);
                    }
                }
                Attempt::Permanent { error } => {
                    if finish_claimed(conn, email, state::PERMANENT_FAILURE, error, now)? {
                        summary.permanent_failures += 1;
                        failed_for_good.push(email);
                    }
                }
            }
        }
        forget_undelivered_tokens(conn, done)?;
        summary.escalations = fall_back(conn, policy, &failed_for_good, now)?;
        Ok(summary)
    })
}

/// Marks emails sent and their notices delivered. A notice withdrawn while its email
/// was on its way gets the "please disregard" email now. Returns how many emails
/// changed to sent (an email sent twice is counted once).
fn mark_sent(
    conn: &mut DbConn,
    policy: &Policy,
    sent: &[&Claimed],
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    let mut changed = 0;
    for chunk in sent.chunks(CHUNK) {
        let about_notice = |c: &&&Claimed| c.kind != kind::WITHDRAWAL;
        let notice_ids: Vec<&str> = chunk
            .iter()
            .filter(about_notice)
            .map(|c| c.notice_id.as_str())
            .collect();
        // Locks the notices first, in the order a withdrawal does, so that a
        // withdrawal either sees this email sent or is seen by this check.
        let withdrawn = lock_withdrawn(conn, &notice_ids)?;
        changed += set_sent(conn, chunk, now)?;
        let delivered: Vec<&str> = chunk
            .iter()
            .filter(|c| c.kind == kind::NOTICE)
            .map(|c| c.notice_id.as_str())
            .collect();
        diesel::update(
            notices::table
                .filter(notices::id.eq_any(&delivered))
                .filter(notices::status.eq(notice_status::PENDING_DELIVERY)),
        )
        .set((
            notices::status.eq(notice_status::DELIVERED),
            notices::updated_at.eq(ts(now)),
        ))
        .execute(conn)?;
        let disregard: Vec<NewDelivery> = chunk
            .iter()
            .filter(|c| about_notice(c) && withdrawn.contains(&c.notice_id))
            .map(|c| NewDelivery::new(policy, &c.notice_id, kind::WITHDRAWAL, c.recipient, now))
            .collect();
        enqueue(conn, &disregard)?;
    }
    Ok(changed)
}

/// Deletes the link tokens of emails the server refused: no one holds them. After a
/// timeout or a broken connection the email may have arrived, so its link stays.
fn forget_undelivered_tokens(conn: &mut DbConn, done: &[Finished]) -> QueryResult<()> {
    let refused: Vec<String> = done
        .iter()
        .filter(|f| match &f.attempt {
            Attempt::Sent => false,
            Attempt::Permanent { .. } => true,
            Attempt::Transient { error, .. } => error.starts_with("smtp "),
        })
        .filter_map(|f| f.email.token.as_deref().map(token_hash))
        .collect();
    delete_tokens(conn, &refused)
}

fn delete_tokens(conn: &mut DbConn, hashes: &[String]) -> QueryResult<()> {
    for chunk in hashes.chunks(CHUNK) {
        diesel::delete(access_tokens::table.filter(access_tokens::token_hash.eq_any(chunk)))
            .execute(conn)?;
    }
    Ok(())
}

/// Marks emails sent, each with the address it went to, in one statement; returns
/// how many changed. Whatever state an email was left in by a claim that lost it
/// (pending, cancelled by a withdrawal, failed), the server accepted it: it is sent.
fn set_sent(conn: &mut DbConn, sent: &[&Claimed], now: DateTime<Utc>) -> QueryResult<usize> {
    use diesel::sql_types::{BigInt, Text, Timestamp};
    if sent.is_empty() {
        return Ok(0);
    }
    // The SQL with its placeholders: `$1, $2, …` on PostgreSQL, `?` on SQLite.
    let sql = |numbered: bool| {
        let mut n = 0;
        let mut next = || {
            n += 1;
            if numbered {
                format!("${n}")
            } else {
                "?".to_string()
            }
        };
        let finished_at = next();
        let cases: String = sent
            .iter()
            .map(|_| format!(" WHEN {} THEN {}", next(), next()))
            .collect();
        let ids: Vec<String> = sent.iter().map(|_| next()).collect();
        format!(
            "UPDATE deliveries SET state = 'sent', lease_until = NULL, finished_at = {finished_at}, \
             sent_to = CASE id{cases} END WHERE state <> 'sent' AND id IN ({})",
            ids.join(", ")
        )
    };
    macro_rules! bound {
        ($query:expr) => {{
            let mut query = $query.into_boxed().bind::<Timestamp, _>(ts(now));
            for c in sent {
                query = query
                    .bind::<BigInt, _>(c.id)
                    .bind::<Text, _>(c.to_email.clone());
            }
            for c in sent {
                query = query.bind::<BigInt, _>(c.id);
            }
            query
        }};
    }
    Ok(match conn {
        // BACKEND-SPECIFIC: raw SQL, because diesel has no per-row values in one
        // UPDATE; only the placeholders differ.
        DbConn::Pg(pg) => bound!(diesel::sql_query(sql(true))).execute(pg)?,
        DbConn::Sqlite(lite) => bound!(diesel::sql_query(sql(false))).execute(lite)?,
    })
}

/// Of these notices, the ones withdrawn; all of them locked until the commit.
pub fn lock_withdrawn(conn: &mut DbConn, notice_ids: &[&str]) -> QueryResult<Vec<String>> {
    let query = notices::table
        .filter(notices::id.eq_any(notice_ids))
        .order(notices::id)
        .select((notices::id, notices::status));
    let rows: Vec<(String, String)> = match conn {
        // BACKEND-SPECIFIC: row locks on PostgreSQL; SQLite has one writer at a time.
        DbConn::Pg(pg) => query.for_update().load(pg)?,
        DbConn::Sqlite(_) => query.load(conn)?,
    };
    Ok(rows
        .into_iter()
        .filter(|(_, status)| status == notice_status::WITHDRAWN)
        .map(|(id, _)| id)
        .collect())
}

/// Schedules another attempt, if this claim still holds the email.
fn retry_later(
    conn: &mut DbConn,
    email: &Claimed,
    error: &str,
    retry_at: NaiveDateTime,
) -> QueryResult<bool> {
    let changed = diesel::update(held(email.id, email.attempts))
        .set((
            d::next_attempt_at.eq(retry_at),
            d::lease_until.eq(None::<NaiveDateTime>),
            d::last_error.eq(Some(error)),
        ))
        .execute(conn)?;
    Ok(changed == 1)
}

/// Ends an email in a final state, if this claim still holds it.
fn finish_claimed(
    conn: &mut DbConn,
    email: &Claimed,
    final_state: &'static str,
    error: &str,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let changed = diesel::update(held(email.id, email.attempts))
        .set((
            d::state.eq(final_state),
            d::finished_at.eq(Some(ts(now))),
            d::lease_until.eq(None::<NaiveDateTime>),
            d::last_error.eq(Some(error)),
        ))
        .execute(conn)?;
    Ok(changed == 1)
}

/// Ends pending deliveries in a final state.
pub fn finish_all(
    conn: &mut DbConn,
    ids: &[i64],
    final_state: &'static str,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    let mut changed = 0;
    for chunk in ids.chunks(CHUNK) {
        changed += diesel::update(
            d::table
                .filter(d::id.eq_any(chunk))
                .filter(d::state.eq(state::PENDING)),
        )
        .set((
            d::state.eq(final_state),
            d::finished_at.eq(Some(ts(now))),
            d::lease_until.eq(None::<NaiveDateTime>),
            d::last_error.eq(error),
        ))
        .execute(conn)?;
    }
    Ok(changed)
}

/// The deputy gets a notice email the coordinator could not; a notice no one could
/// get is escalated at once. Returns the number of escalations.
fn fall_back(
    conn: &mut DbConn,
    policy: &Policy,
    failed: &[&Claimed],
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    let mut to_deputy = Vec::new();
    let mut undeliverable = Vec::new();
    for c in failed.iter().filter(|c| c.kind == kind::NOTICE) {
        let has_deputy: bool = c.recipient == recipient::COORDINATOR
            && notices::table
                .inner_join(schools::table)
                .filter(notices::id.eq(&c.notice_id))
                .select(schools::deputy_email.is_not_null())
                .first(conn)?;
        if has_deputy {
            to_deputy.push(NewDelivery::new(
                policy,
                &c.notice_id,
                kind::NOTICE,
                recipient::DEPUTY,
                now,
            ));
        } else {
            undeliverable.push(c.notice_id.clone());
        }
    }
    enqueue(conn, &to_deputy)?;
    let level = Escalation::UNDELIVERABLE;
    Escalation::send(conn, &undeliverable, level, &policy.outbound_exchange, now)
}

/// Cancels the unsent emails of withdrawn notices, and queues "please disregard" to
/// everyone who already got the notice email or a reminder. An email on its way
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
                .filter(d::state.eq(state::PENDING))
                .filter(d::kind.ne(kind::WITHDRAWAL))
                .filter(d::lease_until.is_null().or(d::lease_until.lt(now_ts))),
        )
        .set((
            d::state.eq(state::CANCELLED),
            d::finished_at.eq(Some(now_ts)),
            d::lease_until.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)?;
        // Whoever got the notice or a reminder about it.
        let reached: BTreeSet<(String, String)> = d::table
            .filter(d::notice_id.eq_any(chunk))
            .filter(d::kind.eq_any([kind::NOTICE, kind::REMINDER]))
            .filter(d::state.eq(state::SENT))
            .select((d::notice_id, d::recipient))
            .load::<(String, String)>(conn)?
            .into_iter()
            .collect();
        let disregard: Vec<NewDelivery> = reached
            .iter()
            .map(|(notice_id, who)| {
                let who = if who == recipient::DEPUTY {
                    recipient::DEPUTY
                } else {
                    recipient::COORDINATOR
                };
                NewDelivery::new(policy, notice_id, kind::WITHDRAWAL, who, now)
            })
            .collect();
        enqueue(conn, &disregard)?;
    }
    if let Some(counter) = &policy.cancelled {
        counter.inc_by(cancelled as u64);
    }
    Ok(cancelled)
}

/// The age of the oldest email still waiting to be sent, in seconds.
pub fn oldest_pending_age(conn: &mut DbConn, now: DateTime<Utc>) -> QueryResult<i64> {
    let oldest: Option<NaiveDateTime> = d::table
        .filter(d::state.eq(state::PENDING))
        .select(diesel::dsl::min(d::created_at))
        .first(conn)?;
    Ok(oldest.map_or(0, |t| (ts(now) - t).num_seconds().max(0)))
}
