//! Sign-in links by email, and the notice that an account's second factor was set
//! up or reset: sent at once, not through the queue. Someone is waiting for a link,
//! and can ask again if it does not come; a second-factor notice goes out as the
//! change happens, and a failure to send it is logged.

use super::compose;
pub use super::compose::{FactorChange, FactorEmail, SignInEmail};
use super::kinds::Failure;
use super::templates::Templates;
use super::transport::Mailer;
use crate::config::{MailConfig, OrgConfig};
use chrono::{DateTime, Utc};
use lettre::message::Mailbox;
use std::sync::Arc;

pub struct SignInMail {
    pub mailer: Arc<Mailer>,
    pub templates: Arc<Templates>,
    pub from: Mailbox,
    pub public_url: String,
}

impl SignInMail {
    /// The templates and a transport of their own, for a one-off command: one SMTP
    /// connection, or `.eml` files when no `SMTP_URL` is set. Call inside a tokio
    /// runtime.
    pub fn open(
        config: &MailConfig,
        public_url: &str,
        org: &OrgConfig,
    ) -> Result<SignInMail, Box<dyn std::error::Error + Send + Sync>> {
        let templates = Templates::load(config.templates.as_deref(), org)?;
        let mailer = Mailer::open(config, 1)?;
        Ok(SignInMail {
            mailer: Arc::new(mailer),
            templates: Arc::new(templates),
            from: config.from.clone(),
            public_url: public_url.to_string(),
        })
    }

    /// Sends the link; a failure is only logged, by its kind, since the user can ask
    /// again.
    pub async fn send(&self, email: SignInEmail<'_>, now: DateTime<Utc>) {
        match self.try_send(email, now).await {
            Ok(()) => tracing::info!("sign-in link sent"),
            Err(error) => {
                tracing::warn!(%error, "sign-in link not sent; the user can ask again")
            }
        }
    }

    async fn try_send(&self, email: SignInEmail<'_>, now: DateTime<Utc>) -> Result<(), Failure> {
        let link = compose::link(&self.public_url, Some(email.token));
        let message_id = self.message_id();
        let message =
            compose::sign_in_email(&self.templates, &self.from, &email, &link, &message_id, now)?;
        self.deliver(message).await
    }

    /// Tells an account's address that its second factor was set up or reset. The
    /// outcome is logged by its kind only (never the address); returns whether the
    /// email left.
    pub async fn send_factor_notice(&self, email: FactorEmail<'_>, now: DateTime<Utc>) -> bool {
        let change = email.change;
        let message_id = self.message_id();
        let sent =
            match compose::factor_email(&self.templates, &self.from, &email, &message_id, now) {
                Ok(message) => self.deliver(message).await,
                Err(failure) => Err(failure),
            };
        match &sent {
            Ok(()) => tracing::info!(?change, "second-factor notice sent"),
            Err(error) => tracing::error!(%error, ?change, "second-factor notice not sent"),
        }
        sent.is_ok()
    }

    fn message_id(&self) -> String {
        format!("<{}@{}>", uuid::Uuid::new_v4(), self.from.email.domain())
    }

    async fn deliver(&self, message: lettre::Message) -> Result<(), Failure> {
        self.mailer
            .send(message)
            .await
            .map_err(|e| e.failure().clone())
    }
}
