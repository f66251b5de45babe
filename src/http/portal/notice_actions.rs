//! What a coordinator does with a notice: acknowledge it, write follow-up notes
//! (append-only), close it with an outcome, and report a signal to Veilig Thuis,
//! which leaves through the outbox like every other message.

use super::i18n::{self, Locale};
use super::notice_pages::{local, on_my_notice, Act};
use super::{see_other, Portal, PortalError};
use crate::access::audit::action;
use crate::access::sessions::Session;
use crate::contract::outbound::{rfc3339, SchoolRef};
use crate::db::schema::{notice_notes, notices, outbox_messages, school_signals, schools};
use crate::db::{ts, DbConn};
use crate::outbox::{self, NewMessage};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

/// Signal categories (contract section 3); their labels are `category_<code>` in
/// the catalogue.
pub const CATEGORIES: &[&str] = &[
    "behaviour_change",
    "injury",
    "absence",
    "disclosure",
    "hygiene_or_neglect",
    "other",
];

/// Outcomes of closing; labels `outcome_<code>`.
pub const CLOSE_OUTCOMES: &[&str] = &["support_offered", "referred", "ongoing", "other"];

/// `(code, label)` pairs for a form's options, in `locale`.
pub fn options(
    codes: &[&'static str],
    prefix: &str,
    locale: Locale,
) -> Vec<(&'static str, &'static str)> {
    codes
        .iter()
        .map(|code| (*code, i18n::t(locale, &format!("{prefix}_{code}"))))
        .collect()
}

/// The most a note or a signal's description may hold (contract section 3).
pub const MAX_TEXT: usize = 4000;

pub const SIGNAL_SCHEMA: &str = "school_signal.v1";

#[derive(Debug, Deserialize)]
pub struct TextForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    body: String,
}

#[derive(Debug, Deserialize)]
pub struct CloseForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    outcome: String,
}

#[derive(Debug, Deserialize)]
pub struct SignalForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    urgency: String,
    #[serde(default)]
    description: String,
}

/// A free text as a form sent it: trimmed, not empty, not too long.
fn text(value: &str) -> Result<String, PortalError> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > MAX_TEXT {
        return Err(PortalError::Invalid);
    }
    Ok(value.to_string())
}

/// What an action would do, once the form is read; or why the form is refused.
type Build = Box<dyn FnOnce(&Session) -> Result<Act, PortalError> + Send>;

/// Runs an action on my notice, then shows the notice. The checks come in this
/// order: signed in (401), the form's token and origin (403), my school's notice
/// (404), not withdrawn or purged (409, nothing written), and only then the form's
/// fields (422), so that an invalid form tells nothing about a notice that is not
/// mine.
async fn act_on(
    portal: &Portal,
    req: &HttpRequest,
    id: &str,
    csrf: &str,
    action: &'static str,
    build: Build,
) -> Result<HttpResponse, PortalError> {
    let session = portal.verified(req).await?;
    portal.csrf(req, &session, csrf)?;
    let act = build(&session);
    let guarded: Act = Box::new(move |conn, row, now| {
        if row.withdrawn() || row.purged_at.is_some() {
            return Ok(REFUSED_WITHDRAWN);
        }
        match act {
            Ok(act) => act(conn, row, now),
            Err(_) => Ok(INVALID),
        }
    });
    let (row, result) = on_my_notice(portal, &session, id, action, guarded).await?;
    super::set_locale(req, row.locale());
    match result {
        REFUSED_WITHDRAWN => Err(PortalError::Withdrawn),
        INVALID => Err(PortalError::Invalid),
        _ => Ok(see_other(&format!("/notices/{}", row.id))),
    }
}

/// Audit results of a refused action.
const REFUSED_WITHDRAWN: &str = "refused_withdrawn";
const INVALID: &str = "invalid";

/// "Received — we will offer support today".
pub async fn acknowledge(
    portal: web::Data<Portal>,
    req: HttpRequest,
    id: web::Path<String>,
    form: web::Form<super::CsrfForm>,
) -> Result<HttpResponse, PortalError> {
    let build: Build = Box::new(|_| {
        Ok(Box::new(|conn, row, now| {
            if row.acknowledged_at.is_none() {
                acknowledge_in(conn, &row.id, now)?;
            }
            Ok("ok")
        }))
    });
    act_on(&portal, &req, &id, &form.csrf, action::ACKNOWLEDGE, build).await
}

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
    Ok(())
}

