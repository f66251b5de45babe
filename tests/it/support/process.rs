//! The service as a child process: `schoolsignal serve`, its log file, its port.

use super::{free_port, series_value, wait_ready_at};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn log_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-logs");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `schoolsignal serve` as a child process, logging JSON to its own file. Dropping
/// it kills the process.
pub struct ServiceProcess {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl ServiceProcess {
    /// Starts `schoolsignal serve` with `env`, logging to target/test-logs/<name>.log.
    pub fn start(env: &[(String, String)], name: &str) -> Self {
        let port = free_port();
        let log = log_dir().join(format!("{name}.log"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_schoolsignal"))
            .arg("serve")
            .envs(env.iter().cloned())
            .env("SCHOOLSIGNAL_BIND", format!("127.0.0.1:{port}"))
            .env("SCHOOLSIGNAL_LOG_FORMAT", "json")
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap();
        Self { child, port, log }
    }

    /// Sends SIGTERM, as Kubernetes does, and waits up to `within` for the process to
    /// exit; panics if it has not by then.
    pub fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM failed");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the service did not exit within {within:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill(); // SIGKILL on Unix
        let _ = self.child.wait();
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        let r = reqwest::get(format!("http://127.0.0.1:{}{path}", self.port))
            .await
            .ok()?;
        let status = r.status().as_u16();
        Some((status, r.text().await.unwrap_or_default()))
    }

    pub async fn wait_ready(&self, timeout: Duration) {
        let failure = format!("service not ready in time; log: {}", self.log.display());
        let address = format!("http://127.0.0.1:{}", self.port);
        wait_ready_at(&reqwest::Client::new(), &address, timeout, &failure).await
    }

    /// The value of one series on its `/metrics` (`name{labels}` as printed), or 0.
    pub async fn metric(&self, series: &str) -> f64 {
        match self.get("/metrics").await {
            Some((_, page)) => series_value(&page, series),
            None => 0.0,
        }
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}
