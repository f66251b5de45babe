//! The operator commands, run as a user would: the real binary on a real database.

use crate::support::*;
use std::process::{Command, Output};

fn run(db: &TestDb, args: &[&str]) -> Output {
    run_with(db, args, &[])
}

/// [`run`] with more environment variables.
fn run_with(db: &TestDb, args: &[&str], env: &[(&str, String)]) -> Output {
    run_cli(&db.url, args, env)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn write(dir: &tempfile::TempDir, name: &str, content: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    path.display().to_string()
}

async fn schools_import_checks_every_row_and_is_idempotent(backend: Backend) {
    let db = TestDb::create(backend);
    let dir = tempfile::tempdir().unwrap();
    let header = "brin,name,holiday_region,locale,school_day_start,coordinator_name,coordinator_email,deputy_name,deputy_email,participating";
    let bad = write(
        &dir,
        "bad.csv",
        &format!(
            "{header}\n12AB00,Good,midden,nl,08:30,C,c@x.nl,,,true\n1XAB00,Bad brin,midden,nl,08:30,C,c@x.nl,,,true\n\
             56EF02,Bad region,west,nl,08:30,C,c@x.nl,,,true\n56EF03,Bad time,zuid,nl,8h30,C,c@x.nl,,,true\n\
             56EF04,Bad locale,zuid,de,08:30,C,c@x.nl,,,true\n56EF05,Bad flag,zuid,nl,08:30,C,c@x.nl,,,yes\n\
             12AB00,Twice,midden,nl,08:30,C,c@x.nl,,,true\n\
             56EF06,Bad mail,zuid,nl,08:30,C,not-an-address,,,true\n\
             56EF07,Display name,zuid,nl,08:30,C,C <c@x.nl>,,,true\n\
             56EF08,Single label,zuid,nl,08:30,C,c@localhost,,,true\n\
             56EF09,IP literal,zuid,nl,08:30,C,c@[127.0.0.1],,,true\n\
             56EF10,Bad deputy,zuid,nl,08:30,C,c@x.nl,D,d@,true\n"
        ),
    );
    let out = run(&db, &["schools", "import", &bad]);
    assert!(!out.status.success());
    let t = text(&out);
    for (line, what) in [
        (3, "brin"),
        (4, "holiday_region"),
        (5, "school_day_start"),
        (6, "locale"),
        (7, "participating"),
        (8, "earlier"),
        (9, "coordinator_email"),
        (10, "coordinator_email"),
        (11, "coordinator_email"),
        (12, "coordinator_email"),
        (13, "deputy_email"),
    ] {
        let prefix = format!("line {line}: ");
        assert!(
            t.lines().any(|l| l.contains(&prefix) && l.contains(what)),
            "line {line} {what}: {t}"
        );
    }
    assert!(
        !t.contains("c@localhost") && !t.contains("127.0.0.1"),
        "errors never echo a value: {t}"
    );
    assert!(!t.contains("line 2:"), "{t}");
    assert_eq!(
        count_rows(&db.pool(), "schools"),
        0,
        "a bad file changes nothing"
    );

    let good = fixture("schools.csv").display().to_string();
    let first = run(&db, &["schools", "import", &good]);
    assert!(first.status.success(), "{}", text(&first));
    assert!(text(&first).contains("2 inserted, 0 updated, 0 unchanged"));
    let again = run(&db, &["schools", "import", &good]);
    assert!(
        text(&again).contains("0 inserted, 0 updated, 2 unchanged"),
        "{}",
        text(&again)
    );
    assert_eq!(count_rows(&db.pool(), "schools"), 2);
}

async fn registry_import_objection_and_api_keys(backend: Backend) {
    let db = TestDb::create(backend);
    let dir = tempfile::tempdir().unwrap();
    assert!(run(
        &db,
        &[
            "schools",
            "import",
            &fixture("schools.csv").display().to_string()
        ]
    )
    .status
    .success());

    let bad = write(
        &dir,
        "bad.csv",
        "bsn,school_brin,group,valid_from,valid_until,consent\n\
         111222333,12AB00,groep 5,2026-08-01,,granted\n\
         111222334,12AB00,groep 5,2026-08-01,,granted\n\
         725763863,99ZZ99,groep 7,2026-08-01,,granted\n\
         162275869,34CD01,groep 2,2026-13-01,,granted\n\
         192285142,12AB00,groep 8,2026-08-01,2026-07-01,granted\n\
         691682483,34CD01,groep 6,2025-08-01,,maybe\n",
    );
    let out = run(&db, &["registry", "import", &bad]);
    assert!(!out.status.success());
    let t = text(&out);
    for line in 3..=7 {
        assert!(t.contains(&format!("line {line}: ")), "line {line}: {t}");
    }
    assert!(
        !t.contains("111222334") && !t.contains("725763863"),
        "no BSN in an error: {t}"
    );
    assert_eq!(count_rows(&db.pool(), "enrollments"), 0);

    let example = contracts_dir()
        .join("registry-example.csv")
        .display()
        .to_string();
    assert!(text(&run(&db, &["registry", "import", &example]))
        .contains("5 inserted, 0 updated, 0 unchanged"));
    assert!(text(&run(&db, &["registry", "import", &example]))
        .contains("0 inserted, 0 updated, 5 unchanged"));
    let stored: String = {
        use diesel::prelude::*;
        use schoolsignal::db::schema::enrollments::dsl::*;
        let mut conn = db.pool().get().unwrap();
        enrollments
            .select(bsn_hash)
            .load::<String>(&mut *conn)
            .unwrap()
            .join(",")
    };
    assert!(
        !stored.contains("111222333"),
        "only keyed hashes are stored"
    );

    // An objection takes effect for the next lookup.
    let hasher = schoolsignal::registry::KeyedHasher::new(BSN_KEY.as_bytes());
    let hash = hasher.bsn(&schoolsignal::contract::Bsn::parse("111222333").unwrap());
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
    let lookup = |db: &TestDb| {
        let mut conn = db.pool().get().unwrap();
        schoolsignal::registry::enrollments::lookup(&mut conn, &dev_keyring(), &hash, date).unwrap()
    };
    assert!(matches!(
        lookup(&db),
        schoolsignal::registry::enrollments::Lookup::Enrolled { .. }
    ));
    let out = run(&db, &["registry", "object", "--bsn", "111222333"]);
    assert!(text(&out).contains("objection recorded"), "{}", text(&out));
    assert_eq!(
        lookup(&db),
        schoolsignal::registry::enrollments::Lookup::NoConsent
    );
    assert!(!run(&db, &["registry", "object", "--bsn", "111222334"])
        .status
        .success());

    // API keys: printed once, stored only as a hash.
    let out = run(
        &db,
        &[
            "apikey",
            "create",
            "--name",
            "politie-mn",
            "--scope",
            "events:write",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let key = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(key.starts_with("ssk_") && key.len() == 68, "{key}");
    let hashes: Vec<String> = {
        use diesel::prelude::*;
        use schoolsignal::db::schema::api_keys::dsl::*;
        let mut conn = db.pool().get().unwrap();
        api_keys.select(key_hash).load(&mut *conn).unwrap()
    };
    assert_eq!(hashes.len(), 1);
    assert_ne!(hashes[0], key);
    assert!(!run(
        &db,
        &["apikey", "create", "--name", "x", "--scope", "admin:all"]
    )
    .status
    .success());
}

/// `apikey create --mode test` prints a key that says what it is, and stores its mode.
#[test]
fn apikey_create_makes_test_keys() {
    let db = TestDb::create(Backend::Sqlite);
    let create = |extra: &[&str]| {
        let mut args = vec!["apikey", "create", "--name", "n", "--scope", "events:write"];
        args.extend_from_slice(extra);
        let out = run(&db, &args);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        )
    };
    let (ok, test) = create(&["--mode", "test"]);
    assert!(
        ok && test.starts_with("ssk_test_") && test.len() == 73,
        "{test}"
    );
    let (ok, live) = create(&[]);
    assert!(
        ok && live.starts_with("ssk_") && !live.starts_with("ssk_test_"),
        "{live}"
    );
    assert!(!create(&["--mode", "dry-run"]).0);
    let modes: Vec<String> = {
        use diesel::prelude::*;
        use schoolsignal::db::schema::api_keys::dsl::*;
        let mut conn = db.pool().get().unwrap();
        api_keys.order(mode).select(mode).load(&mut *conn).unwrap()
    };
    assert_eq!(modes, ["live", "test"]);
}

/// Simulated schools: production refuses them at import unless allowed, and an
/// address at the simulator's domain must name one of its behaviours.
#[test]
fn simulated_schools_are_refused_in_production_unless_allowed() {
    let db = TestDb::create(Backend::Sqlite);
    let dir = tempfile::tempdir().unwrap();
    let header = "brin,name,holiday_region,locale,school_day_start,coordinator_name,coordinator_email,deputy_name,deputy_email,participating";
    let csv = |coordinator: &str| {
        let body = format!(
            "{header}\n99ZZ00,Oefenschool,midden,nl,08:30,Oefen,{coordinator},Adjunct,\
             permanent-failure@simulator.schoolsignal.invalid,true\n"
        );
        write(&dir, &format!("{}.csv", coordinator.len()), &body)
    };
    let simulated = csv("temporary-failure@simulator.schoolsignal.invalid");
    let production = [
        ("SCHOOLSIGNAL_ENV", "production".to_string()),
        ("AMQP_URL", "amqp://x@127.0.0.1:1/%2f".to_string()),
        ("SMTP_URL", "smtp://127.0.0.1:1".to_string()),
        (
            "SCHOOLSIGNAL_PUBLIC_URL",
            "https://signal.example.nl".to_string(),
        ),
        (
            "SCHOOLSIGNAL_MAIL_FROM",
            "Signaal <noreply@signal.example.nl>".to_string(),
        ),
        ("SCHOOLSIGNAL_DATA_KEYS", PRODUCTION_DATA_KEYS.to_string()),
    ];
    let org = PRODUCTION_ORG.map(|(k, v)| (k, v.to_string()));
    let production = [&production[..], &org[..]].concat();
    let out = run_with(&db, &["schools", "import", &simulated], &production);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("SCHOOLSIGNAL_ALLOW_SIMULATED_SCHOOLS=true"),
        "{}",
        text(&out)
    );
    assert_eq!(count_rows(&db.pool(), "schools"), 0);

    let mut allowed = production.to_vec();
    allowed.push(("SCHOOLSIGNAL_ALLOW_SIMULATED_SCHOOLS", "true".to_string()));
    let out = run_with(&db, &["schools", "import", &simulated], &allowed);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(count_rows(&db.pool(), "schools"), 1);

    let unknown = csv("bounce@simulator.schoolsignal.invalid");
    let out = run(&db, &["schools", "import", &unknown]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("line 2: coordinator_email is at @simulator.schoolsignal.invalid"),
        "{}",
        text(&out)
    );
}

#[test]
fn configuration_errors_name_the_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_schoolsignal"))
        .arg("migrate")
        .env("SCHOOLSIGNAL_ENV", "production")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("DATABASE_URL"), "{}", text(&out));
    let out = Command::new(env!("CARGO_BIN_EXE_schoolsignal"))
        .arg("migrate")
        .env("DATABASE_URL", "mysql://nope")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("DATABASE_URL: must start with"),
        "{}",
        text(&out)
    );
}

