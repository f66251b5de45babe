//! The reads and actions the portal needs: the notices of a coordinator's own
//! schools, one of them with its notes and signals, and what a coordinator does with
//! it (acknowledge, write a note, close, report a signal). Each runs in one write
//! transaction with its audit row. A notice of any other school is "not found",
//! whether or not it exists.

use super::NoticeStatus;
use crate::access::accounts;
use crate::access::audit::{self, Action, Outcome};
use crate::contract::outbound::{rfc3339, SchoolRef};
use crate::contract::school_signal::{self, SchoolSignal, SIGNAL_SCHEMA};
use crate::db::schema::{notice_notes, notices, outbox_messages, school_signals, schools};
use crate::db::{ts, write_tx, DbConn};
use crate::locale::Locale;
use crate::outbox::{self, NewMessage};
use crate::sealing::{columns, Column, Keyring, SealError};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use std::sync::Arc;

/// Who acts on the portal, when, and with what: every read and action takes one.
#[derive(Clone)]
pub struct Desk {
    pub email: String,
    pub now: DateTime<Utc>,
    /// Opens the child's data, and seals notes and signals.
    pub keys: Arc<Keyring>,
    /// `SCHOOLSIGNAL_RETENTION_DAYS=0`: a notice's personal data is erased in the
    /// transaction that closes it.
    pub erase_on_close: bool,
}

crate::text_enum! {
    /// How a coordinator closes a notice (`notices.close_outcome`).
    pub enum CloseOutcome {
        SupportOffered = "support_offered",
        Referred = "referred",
        Ongoing = "ongoing",
        Other = "other",
    }
}

crate::text_enum! {
    /// The kind of a signal (contract section 3), stored and published as is.
    pub enum SignalCategory {
        BehaviourChange = "behaviour_change",
        Injury = "injury",
        Absence = "absence",
        Disclosure = "disclosure",
        HygieneOrNeglect = "hygiene_or_neglect",
        Other = "other",
    }
}

crate::text_enum! {
    /// How urgent a signal is (contract section 3).
    pub enum Urgency {
        Routine = "routine",
        Urgent = "urgent",
    }
}

/// The most a note or a signal's description may hold (contract section 3).
pub const MAX_TEXT: usize = 4000;

/// A free text as a form sent it, trimmed; None when empty or too long.
pub fn free_text(value: &str) -> Option<String> {
    let value = value.trim();
    let fits = !value.is_empty() && value.chars().count() <= MAX_TEXT;
    (fits && !value.chars().any(is_stray_control)).then(|| value.to_string())
}

/// A control character other than a line break or a tab: nothing a person types. A
/// NUL would even fail PostgreSQL's insert, and look like an outage.
fn is_stray_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\n' | '\r' | '\t')
}

/// One notice as the portal shows it, with its school, the child's data opened. No
/// `Debug`: it holds the child's data.
#[derive(Clone, Queryable)]
pub struct NoticeView {
    pub id: String,
    pub incident_id: String,
    pub child_index: i32,
    pub school_brin: String,
    pub school_name: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// `YYYY-MM-DD`, as sealed; see [`NoticeView::birth_date`].
    pub date_of_birth: Option<String>,
    pub group: Option<String>,
    /// `yes` or `no`, as sealed; see [`NoticeView::present`].
    pub child_present: Option<String>,
    pub visited_at: NaiveDateTime,
    #[diesel(deserialize_as = String)]
    pub status: NoticeStatus,
    pub due_at: Option<NaiveDateTime>,
    pub acknowledged_at: Option<NaiveDateTime>,
    pub closed_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub purged_at: Option<NaiveDateTime>,
    /// The school's locale, which pages about this notice are in.
    pub school_locale: String,
}

/// Where a notice stands for its coordinator; the list groups by it, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Open,
    Acknowledged,
    Closed,
    Withdrawn,
}

impl Stage {
    pub const ALL: [Stage; 4] = [
        Stage::Open,
        Stage::Acknowledged,
        Stage::Closed,
        Stage::Withdrawn,
    ];
}

impl NoticeView {
    pub fn withdrawn(&self) -> bool {
        self.status == NoticeStatus::Withdrawn
    }

    pub fn locale(&self) -> Locale {
        Locale::parse(&self.school_locale).unwrap_or_default()
    }

    /// The child's date of birth; None once it was purged.
    pub fn birth_date(&self) -> Option<NaiveDate> {
        self.date_of_birth.as_deref()?.parse().ok()
    }

