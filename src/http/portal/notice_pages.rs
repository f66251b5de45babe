//! The notices of the coordinator's own schools. Any other notice id is a 404 on
//! every route, whether or not it exists. What is read is [`store`]'s; this renders.

use super::i18n;
use super::pages::{html, Pages};
use super::{see_other, Portal, PortalError};
use crate::locale::{format_open_by, Locale};
use crate::notices::store::{
    self, CloseOutcome, History, NoticeView, SignalCategory, Stage, Urgency,
};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::NaiveDateTime;
use minijinja::context;
use serde::Serialize;

pub async fn home() -> HttpResponse {
    see_other("/notices")
}

/// A moment as the school reads it.
fn local(t: NaiveDateTime, locale: Locale) -> String {
    format_open_by(t.and_utc(), locale)
}

/// The catalogue key of a notice's stage.
fn stage_key(stage: Stage) -> &'static str {
    match stage {
        Stage::Open => "state_open",
        Stage::Acknowledged => "state_acknowledged",
        Stage::Closed => "state_closed",
        Stage::Withdrawn => "state_withdrawn",
    }
}

/// The child's name, or that it was removed.
pub fn child_name(notice: &NoticeView, locale: Locale) -> String {
    notice
        .child_name()
        .unwrap_or_else(|| i18n::t(locale, "data_removed").into())
}

#[derive(Serialize)]
struct Item {
    id: String,
    label: String,
    school: String,
    when: String,
}

#[derive(Serialize)]
struct Group {
    title: &'static str,
    notices: Vec<Item>,
}

/// A withdrawn notice is listed as such, without the child's name.
fn item(notice: &NoticeView, locale: Locale) -> Item {
    Item {
        id: notice.id.clone(),
        label: if notice.withdrawn() {
            i18n::t(locale, "withdrawn_label").into()
        } else {
            child_name(notice, locale)
        },
        school: notice.school_name.clone(),
        when: local(notice.created_at, locale),
    }
}

pub async fn list(
    portal: web::Data<Portal>,
    req: HttpRequest,
) -> Result<HttpResponse, PortalError> {
    let session = portal.verified(&req).await?;
    let locale = super::locale(&req);
    let desk = portal.desk(session.email.clone());
    let notices = portal.db(move |conn| store::list(conn, &desk)).await?;
    let groups: Vec<Group> = Stage::ALL
        .into_iter()
        .map(|stage| Group {
            title: i18n::t(locale, stage_key(stage)),
            notices: notices
                .iter()
                .filter(|n| n.stage() == stage)
                .map(|n| item(n, locale))
                .collect(),
        })
        .collect();
    let title = i18n::t(locale, "title_list");
    let ctx = context! { title, groups, csrf => session.csrf_token, signed_in => true };
    Ok(html(
        StatusCode::OK,
        portal.pages.render("list.html", locale, ctx),
    ))
}

/// One notice, in its school's locale. A withdrawn notice shows only that it was
/// withdrawn: nothing of the child.
pub async fn show(
    portal: web::Data<Portal>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let session = portal.verified(&req).await?;
    let id = super::notice_id(&id)?;
    let desk = portal.desk(session.email.clone());
    let (notice, history) = portal
        .db(move |conn| store::show(conn, &desk, &id))
        .await?
        .ok_or(PortalError::NotFound)?;
    super::set_locale(&req, notice.locale());
    let page = NoticePage {
        csrf: &session.csrf_token,
        draft: &Draft::default(),
        error: None,
    };
    Ok(html(
        StatusCode::OK,
        page.render(&portal.pages, &notice, history),
    ))
}

/// What a coordinator had chosen and typed in a form, shown again when they go back
/// from a confirmation page or sent it incomplete.
#[derive(Debug, Default, Serialize)]
pub struct Draft {
    /// Which form it is from: `signal` or `close`; empty for none.
    pub form: &'static str,
    pub category: String,
    pub urgency: String,
    pub description: String,
    pub outcome: String,
}

/// The page of one notice, with its forms filled in from `draft`, and `error` (a
/// catalogue key) above them.
pub struct NoticePage<'a> {
    pub csrf: &'a str,
    pub draft: &'a Draft,
    pub error: Option<&'static str>,
}

