//! Signing in: the link from the email, then the second factor. What each step
//! does to the database is [`access::sign_in`]'s.

use super::i18n::{self, Locale};
use super::pages::{html, Pages};
use super::{see_other, CsrfForm, Portal, PortalError};
use crate::access::sessions::{self as session, Session};
use crate::access::sign_in::{self as access, Checked, FactorNotice, Prompt, Redeemed};
use crate::access::{links, locales, totp};
use crate::delivery::sign_in::{FactorChange, FactorEmail, SignInMail};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use minijinja::context;
use std::sync::Arc;

/// GET shows a button and changes nothing: mail scanners follow links. The page is
/// in the locale of the link's school.
pub async fn link_page(
    portal: web::Data<Portal>,
    req: HttpRequest,
    token: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let locale = link_locale(&portal, &req, &token).await?;
    let csrf = portal.link_csrf(&token);
    let page = portal.pages.render(
        "link.html",
        locale,
        context! { title => i18n::t(locale, "title_link"), token => token.as_str(), csrf, signed_in => false },
    );
    Ok(html(StatusCode::OK, page))
}

/// The locale of a link's school, also for this request's error pages; the
/// browser's for an unknown link. A token of another form than the ones issued is
/// not found: it is never looked up, nor rendered into the page's form.
async fn link_locale(
    portal: &Portal,
    req: &HttpRequest,
    token: &str,
) -> Result<Locale, PortalError> {
    if !links::is_well_formed(token) {
        return Err(PortalError::NotFound);
    }
    let token = token.to_string();
    match portal
        .db(move |conn| locales::of_link(conn, &token))
        .await?
    {
        Some(locale) => {
            super::set_locale(req, locale);
            Ok(locale)
        }
        None => Ok(super::locale(req)),
    }
}

/// POST redeems the link, once: it starts a session that still needs the second
/// factor, bound to the link's address and notice. Unknown links count against the
/// client; the one that locks it out is audited. A redemption holds a place under
/// the client's limit from before the lookup until its outcome is known, so that
/// concurrent guesses cannot all pass one check.
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
    let Some(attempt) = portal.limiter.try_begin(&client) else {
        return Err(PortalError::Locked);
    };
    let (token, now) = (token.into_inner(), portal.clock.now());
    let redeemed = portal
        .db(move |conn| access::redeem(conn, &token, now))
        .await?;
    match redeemed {
        Redeemed::Session(cookie) => Ok(HttpResponse::SeeOther()
            .cookie(portal.cookies.cookie(cookie))
            .insert_header(("Location", "/totp"))
            .finish()),
        Redeemed::Locked => {
            portal.metrics.portal_action("failed_sign_in");
            Err(PortalError::Locked)
        }
        Redeemed::Refused => {
            portal.metrics.portal_action("failed_sign_in");
            Err(PortalError::BadLink)
        }
        Redeemed::Unknown => {
            portal.metrics.portal_action("failed_sign_in");
            if attempt.fail() {
                portal.metrics.portal_action("lockout");
                let now = portal.clock.now();
                portal
                    .db(move |conn| access::client_locked_out(conn, &client, now))
                    .await?;
            }
            Err(PortalError::BadLink)
        }
    }
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
    let prompt = portal
        .db({
            let keys = portal.keys.clone();
            move |conn| access::prompt(conn, &keys, &email, now)
        })
        .await?
        .ok_or(PortalError::Locked)?;
    let page = code_page(&portal.pages, super::locale(&req), &session, prompt, None);
    Ok(html(StatusCode::OK, page))
}

/// The page that asks for a code, or for enrolment with its QR code first. On the
/// phone that has the authenticator app, the `otpauth://` link hands it the key.
fn code_page(
    pages: &Pages,
    locale: Locale,
    session: &Session,
    prompt: Prompt,
    error: Option<&str>,
) -> String {
    let csrf = session.csrf_token.as_str();
    let error = error.map(|key| i18n::t(locale, key));
    let Prompt::Enrol { secret } = prompt else {
        let ctx =
            context! { title => i18n::t(locale, "title_code"), csrf, error, signed_in => false };
        return pages.render("code.html", locale, ctx);
    };
    let qr = totp::qr_svg(&secret, &session.email).unwrap_or_default();
    let otpauth = totp::url(&secret, &session.email).unwrap_or_default();
    // Groups of four are easier to type; apps ignore the spaces. Each group is kept
    // whole on a narrow screen.
    let secret: Vec<String> = secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    let title = i18n::t(locale, "title_enrol");
    let ctx = context! { title, qr, otpauth, secret, csrf, error, signed_in => false };
    pages.render("enrol.html", locale, ctx)
}

#[derive(Debug, serde::Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

/// Checks the code. A right one verifies the session under a new id, and leads to
/// the notice of its link (or the list); a wrong one asks again.
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
    let (s, code, keys) = (session.clone(), form.into_inner().code, portal.keys.clone());
    let checked = portal
        .db(move |conn| access::check_code(conn, &keys, &s, &code, now))
        .await?;
    match checked {
        Checked::Verified {
            cookie,
            enrolled,
            operator,
        } => {
            portal.metrics.portal_action("sign_in");
            if let (Some(notice), Some(mail)) = (enrolled, portal.sign_in_mail.clone()) {
                tokio::spawn(tell_enrolled(mail, notice, now));
            }
            let target = match &session.notice_id {
                Some(id) => format!("/notices/{id}"),
                None if operator => "/operator".to_string(),
                None => "/notices".to_string(),
            };
            Ok(HttpResponse::SeeOther()
                .cookie(portal.cookies.cookie(cookie))
                .insert_header(("Location", target))
                .finish())
        }
        Checked::Wrong(prompt) => {
            portal.metrics.portal_action("failed_sign_in");
            let locale = super::locale(&req);
            let page = code_page(&portal.pages, locale, &session, prompt, Some("wrong_code"));
            Ok(html(StatusCode::UNPROCESSABLE_ENTITY, page))
        }
        Checked::Locked { now } => {
            portal.metrics.portal_action("failed_sign_in");
            if now {
                portal.metrics.portal_action("lockout");
            }
            Err(PortalError::Locked)
        }
    }
}

/// Tells the account's address that a second factor was set up, in the background
/// like a sign-in link: whoever redeemed the link enrolled, and the address may not
/// have been them.
async fn tell_enrolled(mail: Arc<SignInMail>, notice: FactorNotice, now: DateTime<Utc>) {
    let email = FactorEmail {
        to: &notice.email,
        name: &notice.name,
        locale: notice.locale,
        change: FactorChange::Enrolled,
    };
    mail.send_factor_notice(email, now).await;
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
        .db(move |conn| access::sign_out(conn, &session, now))
        .await?;
    let locale = super::locale(&req);
    let page = portal.pages.message(
        locale,
        i18n::t(locale, "title_logged_out"),
        i18n::t(locale, "logged_out"),
        None,
    );
    let mut response = html(StatusCode::OK, page);
    let _ = response.add_cookie(&portal.cookies.removal());
    Ok(response)
}