    /// Opens the child's data, which is loaded sealed.
    fn opened(mut self, keys: &Keyring) -> Result<Self, SealError> {
        let id = self.id.clone();
        let open = |column: Column, value: &mut Option<String>| -> Result<(), SealError> {
            *value = keys.open_opt(column.at(&id), value.as_deref())?;
            Ok(())
        };
        open(columns::GIVEN_NAME, &mut self.given_name)?;
        open(columns::FAMILY_NAME, &mut self.family_name)?;
        open(columns::DATE_OF_BIRTH, &mut self.date_of_birth)?;
        open(columns::GROUP, &mut self.group)?;
        open(columns::PRESENT, &mut self.child_present)?;
        Ok(self)
    }

    /// Whether the child was present during the incident; None for a notice from
    /// before this was kept, or once it was purged.
    pub fn present(&self) -> Option<bool> {
        match self.child_present.as_deref() {
            Some("yes") => Some(true),
            Some("no") => Some(false),
            _ => None,
        }
    }

    /// The child's full name; None once it was purged.
    pub fn child_name(&self) -> Option<String> {
        match (&self.given_name, &self.family_name) {
            (Some(given), Some(family)) => Some(format!("{given} {family}")),
            _ => None,
        }
    }

    /// Withdrawn above all; closed before acknowledged, since closing acknowledges.
    pub fn stage(&self) -> Stage {
        if self.withdrawn() {
            Stage::Withdrawn
        } else if self.closed_at.is_some() {
            Stage::Closed
        } else if self.acknowledged_at.is_some() {
            Stage::Acknowledged
        } else {
            Stage::Open
        }
    }
}

/// A note on a notice. No `Debug`: its body may name the child.
pub struct NoteView {
    pub at: NaiveDateTime,
    /// The author's name as the school's registry gives it; their address when the
    /// registry no longer lists them.
    pub author: String,
    /// None once the notice's data was purged.
    pub body: Option<String>,
}

/// A signal reported about a notice. No `Debug`: its description may name the child.
pub struct SignalView {
    pub at: NaiveDateTime,
    /// As stored: a [`SignalCategory`] unless written by another version.
    pub category: String,
    /// As stored: an [`Urgency`].
    pub urgency: String,
    /// None once the notice's data was purged.
    pub description: Option<String>,
    /// When the broker confirmed the message; None while it waits.
    pub published_at: Option<NaiveDateTime>,
}

/// A notice's notes and signals, oldest first.
#[derive(Default)]
pub struct History {
    pub notes: Vec<NoteView>,
    pub signals: Vec<SignalView>,
}

/// The notices of the desk's schools, newest first (at most 500).
pub fn list(conn: &mut DbConn, desk: &Desk) -> QueryResult<Vec<NoticeView>> {
    mine(conn, desk, None)
}

/// The notices of the desk's schools, newest first; one notice when `id` is given.
fn mine(conn: &mut DbConn, desk: &Desk, id: Option<&str>) -> QueryResult<Vec<NoticeView>> {
    let brins = accounts::schools_of(conn, &desk.email)?;
    let mut query = notices::table
        .inner_join(schools::table)
        .filter(notices::school_brin.eq_any(brins))
        .order(notices::created_at.desc())
        .limit(500)
        .select((
            notices::id,
            notices::incident_id,
            notices::child_index,
            notices::school_brin,
            schools::name,
            notices::child_given_name,
            notices::child_family_name,
            notices::child_date_of_birth,
            notices::child_group,
            notices::child_present,
            notices::visited_at,
            notices::status,
            notices::due_at,
            notices::acknowledged_at,
            notices::closed_at,
            notices::created_at,
            notices::purged_at,
            schools::locale,
        ))
        .into_boxed();
    if let Some(id) = id {
        query = query.filter(notices::id.eq(id.to_string()));
    }
    let stored: Vec<NoticeView> = query.load(conn)?;
    let opened = stored.into_iter().map(|n| n.opened(&desk.keys));
    Ok(opened.collect::<Result<_, _>>()?)
}

/// Runs `act` on one notice of the desk's schools, in one write transaction with its
/// audit row; any other notice is None, audited as not found. Returns the notice and
/// what `act` said, which is also the audit row's result.
fn audited(
    conn: &mut DbConn,
    desk: &Desk,
    id: &str,
    action: Action,
    act: impl FnOnce(&mut DbConn, &NoticeView) -> QueryResult<Outcome>,
) -> QueryResult<Option<(NoticeView, Outcome)>> {
    let (email, now) = (desk.email.as_str(), desk.now);
    write_tx(conn, |conn| {
        let Some(notice) = mine(conn, desk, Some(id))?.into_iter().next() else {
            audit::record(conn, email, action, Some(id), Outcome::NotFound, now)?;
            return Ok(None);
        };
        let outcome = act(conn, &notice)?;
        audit::record(conn, email, action, Some(id), outcome, now)?;
        Ok(Some((notice, outcome)))
    })
}

