//! "Send me a new link": a sign-in link by email, valid for 15 minutes, to the list
//! of the address's notices. The answer is the same whether or not the address is
//! known, and requests are limited per client and per address.

use super::i18n;
use super::pages::{html, Pages};
use super::{Portal, PortalError};
use crate::access::sessions as session;
use crate::access::sign_in::{self as access, SignInLink, LINK_VALID};
use crate::delivery::kinds::Kind;
use crate::delivery::templates::{MailContext, Templates};
use crate::delivery::transport::Mailer;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use lettre::message::Mailbox;
use minijinja::context;
use std::sync::Arc;

/// How sign-in emails are sent: straight away, not through the outbox. Someone is
/// waiting for it, and can ask again if it does not come.
pub struct SignInMail {
    pub mailer: Arc<Mailer>,
    pub templates: Arc<Templates>,
    pub from: Mailbox,
    pub public_url: String,
}

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
        Pages::get().render("login.html", locale, ctx),
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
    let client = portal.client(&req);
    if portal.requests.blocked(&client) {
        return Err(PortalError::Locked);
    }
    portal.requests.fail(&client);
    let email = form.email.trim().to_lowercase();
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

/// Sends the link; a failure is only logged, since the user can ask again.
async fn send(mail: Arc<SignInMail>, email: String, link: SignInLink, now: DateTime<Utc>) {
    let SignInLink {
        token,
        name,
        locale,
    } = link;
    let link = format!("{}/n/{token}", mail.public_url);
    let context = MailContext {
        school_name: "",
        recipient_name: &name,
        link: &link,
        open_by: now + LINK_VALID,
        valid_minutes: LINK_VALID.num_minutes() as u32,
    };
    let message_id = format!("<{}@{}>", uuid::Uuid::new_v4(), mail.from.email.domain());
    let built = mail
        .templates
        .render(Kind::SignIn, locale, &context)
        .map_err(|_| "template".to_string())
        .and_then(|r| {
            // The builder's error can quote the address: only say which step failed.
            crate::delivery::compose::build(&mail.from, &name, &email, &message_id, r)
                .map_err(|_| "message".to_string())
        });
    let outcome = match built {
        Ok(message) => mail
            .mailer
            .send(message)
            .await
            .map_err(|e| e.failure().to_string()),
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => tracing::info!("sign-in link sent"),
        Err(error) => tracing::warn!(%error, "sign-in link not sent; the user can ask again"),
    }
}