pub async fn note(
    portal: web::Data<Portal>,
    req: HttpRequest,
    id: web::Path<String>,
    form: web::Form<TextForm>,
) -> Result<HttpResponse, PortalError> {
    let TextForm { csrf, body } = form.into_inner();
    let build: Build = Box::new(move |session| {
        let body = text(&body)?;
        let author = session.email.clone();
        Ok(Box::new(move |conn, row, now| {
            diesel::insert_into(notice_notes::table)
                .values((
                    notice_notes::notice_id.eq(&row.id),
                    notice_notes::author.eq(&author),
                    notice_notes::body.eq(Some(&body)),
                    notice_notes::created_at.eq(ts(now)),
                ))
                .execute(conn)?;
            Ok("ok")
        }))
    });
    act_on(&portal, &req, &id, &csrf, action::NOTE, build).await
}

/// Closing also acknowledges: a closed notice is never escalated.
pub async fn close(
    portal: web::Data<Portal>,
    req: HttpRequest,
    id: web::Path<String>,
    form: web::Form<CloseForm>,
) -> Result<HttpResponse, PortalError> {
    let CloseForm { csrf, outcome } = form.into_inner();
    let build: Build = Box::new(move |_| {
        let outcome = one_of(CLOSE_OUTCOMES, &outcome)?;
        Ok(Box::new(move |conn, row, now| {
            if row.closed_at.is_some() {
                return Ok("already_closed");
            }
            acknowledge_in(conn, &row.id, now)?;
            diesel::update(notices::table.find(&row.id))
                .set((
                    notices::closed_at.eq(Some(ts(now))),
                    notices::close_outcome.eq(Some(outcome)),
                    notices::updated_at.eq(ts(now)),
                ))
                .execute(conn)?;
            Ok("ok")
        }))
    });
    act_on(&portal, &req, &id, &csrf, action::CLOSE, build).await
}

#[derive(Debug, Serialize)]
struct SchoolSignal {
    schema: &'static str,
    signal_id: String,
    notice_id: String,
    incident_id: String,
    child_index: i32,
    child: Child,
    school: SchoolRef,
    category: &'static str,
    urgency: &'static str,
    description: String,
    reported_at: String,
    reporter: Reporter,
}

#[derive(Debug, Serialize)]
struct Child {
    given_name: String,
    family_name: String,
    date_of_birth: String,
}

#[derive(Debug, Serialize)]
struct Reporter {
    name: String,
    email: String,
}

/// Stores the signal and queues `school_signal.v1` in the same transaction: a saved
/// signal is never lost, even when the broker is down.
pub async fn signal(
    portal: web::Data<Portal>,
    req: HttpRequest,
    id: web::Path<String>,
    form: web::Form<SignalForm>,
) -> Result<HttpResponse, PortalError> {
    let SignalForm {
        csrf,
        category,
        urgency,
        description,
    } = form.into_inner();
    let exchange = portal.outbound_exchange.clone();
    let build: Build = Box::new(move |session| {
        let category = one_of(CATEGORIES, &category)?;
        let urgency = one_of(&["routine", "urgent"], &urgency)?;
        let description = text(&description)?;
        let reporter = session.email.clone();
        Ok(Box::new(move |conn, row, now| {
            let signal = SchoolSignal {
                schema: SIGNAL_SCHEMA,
                signal_id: uuid::Uuid::new_v4().to_string(),
                notice_id: row.id.clone(),
                incident_id: row.incident_id.clone(),
                child_index: row.child_index,
                child: Child {
                    given_name: row.given_name.clone().unwrap_or_default(),
                    family_name: row.family_name.clone().unwrap_or_default(),
                    date_of_birth: row.date_of_birth.map(|d| d.to_string()).unwrap_or_default(),
                },
                school: SchoolRef {
                    brin: row.school_brin.clone(),
                    name: row.school_name.clone(),
                },
                category,
                urgency,
                description,
                reported_at: rfc3339(now),
                reporter: Reporter {
                    name: reporter_name(conn, &row.school_brin, &reporter)?,
                    email: reporter.clone(),
                },
            };
            let message = NewMessage::new(&exchange, SIGNAL_SCHEMA, SIGNAL_SCHEMA, &signal, now);
            diesel::insert_into(school_signals::table)
                .values((
                    school_signals::signal_id.eq(&signal.signal_id),
                    school_signals::notice_id.eq(&row.id),
                    school_signals::category.eq(category),
                    school_signals::urgency.eq(urgency),
                    school_signals::description.eq(Some(&signal.description)),
                    school_signals::reporter_email.eq(&reporter),
                    school_signals::reported_at.eq(ts(now)),
                    school_signals::outbox_message_id.eq(&message.message_id),
                ))
                .execute(conn)?;
            outbox::enqueue(conn, &[message])?;
            Ok("ok")
        }))
    });
    let response = act_on(&portal, &req, &id, &csrf, action::SIGNAL, build).await?;
    portal.relay_wake.notify_one();
    Ok(response)
}

