//! The operator's command line. With no subcommand it runs the service.

use crate::access::api_keys as keys;
use crate::app::Application;
use crate::config::{Config, DataKeysConfig};
use crate::contract::Bsn;
use crate::db::{self, DbConn};
use crate::registry::{enrollments, schools, KeyedHasher};
use crate::sealing::{Keyring, SEALED};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "schoolsignal",
    version,
    about = "Handle with Care: discreet notices to schools"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the service (the default).
    Serve,
    /// Run pending database migrations and exit.
    Migrate,
    /// Schools and their care coordinators.
    Schools {
        #[command(subcommand)]
        command: SchoolsCommand,
    },
    /// Enrollments, consent and objections.
    Registry {
        #[command(subcommand)]
        command: RegistryCommand,
    },
    /// API keys for police systems.
    Apikey {
        #[command(subcommand)]
        command: ApikeyCommand,
    },
    /// Coordinators' and deputies' portal accounts.
    Coordinators {
        #[command(subcommand)]
        command: CoordinatorsCommand,
    },
    /// The data keys that seal personal data at rest (SCHOOLSIGNAL_DATA_KEYS).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Who may see the operator dashboard (`/operator`).
    Operators {
        #[command(subcommand)]
        command: OperatorsCommand,
    },
    /// The timeliness report: counts only, per period, for the service, each holiday
    /// region and each school.
    Report(ReportArgs),
    /// The emails of development, written as `.eml` files when SMTP_URL is unset.
    Mail {
        #[command(subcommand)]
        command: MailCommand,
    },
}

#[derive(Subcommand)]
pub enum MailCommand {
    /// List the emails in SCHOOLSIGNAL_MAIL_DIR, newest first: recipient, subject and
    /// portal link, decoded.
    Links {
        /// Print only the newest portal link, for a shell:
        /// `xdg-open "$(schoolsignal mail links --latest)"`.
        #[arg(long)]
        latest: bool,
    },
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Print a new random key as ID:BASE64, to put first in SCHOOLSIGNAL_DATA_KEYS.
    Generate { id: String },
    /// Re-seal every value under the first key, in batches; safe while the service
    /// runs, and resumable. Values still in the clear are sealed too.
    Rotate,
    /// Count the stored values by the key that sealed them.
    Check,
}

#[derive(Subcommand)]
pub enum OperatorsCommand {
    /// Let an address sign in to the operator dashboard (link plus TOTP, from /login).
    Add { email: String },
    /// Take the role away and end the address's sessions.
    Remove { email: String },
}

#[derive(clap::Args)]
pub struct ReportArgs {
    /// First day (Dutch time), included: YYYY-MM-DD.
    #[arg(long)]
    pub from: chrono::NaiveDate,
    /// Last day (Dutch time), included; today by default.
    #[arg(long)]
    pub to: Option<chrono::NaiveDate>,
    /// Period of each row.
    #[arg(long, default_value = "week", value_parser = ["week", "month"])]
    pub by: String,
    #[arg(long, default_value = "table", value_parser = ["table", "csv", "json"])]
    pub format: String,
    /// For publication: every count from 1 to 4 (and a share or median over 1 to 4
    /// notices) reads `<5`.
    #[arg(long)]
    pub publish: bool,
}

#[derive(Subcommand)]
pub enum CoordinatorsCommand {
    /// Forget an account's second factor (a lost phone): the next sign-in enrols again.
    ResetTotp { email: String },
}

#[derive(Subcommand)]
pub enum SchoolsCommand {
    /// Import schools from CSV: brin,name,holiday_region,locale,school_day_start,
    /// coordinator_name,coordinator_email,deputy_name,deputy_email,participating
    Import { file: PathBuf },
}

#[derive(Subcommand)]
pub enum RegistryCommand {
    /// Import enrollments from CSV: bsn,school_brin,group,valid_from,valid_until,consent
    Import { file: PathBuf },
    /// Record that a child's parents object to notices. Takes effect at once.
    Object {
        #[arg(long)]
        bsn: String,
    },
}

