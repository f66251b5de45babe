//! `schoolsignal mail links`, as the README's "Try it" uses it: the real binary reads
//! the `.eml` files the real service wrote, and prints each email's portal link
//! decoded.

use crate::support::*;
use mail_parser::MessageParser;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, SystemTime};

/// The link base the service writes when `SCHOOLSIGNAL_PUBLIC_URL` is unset.
const PUBLIC: &str = "http://localhost:8080";

/// Runs `schoolsignal mail links ARGS` against the folder `dir`.
fn mail_links(db: &TestDb, dir: &Path, args: &[&str], env: &[(&str, String)]) -> Output {
    let mut all = vec!["mail", "links"];
    all.extend(args);
    let mut env = env.to_vec();
    env.push(("SCHOOLSIGNAL_MAIL_DIR", dir.display().to_string()));
    run_cli(&db.url, &all, &env)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The `.eml` files in `dir`.
fn eml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "eml"));
    files.sort();
    files
}

/// An email's recipient and its link, as the test reads the file itself: the
/// decoded text part, parsed apart from the code under test.
fn recipient_and_link(file: &Path) -> (String, String) {
    let raw = std::fs::read(file).unwrap();
    let message = MessageParser::default().parse(&raw).unwrap();
    let to = message.to().unwrap().first().unwrap().address().unwrap();
    let token = link_token(&message.body_text(0).unwrap(), PUBLIC);
    assert!(!token.is_empty(), "a link in {}", file.display());
    (to.to_string(), format!("{PUBLIC}/n/{token}"))
}

/// Marks `file` as written `age` ago: the listing's order is by that time.
fn written_ago(file: &Path, age: Duration) {
    let f = std::fs::File::options().write(true).open(file).unwrap();
    f.set_modified(SystemTime::now() - age).unwrap();
}

/// The hashes of every link token the service issued.
fn issued_token_hashes(pool: &schoolsignal::db::Pool) -> Vec<String> {
    use diesel::prelude::*;
    use schoolsignal::db::schema::access_tokens::dsl::*;
    let mut conn = pool.get().unwrap();
    access_tokens.select(token_hash).load(&mut *conn).unwrap()
}

