//! The notices of the coordinator's own schools. Any other notice id is a 404 on
//! every route, whether or not it exists.

use super::i18n;
use super::pages::{html, Pages};
use super::{see_other, Portal, PortalError};
use crate::access::accounts;
use crate::access::audit::{self, action};
use crate::access::sessions::Session;
use crate::db::schema::{notices, schools};
use crate::db::{write_tx, DbConn};
use crate::locale::{format_open_by, Locale};
use crate::notices::NoticeStatus;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use minijinja::context;
use serde::Serialize;

pub async fn home() -> HttpResponse {
    see_other("/notices")
}

/// No `Debug`: it holds the child's data.
#[derive(Clone, Queryable)]
pub(super) struct Row {
    pub id: String,
    pub incident_id: String,
    pub child_index: i32,
    pub school_brin: String,
    pub school_name: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub date_of_birth: Option<NaiveDate>,
    pub group: Option<String>,
    pub visited_at: NaiveDateTime,
    pub status: String,
    pub due_at: Option<NaiveDateTime>,
    pub acknowledged_at: Option<NaiveDateTime>,
    pub closed_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub purged_at: Option<NaiveDateTime>,
    /// The school's locale, which pages about this notice are in.
    pub school_locale: String,
}

impl Row {
    pub fn withdrawn(&self) -> bool {
        self.status == NoticeStatus::Withdrawn.as_str()
    }

    pub fn locale(&self) -> Locale {
        Locale::parse(&self.school_locale).unwrap_or_default()
    }

    fn child_name(&self, locale: Locale) -> String {
        match (&self.given_name, &self.family_name) {
            (Some(given), Some(family)) => format!("{given} {family}"),
            _ => i18n::t(locale, "data_removed").into(),
        }
    }

    /// The catalogue key of the notice's state.
    fn state(&self) -> &'static str {
        if self.withdrawn() {
            "state_withdrawn"
        } else if self.closed_at.is_some() {
            "state_closed"
        } else if self.acknowledged_at.is_some() {
            "state_acknowledged"
        } else {
            "state_open"
        }
    }
}

pub(super) fn local(t: NaiveDateTime, locale: Locale) -> String {
    format_open_by(t.and_utc(), locale)
}

/// The notices of `email`'s schools, newest first; one notice when `id` is given.
pub(super) fn mine(conn: &mut DbConn, email: &str, id: Option<&str>) -> QueryResult<Vec<Row>> {
    let brins = accounts::schools_of(conn, email)?;
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
    query.load(conn)
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

pub async fn list(
    portal: web::Data<Portal>,
    req: HttpRequest,
) -> Result<HttpResponse, PortalError> {
    let session = portal.verified(&req).await?;
    let locale = super::locale(&req);
    let email = session.email.clone();
    let rows = portal.db(move |conn| Ok(mine(conn, &email, None)?)).await?;
    let groups: Vec<Group> = [
        "state_open",
        "state_acknowledged",
        "state_closed",
        "state_withdrawn",
    ]
    .into_iter()
    .map(|state| Group {
        title: i18n::t(locale, state),
        notices: rows
            .iter()
            .filter(|r| r.state() == state)
            .map(|r| Item {
                id: r.id.clone(),
                label: if r.withdrawn() {
                    i18n::t(locale, "withdrawn_label").into()
                } else {
                    r.child_name(locale)
                },
                school: r.school_name.clone(),
                when: local(r.created_at, locale),
            })
            .collect(),
    })
    .collect();
    let title = i18n::t(locale, "title_list");
    let ctx = context! { title, groups, csrf => session.csrf_token, signed_in => true };
    Ok(html(
        StatusCode::OK,
        Pages::get().render("list.html", locale, ctx),
    ))
}

/// What an action did, for the audit log's result column.
pub(super) type Act =
    Box<dyn FnOnce(&mut DbConn, &Row, DateTime<Utc>) -> QueryResult<&'static str> + Send>;

/// Runs `act` on one notice of my own schools, in one transaction with its audit
/// row; any other notice is a 404, audited too. Returns the notice and what `act`
/// said.
pub(super) async fn on_my_notice(
    portal: &Portal,
    session: &Session,
    id: &str,
    action: &'static str,
    act: Act,
) -> Result<(Row, &'static str), PortalError> {
    let (email, id, now) = (session.email.clone(), id.to_string(), portal.clock.now());
    portal
        .db(move |conn| {
            let outcome = write_tx(conn, |conn| {
                let Some(row) = mine(conn, &email, Some(&id))?.into_iter().next() else {
                    audit::record(conn, &email, action, Some(&id), "not_found", now)?;
                    return Ok(None);
                };
                let result = act(conn, &row, now)?;
                audit::record(conn, &email, action, Some(&id), result, now)?;
                Ok::<_, diesel::result::Error>(Some((row, result)))
            })?;
            outcome.ok_or(PortalError::NotFound)
        })
        .await
}

pub async fn show(
    portal: web::Data<Portal>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let session = portal.verified(&req).await?;
    let (row, _) = on_my_notice(
        &portal,
        &session,
        &id,
        action::VIEW,
        Box::new(|_, _, _| Ok("ok")),
    )
    .await?;
    let locale = row.locale();
    super::set_locale(&req, locale);
    use super::notice_actions::{options, CATEGORIES, CLOSE_OUTCOMES};
    // A withdrawn notice shows only that it was withdrawn: nothing of the child.
    if row.withdrawn() {
        let ctx = context! {
            title => i18n::t(locale, "title_withdrawn"),
            id => row.id,
            withdrawn => true,
            csrf => session.csrf_token,
            signed_in => true,
        };
        return Ok(html(
            StatusCode::OK,
            Pages::get().render("notice.html", locale, ctx),
        ));
    }
    let notice_id = row.id.clone();
    let (notes, signals) = portal
        .db(move |conn| Ok(super::notice_actions::history(conn, &notice_id, locale)?))
        .await?;
    let ctx = context! {
        title => i18n::t(locale, "title_notice"),
        id => row.id,
        withdrawn => false,
        child_name => row.child_name(locale),
        date_of_birth => row.date_of_birth.map(|d| d.format("%d-%m-%Y").to_string()).unwrap_or_default(),
        group => row.group.clone().unwrap_or_default(),
        visit_date => row.visited_at.and_utc().with_timezone(&chrono_tz::Europe::Amsterdam).format("%d-%m-%Y").to_string(),
        due => row.due_at.map(|t| local(t, locale)).unwrap_or_default(),
        school => row.school_name.clone(),
        status => i18n::t(locale, row.state()),
        acknowledged => row.acknowledged_at.map(|t| local(t, locale)),
        closed => row.closed_at.is_some(),
        notes,
        signals,
        categories => options(CATEGORIES, "category", locale),
        outcomes => options(CLOSE_OUTCOMES, "outcome", locale),
        csrf => session.csrf_token,
        signed_in => true,
    };
    Ok(html(
        StatusCode::OK,
        Pages::get().render("notice.html", locale, ctx),
    ))
}
