//! Which language a page is in: that of the school the link, notice or session is
//! about, read here so that the portal runs no queries of its own. Unknown or
//! unset locales read as the default (Dutch).

use super::accounts;
use super::links::{self, token_hash};
use super::sessions::{self, Session};
use crate::db::schema::{notices, schools};
use crate::db::DbConn;
use crate::locale::Locale;
use chrono::{DateTime, Utc};
use diesel::prelude::*;

fn parse(value: Option<String>) -> Locale {
    value.as_deref().and_then(Locale::parse).unwrap_or_default()
}

/// The locale of a notice's school; None for an unknown notice.
pub fn of_notice(conn: &mut DbConn, notice_id: &str) -> QueryResult<Option<Locale>> {
    let found: Option<String> = notices::table
        .inner_join(schools::table)
        .filter(notices::id.eq(notice_id))
        .select(schools::locale)
        .first(conn)
        .optional()?;
    Ok(found.map(|l| parse(Some(l))))
}

/// The locale of the (first) school whose coordinator or deputy `email` is.
pub fn of_address(conn: &mut DbConn, email: &str) -> QueryResult<Locale> {
    Ok(parse(accounts::locale_of(conn, email)?))
}

/// The locale for a page about a session or link: the school of its notice, else of
/// its address.
pub fn of(conn: &mut DbConn, notice_id: Option<&str>, email: &str) -> QueryResult<Locale> {
    if let Some(id) = notice_id {
        if let Some(locale) = of_notice(conn, id)? {
            return Ok(locale);
        }
    }
    of_address(conn, email)
}

/// The locale of the link whose secret is `token`; None for an unknown link.
pub fn of_link(conn: &mut DbConn, token: &str) -> QueryResult<Option<Locale>> {
    match links::find(conn, &token_hash(token))? {
        Some(link) => {
            let email = link.recipient_email.to_lowercase();
            Ok(Some(of(conn, link.notice_id.as_deref(), &email)?))
        }
        None => Ok(None),
    }
}

/// The live session for a cookie value (see [`sessions::find_with_locale`]), with the
/// locale its pages are in: the school of its notice, or for a session from a link
/// to the list, the school of its address.
pub fn of_session(
    conn: &mut DbConn,
    cookie: &str,
    now: DateTime<Utc>,
) -> QueryResult<Option<(Session, Locale)>> {
    let Some((session, locale)) = sessions::find_with_locale(conn, cookie, now)? else {
        return Ok(None);
    };
    let locale = match locale.as_deref().and_then(Locale::parse) {
        Some(locale) => locale,
        None => of_address(conn, &session.email)?,
    };
    Ok(Some((session, locale)))
}
