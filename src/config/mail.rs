//! The mail section: the SMTP server, the sender, and the email queue's timing.

use super::vars::{err, Reader};
use super::ConfigError;
use lettre::message::Mailbox;
use std::path::PathBuf;
use std::time::Duration;

const SECOND: Duration = Duration::from_secs(1);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);
/// The SMTP port, which lettre would otherwise take as the submission port.
const SMTP_PORT: u16 = 25;

#[derive(Clone)]
pub struct MailConfig {
    /// `SMTP_URL` in the form lettre reads (see [`smtp_url`]); None writes `.eml`
    /// files instead. May hold a password: never logged.
    pub smtp_url: Option<String>,
    pub from: Mailbox,
    /// A folder whose files replace the built-in templates.
    pub templates: Option<PathBuf>,
    /// Where `.eml` files go when no `SMTP_URL` is set.
    pub dir: PathBuf,
    pub concurrency: usize,
    pub timeout: Duration,
    pub lease: Duration,
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub give_up_after: Duration,
    pub link_valid_for: Duration,
}

impl std::fmt::Debug for MailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailConfig")
            .field("smtp", &self.smtp_url.is_some())
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl MailConfig {
    pub(super) fn read(r: &Reader<impl Fn(&str) -> Option<String>>) -> Result<Self, ConfigError> {
        let from = r.text("SCHOOLSIGNAL_MAIL_FROM").parse().map_err(|_| {
            err(
                "SCHOOLSIGNAL_MAIL_FROM",
                "must be an address, optionally with a name: `Name <user@example.org>`",
            )
        })?;
        let mail = MailConfig {
            smtp_url: r.set("SMTP_URL").as_deref().map(smtp_url).transpose()?,
            from,
            templates: r.set("SCHOOLSIGNAL_MAIL_TEMPLATES").map(PathBuf::from),
            dir: PathBuf::from(r.text("SCHOOLSIGNAL_MAIL_DIR")),
            concurrency: r.number("SCHOOLSIGNAL_MAIL_CONCURRENCY", 1..=256)?,
            timeout: r.duration("SCHOOLSIGNAL_MAIL_TIMEOUT_SECONDS", SECOND, 1..=600)?,
            lease: r.duration("SCHOOLSIGNAL_MAIL_LEASE_SECONDS", SECOND, 2..=3600)?,
            retry_base: r.duration(
                "SCHOOLSIGNAL_MAIL_RETRY_BASE_MS",
                SECOND / 1000,
                10..=3_600_000,
            )?,
            retry_max: r.duration("SCHOOLSIGNAL_MAIL_RETRY_MAX_SECONDS", SECOND, 1..=86_400)?,
            give_up_after: r.duration("SCHOOLSIGNAL_MAIL_GIVE_UP_HOURS", HOUR, 1..=168)?,
            link_valid_for: r.duration("SCHOOLSIGNAL_LINK_VALID_DAYS", DAY, 1..=60)?,
        };
        if mail.lease <= mail.timeout {
            return Err(err(
                "SCHOOLSIGNAL_MAIL_LEASE_SECONDS",
                "must be longer than SCHOOLSIGNAL_MAIL_TIMEOUT_SECONDS, or a slow send would be taken over and sent twice",
            ));
        }
        Ok(mail)
    }
}

fn bad_url(why: &str) -> ConfigError {
    err("SMTP_URL", why)
}

/// Checks `SMTP_URL` and turns it into the form lettre reads. `smtp://` uses
/// STARTTLS and insists on it; `?tls=opportunistic` uses it when offered, and
/// `?tls=none` never (a relay on the same host, or a test). `smtps://` is TLS from
/// the first byte. A user and password in the URL are used for AUTH.
pub fn smtp_url(url: &str) -> Result<String, ConfigError> {
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

#[cfg(test)]
mod tests {
    use super::smtp_url;

    #[test]
    fn smtp_insists_on_starttls_unless_told_otherwise() {
        let url = |u: &str| smtp_url(u).unwrap();
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
            let e = smtp_url(bad).unwrap_err();
            assert_eq!(e.var, "SMTP_URL", "{bad}");
        }
        let e = smtp_url("ftp://user:s3cret@host").unwrap_err();
        assert!(!e.to_string().contains("s3cret"));
    }
}
