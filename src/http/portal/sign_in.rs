//! Signing in: the link from the email, then the second factor.

use super::i18n::{self, Locale};
use super::pages::{html, Pages};
use super::{see_other, CsrfForm, Portal, PortalError};
use crate::access::accounts::{self, Account};
use crate::access::audit::{self, action};
use crate::access::links::token_hash;
use crate::access::sessions::{self as session, Session};
use crate::access::totp;
use crate::db::schema::{access_tokens, notices};
use crate::db::{ts, write_tx, DbConn};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use minijinja::context;

/// GET shows a button and changes nothing: mail scanners follow links. The page is
/// in the locale of the link's school.
pub async fn link_page(
    portal: web::Data<Portal>,
    req: HttpRequest,
    token: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let locale = link_locale(&portal, &req, &token).await?;
    let csrf = portal.link_csrf(&token);
    let page = Pages::get().render(
        "link.html",
        locale,
        context! { title => i18n::t(locale, "title_link"), token => token.as_str(), csrf, signed_in => false },
    );
    Ok(html(StatusCode::OK, page))
}

/// The locale of a link's school, also for this request's error pages; the
/// browser's for an unknown link.
async fn link_locale(
    portal: &Portal,
    req: &HttpRequest,
    token: &str,
) -> Result<Locale, PortalError> {
    let hash = token_hash(token);
    match portal
        .db(move |conn| Ok(i18n::of_link(conn, &hash)?))
        .await?
    {
        Some(locale) => {
            super::set_locale(req, locale);
            Ok(locale)
        }
        None => Ok(super::locale(req)),
    }
}

enum Redeemed {
    Session(String),
    /// A real link, used or expired: refused, but no guess.
    Refused,
    /// No such link: a guess, which the per-client limit counts.
    Unknown,
    Locked,
}

