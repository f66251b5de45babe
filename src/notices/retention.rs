//! Retention: a notice's personal data (the child's names, date of birth, group,
//! keyed BSN, and the texts of its notes and signals) is erased once it is no
//! longer needed. The notice row stays, with its
//! ids, dates and outcomes, for anonymous counts; so do the decisions and the audit
//! log, which hold no personal data.

use super::NoticeStatus;
use crate::access::links;
use crate::db::schema::{notice_notes, notices, school_signals};
use crate::db::{ts, write_tx, DbConn};
use crate::outbox;
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;

/// How long personal data is kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// After a notice is closed or withdrawn (`SCHOOLSIGNAL_RETENTION_DAYS`); zero
    /// erases a closed notice's data in the transaction that closes it.
    pub after_close: Duration,
    /// After a notice was made, when it is never closed.
    pub open: Duration,
}

/// How long an open (never closed) notice keeps its personal data.
pub const OPEN_RETENTION_DAYS: i64 = 90;

/// Notices purged per transaction.
const BATCH: i64 = 1000;

/// Erases the personal data of notices past their retention, a batch at a time.
/// Returns how many notices were purged.
pub fn purge(conn: &mut DbConn, retention: Retention, now: DateTime<Utc>) -> QueryResult<usize> {
    let closed_before: NaiveDateTime = ts(now - retention.after_close);
    let opened_before: NaiveDateTime = ts(now - retention.open);
    write_tx(conn, |conn| {
        let ids: Vec<String> = notices::table
            .filter(notices::purged_at.is_null())
            .filter(
                notices::closed_at
                    .le(closed_before)
                    .or(notices::status
                        .eq(NoticeStatus::Withdrawn)
                        .and(notices::updated_at.le(closed_before)))
                    .or(notices::created_at.le(opened_before)),
            )
            .order(notices::created_at)
            .limit(BATCH)
            .select(notices::id)
            .load(conn)?;
        forget_sent_signals(conn)?;
        if ids.is_empty() {
            return Ok(0);
        }
        erase(conn, &ids, now)?;
        Ok(ids.len())
    })
}

/// Erases the personal data of the notices `ids`, inside the caller's transaction:
/// the purge's batches, and a close when nothing is kept after it
/// (`SCHOOLSIGNAL_RETENTION_DAYS=0`).
pub(super) fn erase(conn: &mut DbConn, ids: &[String], now: DateTime<Utc>) -> QueryResult<()> {
    diesel::update(notices::table.filter(notices::id.eq_any(ids)))
        .set((
            notices::child_given_name.eq(None::<String>),
            notices::child_family_name.eq(None::<String>),
            notices::child_date_of_birth.eq(None::<String>),
            notices::child_group.eq(None::<String>),
            notices::child_present.eq(None::<String>),
            // The keyed BSN goes too; the notice id keeps the row unique.
            notices::child_bsn_hash.eq(notices::id),
            notices::purged_at.eq(Some(ts(now))),
        ))
        .execute(conn)?;
    // Notes and signal texts may name the child too.
    diesel::update(notice_notes::table.filter(notice_notes::notice_id.eq_any(ids)))
        .set(notice_notes::body.eq(None::<String>))
        .execute(conn)?;
    diesel::update(school_signals::table.filter(school_signals::notice_id.eq_any(ids)))
        .set(school_signals::description.eq(None::<String>))
        .execute(conn)?;
    // Links to a purged notice lead nowhere.
    links::forget_for_notices(conn, ids)?;
    forget_sent_signals(conn)?;
    Ok(())
}

/// A `school_signal.v1` message carries the child's name, date of birth and the
/// description. Once the broker has it and its notice is purged, its outbox copy
/// goes. One not yet published stays until it is: a signal is never lost.
fn forget_sent_signals(conn: &mut DbConn) -> QueryResult<usize> {
    let purged: Vec<String> = school_signals::table
        .inner_join(notices::table)
        .filter(notices::purged_at.is_not_null())
        .select(school_signals::outbox_message_id)
        .load(conn)?;
    outbox::forget_published(conn, &purged)
}
