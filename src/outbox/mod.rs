//! The outbound message outbox: rows written in the same transaction as the change
//! they announce, claimed by lease and marked once the broker has confirmed them.

use crate::db::schema::outbox_messages as om;
use crate::db::{ts, write_tx, DbConn};
use crate::sealing::{columns, Keyring};
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use std::sync::Arc;
use tokio::sync::Notify;

/// The outbox as the stages that fill it hold it: the exchange everything outbound
/// is published to, and the relay's wake-up, rung after a commit that queued
/// messages so they leave at once instead of at the relay's next poll.
#[derive(Debug, Clone)]
pub struct Outbox {
    pub exchange: String,
    wake: Arc<Notify>,
}

impl Outbox {
    pub fn new(exchange: String) -> Self {
        Outbox {
            exchange,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Tells the relay that messages were committed.
    pub fn wake_relay(&self) {
        self.wake.notify_one();
    }

    /// What the relay waits on.
    pub fn wakeup(&self) -> Arc<Notify> {
        self.wake.clone()
    }
}

#[derive(Debug, Clone, Queryable)]
pub struct OutboxMessage {
    pub id: i64,
    pub message_id: String,
    pub exchange: String,
    pub routing_key: String,
    pub message_type: String,
    pub body: String,
    pub attempts: i32,
}

/// A message to publish, written in the transaction of the change it announces.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = om)]
pub struct NewMessage {
    pub message_id: String,
    pub exchange: String,
    pub routing_key: String,
    pub message_type: String,
    pub body: String,
    pub created_at: NaiveDateTime,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
}

impl NewMessage {
    pub fn new(
        exchange: &str,
        routing_key: &str,
        message_type: &str,
        body: &impl serde::Serialize,
        now: DateTime<Utc>,
    ) -> Self {
        NewMessage {
            message_id: uuid::Uuid::new_v4().to_string(),
            exchange: exchange.to_string(),
            routing_key: routing_key.to_string(),
            message_type: message_type.to_string(),
            body: serde_json::to_string(body).expect("outbound messages are plain structs"),
            created_at: ts(now),
            attempts: 0,
            next_attempt_at: ts(now),
        }
    }
}

impl NewMessage {
    /// The message with its body sealed, for a message that carries personal data.
    pub fn sealed(mut self, keys: &Keyring) -> Self {
        self.body = keys.seal(columns::OUTBOX_BODY.at(&self.message_id), &self.body);
        self
    }
}

/// Queues messages, a chunk of rows per statement.
pub fn enqueue(conn: &mut DbConn, messages: &[NewMessage]) -> QueryResult<()> {
    crate::insert_chunks!(conn, om::table, messages);
    Ok(())
}

/// Claims up to `limit` due messages for `lease`. A relay that dies loses its lease,
/// and another takes the messages over when it runs out. Sealed bodies come back
/// opened. One that does not open (its key is no longer configured) is logged by id
/// and left to its lease, so it cannot hold up the others.
pub fn claim(
    conn: &mut DbConn,
    keys: &Keyring,
    now: DateTime<Utc>,
    lease: Duration,
    limit: i64,
) -> QueryResult<Vec<OutboxMessage>> {
    let claimed = claim_sealed(conn, now, lease, limit)?;
    Ok(claimed
        .into_iter()
        .filter_map(|mut message| {
            let place = columns::OUTBOX_BODY.at(&message.message_id);
            match keys.open(place, &message.body) {
                Ok(body) => {
                    message.body = body;
                    Some(message)
                }
                Err(error) => {
                    let message_id = message.message_id;
                    tracing::error!(%message_id, %error, "outbound message cannot be opened; it waits");
                    None
                }
            }
        })
        .collect())
}

fn claim_sealed(
    conn: &mut DbConn,
    now: DateTime<Utc>,
    lease: Duration,
    limit: i64,
) -> QueryResult<Vec<OutboxMessage>> {
    let now_ts = ts(now);
    write_tx(conn, |conn| {
        let due = om::table
            .filter(om::published_at.is_null())
            .filter(om::next_attempt_at.le(now_ts))
            .filter(om::lease_until.is_null().or(om::lease_until.lt(now_ts)))
            .order(om::id)
            .limit(limit)
            .select(om::id);
        let ids: Vec<i64> = crate::skip_locked!(conn, due);
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        diesel::update(om::table.filter(om::id.eq_any(&ids)))
            .set((
                om::lease_until.eq(Some(ts(now + lease))),
                om::attempts.eq(om::attempts + 1),
            ))
            .execute(conn)?;
        om::table
            .filter(om::id.eq_any(&ids))
            .order(om::id)
            .select((
                om::id,
                om::message_id,
                om::exchange,
                om::routing_key,
                om::message_type,
                om::body,
                om::attempts,
            ))
            .load(conn)
    })
}

pub fn mark_published(conn: &mut DbConn, ids: &[i64], now: DateTime<Utc>) -> QueryResult<usize> {
    if ids.is_empty() {
        return Ok(0);
    }
    diesel::update(om::table.filter(om::id.eq_any(ids)))
        .set((
            om::published_at.eq(Some(ts(now))),
            om::lease_until.eq(None::<chrono::NaiveDateTime>),
        ))
        .execute(conn)
}

/// Gives messages back for a later try, after `delay`.
pub fn release(conn: &mut DbConn, ids: &[i64], retry_at: DateTime<Utc>) -> QueryResult<usize> {
    if ids.is_empty() {
        return Ok(0);
    }
    diesel::update(om::table.filter(om::id.eq_any(ids)))
        .set((
            om::next_attempt_at.eq(ts(retry_at)),
            om::lease_until.eq(None::<chrono::NaiveDateTime>),
        ))
        .execute(conn)
}

/// Messages not yet confirmed by the broker.
pub fn depth(conn: &mut DbConn) -> QueryResult<i64> {
    om::table
        .filter(om::published_at.is_null())
        .count()
        .get_result(conn)
}

/// Deletes the copies of these messages that the broker has confirmed; one not yet
/// published stays until it is. Returns how many went.
pub fn forget_published(conn: &mut DbConn, message_ids: &[String]) -> QueryResult<usize> {
    let mut forgotten = 0;
    for chunk in message_ids.chunks(crate::db::CHUNK) {
        forgotten += diesel::delete(
            om::table
                .filter(om::published_at.is_not_null())
                .filter(om::message_id.eq_any(chunk)),
        )
        .execute(conn)?;
    }
    Ok(forgotten)
}
