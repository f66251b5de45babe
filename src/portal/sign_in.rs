//! Signing in: the link from the email, then the second factor.

use super::accounts::{self, Account};
use super::audit::{self, action};
use super::pages::{html, Pages};
use super::session::{self, Session};
use super::{see_other, totp, CsrfForm, Portal, PortalError};
use crate::db::schema::{access_tokens, notices};
use crate::db::{ts, write_tx, DbConn};
use crate::delivery::queue::token_hash;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use minijinja::context;

/// GET shows a button and changes nothing: mail scanners follow links.
pub async fn link_page(portal: web::Data<Portal>, token: web::Path<String>) -> HttpResponse {
    let csrf = portal.link_csrf(&token);
    let page = Pages::get().render(
        "link.html",
        context! { title => "Vertrouwelijk bericht", token => token.as_str(), csrf, signed_in => false },
    );
    html(StatusCode::OK, page)
}

enum Redeemed {
    Session(String),
    Refused,
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
    portal.same_origin(&req)?;
    if !session::same_secret(&portal.link_csrf(&token), &form.csrf) {
        return Err(PortalError::Forbidden);
    }
    if portal.limiter.blocked(&req) {
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
        Redeemed::Refused => {
            if portal.limiter.fail(&req) {
                let (ip, now) = (super::client_ip(&req), portal.clock.now());
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
        return Ok(Redeemed::Refused);
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
    diesel::update(access_tokens::table.find(hash))
        .set(access_tokens::used_at.eq(Some(ts(now))))
        .execute(conn)?;
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
        code_page(&portal, &session, account, None).await?,
    ))
}

async fn code_page(
    portal: &Portal,
    session: &Session,
    account: Account,
    error: Option<&str>,
) -> Result<String, PortalError> {
    let csrf = session.csrf_token.as_str();
    if account.totp_enrolled_at.is_some() {
        let ctx = context! { title => "Inloggen", csrf, error, signed_in => false };
        return Ok(Pages::get().render("code.html", ctx));
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
    let ctx =
        context! { title => "Tweede stap instellen", qr, secret, csrf, error, signed_in => false };
    Ok(Pages::get().render("enrol.html", ctx))
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
            let error = Some(
                "Deze code klopt niet. Probeer het opnieuw met de code die nu in de app staat.",
            );
            let page = code_page(&portal, &session, account, error).await?;
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
    accounts::accept_code(conn, &account, step, now)?;
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
    let page = Pages::get().message("Uitgelogd", "U bent uitgelogd. U kunt dit venster sluiten.");
    let mut response = html(StatusCode::OK, page);
    let _ = response.add_cookie(&portal.cookies.removal());
    Ok(response)
}
