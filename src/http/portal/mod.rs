//! The coordinator portal: server-rendered pages, no JavaScript. The email's link
//! opens a page (GET, so mail scanners use nothing up); a POST redeems it and starts
//! a session, the second factor (TOTP) verifies it, and the coordinator then sees
//! and acts on the notices of their own school.

mod confirm;
mod cookies;
pub mod i18n;
mod limiter;
pub mod new_link;
mod notice_actions;
mod notice_pages;
mod operator;
mod pages;
mod public_pages;
mod sign_in;

use crate::access::locales;
use crate::access::sessions::{self as session, Session};
use crate::clock::SharedClock;
use crate::db::{self, DbConn, DbError, Pool};
use crate::http::methods::Endpoint;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{
    middleware::DefaultHeaders, web, HttpMessage, HttpRequest, HttpResponse, ResponseError,
};
use cookies::CookiePolicy;
use i18n::Locale;
use limiter::Limiter;

use crate::config::{PortalConfig, TrustedProxies};
use crate::notices::store::Desk;
use crate::outbox::Outbox;
use crate::sealing::Keyring;
pub use limiter::client_ip;
pub use pages::{Pages, Site};
use std::sync::Arc;

/// The most a portal form may hold. A 4,000-character text in non-ASCII letters
/// percent-encodes to up to 36 KB, beyond actix's default of 16 KiB.
pub const FORM_LIMIT: usize = 64 * 1024;

/// What every portal handler shares.
pub struct Portal {
    pub pool: Pool,
    pub clock: SharedClock,
    pub cookies: CookiePolicy,
    /// `scheme://host[:port]` of the public URL: a form POST from any other origin is
    /// refused.
    pub origin: String,
    /// The public URL as configured, for `security.txt`'s `Canonical:`.
    pub public_url: String,
    /// Signs the form on the link page, which comes before any session.
    form_key: Vec<u8>,
    /// Failed link redemptions per client.
    limiter: Limiter,
    /// New-link requests per client.
    requests: Limiter,
    /// Unset in tests that need no sign-in emails.
    pub sign_in_mail: Option<std::sync::Arc<crate::delivery::sign_in::SignInMail>>,
    /// Where signals to Veilig Thuis are queued.
    pub outbox: Outbox,
    /// Proxies whose `X-Forwarded-For` names the client; none by default.
    pub trusted_proxies: TrustedProxies,
    /// Opens and seals the child's data and the TOTP secrets.
    pub keys: Arc<Keyring>,
    /// `SCHOOLSIGNAL_RETENTION_DAYS=0`: closing a notice erases its personal data.
    pub erase_on_close: bool,
    /// Where portal actions are counted; the service's own once wired.
    pub metrics: std::sync::Arc<crate::telemetry::Metrics>,
    /// The operator dashboard's last report.
    report_cache: operator::ReportCache,
    /// The templates, and who runs the service, which every page names.
    pub pages: Pages,
}

impl Portal {
    /// The portal of `config`'s public address. `secret` is a server secret; the key
    /// for forms is derived from it.
    pub fn new(
        config: PortalConfig,
        secret: &[u8],
        pool: Pool,
        clock: SharedClock,
        outbox: Outbox,
        (keys, erase_on_close): (Arc<Keyring>, bool),
        site: Site,
    ) -> Self {
        let public_url = config.public_url.as_str();
        let origin = url::Url::parse(public_url)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default();
        let form_key = hmac_sha256(secret, b"schoolsignal portal forms");
        Portal {
            pool,
            clock,
            cookies: CookiePolicy::for_public_url(public_url),
            origin,
            public_url: public_url.to_string(),
            form_key,
            limiter: Limiter::new(10, std::time::Duration::from_secs(15 * 60)),
            requests: Limiter::new(5, std::time::Duration::from_secs(15 * 60)),
            sign_in_mail: None,
            outbox,
            trusted_proxies: config.trusted_proxies,
            keys,
            erase_on_close,
            metrics: Default::default(),
            report_cache: Default::default(),
            pages: Pages::new(site),
        }
    }

    /// What the store needs to act for `email` now.
    fn desk(&self, email: String) -> Desk {
        Desk {
            email,
            now: self.clock.now(),
            keys: self.keys.clone(),
            erase_on_close: self.erase_on_close,
        }
    }

    /// The client address the limiters count by.
    fn client(&self, req: &HttpRequest) -> String {
        client_ip(req, &self.trusted_proxies)
    }

    /// The CSRF token of a link page: tied to the link, checkable without a session.
    fn link_csrf(&self, token: &str) -> String {
        hex::encode(hmac_sha256(&self.form_key, token.as_bytes()))
    }

