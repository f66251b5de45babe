//! Turns a rendered template into an email: multipart/alternative, an explicit
//! Message-ID, and headers that mark it as automatic.

use super::templates::Rendered;
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
