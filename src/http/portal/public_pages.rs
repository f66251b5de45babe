//! The pages a Dutch public-sector service publishes for anyone, signed in or not:
//! the accessibility statement (`/toegankelijkheid`, in English `/accessibility`),
//! the privacy statement (`/privacy`, `/en/privacy`), and `security.txt` (RFC
//! 9116). Built from the operator's settings ([`super::Site`]).

use super::i18n::{self, Locale};
use super::pages::html;
use super::Portal;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse};
use chrono::{Duration, SecondsFormat};
use minijinja::context;

/// How far ahead `security.txt` expires. RFC 9116 wants less than a year; the file
/// is made anew for each request, so it never goes stale.
const SECURITY_TXT_VALID_DAYS: i64 = 180;

fn statement(portal: &Portal, locale: Locale, page: &str) -> HttpResponse {
    let title = i18n::t(locale, &format!("title_{page}"));
    let ctx = context! { title, signed_in => false };
    let name = format!("{}/{page}.html", locale.as_str());
    html(StatusCode::OK, portal.pages.render(&name, locale, ctx))
}

pub async fn accessibility_nl(portal: web::Data<Portal>) -> HttpResponse {
    statement(&portal, Locale::Nl, "accessibility")
}

pub async fn accessibility_en(portal: web::Data<Portal>) -> HttpResponse {
    statement(&portal, Locale::En, "accessibility")
}

pub async fn privacy_nl(portal: web::Data<Portal>) -> HttpResponse {
    statement(&portal, Locale::Nl, "privacy")
}

pub async fn privacy_en(portal: web::Data<Portal>) -> HttpResponse {
    statement(&portal, Locale::En, "privacy")
}

/// RFC 9116: whom to tell about a vulnerability, until when this holds, and where
/// the file lives.
pub async fn security_txt(portal: web::Data<Portal>) -> HttpResponse {
    let expires = portal.clock.now() + Duration::days(SECURITY_TXT_VALID_DAYS);
    let body = format!(
        "Contact: {}\nExpires: {}\nPreferred-Languages: nl, en\nCanonical: {}/.well-known/security.txt\n",
        portal.pages.security_contact(),
        expires.to_rfc3339_opts(SecondsFormat::Secs, true),
        portal.public_url,
    );
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/plain; charset=utf-8"))
        .body(body)
}