    /// Runs one domain call on the blocking pool; its database errors become
    /// [`PortalError::Db`].
    async fn db<T, E, F>(&self, f: F) -> Result<T, PortalError>
    where
        F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
        E: Into<DbError>,
        T: Send + 'static,
    {
        Ok(db::run(&self.pool, move |conn| f(conn).map_err(Into::into)).await?)
    }

    /// The session of this request, if any and still live. Its pages are in the
    /// locale of the school its link was for.
    async fn session(&self, req: &HttpRequest) -> Result<Option<Session>, PortalError> {
        let Some(cookie) = req.cookie(self.cookies.name()) else {
            return Ok(None);
        };
        let (value, now) = (cookie.value().to_string(), self.clock.now());
        let found = self
            .db(move |conn| locales::of_session(conn, &value, now))
            .await?;
        Ok(found.map(|(session, locale)| {
            set_locale(req, locale);
            session
        }))
    }

    /// A signed-in session with its second factor done, or the page that says so.
    /// An error page after this leads back to the list and offers to sign out.
    async fn verified(&self, req: &HttpRequest) -> Result<Session, PortalError> {
        match self.session(req).await? {
            Some(s) if s.verified() => {
                req.extensions_mut().insert(SignedIn(s.csrf_token.clone()));
                Ok(s)
            }
            _ => Err(PortalError::SignInRequired),
        }
    }

    /// Refuses a form POST from a foreign origin, as defence in depth: the CSRF token
    /// is the real check. Our own pages send `Referrer-Policy: no-referrer`, under
    /// which browsers send `Origin: null` with a same-origin form; they also send
    /// `Sec-Fetch-Site: same-origin` then, so `null` passes only with that. A missing
    /// `Origin` (not a browser's cross-site request) passes.
    fn same_origin(&self, req: &HttpRequest) -> Result<(), PortalError> {
        let headers = req.headers();
        match headers.get(header::ORIGIN).map(|o| o.as_bytes()) {
            None => Ok(()),
            Some(b"null")
                if headers
                    .get("sec-fetch-site")
                    .is_some_and(|v| v.as_bytes() == b"same-origin") =>
            {
                Ok(())
            }
            Some(origin) if origin == self.origin.as_bytes() => Ok(()),
            Some(_) => Err(PortalError::Forbidden),
        }
    }

    /// Checks a form's CSRF token against the session's.
    fn csrf(&self, req: &HttpRequest, session: &Session, sent: &str) -> Result<(), PortalError> {
        self.same_origin(req)?;
        if session::same_secret(&session.csrf_token, sent) {
            Ok(())
        } else {
            Err(PortalError::Forbidden)
        }
    }
}

/// Errors at the portal boundary, each a page with a plain message and no detail.
#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    #[error("not found")]
    NotFound,
    #[error("forbidden")]
    Forbidden,
    #[error("the link does not work")]
    BadLink,
    #[error("sign in first")]
    SignInRequired,
    #[error("too many attempts")]
    Locked,
    #[error("the form is not filled in right")]
    Invalid,
    #[error("the notice was withdrawn")]
    Withdrawn,
    #[error("database unavailable: {0}")]
    Db(#[from] DbError),
}

