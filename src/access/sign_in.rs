//! Signing in to the portal: a link redeemed once, then the second factor; a new
//! sign-in link on request; signing out. Each step is one call that runs in the
//! transaction it needs and writes its own audit rows, so the portal only parses,
//! checks its forms and renders.

use super::accounts::{self, Account};
use super::audit::{self, Action, Outcome};
use super::links::{self, token_hash, Link, NewLink};
use super::locales;
use super::operators;
use super::sessions::{self, Session};
use super::totp;
use crate::db::schema::notices;
use crate::db::{ts, write_tx, DbConn};
use crate::locale::Locale;
use crate::sealing::Keyring;
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;

/// How long a sign-in link works.
pub const LINK_VALID: Duration = Duration::minutes(15);
/// Sign-in links per address per [`LINK_VALID`]; more requests get the same answer
/// and no email.
const LINKS_PER_ADDRESS: i64 = 3;

/// What redeeming a link did.
pub enum Redeemed {
    /// A session started; the value is its cookie's.
    Session(String),
    /// A real link, used or expired: refused, but no guess.
    Refused,
    /// No such link: a guess, which the portal's per-client limit counts.
    Unknown,
    /// The link's account is locked out.
    Locked,
}

/// Redeems the link whose secret is `token`, once, in one write transaction: it
/// starts a session that still needs the second factor, bound to the link's address
/// and notice. Every outcome is audited.
pub fn redeem(conn: &mut DbConn, token: &str, now: DateTime<Utc>) -> QueryResult<Redeemed> {
    let hash = token_hash(token);
    write_tx(conn, |conn| redeem_in_tx(conn, &hash, now))
}

/// The checks, in their order: a known link, unused and not expired, an account not
/// locked, and only then the claim, which a concurrent redemption may have won.
fn redeem_in_tx(conn: &mut DbConn, hash: &str, now: DateTime<Utc>) -> QueryResult<Redeemed> {
    let Some(link) = links::find(conn, hash)? else {
        let outcome = Outcome::UnknownLink;
        audit::record(conn, "unknown", Action::FailedSignIn, None, outcome, now)?;
        return Ok(Redeemed::Unknown);
    };
    let email = link.recipient_email.to_lowercase();
    let notice = link.notice_id.as_deref();
    let failed = |conn: &mut DbConn, outcome| {
        audit::record(conn, &email, Action::FailedSignIn, notice, outcome, now)
    };
    if let Some(outcome) = refusal(&link, now) {
        failed(conn, outcome)?;
        return Ok(Redeemed::Refused);
    }
    if accounts::ensure(conn, &email, now)?.locked(now) {
        failed(conn, Outcome::Locked)?;
        return Ok(Redeemed::Locked);
    }
    if !links::claim(conn, hash, now)? {
        failed(conn, Outcome::UsedLink)?;
        return Ok(Redeemed::Refused);
    }
    start_from_link(conn, &email, notice, now).map(Redeemed::Session)
}

/// Why a real link is refused before it is claimed, if it is: used, or past its end.
fn refusal(link: &Link, now: DateTime<Utc>) -> Option<Outcome> {
    if link.used_at.is_some() {
        Some(Outcome::UsedLink)
    } else if link.expires_at <= ts(now) {
        Some(Outcome::ExpiredLink)
    } else {
        None
    }
}

/// Starts the session of a claimed link. A link to a notice whose data was purged
/// still signs in, to the list.
fn start_from_link(
    conn: &mut DbConn,
    email: &str,
    notice: Option<&str>,
    now: DateTime<Utc>,
) -> QueryResult<String> {
    let purged = match notice {
        Some(id) => is_purged(conn, id)?,
        None => false,
    };
    let cookie = sessions::start(conn, email, notice.filter(|_| !purged), now)?;
    audit::record(
        conn,
        email,
        Action::SignIn,
        notice,
        Outcome::LinkRedeemed,
        now,
    )?;
    Ok(cookie)
}

/// Whether a notice's data was purged (a read of the notices table: its owner, a
/// higher layer, is not ours to call).
fn is_purged(conn: &mut DbConn, notice_id: &str) -> QueryResult<bool> {
    notices::table
        .find(notice_id)
        .select(notices::purged_at.is_not_null())
        .first(conn)
}

/// Audits that a client was locked out for guessing links. The count of guesses per
/// client is the portal's: it lives in memory, not in the database.
pub fn client_locked_out(conn: &mut DbConn, client: &str, now: DateTime<Utc>) -> QueryResult<()> {
    audit::record(conn, client, Action::Lockout, None, Outcome::Links, now)
}

