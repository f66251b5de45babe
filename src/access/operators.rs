//! Operators: the people who run the service (the municipality, Veilig Thuis). They
//! sign in like coordinators (a link, then TOTP) and see the operator dashboard,
//! which holds no child data. Managed on the command line only; every change and
//! every dashboard view is audited.

use super::audit::{self, Action, Outcome};
use super::sessions;
use crate::db::schema::operators;
use crate::db::{ts, write_tx, DbConn};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

/// Whether `email` (compared without case) is an operator.
pub fn is_operator(conn: &mut DbConn, email: &str) -> QueryResult<bool> {
    let email = email.trim().to_lowercase();
    diesel::select(diesel::dsl::exists(operators::table.find(email))).get_result(conn)
}

/// Makes `email` an operator; false when it was one already.
pub fn add(conn: &mut DbConn, email: &str, now: DateTime<Utc>) -> QueryResult<bool> {
    let email = email.trim().to_lowercase();
    write_tx(conn, |conn| {
        if is_operator(conn, &email)? {
            return Ok(false);
        }
        diesel::insert_into(operators::table)
            .values((operators::email.eq(&email), operators::added_at.eq(ts(now))))
            .execute(conn)?;
        audit::record(
            conn,
            "operator",
            Action::OperatorAdd,
            None,
            Outcome::Ok,
            now,
        )?;
        Ok(true)
    })
}

/// Takes `email`'s operator role away and ends its sessions, so that a dashboard
/// open elsewhere closes with the next request; false when it was no operator.
pub fn remove(conn: &mut DbConn, email: &str, now: DateTime<Utc>) -> QueryResult<bool> {
    let email = email.trim().to_lowercase();
    write_tx(conn, |conn| {
        let removed = diesel::delete(operators::table.find(&email)).execute(conn)?;
        if removed == 0 {
            return Ok(false);
        }
        sessions::end_all_of(conn, &email)?;
        let outcome = Outcome::Ok;
        audit::record(conn, "operator", Action::OperatorRemove, None, outcome, now)?;
        Ok(true)
    })
}

/// Checks that `email` is an operator and audits the view of an operator page
/// (`action`), also when it is refused (`not_found`). Returns whether it may see it.
pub fn audited_view(
    conn: &mut DbConn,
    email: &str,
    action: Action,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    write_tx(conn, |conn| {
        let allowed = is_operator(conn, email)?;
        let outcome = if allowed {
            Outcome::Ok
        } else {
            Outcome::NotFound
        };
        audit::record(conn, email, action, None, outcome, now)?;
        Ok(allowed)
    })
}
