//! Sign-in links by email: sent at once, not through the queue. Someone is waiting
//! for the email, and can ask again if it does not come.

use super::compose;
pub use super::compose::SignInEmail;
use super::kinds::Failure;
use super::templates::Templates;
use super::transport::Mailer;
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
        let message_id = format!("<{}@{}>", uuid::Uuid::new_v4(), self.from.email.domain());
        let message =
            compose::sign_in_email(&self.templates, &self.from, &email, &link, &message_id, now)?;
        self.mailer
            .send(message)
            .await
            .map_err(|e| e.failure().clone())
    }
}
