//! Turns a rendered template into an email: multipart/alternative, an explicit
//! Message-ID, and headers that mark it as automatic.

use super::kinds::Failure;
use super::queue::Claimed;
use super::templates::{MailContext, Rendered, TemplateError, Templates};
use crate::locale::Locale;
use chrono::{DateTime, Duration, Utc};
use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::Message;

/// `Auto-Submitted: auto-generated` (RFC 3834): tells mail servers and clients not
/// to answer it automatically.
#[derive(Debug, Clone)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".into())
    }
}

/// Why an email could not be built. Both are permanent: a retry builds the same.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the recipient address is not valid")]
    Address,
    #[error("the email could not be assembled")]
    Assemble,
}

impl BuildError {
    pub fn kind(&self) -> &'static str {
        match self {
            BuildError::Address => "address",
            BuildError::Assemble => "assemble",
        }
    }
}

pub fn build(
    from: &Mailbox,
    to_name: &str,
    to_email: &str,
    message_id: &str,
    rendered: Rendered,
) -> Result<Message, BuildError> {
    let address = to_email.parse().map_err(|_| BuildError::Address)?;
    let name = (!to_name.trim().is_empty()).then(|| to_name.to_string());
    Message::builder()
        .from(from.clone())
        .to(Mailbox::new(name, address))
        .subject(rendered.subject)
        .message_id(Some(message_id.to_string()))
        .header(AutoSubmitted)
        .multipart(MultiPart::alternative_plain_html(
            rendered.text,
            rendered.html,
        ))
        .map_err(|_| BuildError::Assemble)
}

/// The email for a claimed delivery, in the locale of its school.
pub fn queued_email(
    templates: &Templates,
    from: &Mailbox,
    email: &Claimed,
    link: &str,
    open_by: DateTime<Utc>,
) -> Result<Message, Failure> {
    let locale = Locale::parse(&email.locale).unwrap_or_default();
    let context = MailContext {
        school_name: &email.school_name,
        recipient_name: &email.to_name,
        link,
        open_by,
        valid_minutes: 0,
    };
    let to = (email.to_name.as_str(), email.to_email.as_str());
    render_and_build(
        templates,
        from,
        (email.kind, locale),
        &context,
        to,
        &email.message_id,
    )
}

/// One sign-in link for one address.
pub struct SignInEmail<'a> {
    pub to: &'a str,
    pub name: &'a str,
    pub locale: Locale,
    pub token: &'a str,
    pub valid_for: Duration,
}

/// The email with a sign-in link for `email`, valid for its `valid_for`.
pub fn sign_in_email(
    templates: &Templates,
    from: &Mailbox,
    email: &SignInEmail,
    link: &str,
    message_id: &str,
    now: DateTime<Utc>,
) -> Result<Message, Failure> {
    let valid_minutes = email.valid_for.num_minutes() as u32;
    let context =
        MailContext::about_account(email.name, link, now + email.valid_for, valid_minutes);
    let kind = (super::kinds::Kind::SignIn, email.locale);
    render_and_build(
        templates,
        from,
        kind,
        &context,
        (email.name, email.to),
        message_id,
    )
}

/// What happened to an account's second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorChange {
    /// An authenticator app was set up (a first code was accepted).
    Enrolled,
    /// An operator reset it (`coordinators reset-totp`).
    Reset,
}

/// The email that tells an account's address its second factor changed.
pub struct FactorEmail<'a> {
    pub to: &'a str,
    pub name: &'a str,
    pub locale: Locale,
    pub change: FactorChange,
}

/// The email for `email`. It carries no link, nor any URL: the template has none to
/// show, and its readers are told to call the operator.
pub fn factor_email(
    templates: &Templates,
    from: &Mailbox,
    email: &FactorEmail,
    message_id: &str,
    now: DateTime<Utc>,
) -> Result<Message, Failure> {
    let context = MailContext::about_account(email.name, "", now, 0);
    let kind = match email.change {
        FactorChange::Enrolled => super::kinds::Kind::FactorEnrolled,
        FactorChange::Reset => super::kinds::Kind::FactorReset,
    };
    let to = (email.name, email.to);
    render_and_build(
        templates,
        from,
        (kind, email.locale),
        &context,
        to,
        message_id,
    )
}

/// The link in an email: the portal's page for `token`, or its home page.
pub fn link(public_url: &str, token: Option<&str>) -> String {
    match token {
        Some(token) => format!("{public_url}/n/{token}"),
        None => format!("{public_url}/"),
    }
}

/// Renders the template of `kind` for `context` and builds the email to `to` (name,
/// address). Either failure keeps only its kind: a template's or the builder's
/// error text can quote a value or the address.
fn render_and_build(
    templates: &Templates,
    from: &Mailbox,
    (kind, locale): (super::kinds::Kind, Locale),
    context: &MailContext,
    (to_name, to_email): (&str, &str),
    message_id: &str,
) -> Result<Message, Failure> {
    let rendered = templates
        .render(kind, locale, context)
        .map_err(|e| Failure::Template(template_error_kind(&e)))?;
    build(from, to_name, to_email, message_id, rendered).map_err(|e| Failure::Message(e.kind()))
}

/// The kind of a template error, without its text (which could quote a value).
fn template_error_kind(e: &TemplateError) -> &'static str {
    match e {
        TemplateError::Missing { .. } => "missing",
        TemplateError::Render { .. } => "render",
        TemplateError::BadSubject { .. } => "subject",
        _ => "other",
    }
}