impl ResponseError for PortalError {
    fn status_code(&self) -> StatusCode {
        match self {
            PortalError::NotFound => StatusCode::NOT_FOUND,
            PortalError::Forbidden => StatusCode::FORBIDDEN,
            PortalError::BadLink => StatusCode::GONE,
            PortalError::SignInRequired => StatusCode::UNAUTHORIZED,
            PortalError::Locked => StatusCode::TOO_MANY_REQUESTS,
            PortalError::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
            PortalError::Withdrawn => StatusCode::CONFLICT,
            PortalError::Db(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Plain text; [`localize_errors`] makes it the page in the request's locale.
    fn error_response(&self) -> HttpResponse {
        if let PortalError::Db(e) = self {
            tracing::warn!(error = %e, "portal request failed on the database");
        }
        HttpResponse::build(self.status_code()).body(i18n::t(Locale::Nl, self.key()))
    }
}

impl PortalError {
    fn key(&self) -> &'static str {
        match self {
            PortalError::NotFound => "error_not_found",
            PortalError::Forbidden => "error_forbidden",
            PortalError::BadLink => "error_bad_link",
            PortalError::SignInRequired => "error_sign_in",
            PortalError::Locked => "error_locked",
            PortalError::Invalid => "error_invalid",
            PortalError::Withdrawn => "error_withdrawn",
            PortalError::Db(_) => "error_db",
        }
    }

    /// The page for this error: a plain message and no detail. `signed_in` is the
    /// session's CSRF token, if the request had a verified one.
    fn page(&self, pages: &Pages, locale: Locale, signed_in: Option<&str>) -> HttpResponse {
        let key = self.key();
        let title = i18n::t(locale, &format!("{key}_title"));
        let text = i18n::t(locale, key);
        let body = pages.message(locale, title, text, signed_in);
        pages::html(self.status_code(), body)
    }
}

/// A request whose session was verified, with its CSRF token (for the sign-out form).
#[derive(Debug, Clone)]
struct SignedIn(String);

/// The locale a page is in, once a handler knows the school it is about.
#[derive(Debug, Clone, Copy)]
struct PageLocale(Locale);

fn set_locale(req: &HttpRequest, locale: Locale) {
    req.extensions_mut().insert(PageLocale(locale));
}

/// The locale of this request's page: its school's, else the browser's preference.
fn locale(req: &HttpRequest) -> Locale {
    if let Some(PageLocale(locale)) = req.extensions().get::<PageLocale>() {
        return *locale;
    }
    i18n::from_accept_language(
        req.headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    )
}

/// The security headers every portal response carries.
fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ))
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add((header::CACHE_CONTROL, "no-store"))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    let forms = web::FormConfig::default()
        .limit(FORM_LIMIT)
        .error_handler(|_, _| PortalError::Invalid.into());
    let queries = web::QueryConfig::default().error_handler(|_, _| PortalError::Invalid.into());
    cfg.service(
        web::scope("")
            .app_data(forms)
            .app_data(queries)
            // Inside the headers, so the pages it renders carry them too.
            .wrap_fn(|req, srv| {
                let response = srv.call(req);
                async move { Ok(localize_errors(response.await?)) }
            })
            .wrap(security_headers())
            .service(Endpoint::new("/static/portal.css").get(stylesheet))
            .service(
                Endpoint::new("/n/{token}")
                    .get(sign_in::link_page)
                    .post(sign_in::redeem),
            )
            .service(
                Endpoint::new("/totp")
                    .get(sign_in::second_factor_page)
                    .post(sign_in::second_factor),
            )
            .service(Endpoint::new("/logout").post(sign_in::logout))
            .service(
                Endpoint::new("/login")
                    .get(new_link::form)
                    .post(new_link::request),
            )
            .service(Endpoint::new("/notices").get(notice_pages::list))
            .service(Endpoint::new("/notices/{id}").get(notice_pages::show))
            .service(Endpoint::new("/notices/{id}/acknowledge").post(notice_actions::acknowledge))
            .service(Endpoint::new("/notices/{id}/notes").post(notice_actions::note))
            .service(Endpoint::new("/notices/{id}/close").post(notice_actions::close))
            .service(Endpoint::new("/notices/{id}/signals").post(notice_actions::signal))
            .service(Endpoint::new("/operator").get(operator::dashboard))
            .service(Endpoint::new("/operator/report.csv").get(operator::report_csv))
            .service(Endpoint::new("/toegankelijkheid").get(public_pages::accessibility_nl))
            .service(Endpoint::new("/accessibility").get(public_pages::accessibility_en))
            .service(Endpoint::new("/privacy").get(public_pages::privacy_nl))
            .service(Endpoint::new("/en/privacy").get(public_pages::privacy_en))
            .service(Endpoint::new("/.well-known/security.txt").get(public_pages::security_txt))
            .service(Endpoint::new("/").get(notice_pages::home)),
    );
}

/// Renders an error as a page in the locale the handler chose (or the browser's),
/// with the way back to the list when signed in.
fn localize_errors(response: ServiceResponse) -> ServiceResponse {
    let req = response.request();
    let error = response
        .response()
        .error()
        .and_then(|e| e.as_error::<PortalError>());
    let page = error
        .zip(req.app_data::<web::Data<Portal>>())
        .map(|(e, portal)| {
            let signed_in = req.extensions().get::<SignedIn>().map(|s| s.0.clone());
            e.page(&portal.pages, locale(req), signed_in.as_deref())
        });
    match page {
        Some(page) => response.into_response(page),
        None => response,
    }
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static("text/css")))
        .body(include_str!("portal.css"))
}

/// A form field, from a URL-encoded body.
#[derive(Debug, serde::Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// A notice id from a path, if it has the form issued: any other names no notice,
/// and never reaches a query (a NUL in it once failed PostgreSQL's and looked like
/// an outage).
fn notice_id(raw: &str) -> Result<String, PortalError> {
    if crate::notices::is_well_formed_id(raw) {
        Ok(raw.to_string())
    } else {
        Err(PortalError::NotFound)
    }
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_string()))
        .finish()
}
