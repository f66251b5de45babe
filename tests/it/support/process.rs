//! The service as a child process: `schoolsignal serve`, its log file, its port.

use super::{series_value, wait_ready_at};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a started service may take to log where it listens.
const LISTENING_WITHIN: Duration = Duration::from_secs(120);
/// The message the service logs once it listens, with the ports in the fields `port`
/// (the main listener) and `metrics_port` (the internal one).
const LISTENING: &str = "schoolsignal listening";

pub fn log_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-logs");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `schoolsignal serve` as a child process, logging JSON to its own file. Dropping
/// it kills the process.
pub struct ServiceProcess {
    pub child: Child,
    pub log: PathBuf,
    /// Where this start's lines begin in `log`: the file is appended to, and may
    /// hold earlier runs under the same name.
    log_from: u64,
    /// The main and the internal listener's ports, once read from the log.
    ports: OnceLock<(u16, u16)>,
}

impl ServiceProcess {
    /// Starts `schoolsignal serve` with `env`, logging to target/test-logs/<name>.log.
    /// It listens where `env`'s `SCHOOLSIGNAL_BIND` and `SCHOOLSIGNAL_METRICS_BIND`
    /// say, by default on ports the system picks; [`ServiceProcess::port`] and
    /// [`ServiceProcess::metrics_port`] tell which.
    pub fn start(env: &[(String, String)], name: &str) -> Self {
        let mut serve = Command::new(env!("CARGO_BIN_EXE_schoolsignal"));
        serve.arg("serve");
        Self::start_command(serve, env, name)
    }

    /// [`ServiceProcess::start`] with another command that runs `schoolsignal serve`
    /// (in a chroot, say).
    pub fn start_command(mut command: Command, env: &[(String, String)], name: &str) -> Self {
        let log = log_dir().join(format!("{name}.log"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let log_from = file.metadata().unwrap().len();
        let child = command
            .env("SCHOOLSIGNAL_BIND", "127.0.0.1:0")
            .env("SCHOOLSIGNAL_METRICS_BIND", "127.0.0.1:0")
            .envs(env.iter().cloned())
            .env("SCHOOLSIGNAL_LOG_FORMAT", "json")
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap();
        Self {
            child,
            log,
            log_from,
            ports: OnceLock::new(),
        }
    }

    /// The port the service listens on, from its `schoolsignal listening` log line;
    /// waits for that line (at most two minutes, then the test fails).
    pub async fn port(&self) -> u16 {
        self.ports().await.0
    }

    /// The internal listener's port (`/metrics`, `/health`), from the same line.
    pub async fn metrics_port(&self) -> u16 {
        self.ports().await.1
    }

    async fn ports(&self) -> (u16, u16) {
        let deadline = Instant::now() + LISTENING_WITHIN;
        loop {
            if let Some(ports) = self.ports.get() {
                return *ports;
            }
            // Checked before the log is read: a line written before an exit is seen.
            let exited = self.has_exited();
            if let Some(ports) = listening_ports(&self.log_of_this_start()) {
                return *self.ports.get_or_init(|| ports);
            }
            if exited || Instant::now() >= deadline {
                let why = if exited { "it exited" } else { "not in time" };
                panic!(
                    "the service did not log `{LISTENING}` with its ports ({why}); see its log {}",
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub async fn address(&self) -> String {
        format!("http://127.0.0.1:{}", self.port().await)
    }

    /// `http://127.0.0.1:<metrics port>`: the internal listener.
    pub async fn metrics_address(&self) -> String {
        format!("http://127.0.0.1:{}", self.metrics_port().await)
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

    /// The whole log file.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// What this start of the service logged so far.
    fn log_of_this_start(&self) -> String {
        let mut bytes = Vec::new();
        if let Ok(mut file) = std::fs::File::open(&self.log) {
            let _ = file.seek(SeekFrom::Start(self.log_from));
            let _ = file.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Whether the process is gone (an exited child stays a zombie, state `Z`,
    /// until it is waited for).
    fn has_exited(&self) -> bool {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()));
        stat.map_or(true, |s| {
            s.rsplit_once(')')
                .is_some_and(|(_, state)| state.trim_start().starts_with('Z'))
        })
    }

    /// A GET on the main listener: status and body, or None when it does not answer.
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        get_at(&self.address().await, path).await
    }

    /// A GET on the internal listener (`/metrics`, `/health`).
    pub async fn get_internal(&self, path: &str) -> Option<(u16, String)> {
        get_at(&self.metrics_address().await, path).await
    }

    /// Waits until the service is ready and its consumer connected (see
    /// [`wait_ready_at`]).
    pub async fn wait_ready(&self, timeout: Duration) {
        let failure = format!("service not ready in time; log: {}", self.log.display());
        let address = self.metrics_address().await;
        wait_ready_at(&reqwest::Client::new(), &address, timeout, &failure).await
    }

    /// The value of one series on its `/metrics` (`name{labels}` as printed), or 0.
    pub async fn metric(&self, series: &str) -> f64 {
        match self.get_internal("/metrics").await {
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

async fn get_at(address: &str, path: &str) -> Option<(u16, String)> {
    let r = reqwest::get(format!("{address}{path}")).await.ok()?;
    let status = r.status().as_u16();
    Some((status, r.text().await.unwrap_or_default()))
}

/// The ports (`port`, `metrics_port`) of the `schoolsignal listening` line in JSON
/// log `lines`, if there is one.
fn listening_ports(lines: &str) -> Option<(u16, u16)> {
    let entry = lines
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|entry| entry["message"] == LISTENING)?;
    let port = |field: &str| entry[field].as_u64().and_then(|p| u16::try_from(p).ok());
    Some((port("port")?, port("metrics_port")?))
}

/// Runs the `schoolsignal` binary with `args` on the database at `db_url`, as an
/// operator would, with `env` on top of the test key and log level.
pub fn run_cli(db_url: &str, args: &[&str], env: &[(&str, String)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_schoolsignal"))
        .args(args)
        .env("DATABASE_URL", db_url)
        .env("SCHOOLSIGNAL_BSN_KEY", super::BSN_KEY)
        .env("RUST_LOG", "info,schoolsignal=debug")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap()
}