/// One notice of the desk's schools, its viewing audited, with its notes and
/// signals; None for any other notice. A withdrawn notice shows only that it was
/// withdrawn, so its history is not read.
pub fn show(
    conn: &mut DbConn,
    desk: &Desk,
    id: &str,
) -> QueryResult<Option<(NoticeView, History)>> {
    let viewed = audited(conn, desk, id, Action::View, |_, _| Ok(Outcome::Ok))?;
    let Some((notice, _)) = viewed else {
        return Ok(None);
    };
    let history = if notice.withdrawn() {
        History::default()
    } else {
        history(conn, &desk.keys, &notice)?
    };
    Ok(Some((notice, history)))
}

#[derive(Queryable)]
struct StoredNote {
    id: i64,
    at: NaiveDateTime,
    author: String,
    body: Option<String>,
}

#[derive(Queryable)]
struct StoredSignal {
    signal_id: String,
    at: NaiveDateTime,
    category: String,
    urgency: String,
    description: Option<String>,
    published_at: Option<NaiveDateTime>,
}

fn history(conn: &mut DbConn, keys: &Keyring, notice: &NoticeView) -> QueryResult<History> {
    let (notice_id, people) = (&notice.id, people_at(conn, &notice.school_brin)?);
    let notes: Vec<StoredNote> = notice_notes::table
        .filter(notice_notes::notice_id.eq(notice_id))
        .order(notice_notes::id)
        .select((
            notice_notes::id,
            notice_notes::created_at,
            notice_notes::author,
            notice_notes::body,
        ))
        .load(conn)?;
    let signals: Vec<StoredSignal> = school_signals::table
        .left_join(
            outbox_messages::table
                .on(outbox_messages::message_id.eq(school_signals::outbox_message_id)),
        )
        .filter(school_signals::notice_id.eq(notice_id))
        .order(school_signals::reported_at)
        .select((
            school_signals::signal_id,
            school_signals::reported_at,
            school_signals::category,
            school_signals::urgency,
            school_signals::description,
            outbox_messages::published_at.nullable(),
        ))
        .load(conn)?;
    let note = |n: StoredNote| -> Result<NoteView, SealError> {
        let body = keys.open_opt(columns::NOTE_BODY.at(&n.id.to_string()), n.body.as_deref())?;
        Ok(NoteView {
            at: n.at,
            author: name_in(&people, &n.author).unwrap_or(n.author),
            body,
        })
    };
    let signal = |s: StoredSignal| -> Result<SignalView, SealError> {
        let place = columns::SIGNAL_DESCRIPTION.at(&s.signal_id);
        Ok(SignalView {
            at: s.at,
            category: s.category,
            urgency: s.urgency,
            description: keys.open_opt(place, s.description.as_deref())?,
            published_at: s.published_at,
        })
    };
    Ok(History {
        notes: notes.into_iter().map(note).collect::<Result<_, _>>()?,
        signals: signals.into_iter().map(signal).collect::<Result<_, _>>()?,
    })
}

/// What an action did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acted {
    /// Done, or nothing left to do (acknowledged or closed already).
    Done,
    /// Refused, nothing written: the notice was withdrawn or its data purged.
    Withdrawn,
    /// Refused, nothing written: the form was not filled in right.
    Invalid,
}

/// What the portal gets back from an action: None for a notice that is not one of
/// the coordinator's; else the notice (whose locale the answer is in) and what the
/// action did.
pub type ActResult = QueryResult<Option<(NoticeView, Acted)>>;

/// Runs an action on one notice of the desk's schools. The checks come in this
/// order: my school's notice, not withdrawn or purged, and only then the form's
/// fields (`form` is None when they are not right), so that an invalid form tells
/// nothing about a notice that is not mine.
fn act<T>(
    conn: &mut DbConn,
    (desk, id): (&Desk, &str),
    action: Action,
    form: Option<T>,
    apply: impl FnOnce(&mut DbConn, &NoticeView, T) -> QueryResult<Outcome>,
) -> ActResult {
    let done = audited(conn, desk, id, action, |conn, notice| {
        if notice.withdrawn() || notice.purged_at.is_some() {
            return Ok(Outcome::RefusedWithdrawn);
        }
        match form {
            Some(form) => apply(conn, notice, form),
            None => Ok(Outcome::Invalid),
        }
    })?;
    Ok(done.map(|(notice, outcome)| {
        let acted = match outcome {
            Outcome::RefusedWithdrawn => Acted::Withdrawn,
            Outcome::Invalid => Acted::Invalid,
            _ => Acted::Done,
        };
        (notice, acted)
    }))
}

