//! The HTTP section: where to listen, the public address, and the proxies in front.

use super::vars::{err, Reader};
use super::{ConfigError, TrustedProxies};
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct PortalConfig {
    pub bind: SocketAddr,
    /// The internal listener for `/metrics` and the detailed `/health`, apart from
    /// the portal's address: the counters move after each police event.
    pub metrics_bind: SocketAddr,
    /// `scheme://host[:port]`, without a trailing slash.
    pub public_url: String,
    /// Proxies (IPs or CIDRs) whose `X-Forwarded-For` names the portal's client.
    pub trusted_proxies: TrustedProxies,
    /// A request's head must arrive within this; its body must then arrive, and its
    /// answer be ready, within this again.
    pub request_timeout: Duration,
}

impl PortalConfig {
    pub(super) fn read(r: &Reader<impl Fn(&str) -> Option<String>>) -> Result<Self, ConfigError> {
        let public_url = r.text("SCHOOLSIGNAL_PUBLIC_URL");
        if !public_url.starts_with("http://") && !public_url.starts_with("https://") {
            return Err(err(
                "SCHOOLSIGNAL_PUBLIC_URL",
                "must start with http:// or https://",
            ));
        }
        let bind: SocketAddr = r.parsed("SCHOOLSIGNAL_BIND")?;
        let metrics_bind: SocketAddr = r.parsed("SCHOOLSIGNAL_METRICS_BIND")?;
        if metrics_bind.port() != 0 && metrics_bind.port() == bind.port() {
            return Err(err(
                "SCHOOLSIGNAL_METRICS_BIND",
                "must use another port than SCHOOLSIGNAL_BIND",
            ));
        }
        Ok(PortalConfig {
            bind,
            metrics_bind,
            public_url: public_url.trim_end_matches('/').to_string(),
            trusted_proxies: TrustedProxies::parse(&r.text("SCHOOLSIGNAL_TRUSTED_PROXIES"))
                .map_err(|why| err("SCHOOLSIGNAL_TRUSTED_PROXIES", why))?,
            request_timeout: r.duration(
                "SCHOOLSIGNAL_REQUEST_TIMEOUT_SECONDS",
                Duration::from_secs(1),
                1..=300,
            )?,
        })
    }
}
