//! The container image's runtime layer is complete: built with podman from
//! `container/offline.Containerfile` (FROM scratch, so nothing is pulled), mounted,
//! and run with `chroot --userspec=65532:65532` on nothing but its own files, it
//! migrates a database, serves, answers `/healthz`, and sends an email to a sink.
//!
//! It runs where podman is installed. `.ci/run` installs podman and requires it
//! ([`tool_available`]), so in CI a missing podman fails the test.

use crate::support::*;
use smtp_sink::SmtpSink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// podman with storage of its own under `dir` (the vfs driver, which needs no
/// kernel overlay support), so nothing global is touched.
fn podman(dir: &Path) -> Command {
    let mut c = Command::new("podman");
    c.arg("--root")
        .arg(dir.join("storage"))
        .arg("--runroot")
        .arg(dir.join("run"))
        .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"])
        .args(["--events-backend", "none"]);
    c
}

fn run(mut c: Command, what: &str) -> String {
    let out = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn podman_installed() -> bool {
    Command::new("podman")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Builds the offline image from the test binary, mounts it, and returns the
/// mount point.
fn build_and_mount(dir: &Path, tag: &str) -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let context = dir.join("context");
    let mut layout = Command::new(repo.join("container/runtime-files"));
    layout
        .arg(env!("CARGO_BIN_EXE_schoolsignal"))
        .arg(context.join("runtime"));
    run(layout, "container/runtime-files");
    let mut build = podman(dir);
    build
        .args(["build", "--quiet", "--tag", tag, "--file"])
        .arg(repo.join("container/offline.Containerfile"))
        .arg(&context);
    run(build, "podman build");
    let mut mount = podman(dir);
    mount.args(["image", "mount", tag]);
    PathBuf::from(run(mount, "podman image mount"))
}

/// Every file in the image, relative to its root.
fn files_of(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// `chroot --userspec=65532:65532 ROOT /usr/local/bin/schoolsignal ARGS`, with no
/// environment but `env`.
fn in_image(root: &Path, args: &[&str], env: &[(String, String)]) -> Command {
    // A full path: the child gets no PATH.
    let mut c = Command::new("/usr/sbin/chroot");
    c.arg("--userspec=65532:65532")
        .arg(root)
        .arg("/usr/local/bin/schoolsignal")
        .args(args)
        .env_clear()
        .envs(env.iter().cloned());
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_migrates_serves_and_sends_as_65532_on_its_own_files() {
    if !tool_available("podman", podman_installed()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tag = format!("localhost/schoolsignal-test:{}", unique());
    let root = build_and_mount(dir.path(), &tag);
    let files = files_of(&root);
    assert!(
        files.contains(&"usr/local/bin/schoolsignal".to_string()),
        "{files:?}"
    );
    for absent in ["bin/sh", "usr/bin/sh", "bin/bash"] {
        assert!(
            !files.iter().any(|f| f == absent),
            "the image holds {absent}"
        );
    }
    assert!(
        files.len() < 60,
        "only the binary, its libraries and a few /etc files: {files:?}"
    );

    let db = TestDb::create(Backend::Postgres);
    let sink = SmtpSink::start().await;
    let prefix = format!("t{}.", unique());
    let broker = Broker::connect(
        &amqp_url(),
        schoolsignal::config::AmqpNames::with_prefix(&prefix),
    )
    .await;
    let mut env = service_env(&db.url, &prefix, &amqp_url());
    env.retain(|(k, _)| k != "SCHOOLSIGNAL_MAIL_DIR");
    env.push(("SMTP_URL".into(), format!("{}?tls=none", sink.url())));

    let migrated = run(in_image(&root, &["migrate"], &env), "migrate in the image");
    assert!(migrated.contains("migration(s) run"), "{migrated}");
    assert!(
        count_rows(&db.pool(), "schools") == 0,
        "the image made the tables"
    );
    let api_key = seed(&db.pool());

    let service =
        ServiceProcess::start_command(in_image(&root, &["serve"], &[]), &env, "container");
    service.wait_ready(WAIT).await;
    let http = reqwest::Client::new();
    let address = service.address().await;
    let healthz = http.get(format!("{address}/healthz")).send().await.unwrap();
    assert_eq!(healthz.status(), 200);
    assert_eq!(healthz.text().await.unwrap(), r#"{"status":"ok"}"#);
    let head = http
        .head(format!("{address}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    let (status, answer) =
        post_event_to(&http, &address, &api_key, &example("valid-basic.json")).await;
    assert_eq!(status, 202, "{answer}");
    let mails = sink.wait_for(1, WAIT).await;
    assert_eq!(mails[0].to_addresses(), ["zorg@regenboog.example.nl"]);

    drop(service);
    broker.cleanup().await;
    let mut unmount = podman(dir.path());
    unmount.args(["image", "unmount", &tag]);
    run(unmount, "podman image unmount");
    let mut remove = podman(dir.path());
    remove.args(["rmi", "--force", &tag]);
    run(remove, "podman rmi");
}
