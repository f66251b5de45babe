//! The audit log: who did what to which notice, when, and with what result; never
//! the content. Only inserts: the table refuses anything else.

use crate::db::schema::audit_log;
use crate::db::{ts, DbConn};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

pub mod action {
    pub const SIGN_IN: &str = "sign_in";
    pub const FAILED_SIGN_IN: &str = "failed_sign_in";
    pub const VIEW: &str = "view";
    pub const ACKNOWLEDGE: &str = "acknowledge";
    pub const NOTE: &str = "note";
    pub const SIGNAL: &str = "signal";
    pub const CLOSE: &str = "close";
    pub const LOCKOUT: &str = "lockout";
    pub const LOGOUT: &str = "logout";
    pub const LINK_REQUEST: &str = "link_request";
}

pub fn record(
    conn: &mut DbConn,
    actor: &str,
    action: &str,
    notice_id: Option<&str>,
    result: &str,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::at.eq(ts(now)),
            audit_log::actor.eq(actor),
            audit_log::action.eq(action),
            audit_log::notice_id.eq(notice_id),
            audit_log::result.eq(result),
        ))
        .execute(conn)?;
    Ok(())
}