backend_tests!(
    schools_import_checks_every_row_and_is_idempotent,
    registry_import_objection_and_api_keys,
    reset_totp_forgets_the_second_factor
);

/// A lost phone: the operator resets the second factor; the account enrols again,
/// and its address is told by an email without a link (finding 9).
async fn reset_totp_forgets_the_second_factor(backend: Backend) {
    let sink = smtp_sink::SmtpSink::start().await;
    let db = TestDb::create(backend);
    let pool = db.pool();
    seed(&pool);
    let address = "zorg@regenboog.example.nl";
    {
        use diesel::prelude::*;
        use schoolsignal::db::schema::staff_accounts::dsl::*;
        let mut conn = pool.get().unwrap();
        let at = chrono::Utc::now().naive_utc();
        diesel::insert_into(staff_accounts)
            .values((
                email.eq(address),
                totp_secret.eq(Some("JBSWY3DPEHPK3PXP")),
                totp_enrolled_at.eq(Some(at)),
                created_at.eq(at),
            ))
            .execute(&mut *conn)
            .unwrap();
        // A live, verified session of that address, which the reset must end.
        use schoolsignal::db::schema::sessions;
        diesel::insert_into(sessions::table)
            .values((
                sessions::id_hash.eq("h"),
                sessions::email.eq(address),
                sessions::csrf_token.eq("c"),
                sessions::created_at.eq(at),
                sessions::last_seen_at.eq(at),
                sessions::verified_at.eq(Some(at)),
            ))
            .execute(&mut *conn)
            .unwrap();
    }
    assert_eq!(count_rows(&pool, "sessions"), 1);
    let smtp = [("SMTP_URL", format!("{}?tls=none", sink.url()))];
    // The command sends to the sink this test's runtime serves: block in place.
    let out = tokio::task::block_in_place(|| {
        run_with(
            &db,
            &["coordinators", "reset-totp", "Zorg@Regenboog.example.nl"],
            &smtp,
        )
    });
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains(address), "{}", text(&out));
    let mails = sink.received_for(address);
    assert_eq!(mails.len(), 1, "the address is told: {}", text(&out));
    assert_eq!(
        mails[0].subject(),
        "De tweede inlogstap van uw account is gewist"
    );
    assert!(mails[0].text_body().contains("Bel dan direct de beheerder"));
    let all = mails[0].all_decoded_text().to_lowercase();
    assert!(!all.contains("http") && !all.contains("href"), "no link");
    let (secret, enrolled): (Option<String>, Option<chrono::NaiveDateTime>) = {
        use diesel::prelude::*;
        use schoolsignal::db::schema::staff_accounts::dsl::*;
        let mut conn = pool.get().unwrap();
        staff_accounts
            .find(address)
            .select((totp_secret, totp_enrolled_at))
            .first(&mut *conn)
            .unwrap()
    };
    assert_eq!((secret, enrolled), (None, None));
    assert_eq!(count_rows(&pool, "sessions"), 0, "its sessions are gone");
    let out = run_with(
        &db,
        &["coordinators", "reset-totp", "nobody@example.org"],
        &smtp,
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("no portal account"), "{}", text(&out));
    assert_eq!(count_rows(&pool, "audit_log"), 1, "the reset is audited");
    assert_eq!(sink.received().len(), 1, "no email for an unknown address");
}