impl NoticePage<'_> {
    /// A withdrawn notice shows only that it was withdrawn: nothing of the child.
    pub fn render(&self, pages: &Pages, notice: &NoticeView, history: History) -> String {
        let locale = notice.locale();
        let ctx = if notice.withdrawn() {
            context! {
                title => i18n::t(locale, "title_withdrawn"),
                id => notice.id,
                withdrawn => true,
                csrf => self.csrf,
                signed_in => true,
            }
        } else {
            let error = self.error.map(|key| i18n::t(locale, key));
            let ctx = notice_context(notice, history, locale, self.csrf.to_string());
            context! { draft => self.draft, error, ..ctx }
        };
        pages.render("notice.html", locale, ctx)
    }
}

/// Whether the child was present during the incident, in words.
fn present(notice: &NoticeView, locale: Locale) -> &'static str {
    let key = match notice.present() {
        Some(true) => "present_yes",
        Some(false) => "present_no",
        None => "present_unknown",
    };
    i18n::t(locale, key)
}

/// What the page of a notice that was not withdrawn shows, with its forms.
fn notice_context(
    notice: &NoticeView,
    history: History,
    locale: Locale,
    csrf: String,
) -> minijinja::Value {
    let (notes, signals) = history_items(history, locale);
    let visit_day = notice
        .visited_at
        .and_utc()
        .with_timezone(&chrono_tz::Europe::Amsterdam);
    context! {
        title => i18n::t(locale, "title_notice"),
        id => notice.id.clone(),
        withdrawn => false,
        child_name => child_name(notice, locale),
        date_of_birth => notice.birth_date().map(|d| d.format("%d-%m-%Y").to_string()).unwrap_or_default(),
        group => notice.group.clone().unwrap_or_default(),
        present => present(notice, locale),
        visit_date => visit_day.format("%d-%m-%Y").to_string(),
        due => notice.due_at.map(|t| local(t, locale)).unwrap_or_default(),
        school => notice.school_name.clone(),
        status => i18n::t(locale, stage_key(notice.stage())),
        acknowledged => notice.acknowledged_at.map(|t| local(t, locale)),
        closed => notice.closed_at.is_some(),
        notes,
        signals,
        categories => options(&SignalCategory::ALL.map(SignalCategory::as_str), "category", locale),
        outcomes => options(&CloseOutcome::ALL.map(CloseOutcome::as_str), "outcome", locale),
        csrf,
        signed_in => true,
    }
}

/// `(code, label)` pairs for a form's options, in `locale`; labels are
/// `<prefix>_<code>` in the catalogue.
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

#[derive(Serialize)]
struct NoteItem {
    when: String,
    author: String,
    body: String,
}

#[derive(Serialize)]
struct SignalItem {
    when: String,
    category: String,
    urgency: &'static str,
    description: String,
    /// Confirmed by the broker, or still waiting.
    sent: bool,
}

/// A notice's notes and signals as the page shows them. A purged text says it was
/// removed; a category this version does not know shows as its code.
fn history_items(history: History, locale: Locale) -> (Vec<NoteItem>, Vec<SignalItem>) {
    let removed = i18n::t(locale, "removed");
    let notes = history.notes.into_iter().map(|note| NoteItem {
        when: local(note.at, locale),
        author: note.author,
        body: note.body.unwrap_or_else(|| removed.into()),
    });
    let signals = history.signals.into_iter().map(|signal| SignalItem {
        when: local(signal.at, locale),
        category: match signal.category.parse::<SignalCategory>() {
            Ok(category) => i18n::t(locale, &format!("category_{category}")).to_string(),
            Err(_) => signal.category,
        },
        urgency: i18n::t(
            locale,
            if signal.urgency == Urgency::Urgent.as_str() {
                "urgency_urgent"
            } else {
                "urgency_routine"
            },
        ),
        description: signal.description.unwrap_or_else(|| removed.into()),
        sent: signal.published_at.is_some(),
    });
    (notes.collect(), signals.collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code a form offers has its label in both languages.
    #[test]
    fn every_code_has_a_label() {
        for locale in Locale::ALL {
            let categories = SignalCategory::ALL.map(SignalCategory::as_str);
            let outcomes = CloseOutcome::ALL.map(CloseOutcome::as_str);
            let labels = [
                options(&categories, "category", locale),
                options(&outcomes, "outcome", locale),
            ];
            for (code, label) in labels.concat() {
                assert!(!label.is_empty(), "{code} in {locale:?}");
            }
            for stage in Stage::ALL {
                assert!(!i18n::t(locale, stage_key(stage)).is_empty());
            }
        }
    }
}
