//! "Send me a new link": a sign-in link by email, valid for 15 minutes, to the list
//! of the address's notices. The answer is the same whether or not the address is
//! known, and requests are limited per client and per address.

use super::i18n;
use super::pages::html;
use super::{Portal, PortalError};
use crate::access::sessions as session;
use crate::access::sign_in::{self as access, SignInLink, LINK_VALID};
use crate::delivery::sign_in::{SignInEmail, SignInMail};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use minijinja::context;
use std::sync::Arc;

#[derive(Debug, serde::Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
}

/// Before any school is known, the page is in the browser's preferred language.
fn page(portal: &Portal, req: &HttpRequest, sent: bool) -> HttpResponse {
    let locale = super::locale(req);
    let csrf = portal.link_csrf("login");
    let title = i18n::t(locale, "title_login");
    let ctx = context! { title, csrf, sent, signed_in => false };
    html(
        StatusCode::OK,
        portal.pages.render("login.html", locale, ctx),
    )
}

pub async fn form(portal: web::Data<Portal>, req: HttpRequest) -> HttpResponse {
    page(&portal, &req, false)
}

pub async fn request(
    portal: web::Data<Portal>,
    req: HttpRequest,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, PortalError> {
    portal.same_origin(&req)?;
    if !session::same_secret(&portal.link_csrf("login"), &form.csrf) {
        return Err(PortalError::Forbidden);
    }
    // Before any count or query: an address no school could have (a NUL in it once
    // failed PostgreSQL's query and looked like an outage) is a form filled in wrong.
    let email = form.email.trim().to_lowercase();
    if !crate::registry::schools::is_coordinator_address(&email) {
        return Err(PortalError::Invalid);
    }
    // Every request counts, checked and counted in one step.
    let client = portal.client(&req);
    let Some(attempt) = portal.requests.try_begin(&client) else {
        return Err(PortalError::Locked);
    };
    attempt.fail();
    let now = portal.clock.now();
    let address = email.clone();
    let issued = portal
        .db(move |conn| access::request_link(conn, &address, now))
        .await?;
    if let (Some(link), Some(mail)) = (issued, portal.sign_in_mail.clone()) {
        tokio::spawn(send(mail, email, link, now));
    }
    Ok(page(&portal, &req, true))
}

/// Sends the link in the background: the answer does not wait for the mail server.
async fn send(mail: Arc<SignInMail>, to: String, link: SignInLink, now: DateTime<Utc>) {
    let email = SignInEmail {
        to: &to,
        name: &link.name,
        locale: link.locale,
        token: &link.token,
        valid_for: LINK_VALID,
    };
    mail.send(email, now).await;
}