/// The name the registry gives this address at this school.
fn reporter_name(conn: &mut DbConn, brin: &str, email: &str) -> QueryResult<String> {
    let (coordinator_name, coordinator_email, deputy_name): (String, String, Option<String>) =
        schools::table
            .find(brin)
            .select((
                schools::coordinator_name,
                schools::coordinator_email,
                schools::deputy_name,
            ))
            .first(conn)?;
    Ok(if coordinator_email.eq_ignore_ascii_case(email) {
        coordinator_name
    } else {
        deputy_name.unwrap_or_default()
    })
}

#[derive(Debug, Serialize)]
pub struct NoteView {
    when: String,
    author: String,
    body: String,
}

#[derive(Debug, Serialize)]
pub struct SignalView {
    when: String,
    category: String,
    urgency: &'static str,
    description: String,
    /// Confirmed by the broker, or still waiting.
    sent: bool,
}

/// A notice's notes and signals, oldest first.
pub fn history(
    conn: &mut DbConn,
    notice_id: &str,
    locale: Locale,
) -> QueryResult<(Vec<NoteView>, Vec<SignalView>)> {
    let notes: Vec<(NaiveDateTime, String, Option<String>)> = notice_notes::table
        .filter(notice_notes::notice_id.eq(notice_id))
        .order(notice_notes::id)
        .select((
            notice_notes::created_at,
            notice_notes::author,
            notice_notes::body,
        ))
        .load(conn)?;
    /// When, category, urgency, description, and when the broker confirmed it.
    type SignalRow = (
        NaiveDateTime,
        String,
        String,
        Option<String>,
        Option<NaiveDateTime>,
    );
    let signals: Vec<SignalRow> = school_signals::table
        .left_join(
            outbox_messages::table
                .on(outbox_messages::message_id.eq(school_signals::outbox_message_id)),
        )
        .filter(school_signals::notice_id.eq(notice_id))
        .order(school_signals::reported_at)
        .select((
            school_signals::reported_at,
            school_signals::category,
            school_signals::urgency,
            school_signals::description,
            outbox_messages::published_at.nullable(),
        ))
        .load(conn)?;
    let label = |code: &str| {
        if CATEGORIES.contains(&code) {
            i18n::t(locale, &format!("category_{code}")).to_string()
        } else {
            code.to_string()
        }
    };
    let removed = i18n::t(locale, "removed");
    Ok((
        notes
            .into_iter()
            .map(|(at, author, body)| NoteView {
                when: local(at, locale),
                author,
                body: body.unwrap_or_else(|| removed.into()),
            })
            .collect(),
        signals
            .into_iter()
            .map(
                |(at, category, urgency, description, published)| SignalView {
                    when: local(at, locale),
                    category: label(&category),
                    urgency: i18n::t(
                        locale,
                        if urgency == "urgent" {
                            "urgency_urgent"
                        } else {
                            "urgency_routine"
                        },
                    ),
                    description: description.unwrap_or_else(|| removed.into()),
                    sent: published.is_some(),
                },
            )
            .collect(),
    ))
}

/// The code of `codes` that a form sent, as the static string stored and published:
/// anything else is invalid.
fn one_of(codes: &[&'static str], sent: &str) -> Result<&'static str, PortalError> {
    codes
        .iter()
        .copied()
        .find(|code| *code == sent)
        .ok_or(PortalError::Invalid)
}
