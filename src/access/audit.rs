//! The audit log: who did what to which notice, when, and with what result; never
//! the content. Only inserts: the table refuses anything else.

use crate::db::schema::audit_log;
use crate::db::{ts, DbConn};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

crate::text_enum! {
    /// What was done, or tried.
    pub enum Action {
        SignIn = "sign_in",
        FailedSignIn = "failed_sign_in",
        View = "view",
        Acknowledge = "acknowledge",
        Note = "note",
        Signal = "signal",
        Close = "close",
        Lockout = "lockout",
        Logout = "logout",
        LinkRequest = "link_request",
        /// An operator forgot an account's second factor (`coordinators reset-totp`).
        ResetTotp = "reset_totp",
        /// A police system posted an event with a test key: decided, then rolled back.
        TestEvent = "test_event",
        /// An operator's dashboard, or its report download.
        OperatorView = "operator_view",
        OperatorDownload = "operator_download",
        /// `operators add` and `operators remove` on the command line.
        OperatorAdd = "operator_add",
        OperatorRemove = "operator_remove",
    }
}

crate::text_enum! {
    /// How it went.
    pub enum Outcome {
        Ok = "ok",
        /// Not a notice of the actor's schools, whether or not it exists.
        NotFound = "not_found",
        // Signing in with a link.
        UnknownLink = "unknown_link",
        UsedLink = "used_link",
        ExpiredLink = "expired_link",
        Locked = "locked",
        LinkRedeemed = "link_redeemed",
        // The second factor.
        WrongCode = "wrong_code",
        CodeUsed = "code_used",
        SecondFactor = "second_factor",
        // What a lockout was for: guessed links (per client) or wrong codes.
        Links = "links",
        Codes = "codes",
        // A new sign-in link.
        Sent = "sent",
        Limited = "limited",
        UnknownAddress = "unknown_address",
        // An action on a notice that was refused or changed nothing.
        RefusedWithdrawn = "refused_withdrawn",
        Invalid = "invalid",
        AlreadyClosed = "already_closed",
        // A test key's event: decided (`ok`, above), rejected, or not decided
        // because the database was unavailable.
        Rejected = "rejected",
        Unavailable = "unavailable",
    }
}

/// One row of the log. `actor` is an address, a client IP, `unknown`, `operator`, or
/// `api_key:<name>`.
pub fn record(
    conn: &mut DbConn,
    actor: &str,
    action: Action,
    notice_id: Option<&str>,
    outcome: Outcome,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::at.eq(ts(now)),
            audit_log::actor.eq(actor),
            audit_log::action.eq(action),
            audit_log::notice_id.eq(notice_id),
            audit_log::result.eq(outcome),
        ))
        .execute(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tests and operators read these strings from the table: they never change.
    #[test]
    fn stored_text_is_stable() {
        let actions: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(
            actions,
            [
                "sign_in",
                "failed_sign_in",
                "view",
                "acknowledge",
                "note",
                "signal",
                "close",
                "lockout",
                "logout",
                "link_request",
                "reset_totp",
                "test_event",
                "operator_view",
                "operator_download",
                "operator_add",
                "operator_remove"
            ]
        );
        for outcome in Outcome::ALL {
            assert_eq!(outcome.as_str().parse::<Outcome>(), Ok(outcome));
        }
        assert_eq!(Outcome::RefusedWithdrawn.as_str(), "refused_withdrawn");
    }
}