/// "Received — we will offer support today"; once.
pub fn acknowledge(conn: &mut DbConn, desk: &Desk, id: &str) -> ActResult {
    act(
        conn,
        (desk, id),
        Action::Acknowledge,
        Some(()),
        |conn, notice, ()| {
            if notice.acknowledged_at.is_none() {
                acknowledge_in(conn, &notice.id, desk.now)?;
            }
            Ok(Outcome::Ok)
        },
    )
}

/// Conditional, so that a notice keeps the first acknowledgement's time. The
/// status moves on from where a notice waits (made or delivered), never back from
/// closed.
fn acknowledge_in(conn: &mut DbConn, id: &str, now: DateTime<Utc>) -> QueryResult<()> {
    diesel::update(
        notices::table
            .find(id)
            .filter(notices::acknowledged_at.is_null()),
    )
    .set((
        notices::acknowledged_at.eq(Some(ts(now))),
        notices::updated_at.eq(ts(now)),
    ))
    .execute(conn)?;
    let waiting = notices::status
        .eq(NoticeStatus::PendingDelivery)
        .or(notices::status.eq(NoticeStatus::Delivered));
    diesel::update(notices::table.find(id).filter(waiting))
        .set(notices::status.eq(NoticeStatus::Acknowledged))
        .execute(conn)?;
    Ok(())
}

/// A follow-up note by the desk; notes are only ever added. `body` is None when the
/// form's text was not right (see [`free_text`]). The note is inserted first, since
/// its sealed body is bound to the row id the insert gives it.
pub fn note(conn: &mut DbConn, desk: &Desk, id: &str, body: Option<String>) -> ActResult {
    act(
        conn,
        (desk, id),
        Action::Note,
        body,
        |conn, notice, body| {
            diesel::insert_into(notice_notes::table)
                .values((
                    notice_notes::notice_id.eq(&notice.id),
                    notice_notes::author.eq(&desk.email),
                    notice_notes::body.eq(None::<String>),
                    notice_notes::created_at.eq(ts(desk.now)),
                ))
                .execute(conn)?;
            let row = crate::db::backend::last_insert_id(conn)?;
            let sealed = desk
                .keys
                .seal(columns::NOTE_BODY.at(&row.to_string()), &body);
            diesel::update(notice_notes::table.find(row))
                .set(notice_notes::body.eq(Some(sealed)))
                .execute(conn)?;
            Ok(Outcome::Ok)
        },
    )
}

/// Closes a notice with an outcome (None when the form sent none of them). Closing
/// also acknowledges: a closed notice is never escalated.
pub fn close(conn: &mut DbConn, desk: &Desk, id: &str, outcome: Option<CloseOutcome>) -> ActResult {
    act(
        conn,
        (desk, id),
        Action::Close,
        outcome,
        |conn, notice, outcome| {
            if notice.closed_at.is_some() {
                return Ok(Outcome::AlreadyClosed);
            }
            acknowledge_in(conn, &notice.id, desk.now)?;
            diesel::update(notices::table.find(&notice.id))
                .set((
                    notices::status.eq(NoticeStatus::Closed),
                    notices::closed_at.eq(Some(ts(desk.now))),
                    notices::close_outcome.eq(Some(outcome.as_str())),
                    notices::updated_at.eq(ts(desk.now)),
                ))
                .execute(conn)?;
            if desk.erase_on_close {
                super::retention::erase(conn, std::slice::from_ref(&notice.id), desk.now)?;
            }
            Ok(Outcome::Ok)
        },
    )
}

/// A signal as the form sent it.
pub struct NewSignal {
    pub category: SignalCategory,
    pub urgency: Urgency,
    pub description: String,
}