/// What the second-factor page asks for.
pub enum Prompt {
    /// A code, from the app enrolled before.
    Code,
    /// Enrolment: this secret, to scan or type into an app, then a first code.
    Enrol { secret: String },
}

/// The second-factor page for `email`, whose account is made on first use; None
/// when the account is locked out.
pub fn prompt(
    conn: &mut DbConn,
    keys: &Keyring,
    email: &str,
    now: DateTime<Utc>,
) -> QueryResult<Option<Prompt>> {
    let account = write_tx(conn, |conn| accounts::ensure(conn, email, now))?;
    if account.locked(now) {
        return Ok(None);
    }
    prompt_for(conn, keys, &account).map(Some)
}

/// A code once enrolled; until then the secret to enrol with, kept across reloads.
fn prompt_for(conn: &mut DbConn, keys: &Keyring, account: &Account) -> QueryResult<Prompt> {
    if account.totp_enrolled_at.is_some() {
        return Ok(Prompt::Code);
    }
    let secret = accounts::pending_secret(conn, keys, account)?;
    Ok(Prompt::Enrol { secret })
}

/// What checking a code did.
pub enum Checked {
    /// The session is verified, under a new id: this cookie value. When this code
    /// completed an enrolment, whom to tell that it did.
    Verified {
        cookie: String,
        enrolled: Option<FactorNotice>,
        /// The address is an operator's: a session from a link to no notice opens
        /// the operator dashboard.
        operator: bool,
    },
    /// Not right, or used already: ask again.
    Wrong(Prompt),
    /// Locked out: by this code (`now`, a new lockout) or before it.
    Locked { now: bool },
}

/// How the transaction of a code check ended.
enum Tried {
    /// The cookie, and whom to tell when the code completed an enrolment.
    Verified(String, Option<FactorNotice>, bool),
    Wrong(Account),
    Locked(bool),
}

/// Checks a code for a session in one write transaction, with the account's row
/// locked from the first read to the commit: whether it is locked, its count of
/// failures and the code's step are read and written in one turn, so concurrent
/// codes for one account are checked one after another and none while it is
/// locked. A right one verifies the session under a new id (so an id seen before
/// sign-in is worthless after); five wrong ones lock the account, for longer each
/// time in a row. A wrong one asks again, as the page did before.
pub fn check_code(
    conn: &mut DbConn,
    keys: &Keyring,
    session: &Session,
    code: &str,
    now: DateTime<Utc>,
) -> QueryResult<Checked> {
    Ok(
        match write_tx(conn, |conn| check_in_tx(conn, keys, session, code, now))? {
            Tried::Verified(cookie, enrolled, operator) => Checked::Verified {
                cookie,
                enrolled,
                operator,
            },
            Tried::Wrong(account) => Checked::Wrong(prompt_for(conn, keys, &account)?),
            Tried::Locked(now) => Checked::Locked { now },
        },
    )
}

fn check_in_tx(
    conn: &mut DbConn,
    keys: &Keyring,
    session: &Session,
    code: &str,
    now: DateTime<Utc>,
) -> QueryResult<Tried> {
    let (email, notice) = (session.email.as_str(), session.notice_id.as_deref());
    let account = accounts::lock(conn, email, now)?;
    if account.locked(now) {
        return Ok(Tried::Locked(false));
    }
    let Some(step) = valid_step(&account.secret(keys)?, &account, code) else {
        return wrong_code(conn, &account, email, notice, now);
    };
    if !accounts::accept_code(conn, &account, step, now)? {
        // Another request used this step first: a code verifies once.
        let outcome = Outcome::CodeUsed;
        audit::record(conn, email, Action::FailedSignIn, notice, outcome, now)?;
        return Ok(Tried::Wrong(accounts::ensure(conn, email, now)?));
    }
    sessions::end(conn, &session.id_hash)?;
    let cookie = sessions::start(conn, email, notice, now)?;
    sessions::mark_verified(conn, &sessions::hash(&cookie), now)?;
    audit::record(
        conn,
        email,
        Action::SignIn,
        notice,
        Outcome::SecondFactor,
        now,
    )?;
    // Read in the transaction: a sign-in that went through always has its notice.
    let enrolled = match account.totp_enrolled_at {
        None => Some(factor_notice(conn, email)?),
        Some(_) => None,
    };
    let operator = operators::is_operator(conn, email)?;
    Ok(Tried::Verified(cookie, enrolled, operator))
}