#[derive(Subcommand)]
pub enum ApikeyCommand {
    /// Create a key; it is printed once and only its hash is stored.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// `test`: events are decided against the real registry, answered as for a
        /// live key, then rolled back (no notice, email or outcome message).
        #[arg(long, default_value = "live", value_parser = ["live", "test"])]
        mode: String,
    },
}

pub fn main(cli: Cli) -> ExitCode {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    // An operator command's standard output is its answer, which a shell may take
    // (`KEY=$(schoolsignal apikey create …)`, `mail links --latest`): its logs, such
    // as the warning about an unknown variable, go to standard error.
    if matches!(cli.command, None | Some(Command::Serve)) {
        crate::telemetry::init(config.log_format, std::io::stdout);
    } else {
        crate::telemetry::init(config.log_format, std::io::stderr);
    }
    Config::warn_unknown_variables();
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config),
        Command::Keys {
            command: KeysCommand::Generate { id },
        } => generate_key(&id),
        // Files only: no database, so it works while the service runs.
        Command::Mail {
            command: MailCommand::Links { latest },
        } => mail_links(&config.mail, latest),
        other => admin(other, &config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let served = runtime.block_on(async {
        let app = Application::build(config).await?;
        let stop = app.stopper();
        tokio::spawn(async move {
            crate::app::stop_signal().await;
            stop.cancel();
        });
        app.run_until_stopped().await?;
        Ok(())
    });
    // Database work still blocking a thread (a query hung on an outage) must not hold
    // the exit: its messages are unacked, so they are redelivered, and an event it did
    // commit is then recognised as seen.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    served
}

/// The operator commands: open one connection, migrate, do the one thing.
fn admin(command: Command, config: &Config) -> anyhow::Result<()> {
    let pool = db::pool(&config.db.url, 1);
    let mut conn = pool.get().map_err(|e| anyhow::anyhow!("database: {e}"))?;
    let ran = db::migrate::run_pending(&mut conn)?;
    let now = crate::clock::from_config(config.now).now();
    let hasher = KeyedHasher::new(&config.intake.bsn_key);
    let conn: &mut DbConn = &mut conn;
    match command {
        Command::Serve
        | Command::Mail { .. }
        | Command::Keys {
            command: KeysCommand::Generate { .. },
        } => unreachable!("handled by main"),
        Command::Keys { command } => data_keys(conn, config, command, now)?,
        Command::Migrate => println!("{ran} migration(s) run"),
        Command::Schools {
            command: SchoolsCommand::Import { file },
        } => {
            let simulated = if config.simulated_schools {
                schools::Simulated::Allowed
            } else {
                schools::Simulated::Refused
            };
            let summary = schools::import(conn, open(&file)?, db::ts(now), simulated)?;
            println!("schools: {summary}");
        }
        Command::Registry { command } => {
            let keys = Keyring::new(&config.data_keys);
            registry(conn, (&hasher, &keys), command, now)?
        }
        Command::Apikey {
            command: ApikeyCommand::Create { name, scopes, mode },
        } => {
            let mode = mode
                .parse()
                .map_err(|_| anyhow::anyhow!("--mode must be live or test"))?;
            let key = keys::create(conn, &name, &scopes, mode, now).map_err(anyhow::Error::msg)?;
            println!("{key}");
            eprintln!("Store this key now: it is not shown again.");
        }
        Command::Coordinators {
            command: CoordinatorsCommand::ResetTotp { email },
        } => reset_totp(conn, config, email.trim(), now)?,
        Command::Operators { command } => operators(conn, command, now)?,
        Command::Report(args) => print!("{}", report(conn, args, now)?),
    }
    Ok(())
}

/// A new data key. Nothing is stored: the operator puts it in the secret.
fn generate_key(id: &str) -> anyhow::Result<()> {
    use base64::Engine;
    anyhow::ensure!(
        crate::config::is_key_id(id),
        "the key id must be 1 to 32 letters, digits or '-'"
    );
    let mut secret = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut secret);
    let secret = base64::engine::general_purpose::STANDARD.encode(secret);
    println!("{id}:{secret}");
    Ok(())
}

