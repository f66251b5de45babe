//! Failed link redemptions, counted per client address in this process. After
//! `max` failures in `window`, that address is refused until the window ends.
//! Wrong TOTP codes are counted per account in the database instead, so that
//! every replica sees them.

use crate::config::TrustedProxies;
use actix_web::HttpRequest;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Limiter {
    window: Duration,
    max: u32,
    failures: Mutex<HashMap<String, (Instant, u32)>>,
}

/// Addresses remembered at most; the oldest windows are forgotten first.
const REMEMBERED: usize = 10_000;

impl Limiter {
    pub fn new(max: u32, window: Duration) -> Self {
        Limiter {
            window,
            max,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the client `key` (an address) is blocked now.
    pub fn blocked(&self, key: &str) -> bool {
        let failures = self.failures.lock().expect("limiter lock");
        failures
            .get(key)
            .is_some_and(|(since, n)| since.elapsed() < self.window && *n >= self.max)
    }

    /// Counts a failure; true when it is the one that blocks the address.
    pub fn fail(&self, key: &str) -> bool {
        let mut failures = self.failures.lock().expect("limiter lock");
        if failures.len() >= REMEMBERED {
            failures.retain(|_, (since, _)| since.elapsed() < self.window);
        }
        let entry = failures
            .entry(key.to_string())
            .or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= self.window {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
        entry.1 == self.max
    }
}

/// The client address of a request: the peer, or behind a trusted proxy the
/// address it forwarded for (see [`TrustedProxies::client`]).
pub fn client_ip(req: &HttpRequest, proxies: &TrustedProxies) -> String {
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect();
    proxies
        .client(req.peer_addr().map(|a| a.ip()), &forwarded)
        .map_or_else(|| "unknown".into(), |ip| ip.to_string())
}
