//! How emails leave: a pooled SMTP transport, or `.eml` files when no `SMTP_URL` is
//! set, and how a failure is classified.

use crate::config::ConfigError;
use lettre::address::Envelope;
use lettre::transport::smtp::{PoolConfig, SMTP_PORT};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::Path;
use std::time::Duration;

pub enum Mailer {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(AsyncFileTransport<Tokio1Executor>),
}

/// Why a send failed. The text is a reply code or a category, never the server's
/// own words, which may echo an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// A 4xx reply, a timeout or a broken connection: worth another try.
    Transient(String),
    /// A 5xx reply: another try would get the same answer.
    Permanent(String),
}

impl Mailer {
    /// A pooled SMTP transport for `url` (see [`lettre_url`]).
    pub fn smtp(url: &str, timeout: Duration, pool_size: u32) -> Result<Mailer, ConfigError> {
        let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(&lettre_url(url)?)
            .map_err(|_| bad_url("cannot be used for SMTP"))?;
        let pool = PoolConfig::new()
            .max_size(pool_size)
            .idle_timeout(Duration::from_secs(60));
        Ok(Mailer::Smtp(
            builder.timeout(Some(timeout)).pool_config(pool).build(),
        ))
    }

    /// Writes each email as `<message-id>.eml` in `dir`, for development.
    pub fn files(dir: &Path) -> Result<Mailer, ConfigError> {
        std::fs::create_dir_all(dir).map_err(|e| ConfigError {
            var: "SCHOOLSIGNAL_MAIL_DIR",
            message: format!("cannot create the folder: {}", e.kind()),
        })?;
        Ok(Mailer::Files(AsyncFileTransport::new(dir)))
    }

    pub async fn send(&self, message: Message) -> Result<(), SendError> {
        match self {
            Mailer::Smtp(smtp) => smtp.send(message).await.map(drop).map_err(classify),
            Mailer::Files(files) => files
                .send(message)
                .await
                .map(drop)
                .map_err(|e| SendError::Transient(format!("file: {}", io_kind(&e)))),
        }
    }

    /// Sends a message to an explicit envelope (for tests and the benchmark).
    pub async fn send_raw(&self, envelope: &Envelope, raw: &[u8]) -> Result<(), SendError> {
        match self {
            Mailer::Smtp(smtp) => smtp
                .send_raw(envelope, raw)
                .await
                .map(drop)
                .map_err(classify),
            Mailer::Files(files) => files
                .send_raw(envelope, raw)
                .await
                .map(drop)
                .map_err(|e| SendError::Transient(format!("file: {}", io_kind(&e)))),
        }
    }
}

fn bad_url(why: &str) -> ConfigError {
    ConfigError {
        var: "SMTP_URL",
        message: why.to_string(),
    }
}

/// Checks `SMTP_URL` and turns it into the form lettre reads. `smtp://` uses
/// STARTTLS and insists on it; `?tls=opportunistic` uses it when offered, and
/// `?tls=none` never (a relay on the same host, or a test). `smtps://` is TLS from
/// the first byte. A user and password in the URL are used for AUTH.
pub fn lettre_url(url: &str) -> Result<String, ConfigError> {
    let mut parsed = url::Url::parse(url).map_err(|_| bad_url("is not a valid URL"))?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad_url("must name a host"));
    }
    let tls = parsed
        .query_pairs()
        .find(|(k, _)| k == "tls")
        .map(|(_, v)| v.into_owned());
    match (parsed.scheme(), tls.as_deref()) {
        ("smtp", None) => parsed.set_query(Some("tls=required")),
        ("smtp", Some("none")) => {
            parsed.set_query(None);
            if parsed.port().is_none() {
                let _ = parsed.set_port(Some(SMTP_PORT));
            }
        }
        ("smtp", Some("required" | "opportunistic")) | ("smtps", None) => {}
        _ => {
            return Err(bad_url(
                "must be smtp:// or smtps://, with tls=required, opportunistic or none",
            ))
        }
    }
    Ok(parsed.to_string())
}

fn io_kind(e: &lettre::transport::file::Error) -> String {
    use std::error::Error;
    e.source()
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .map_or_else(|| "error".to_string(), |io| io.kind().to_string())
}

fn classify(e: lettre::transport::smtp::Error) -> SendError {
    let code = e.status().map(|c| c.to_string());
    if e.is_permanent() {
        SendError::Permanent(format!("smtp {}", code.as_deref().unwrap_or("5xx")))
    } else if e.is_transient() {
        SendError::Transient(format!("smtp {}", code.as_deref().unwrap_or("4xx")))
    } else if e.is_timeout() {
        SendError::Transient("timeout".into())
    } else {
        // Connection refused or broken, TLS failure, a reply we could not read: the
        // server may be back in a moment.
        SendError::Transient("connection".into())
    }
}

#[cfg(test)]
mod tests {
    use super::lettre_url;

    #[test]
    fn smtp_insists_on_starttls_unless_told_otherwise() {
        let url = |u: &str| lettre_url(u).unwrap();
        assert_eq!(
            url("smtp://mail.example.org"),
            "smtp://mail.example.org?tls=required"
        );
        assert_eq!(
            url("smtp://u:p@mail.example.org:587?tls=opportunistic"),
            "smtp://u:p@mail.example.org:587?tls=opportunistic"
        );
        assert_eq!(url("smtp://127.0.0.1?tls=none"), "smtp://127.0.0.1:25");
        assert_eq!(
            url("smtp://127.0.0.1:2525?tls=none"),
            "smtp://127.0.0.1:2525"
        );
        assert_eq!(url("smtps://mail.example.org"), "smtps://mail.example.org");
    }

    #[test]
    fn bad_urls_name_the_variable_and_not_the_secret() {
        for bad in [
            "mail.example.org",
            "http://mail.example.org",
            "smtp://mail.example.org?tls=maybe",
            "smtps://mail.example.org?tls=none",
            "smtp://",
        ] {
            let e = lettre_url(bad).unwrap_err();
            assert_eq!(e.var, "SMTP_URL", "{bad}");
        }
        let e = lettre_url("ftp://user:s3cret@host").unwrap_err();
        assert!(!e.to_string().contains("s3cret"));
    }
}