/// `keys rotate` and `keys check`. Rotation checks the keys against the database
/// first, as the service does, so that it never seals under a wrong key.
fn data_keys(
    conn: &mut DbConn,
    config: &Config,
    command: KeysCommand,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let keys = Keyring::new(&config.data_keys);
    if let KeysCommand::Rotate = command {
        db::keys::register(conn, &keys, now)?;
        for column in SEALED {
            let mut resealed = 0;
            loop {
                let n = db::keys::rotate_batch(conn, &keys, *column, ROTATE_BATCH)?;
                if n == 0 {
                    break;
                }
                resealed += n;
            }
            println!(
                "{}.{}: {resealed} value(s) sealed under key `{}`",
                column.table,
                column.name,
                keys.current_id()
            );
        }
    }
    print_key_counts(&db::keys::check(conn)?, &config.data_keys);
    Ok(())
}

/// Values re-sealed per transaction.
const ROTATE_BATCH: i64 = 500;

/// One line per column and key, then each configured key's total, so an operator
/// sees which keys still hold values and which can be removed.
fn print_key_counts(counts: &[db::keys::KeyCount], configured: &DataKeysConfig) {
    for c in counts {
        let key = c.key_id.as_deref().unwrap_or("(clear)");
        println!("{:<36} {key:<12} {}", c.column, c.values);
    }
    let total = |id: Option<&str>| -> i64 {
        counts
            .iter()
            .filter(|c| c.key_id.as_deref() == id)
            .map(|c| c.values)
            .sum()
    };
    for key in &configured.keys {
        println!("key {}: {} value(s)", key.id, total(Some(&key.id)));
    }
    println!("in the clear: {} value(s)", total(None));
    let unlisted: std::collections::BTreeSet<&str> = counts
        .iter()
        .filter_map(|c| c.key_id.as_deref())
        .filter(|id| configured.keys.iter().all(|k| k.id != *id))
        .collect();
    for id in unlisted {
        println!(
            "key {id}: {} value(s), NOT LISTED in SCHOOLSIGNAL_DATA_KEYS: they cannot be read",
            total(Some(id))
        );
    }
}

fn registry(
    conn: &mut DbConn,
    (hasher, keys): (&KeyedHasher, &Keyring),
    command: RegistryCommand,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    match command {
        RegistryCommand::Import { file } => {
            // The groups are sealed: never under a key the database does not know.
            db::keys::register(conn, keys, now)?;
            let summary = enrollments::import(conn, (hasher, keys), open(&file)?)?;
            println!("enrollments: {summary}");
        }
        RegistryCommand::Object { bsn } => {
            let bsn = Bsn::parse(bsn.trim()).ok_or_else(|| {
                anyhow::anyhow!("--bsn must be 9 digits that pass the eleven test")
            })?;
            let new = enrollments::record_objection(conn, hasher, &bsn, db::ts(now))?;
            println!(
                "{}",
                if new {
                    "objection recorded"
                } else {
                    "objection was already recorded"
                }
            );
        }
    }
    Ok(())
}

fn operators(
    conn: &mut DbConn,
    command: OperatorsCommand,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    use crate::access::operators;
    match command {
        OperatorsCommand::Add { email } => {
            let email = email.trim().to_lowercase();
            if !schools::is_coordinator_address(&email) {
                anyhow::bail!("not a bare address on a dotted domain (like name@example.nl)");
            }
            if operators::add(conn, &email, now)? {
                println!("operator added: they ask for a sign-in link at /login");
            } else {
                println!("already an operator");
            }
        }
        OperatorsCommand::Remove { email } => {
            if !operators::remove(conn, &email, now)? {
                anyhow::bail!("no operator with that address");
            }
            println!("operator removed; their sessions ended");
        }
    }
    Ok(())
}

