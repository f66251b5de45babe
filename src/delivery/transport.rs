//! How emails leave: a pooled SMTP transport, or `.eml` files when no `SMTP_URL` is
//! set, and how a failure is classified.

use super::kinds::Failure;
use crate::config::{ConfigError, MailConfig};
use crate::registry::simulated::{self, Behaviour};
use lettre::address::Envelope;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub enum Mailer {
    /// The transport, and the longest one send may take. lettre's own timeout bounds
    /// only the TCP connect of its async transport, not the replies: a server that
    /// accepts the connection and never answers would hold a send forever.
    Smtp(AsyncSmtpTransport<Tokio1Executor>, Duration),
    /// The folder `.eml` files are written to.
    Files(PathBuf),
}

/// Why a send failed, as a [`Failure`]: a reply code or a category, never the
/// server's own words, which may echo an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// A 4xx reply, a timeout or a broken connection: worth another try.
    Transient(Failure),
    /// A 5xx reply about this recipient or this message: another try would get the
    /// same answer.
    Permanent(Failure),
    /// A 5xx reply about the session, not the email: authentication failed or is
    /// required, TLS is required, the server does not speak our commands. Every
    /// email would get it, and none is at fault: the configuration (or the server)
    /// is. Retried like a transient failure, and logged as an error.
    Session(Failure),
}

impl SendError {
    pub fn failure(&self) -> &Failure {
        match self {
            SendError::Transient(f) | SendError::Permanent(f) | SendError::Session(f) => f,
        }
    }
}

/// 5xx replies that say nothing about the recipient or the message (RFC 5321,
/// RFC 4954, RFC 3207): command syntax or support (500–504), "does not accept
/// mail" (521), authentication or encryption required or failed (530, 534, 535,
/// 538).
const SESSION_CODES: [&str; 10] = [
    "500", "501", "502", "503", "504", "521", "530", "534", "535", "538",
];

/// How an error reply is taken, by its code and whether it is a 5xx.
pub fn classify_code(code: &str, permanent: bool) -> SendError {
    let reply = Failure::Reply(code.to_string());
    if !permanent {
        SendError::Transient(reply)
    } else if SESSION_CODES.contains(&code) {
        SendError::Session(reply)
    } else {
        SendError::Permanent(reply)
    }
}

impl Mailer {
    /// The transport `config` names: SMTP through at most `connections` pooled
    /// connections, or `.eml` files in its folder when no `SMTP_URL` is set.
    pub fn open(config: &MailConfig, connections: u32) -> Result<Mailer, ConfigError> {
        match &config.smtp_url {
            Some(url) => Mailer::smtp(url, config.timeout, connections),
            None => Mailer::files(&config.dir),
        }
    }

    /// A pooled SMTP transport for `url`, as configuration checked it
    /// (`config::mail::smtp_url`).
    pub fn smtp(url: &str, timeout: Duration, pool_size: u32) -> Result<Mailer, ConfigError> {
        let builder =
            AsyncSmtpTransport::<Tokio1Executor>::from_url(url).map_err(|_| ConfigError {
                var: "SMTP_URL",
                message: "cannot be used for SMTP".into(),
            })?;
        let pool = PoolConfig::new()
            .max_size(pool_size)
            .idle_timeout(Duration::from_secs(60));
        Ok(Mailer::Smtp(
            builder.timeout(Some(timeout)).pool_config(pool).build(),
            timeout,
        ))
    }

    /// Writes each email as `<message-id>.eml` in `dir` (the Message-ID without its
    /// angle brackets), for development.
    pub fn files(dir: &Path) -> Result<Mailer, ConfigError> {
        std::fs::create_dir_all(dir).map_err(|e| ConfigError {
            var: "SCHOOLSIGNAL_MAIL_DIR",
            message: format!("cannot create the folder: {}", e.kind()),
        })?;
        Ok(Mailer::Files(dir.to_path_buf()))
    }

    /// Sends a message that is not retried (a sign-in link): its first attempt.
    pub async fn send(&self, message: Message) -> Result<(), SendError> {
        self.send_attempt(message, 1).await
    }

    /// Sends the `attempt`-th try of a message. One to a simulated school's address
    /// never leaves: its local part decides the result ([`simulated_send`]).
    pub async fn send_attempt(&self, message: Message, attempt: i32) -> Result<(), SendError> {
        if let Some(result) = simulated_send(message.envelope(), attempt) {
            return result;
        }
        match self {
            Mailer::Smtp(smtp, timeout) => within(*timeout, smtp.send(message)).await,
            Mailer::Files(dir) => {
                let name = message
                    .headers()
                    .get_raw("Message-ID")
                    .map(file_name)
                    .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
                write_eml(dir, &name, &message.formatted()).await
            }
        }
    }