/// The service writes one notice per school for `valid-siblings.json` into a folder of
/// this test's own; returns the two files, oldest first by their set times.
async fn two_notices(app: &TestApp, dir: &Path) -> Vec<PathBuf> {
    let (status, answer) = app.post_event(&example("valid-siblings.json")).await;
    assert_eq!(status, 202, "{answer}");
    wait_for("two .eml files", Duration::from_secs(30), || {
        eml_files(dir).len() == 2
    })
    .await;
    let files = eml_files(dir);
    written_ago(&files[0], Duration::from_secs(120));
    written_ago(&files[1], Duration::from_secs(60));
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prints_each_emails_decoded_link_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("SCHOOLSIGNAL_MAIL_DIR", dir.path().display().to_string())];
    let app = TestApp::spawn_with(Backend::Sqlite, &env).await;
    let files = two_notices(&app, dir.path()).await;
    let (older, newer) = (recipient_and_link(&files[0]), recipient_and_link(&files[1]));
    assert_ne!(older.0, newer.0, "one email per school");
    let issued = issued_token_hashes(&app.pool);
    for (_, link) in [&older, &newer] {
        let token = link.rsplit('/').next().unwrap();
        let hash = hex::encode(Sha256::digest(token.as_bytes()));
        assert!(
            issued.contains(&hash),
            "{link} is a link the service issued"
        );
    }
    // The raw file holds the link only broken by quoted-printable soft line breaks:
    // that is why the verb exists.
    let raw = std::fs::read_to_string(&files[1]).unwrap();
    assert!(!raw.contains(&newer.1), "the raw file shows no whole link");

    let out = mail_links(&app.db, dir.path(), &[], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    for (line, (to, link)) in lines.iter().zip([&newer, &older]) {
        assert!(line.starts_with(to.as_str()), "{line}");
        assert!(line.ends_with(&format!("  {link}")), "{line}");
    }
    let link_column = |l: &str| l.find(PUBLIC).unwrap();
    assert_eq!(link_column(&lines[0]), link_column(&lines[1]), "aligned");
    assert_eq!(
        stderr(&out),
        "",
        "nothing logged: the output is the user's own"
    );

    let out = mail_links(&app.db, dir.path(), &["--latest"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("{}\n", newer.1),
        "only the newest link"
    );
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_file_is_named_and_the_others_still_listed() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("SCHOOLSIGNAL_MAIL_DIR", dir.path().display().to_string())];
    let app = TestApp::spawn_with(Backend::Sqlite, &env).await;
    let files = two_notices(&app, dir.path()).await;
    let good: Vec<(String, String)> = files.iter().map(|f| recipient_and_link(f)).collect();
    // Newest of all: one that is not an email, and one that cannot be read at all.
    let broken = dir.path().join("broken.eml");
    std::fs::write(&broken, "this is not an email\n").unwrap();
    let unreadable = dir.path().join("folder.eml");
    std::fs::create_dir(&unreadable).unwrap();

    let out = mail_links(&app.db, dir.path(), &[], &[]);
    assert_eq!(out.status.code(), Some(1), "a file could not be read");
    let (listed, errors) = (stdout(&out), stderr(&out));
    assert_eq!(listed.lines().count(), 2, "{listed}");
    for (to, link) in &good {
        assert!(
            listed
                .lines()
                .any(|l| l.starts_with(to.as_str()) && l.ends_with(link.as_str())),
            "{to} is still listed: {listed}"
        );
    }
    let error_lines: Vec<&str> = errors.lines().collect();
    let broken_line = format!("error: {}: not an email", broken.display());
    assert!(
        error_lines.iter().any(|l| l.starts_with(&broken_line)),
        "{errors}"
    );
    let unreadable_line = format!("error: {}: cannot read it", unreadable.display());
    assert!(
        error_lines.iter().any(|l| l.starts_with(&unreadable_line)),
        "{errors}"
    );
    for (to, link) in &good {
        assert!(!errors.contains(to.as_str()) && !errors.contains(link.as_str()));
    }

    // The newest file with a link, past the broken ones.
    let out = mail_links(&app.db, dir.path(), &["--latest"], &[]);
    assert_eq!(stdout(&out), format!("{}\n", good[1].1));
    app.cleanup().await;
}

#[test]
fn no_files_is_said_plainly_and_smtp_is_refused() {
    let db = TestDb::create(Backend::Sqlite);
    let empty = tempfile::tempdir().unwrap();
    let missing = empty.path().join("not-yet");
    for dir in [empty.path(), missing.as_path()] {
        let out = mail_links(&db, dir, &[], &[]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(
            stdout(&out),
            format!("no emails in {} yet\n", dir.display())
        );
        let out = mail_links(&db, dir, &["--latest"], &[]);
        assert!(out.status.success());
        assert_eq!(stdout(&out), "", "no link, and nothing else on stdout");
    }
    let smtp = [("SMTP_URL", "smtp://127.0.0.1:2525?tls=none".to_string())];
    let out = mail_links(&db, empty.path(), &[], &smtp);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).contains("error: SMTP_URL is set"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn logs_stay_off_standard_output() {
    let db = TestDb::create(Backend::Sqlite);
    let empty = tempfile::tempdir().unwrap();
    let unknown = [("SCHOOLSIGNAL_NO_SUCH_SETTING", "1".to_string())];
    let out = mail_links(&db, empty.path(), &["--latest"], &unknown);
    assert_eq!(stdout(&out), "", "standard output is for the link only");
    assert!(
        stderr(&out).contains("SCHOOLSIGNAL_NO_SUCH_SETTING"),
        "the warning is on standard error: {}",
        stderr(&out)
    );
}