/// The report in the format asked for.
fn report(conn: &mut DbConn, args: ReportArgs, now: DateTime<Utc>) -> anyhow::Result<String> {
    use crate::report::{self, format, Grouping, Query};
    let to = args.to.unwrap_or_else(|| report::local_day(db::ts(now)));
    if args.from > to {
        anyhow::bail!("--from must not be after --to");
    }
    let by = Grouping::parse(&args.by).unwrap_or(Grouping::Week);
    let built = report::build(
        conn,
        &Query {
            from: args.from,
            to,
            by,
        },
    )?;
    Ok(match args.format.as_str() {
        "csv" => format::csv(&built, args.publish),
        "json" => format::json(&built, args.publish),
        _ => format::table(&built, args.publish),
    })
}

/// Resets the second factor, then tells the account's address by email (without a
/// link), as the portal does when one is set up. A reset that could not be told is
/// still a reset: the operator is asked to tell them.
fn reset_totp(
    conn: &mut DbConn,
    config: &Config,
    email: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    if !crate::access::accounts::reset_totp_by_operator(conn, email, now)? {
        anyhow::bail!("no portal account for that address");
    }
    println!("second factor reset: the next sign-in enrols again");
    match tell_reset(conn, config, email, now) {
        Ok(true) => println!("the account's address was told by email"),
        Ok(false) => eprintln!(
            "warning: the email to the account's address was not sent; tell them yourself"
        ),
        Err(e) => eprintln!("warning: no email to the account's address ({e}); tell them yourself"),
    }
    Ok(())
}

/// Sends the reset's email to the account's address, with a transport of its own.
fn tell_reset(
    conn: &mut DbConn,
    config: &Config,
    email: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    use crate::delivery::sign_in::{FactorChange, FactorEmail, SignInMail};
    let notice = crate::access::sign_in::factor_notice(conn, email)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mail = SignInMail::open(&config.mail, &config.portal.public_url, &config.org)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let email = FactorEmail {
            to: &notice.email,
            name: &notice.name,
            locale: notice.locale,
            change: FactorChange::Reset,
        };
        Ok(mail.send_factor_notice(email, now).await)
    })
}

/// `mail links`: the `.eml` files the service wrote, read back. Standard output
/// holds only the listing (or the one link), so a shell can take it; a file that
/// cannot be read is named on standard error, the others are still listed, and the
/// exit status then says that one was not.
fn mail_links(mail: &crate::config::MailConfig, latest: bool) -> anyhow::Result<()> {
    use crate::delivery::eml_files;
    anyhow::ensure!(
        mail.smtp_url.is_none(),
        "SMTP_URL is set: emails go to that SMTP server and no .eml files are written, so there are none to list"
    );
    let read = eml_files::read_folder(&mail.dir)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", mail.dir.display()))?;
    if read.is_empty() {
        let none = format!("no emails in {} yet", mail.dir.display());
        // With --latest, standard output is for a link only.
        if latest {
            eprintln!("{none}");
        } else {
            println!("{none}");
        }
        return Ok(());
    }
    let mut emails = Vec::new();
    let mut unread = 0;
    for result in read {
        match result {
            Ok(email) => emails.push(email),
            Err(e) => {
                eprintln!("error: {e}");
                unread += 1;
            }
        }
    }
    if latest {
        println!("{}", newest_link(&emails, &mail.dir)?);
    } else {
        print!("{}", eml_files::table(&emails));
    }
    anyhow::ensure!(unread == 0, "{unread} file(s) could not be read (above)");
    Ok(())
}

/// The link of the newest email that has one: a note about a second factor, say,
/// has none.
fn newest_link<'a>(
    emails: &'a [crate::delivery::eml_files::EmlSummary],
    dir: &std::path::Path,
) -> anyhow::Result<&'a str> {
    emails
        .iter()
        .find_map(|e| e.link.as_deref())
        .ok_or_else(|| anyhow::anyhow!("no portal link in the emails in {}", dir.display()))
}

fn open(path: &PathBuf) -> anyhow::Result<std::fs::File> {
    std::fs::File::open(path).map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))
}
