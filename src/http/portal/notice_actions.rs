//! What a coordinator does with a notice: acknowledge it, write follow-up notes
//! (append-only), close it with an outcome, and report a signal to Veilig Thuis,
//! which leaves through the outbox like every other message. The handlers read the
//! forms; [`store`] does the rest, in one transaction with its audit row.
//!
//! The two steps that cannot be undone, a signal and closing, take two POSTs: the
//! first shows what will happen ([`confirm`]), and only the second, with
//! `step=confirm`, acts. `step=edit` goes back to the notice with the form as it
//! was, and changes nothing.

use super::confirm;
use super::notice_pages::{Draft, NoticePage};
use super::pages::html;
use super::{see_other, CsrfForm, Portal, PortalError};
use crate::db::{DbConn, DbError};
use crate::notices::store::{self, Acted, Desk, NewSignal, NoticeView};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

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
    /// Empty on the first POST; `confirm` or `edit` from the confirmation page.
    #[serde(default)]
    step: String,
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
    #[serde(default)]
    step: String,
}

impl SignalForm {
    /// The signal, if every field is filled in right.
    fn signal(&self) -> Option<NewSignal> {
        Some(NewSignal {
            category: self.category.parse().ok()?,
            urgency: self.urgency.parse().ok()?,
            description: store::free_text(&self.description)?,
        })
    }

    fn draft(&self) -> Draft {
        Draft {
            form: "signal",
            category: self.category.clone(),
            urgency: self.urgency.clone(),
            description: self.description.clone(),
            ..Draft::default()
        }
    }
}

/// Where a two-step form is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The first POST: show what will happen.
    Check,
    /// From the confirmation page: do it.
    Confirm,
    /// From the confirmation page: back to the form, nothing done.
    Edit,
}

impl Step {
    fn of(field: &str) -> Step {
        match field {
            "confirm" => Step::Confirm,
            "edit" => Step::Edit,
            _ => Step::Check,
        }
    }
}

/// The first POST of a signal or a close, or going back from its confirmation:
/// after the same checks as [`act_on`] (signed in, token, my notice, not withdrawn),
/// the confirmation page, or the notice with the form as it was (422 with the
/// error when a field is wrong). Writes nothing but the viewing's audit row.
async fn review(
    portal: &Portal,
    req: &HttpRequest,
    (id, csrf): (&str, &str),
    step: Step,
    asked: Draft,
) -> Result<HttpResponse, PortalError> {
    let session = portal.verified(req).await?;
    portal.csrf(req, &session, csrf)?;
    let id = super::notice_id(id)?;
    let desk = portal.desk(session.email);
    let (notice, history) = portal
        .db(move |conn| store::show(conn, &desk, &id))
        .await?
        .ok_or(PortalError::NotFound)?;
    super::set_locale(req, notice.locale());
    if notice.withdrawn() {
        return Err(PortalError::Withdrawn);
    }
    let csrf = session.csrf_token.as_str();
    let confirmation = match step {
        Step::Edit => None,
        _ => confirm::page(portal, &notice, csrf, &asked),
    };
    if let Some(body) = confirmation {
        return Ok(html(StatusCode::OK, body));
    }
    // Back from the confirmation, or a field not filled in right.
    let (status, error) = match step {
        Step::Edit => (StatusCode::OK, None),
        _ => (StatusCode::UNPROCESSABLE_ENTITY, Some("form_incomplete")),
    };
    let page = NoticePage {
        csrf,
        draft: &asked,
        error,
    };
    Ok(html(status, page.render(&portal.pages, &notice, history)))
}

/// Runs an action on my notice (given the signed-in address, the notice id and the
/// time), then shows the notice. The checks come in this order: signed in (401),
/// the form's token and origin (403), then in the store my school's notice (404),
/// not withdrawn or purged (409, nothing written), and only then the form's fields
/// (422), so that an invalid form tells nothing about a notice that is not mine.
/// A done action is counted in the portal's metrics as `counted`, if given.
async fn act_on<E, F>(
    portal: &Portal,
    req: &HttpRequest,
    (id, csrf): (&str, &str),
    counted: Option<&str>,
    act: F,
) -> Result<HttpResponse, PortalError>
where
    F: FnOnce(&mut DbConn, &Desk, &str) -> Result<Option<(NoticeView, Acted)>, E> + Send + 'static,
    E: Into<DbError>,
{
    let session = portal.verified(req).await?;
    portal.csrf(req, &session, csrf)?;
    let id = super::notice_id(id)?;
    let desk = portal.desk(session.email);
    let (notice, acted) = portal
        .db(move |conn| act(conn, &desk, &id))
        .await?
        .ok_or(PortalError::NotFound)?;
    super::set_locale(req, notice.locale());
    match acted {
        Acted::Withdrawn => Err(PortalError::Withdrawn),
        Acted::Invalid => Err(PortalError::Invalid),
        Acted::Done => {
            if let Some(action) = counted {
                portal.metrics.portal_action(action);
            }
            Ok(see_other(&format!("/notices/{}", notice.id)))
        }
    }
}

/// "Received — we will offer support today".
pub async fn acknowledge(
    portal: web::Data<Portal>,
    req: HttpRequest,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PortalError> {
    let counted = Some("acknowledgement");
    act_on(
        &portal,
        &req,
        (&id, &form.csrf),
        counted,
        store::acknowledge,
    )
    .await
}

pub async fn note(
    portal: web::Data<Portal>,
    req: HttpRequest,
    id: web::Path<String>,
    form: web::Form<TextForm>,
) -> Result<HttpResponse, PortalError> {
    let body = store::free_text(&form.body);
    let act = move |conn: &mut DbConn, desk: &Desk, id: &str| store::note(conn, desk, id, body);
    act_on(&portal, &req, (&id, &form.csrf), Some("note"), act).await
}

/// Closing also acknowledges: a closed notice is never escalated.
pub async fn close(
    portal: web::Data<Portal>,
    req: HttpRequest,
    id: web::Path<String>,
    form: web::Form<CloseForm>,
) -> Result<HttpResponse, PortalError> {
    let step = Step::of(&form.step);
    if step != Step::Confirm {
        let asked = Draft {
            form: "close",
            outcome: form.outcome.clone(),
            ..Draft::default()
        };
        return review(&portal, &req, (&id, &form.csrf), step, asked).await;
    }
    let outcome = form.outcome.parse().ok();
    let act = move |conn: &mut DbConn, desk: &Desk, id: &str| store::close(conn, desk, id, outcome);
    act_on(&portal, &req, (&id, &form.csrf), None, act).await
}

/// Stores the signal and queues `school_signal.v1` in the same transaction, then
/// wakes the relay to publish it.
pub async fn signal(
    portal: web::Data<Portal>,
    req: HttpRequest,
    id: web::Path<String>,
    form: web::Form<SignalForm>,
) -> Result<HttpResponse, PortalError> {
    let step = Step::of(&form.step);
    if step != Step::Confirm {
        let asked = form.draft();
        return review(&portal, &req, (&id, &form.csrf), step, asked).await;
    }
    let (signal, exchange) = (form.signal(), portal.outbox.exchange.clone());
    let act = move |conn: &mut DbConn, desk: &Desk, id: &str| {
        store::signal(conn, desk, id, signal, &exchange)
    };
    let response = act_on(&portal, &req, (&id, &form.csrf), Some("signal"), act).await?;
    portal.outbox.wake_relay();
    Ok(response)
}