/// Whom to tell that an account's second factor was set up or reset: the account's
/// own address, whoever set it up. The email carries no link.
pub struct FactorNotice {
    pub email: String,
    /// The name the registry gives the address; empty when it gives none now.
    pub name: String,
    /// The language of the address's school.
    pub locale: Locale,
}

/// The [`FactorNotice`] for `email`.
pub fn factor_notice(conn: &mut DbConn, email: &str) -> QueryResult<FactorNotice> {
    let email = email.trim().to_lowercase();
    Ok(FactorNotice {
        name: accounts::name_of(conn, &email)?.unwrap_or_default(),
        locale: locales::of_address(conn, &email)?,
        email,
    })
}

/// The time step of a right code, if `code` is one. The phone's clock is the real
/// one, whatever SCHOOLSIGNAL_NOW says.
fn valid_step(secret: &Option<String>, account: &Account, code: &str) -> Option<u64> {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let secret = secret.as_deref()?;
    let last = account.totp_last_step.max(0) as u64;
    totp::verify(secret, code, unix, last)
}

/// Counts a wrong code, audited; the one that locks the account is audited as a
/// lockout too.
fn wrong_code(
    conn: &mut DbConn,
    account: &Account,
    email: &str,
    notice: Option<&str>,
    now: DateTime<Utc>,
) -> QueryResult<Tried> {
    let locked = accounts::count_failure(conn, account, now)?;
    let outcome = Outcome::WrongCode;
    audit::record(conn, email, Action::FailedSignIn, notice, outcome, now)?;
    if locked {
        audit::record(conn, email, Action::Lockout, notice, Outcome::Codes, now)?;
        return Ok(Tried::Locked(true));
    }
    Ok(Tried::Wrong(accounts::ensure(conn, email, now)?))
}

/// The name to greet a known address by: the registry's for a coordinator or
/// deputy, none for an operator; None for an address that may not sign in.
fn name_of(conn: &mut DbConn, email: &str) -> QueryResult<Option<String>> {
    match accounts::name_of(conn, email)? {
        Some(name) => Ok(Some(name)),
        None => Ok(operators::is_operator(conn, email)?.then(String::new)),
    }
}

/// Ends a session, audited.
pub fn sign_out(conn: &mut DbConn, session: &Session, now: DateTime<Utc>) -> QueryResult<()> {
    sessions::end(conn, &session.id_hash)?;
    audit::record(conn, &session.email, Action::Logout, None, Outcome::Ok, now)
}

/// A sign-in link to send, to the list of the address's notices.
pub struct SignInLink {
    /// The secret, which only the email carries.
    pub token: String,
    /// The recipient's name as the registry gives it.
    pub name: String,
    /// The language of their school, which the email is in.
    pub locale: Locale,
}

/// Issues a sign-in link to `email` (trimmed and lowercased by the caller), in one
/// write transaction with its audit row. None for an address that is no school's
/// coordinator or deputy, or that reached its limit: the caller answers the same.
/// The address's account row is locked before its links are counted, so that
/// concurrent requests for one address count and issue one after another.
pub fn request_link(
    conn: &mut DbConn,
    email: &str,
    now: DateTime<Utc>,
) -> QueryResult<Option<SignInLink>> {
    write_tx(conn, |conn| request_in_tx(conn, email, now))
}

fn request_in_tx(
    conn: &mut DbConn,
    email: &str,
    now: DateTime<Utc>,
) -> QueryResult<Option<SignInLink>> {
    let requested = |conn: &mut DbConn, actor: &str, outcome| {
        audit::record(conn, actor, Action::LinkRequest, None, outcome, now)
    };
    let Some(name) = name_of(conn, email)? else {
        requested(conn, "unknown", Outcome::UnknownAddress)?;
        return Ok(None);
    };
    // Taken before the count, held to the commit: the count and the new link are
    // one step for this address.
    accounts::lock(conn, email, now)?;
    if links::sign_in_links_since(conn, email, now - LINK_VALID)? >= LINKS_PER_ADDRESS {
        requested(conn, email, Outcome::Limited)?;
        return Ok(None);
    }
    let link = NewLink {
        notice_id: None,
        email,
    };
    let token = links::issue(conn, &[link], LINK_VALID, now)?.remove(0);
    requested(conn, email, Outcome::Sent)?;
    let locale = locales::of_address(conn, email)?;
    Ok(Some(SignInLink {
        token,
        name,
        locale,
    }))
}