/// Stores a signal by the desk and queues `school_signal.v1` to `exchange` in the
/// same transaction: a saved signal is never lost, even when the broker is down.
/// `signal` is None when the form was not filled in right. The description and the
/// message are sealed; the relay opens the message to publish it.
pub fn signal(
    conn: &mut DbConn,
    desk: &Desk,
    id: &str,
    signal: Option<NewSignal>,
    exchange: &str,
) -> ActResult {
    act(
        conn,
        (desk, id),
        Action::Signal,
        signal,
        |conn, notice, signal| {
            let body = signal_body(conn, notice, signal, &desk.email, desk.now)?;
            let message = NewMessage::new(exchange, SIGNAL_SCHEMA, SIGNAL_SCHEMA, &body, desk.now)
                .sealed(&desk.keys);
            let description = columns::SIGNAL_DESCRIPTION.at(&body.signal_id);
            diesel::insert_into(school_signals::table)
                .values((
                    school_signals::signal_id.eq(&body.signal_id),
                    school_signals::notice_id.eq(&notice.id),
                    school_signals::category.eq(body.category),
                    school_signals::urgency.eq(body.urgency),
                    school_signals::description
                        .eq(Some(desk.keys.seal(description, &body.description))),
                    school_signals::reporter_email.eq(&desk.email),
                    school_signals::reported_at.eq(ts(desk.now)),
                    school_signals::outbox_message_id.eq(&message.message_id),
                ))
                .execute(conn)?;
            outbox::enqueue(conn, &[message])?;
            Ok(Outcome::Ok)
        },
    )
}

/// The message about a new signal, with a new id; the reporter named as the registry
/// names them at the notice's school.
fn signal_body(
    conn: &mut DbConn,
    notice: &NoticeView,
    signal: NewSignal,
    reporter: &str,
    now: DateTime<Utc>,
) -> QueryResult<SchoolSignal> {
    Ok(SchoolSignal {
        schema: SIGNAL_SCHEMA,
        signal_id: uuid::Uuid::new_v4().to_string(),
        notice_id: notice.id.clone(),
        incident_id: notice.incident_id.clone(),
        child_index: notice.child_index,
        child: school_signal::Child {
            given_name: notice.given_name.clone().unwrap_or_default(),
            family_name: notice.family_name.clone().unwrap_or_default(),
            date_of_birth: notice.date_of_birth.clone().unwrap_or_default(),
        },
        school: SchoolRef {
            brin: notice.school_brin.clone(),
            name: notice.school_name.clone(),
        },
        category: signal.category.as_str(),
        urgency: signal.urgency.as_str(),
        description: signal.description,
        reported_at: rfc3339(now),
        reporter: school_signal::Reporter {
            name: reporter_name(conn, &notice.school_brin, reporter)?,
            email: reporter.to_string(),
        },
    })
}

/// The name the registry gives this address at this school.
pub fn reporter_name(conn: &mut DbConn, brin: &str, email: &str) -> QueryResult<String> {
    Ok(name_in(&people_at(conn, brin)?, email).unwrap_or_default())
}

/// Whom the registry lists at a school, as (address, name): its coordinator and
/// deputy.
fn people_at(conn: &mut DbConn, brin: &str) -> QueryResult<Vec<(String, String)>> {
    type Row = (String, String, Option<String>, Option<String>);
    let row: Option<Row> = schools::table
        .find(brin)
        .select((
            schools::coordinator_email,
            schools::coordinator_name,
            schools::deputy_email,
            schools::deputy_name,
        ))
        .first(conn)
        .optional()?;
    let Some((coordinator_email, coordinator_name, deputy_email, deputy_name)) = row else {
        return Ok(Vec::new());
    };
    let deputy = deputy_email.zip(deputy_name);
    Ok([(coordinator_email, coordinator_name)]
        .into_iter()
        .chain(deputy)
        .collect())
}

/// The name of `email` among `people`; addresses compare without case.
fn name_in(people: &[(String, String)], email: &str) -> Option<String> {
    people
        .iter()
        .find(|(address, name)| address.eq_ignore_ascii_case(email) && !name.is_empty())
        .map(|(_, name)| name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stored and published: these strings never change.
    #[test]
    fn codes_are_the_contract_s() {
        let codes = |all: &[&'static str]| all.join(" ");
        assert_eq!(
            codes(&SignalCategory::ALL.map(SignalCategory::as_str)),
            "behaviour_change injury absence disclosure hygiene_or_neglect other"
        );
        assert_eq!(codes(&Urgency::ALL.map(Urgency::as_str)), "routine urgent");
        assert_eq!(
            codes(&CloseOutcome::ALL.map(CloseOutcome::as_str)),
            "support_offered referred ongoing other"
        );
    }

    #[test]
    fn free_text_is_trimmed_and_bounded() {
        assert_eq!(free_text("  a note \n").as_deref(), Some("a note"));
        assert_eq!(free_text(" \t "), None);
        assert!(free_text(&"é".repeat(MAX_TEXT)).is_some());
        assert_eq!(free_text(&"é".repeat(MAX_TEXT + 1)), None);
        assert_eq!(
            free_text("two\r\nlines\tand a tab").as_deref(),
            Some("two\r\nlines\tand a tab")
        );
        assert_eq!(free_text("a\0b"), None);
        assert_eq!(free_text("a\u{1b}[31mb"), None);
    }
}
