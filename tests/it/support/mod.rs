//! Test support: isolated databases and AMQP names per test, the real service (in
//! process or as a child process), a test-side AMQP client, and the log canary.
//!
//! One file per concern; everything is re-exported here, so a test says
//! `use crate::support::*;`. The benchmarks include this folder too
//! (`#[path = "../tests/it/support/mod.rs"]`), so nothing here may name the test
//! binary's own modules.
#![allow(dead_code)]

mod app;
mod axe;
mod broker;
mod chrome;
mod db;
mod fixtures;
mod html;
mod logs;
mod metrics;
mod ports;
mod process;
mod sealed;

// The test binary and each benchmark use different parts of what is here.
#[allow(unused_imports)]
pub use {
    app::*, axe::*, broker::*, chrome::*, db::*, fixtures::*, html::*, logs::*, metrics::*,
    ports::*, process::*, sealed::*,
};

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// Declares one test per backend: `backend_tests!(name);` calls `async fn name(Backend)`.
#[allow(unused_macros)]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::support::Backend::Postgres).await }
            )*
        }
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::support::Backend::Sqlite).await }
            )*
        }
    };
}
// Reached through `use crate::support::*` like everything else here (the benchmarks
// declare no backend tests).
#[allow(unused_imports)]
pub(crate) use backend_tests;

/// A unique short id for database and AMQP names.
pub fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// Polls `done` until it is true; fails the test after `timeout`, saying `what` was
/// not seen.
pub async fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `f` (a database check) until it is true.
pub async fn eventually(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    wait_for(what, timeout, &mut f).await
}

/// Polls a metric (`read` fetches its current value) until it reaches `at_least`;
/// fails the test after `timeout`, saying `what` was not seen.
pub async fn wait_for_metric<F, Fut>(what: &str, timeout: Duration, at_least: f64, mut read: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = f64>,
{
    let deadline = Instant::now() + timeout;
    while read().await < at_least {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls the detailed health on the internal listener, `{metrics_address}/health`,
/// until it answers 200: the database answers and the intake consumer holds a broker
/// connection. That is more than `/readyz` on the main listener, which leaves the
/// broker out; the tests wait for both, so that the consumer is running. Fails the
/// test after `timeout` with the message `failure`.
pub async fn wait_ready_at(
    http: &reqwest::Client,
    metrics_address: &str,
    timeout: Duration,
    failure: &str,
) {
    let deadline = Instant::now() + timeout;
    loop {
        let ready = http
            .get(format!("{metrics_address}/health"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        if ready {
            return;
        }
        assert!(Instant::now() < deadline, "{failure}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether a test that needs an outside tool (podman, schemathesis) can run. Where
/// it is required (`.ci/run` installs each such tool and sets
/// `TEST_REQUIRE_TOOLS=1`, and CI sets `CI`), a missing tool fails the test;
/// elsewhere the test says that it did not run, and returns.
pub fn tool_available(tool: &str, found: bool) -> bool {
    let required =
        std::env::var_os("TEST_REQUIRE_TOOLS").is_some() || std::env::var_os("CI").is_some();
    assert!(
        found || !required,
        "{tool} is required here but was not found"
    );
    if !found {
        eprintln!("{tool} is not installed: this test did not run (.ci/run installs it)");
    }
    found
}