/// POST redeems the link, once: it starts a session that still needs the second
/// factor, bound to the link's address and notice.
pub async fn redeem(
    portal: web::Data<Portal>,
    req: HttpRequest,
    token: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PortalError> {
    link_locale(&portal, &req, &token).await?;
    portal.same_origin(&req)?;
    if !session::same_secret(&portal.link_csrf(&token), &form.csrf) {
        return Err(PortalError::Forbidden);
    }
    let client = portal.client(&req);
    if portal.limiter.blocked(&client) {
        return Err(PortalError::Locked);
    }
    let (hash, now) = (token_hash(&token), portal.clock.now());
    let redeemed = portal
        .db(move |conn| Ok(write_tx(conn, |conn| redeem_in_tx(conn, &hash, now))?))
        .await?;
    match redeemed {
        Redeemed::Session(cookie) => Ok(HttpResponse::SeeOther()
            .cookie(portal.cookies.cookie(cookie))
            .insert_header(("Location", "/totp"))
            .finish()),
        Redeemed::Locked => Err(PortalError::Locked),
        Redeemed::Refused => Err(PortalError::BadLink),
        Redeemed::Unknown => {
            if portal.limiter.fail(&client) {
                let (ip, now) = (client, portal.clock.now());
                portal
                    .db(move |conn| {
                        Ok(audit::record(
                            conn,
                            &ip,
                            action::LOCKOUT,
                            None,
                            "links",
                            now,
                        )?)
                    })
                    .await?;
            }
            Err(PortalError::BadLink)
        }
    }
}

fn redeem_in_tx(conn: &mut DbConn, hash: &str, now: DateTime<Utc>) -> QueryResult<Redeemed> {
    type Row = (Option<String>, String, NaiveDateTime, Option<NaiveDateTime>);
    let found: Option<Row> = access_tokens::table
        .find(hash)
        .select((
            access_tokens::notice_id,
            access_tokens::recipient_email,
            access_tokens::expires_at,
            access_tokens::used_at,
        ))
        .first(conn)
        .optional()?;
    let Some((notice_id, email, expires_at, used_at)) = found else {
        audit::record(
            conn,
            "unknown",
            action::FAILED_SIGN_IN,
            None,
            "unknown_link",
            now,
        )?;
        return Ok(Redeemed::Unknown);
    };
    let email = email.to_lowercase();
    let notice = notice_id.as_deref();
    let refusal = if used_at.is_some() {
        Some("used_link")
    } else if expires_at <= ts(now) {
        Some("expired_link")
    } else {
        None
    };
    if let Some(result) = refusal {
        audit::record(conn, &email, action::FAILED_SIGN_IN, notice, result, now)?;
        return Ok(Redeemed::Refused);
    }
    let account = accounts::ensure(conn, &email, now)?;
    if account.locked(now) {
        audit::record(conn, &email, action::FAILED_SIGN_IN, notice, "locked", now)?;
        return Ok(Redeemed::Locked);
    }
    // Conditional, so that of two concurrent redemptions exactly one changes the
    // row: the other waits for the first's commit, then finds it used.
    let claimed = diesel::update(
        access_tokens::table
            .find(hash)
            .filter(access_tokens::used_at.is_null()),
    )
    .set(access_tokens::used_at.eq(Some(ts(now))))
    .execute(conn)?;
    if claimed != 1 {
        audit::record(
            conn,
            &email,
            action::FAILED_SIGN_IN,
            notice,
            "used_link",
            now,
        )?;
        return Ok(Redeemed::Refused);
    }
    // A link to a notice whose data was purged still signs in, to the list.
    let purged: bool = match notice {
        Some(id) => notices::table
            .find(id)
            .select(notices::purged_at.is_not_null())
            .first(conn)?,
        None => false,
    };
    let target = notice.filter(|_| !purged);
    let cookie = session::start(conn, &email, target, now)?;
    audit::record(conn, &email, action::SIGN_IN, notice, "link_redeemed", now)?;
    Ok(Redeemed::Session(cookie))
}

/// Enrolment the first time; a code after that.
pub async fn second_factor_page(
    portal: web::Data<Portal>,
    req: HttpRequest,
) -> Result<HttpResponse, PortalError> {
    let session = portal
        .session(&req)
        .await?
        .ok_or(PortalError::SignInRequired)?;
    let (email, now) = (session.email.clone(), portal.clock.now());
    let account = portal
        .db(move |conn| Ok(write_tx(conn, |conn| accounts::ensure(conn, &email, now))?))
        .await?;
    if account.locked(now) {
        return Err(PortalError::Locked);
    }
    Ok(html(
        StatusCode::OK,
        code_page(&portal, super::locale(&req), &session, account, None).await?,
    ))
}

async fn code_page(
    portal: &Portal,
    locale: Locale,
    session: &Session,
    account: Account,
    error: Option<&str>,
) -> Result<String, PortalError> {
    let csrf = session.csrf_token.as_str();
    let error = error.map(|key| i18n::t(locale, key));
    if account.totp_enrolled_at.is_some() {
        let ctx =
            context! { title => i18n::t(locale, "title_code"), csrf, error, signed_in => false };
        return Ok(Pages::get().render("code.html", locale, ctx));
    }
    let secret = portal
        .db(move |conn| Ok(accounts::pending_secret(conn, &account)?))
        .await?;
    let qr = totp::qr_svg(&secret, &session.email).unwrap_or_default();
    // Groups of four are easier to type; apps ignore the spaces.
    let secret = secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let title = i18n::t(locale, "title_enrol");
    let ctx = context! { title, qr, secret, csrf, error, signed_in => false };
    Ok(Pages::get().render("enrol.html", locale, ctx))
}

#[derive(Debug, serde::Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

enum Checked {
    Verified(String),
    Wrong(Account),
    Locked,
}

/// Checks the code. A right one verifies the session under a new id (so an id seen
/// before sign-in is worthless after); five wrong ones lock the account.
pub async fn second_factor(
    portal: web::Data<Portal>,
    req: HttpRequest,
    form: web::Form<CodeForm>,
) -> Result<HttpResponse, PortalError> {
    let session = portal
        .session(&req)
        .await?
        .ok_or(PortalError::SignInRequired)?;
    portal.csrf(&req, &session, &form.csrf)?;
    let now = portal.clock.now();
    let (s, code) = (session.clone(), form.code.clone());
    let checked = portal
        .db(move |conn| Ok(write_tx(conn, |conn| check_code(conn, &s, &code, now))?))
        .await?;
    match checked {
        Checked::Verified(cookie) => {
            let target = match &session.notice_id {
                Some(id) => format!("/notices/{id}"),
                None => "/notices".to_string(),
            };
            Ok(HttpResponse::SeeOther()
                .cookie(portal.cookies.cookie(cookie))
                .insert_header(("Location", target))
                .finish())
        }
        Checked::Wrong(account) => {
            let locale = super::locale(&req);
            let page = code_page(&portal, locale, &session, account, Some("wrong_code")).await?;
            Ok(html(StatusCode::UNPROCESSABLE_ENTITY, page))
        }
        Checked::Locked => Err(PortalError::Locked),
    }
}

fn check_code(
    conn: &mut DbConn,
    session: &Session,
    code: &str,
    now: DateTime<Utc>,
) -> QueryResult<Checked> {
    let email = session.email.as_str();
    let notice = session.notice_id.as_deref();
    let account = accounts::ensure(conn, email, now)?;
    if account.locked(now) {
        return Ok(Checked::Locked);
    }
    // The phone's clock is the real one, whatever SCHOOLSIGNAL_NOW says.
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let step = account.totp_secret.as_deref().and_then(|secret| {
        let last = account.totp_last_step.max(0) as u64;
        totp::verify(secret, code, unix, last)
    });
    let Some(step) = step else {
        let locked = accounts::count_failure(conn, &account, now)?;
        audit::record(
            conn,
            email,
            action::FAILED_SIGN_IN,
            notice,
            "wrong_code",
            now,
        )?;
        if locked {
            audit::record(conn, email, action::LOCKOUT, notice, "codes", now)?;
            return Ok(Checked::Locked);
        }
        let account = accounts::ensure(conn, email, now)?;
        return Ok(Checked::Wrong(account));
    };
    if !accounts::accept_code(conn, &account, step, now)? {
        // Another request used this step first: a code verifies once.
        audit::record(
            conn,
            email,
            action::FAILED_SIGN_IN,
            notice,
            "code_used",
            now,
        )?;
        let account = accounts::ensure(conn, email, now)?;
        return Ok(Checked::Wrong(account));
    }
    session::end(conn, &session.id_hash)?;
    let cookie = session::start(conn, email, notice, now)?;
    session::mark_verified(conn, &session::hash(&cookie), now)?;
    audit::record(conn, email, action::SIGN_IN, notice, "second_factor", now)?;
    Ok(Checked::Verified(cookie))
}

pub async fn logout(
    portal: web::Data<Portal>,
    req: HttpRequest,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PortalError> {
    let Some(session) = portal.session(&req).await? else {
        return Ok(see_other("/"));
    };
    portal.csrf(&req, &session, &form.csrf)?;
    let now = portal.clock.now();
    portal
        .db(move |conn| {
            session::end(conn, &session.id_hash)?;
            audit::record(conn, &session.email, action::LOGOUT, None, "ok", now)?;
            Ok(())
        })
        .await?;
    let locale = super::locale(&req);
    let page = Pages::get().message(
        locale,
        i18n::t(locale, "title_logged_out"),
        i18n::t(locale, "logged_out"),
    );
    let mut response = html(StatusCode::OK, page);
    let _ = response.add_cookie(&portal.cookies.removal());
    Ok(response)
}
