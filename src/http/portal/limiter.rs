//! Failed attempts, counted per client address in this process. After `max`
//! failures in `window`, that address is refused until the window ends. Wrong TOTP
//! codes are counted per account in the database instead, so that every replica
//! sees them.
//!
//! The check and the count are one step under one lock: an attempt let through
//! holds a place under the limit until it is settled, as a failure or not. So
//! concurrent attempts cannot all pass one check before any of them is counted:
//! at most `max` are ever under way or failed in a window.

use crate::config::TrustedProxies;
use actix_web::HttpRequest;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub struct Limiter {
    window: Duration,
    max: u32,
    counts: Mutex<HashMap<String, Count>>,
}

/// One client's window: when it began, its failures, and its attempts under way.
struct Count {
    since: Instant,
    failed: u32,
    pending: u32,
}

/// Addresses remembered at most; the oldest windows are forgotten first.
const REMEMBERED: usize = 10_000;

impl Limiter {
    pub fn new(max: u32, window: Duration) -> Self {
        Limiter {
            window,
            max,
            counts: Mutex::new(HashMap::new()),
        }
    }

    fn counts(&self) -> MutexGuard<'_, HashMap<String, Count>> {
        self.counts.lock().expect("limiter lock")
    }

    /// Lets an attempt of the client `key` (an address) through when its failures
    /// and its attempts under way are fewer than the limit, and counts it as under
    /// way in the same step; None when the client is blocked.
    pub fn try_begin(&self, key: &str) -> Option<Attempt<'_>> {
        let mut counts = self.counts();
        if counts.len() >= REMEMBERED {
            counts.retain(|_, c| c.pending > 0 || c.since.elapsed() < self.window);
        }
        let count = counts.entry(key.to_string()).or_insert(Count {
            since: Instant::now(),
            failed: 0,
            pending: 0,
        });
        if count.since.elapsed() >= self.window {
            (count.since, count.failed) = (Instant::now(), 0);
        }
        if count.failed + count.pending >= self.max {
            return None;
        }
        count.pending += 1;
        Some(Attempt {
            limiter: self,
            key: key.to_string(),
            settled: false,
        })
    }

    /// Ends an attempt under way; a failure is counted. Returns the failures now.
    fn settle(&self, key: &str, failed: bool) -> u32 {
        let mut counts = self.counts();
        let Some(count) = counts.get_mut(key) else {
            return 0;
        };
        count.pending = count.pending.saturating_sub(1);
        count.failed += u32::from(failed);
        count.failed
    }
}

/// An attempt let through by [`Limiter::try_begin`]. Dropped without
/// [`Attempt::fail`] (it succeeded, it was no guess, or the request ended early), it
/// gives its place back.
pub struct Attempt<'a> {
    limiter: &'a Limiter,
    key: String,
    settled: bool,
}

impl Attempt<'_> {
    /// Counts the attempt as a failure; true when it is the one that blocks the
    /// client.
    pub fn fail(mut self) -> bool {
        self.settled = true;
        self.limiter.settle(&self.key, true) == self.limiter.max
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.limiter.settle(&self.key, false);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(900);

    #[test]
    fn attempts_under_way_hold_their_place() {
        let limiter = Limiter::new(3, WINDOW);
        let held: Vec<Attempt> = (0..3).map(|_| limiter.try_begin("a").unwrap()).collect();
        assert!(limiter.try_begin("a").is_none(), "three under way: full");
        assert!(limiter.try_begin("b").is_some(), "per client");
        let mut held = held.into_iter();
        assert!(!held.next().unwrap().fail());
        drop(held.next());
        let again = limiter.try_begin("a").expect("a place given back");
        assert!(limiter.try_begin("a").is_none());
        assert!(!held.next().unwrap().fail());
        assert!(again.fail(), "the third failure blocks");
        assert!(limiter.try_begin("a").is_none(), "blocked");
    }

    #[test]
    fn threads_at_once_pass_at_most_the_limit() {
        let limiter = Limiter::new(10, WINDOW);
        let barrier = std::sync::Barrier::new(30);
        let passed = std::sync::atomic::AtomicU32::new(0);
        std::thread::scope(|s| {
            for _ in 0..30 {
                s.spawn(|| {
                    barrier.wait();
                    if let Some(attempt) = limiter.try_begin("a") {
                        passed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        attempt.fail();
                    }
                });
            }
        });
        assert_eq!(passed.into_inner(), 10);
    }
}