    /// Sends a message to an explicit envelope (for tests and the benchmark).
    pub async fn send_raw(&self, envelope: &Envelope, raw: &[u8]) -> Result<(), SendError> {
        match self {
            Mailer::Smtp(smtp, timeout) => within(*timeout, smtp.send_raw(envelope, raw)).await,
            Mailer::Files(dir) => write_eml(dir, &uuid::Uuid::new_v4().to_string(), raw).await,
        }
    }
}

/// The result of sending to a simulated address (`registry::simulated`), or `None`
/// when no recipient is one. No connection is made.
fn simulated_send(envelope: &Envelope, attempt: i32) -> Option<Result<(), SendError>> {
    let to = envelope
        .to()
        .iter()
        .find(|a| simulated::is_simulated(a.as_ref()))?;
    let result = match simulated::behaviour(to.as_ref()) {
        Some(Behaviour::Delivered) => Ok(()),
        Some(Behaviour::TemporaryFailure) if attempt <= simulated::TEMPORARY_FAILURES => {
            Err(classify_code("451", false))
        }
        Some(Behaviour::TemporaryFailure) => Ok(()),
        Some(Behaviour::PermanentFailure) | None => Err(classify_code("550", true)),
    };
    tracing::info!(
        attempt,
        ok = result.is_ok(),
        "simulated school: nothing sent"
    );
    Some(result)
}

/// One whole send, from taking a connection to the server's last reply, cut off after
/// `timeout`: a timeout like any other, worth another try.
async fn within<T>(
    timeout: Duration,
    send: impl std::future::Future<Output = Result<T, lettre::transport::smtp::Error>>,
) -> Result<(), SendError> {
    match tokio::time::timeout(timeout, send).await {
        Ok(result) => result.map(drop).map_err(classify),
        Err(_) => Err(SendError::Transient(Failure::Timeout)),
    }
}

/// A Message-ID as a file name: without its angle brackets, and with anything but
/// letters, digits, `@`, `.`, `-` and `_` replaced.
fn file_name(message_id: &str) -> String {
    message_id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "@.-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Writes `<name>.eml` whole or not at all: to a temporary name first, then renamed.
async fn write_eml(dir: &Path, name: &str, raw: &[u8]) -> Result<(), SendError> {
    let io = |e: std::io::Error| SendError::Transient(Failure::File(e.kind()));
    let path = dir.join(format!("{name}.eml"));
    let partial = dir.join(format!(".{name}.eml.part"));
    tokio::fs::write(&partial, raw).await.map_err(io)?;
    tokio::fs::rename(&partial, &path).await.map_err(io)
}

fn classify(e: lettre::transport::smtp::Error) -> SendError {
    let code = e.status().map(|c| c.to_string());
    if e.is_permanent() {
        classify_code(code.as_deref().unwrap_or("5xx"), true)
    } else if e.is_transient() {
        classify_code(code.as_deref().unwrap_or("4xx"), false)
    } else if e.is_timeout() {
        SendError::Transient(Failure::Timeout)
    } else {
        // Connection refused or broken, TLS failure, a reply we could not read: the
        // server may be back in a moment.
        SendError::Transient(Failure::Connection)
    }
}

#[cfg(test)]
mod tests {
    use super::{classify_code, file_name, Failure, SendError};

    #[test]
    fn eml_files_are_named_by_message_id() {
        assert_eq!(
            file_name("<0b6c9a1e-1f2d-4c1e-9d3a-5a6b7c8d9e0f@signal.example.nl>"),
            "0b6c9a1e-1f2d-4c1e-9d3a-5a6b7c8d9e0f@signal.example.nl"
        );
        assert_eq!(file_name("<../../etc/passwd>"), ".._.._etc_passwd");
    }

    #[test]
    fn only_recipient_and_message_replies_are_permanent() {
        for code in ["530", "534", "535", "538", "500", "502", "521"] {
            assert_eq!(
                classify_code(code, true),
                SendError::Session(Failure::Reply(code.into())),
                "{code} is about the session"
            );
        }
        for code in ["550", "551", "552", "553", "554", "5xx"] {
            assert_eq!(
                classify_code(code, true),
                SendError::Permanent(Failure::Reply(code.into())),
                "{code} is about the recipient or the message"
            );
        }
        for code in ["421", "450", "451", "452", "454", "4xx"] {
            assert_eq!(
                classify_code(code, false),
                SendError::Transient(Failure::Reply(code.into()))
            );
        }
    }
}
