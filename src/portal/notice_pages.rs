//! The notices of the coordinator's own schools. Any other notice id is a 404 on
//! every route, whether or not it exists.

use super::audit::{self, action};
use super::pages::{html, Pages};
use super::session::Session;
use super::{accounts, see_other, CsrfForm, Portal, PortalError};
use crate::db::schema::{notices, schools};
use crate::db::{ts, write_tx, DbConn};
use crate::delivery::templates::{format_open_by, Locale};
use crate::notices::status;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use minijinja::context;
use serde::Serialize;

pub async fn home() -> HttpResponse {
    see_other("/notices")
}

/// No `Debug`: it holds the child's data.
#[derive(Clone, Queryable)]
struct Row {
    id: String,
    school_name: String,
    given_name: Option<String>,
    family_name: Option<String>,
    date_of_birth: Option<NaiveDate>,
    group: Option<String>,
    visited_at: NaiveDateTime,
    status: String,
    due_at: Option<NaiveDateTime>,
    acknowledged_at: Option<NaiveDateTime>,
    closed_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
}

impl Row {
    fn withdrawn(&self) -> bool {
        self.status == status::WITHDRAWN
    }

    fn child_name(&self) -> String {
        match (&self.given_name, &self.family_name) {
            (Some(given), Some(family)) => format!("{given} {family}"),
            _ => "(gegevens verwijderd)".into(),
        }
    }

    fn state(&self) -> &'static str {
        if self.withdrawn() {
            "Ingetrokken"
        } else if self.closed_at.is_some() {
            "Afgesloten"
        } else if self.acknowledged_at.is_some() {
            "Ontvangst bevestigd"
        } else {
            "Open"
        }
    }
}

fn local(t: NaiveDateTime) -> String {
    format_open_by(t.and_utc(), Locale::Nl)
}

/// The notices of `email`'s schools, newest first; one notice when `id` is given.
fn mine(conn: &mut DbConn, email: &str, id: Option<&str>) -> QueryResult<Vec<Row>> {
    let brins = accounts::schools_of(conn, email)?;
    let mut query = notices::table
        .inner_join(schools::table)
        .filter(notices::school_brin.eq_any(brins))
        .order(notices::created_at.desc())
        .limit(500)
        .select((
            notices::id,
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
    let email = session.email.clone();
    let rows = portal.db(move |conn| Ok(mine(conn, &email, None)?)).await?;
    let groups: Vec<Group> = ["Open", "Ontvangst bevestigd", "Afgesloten", "Ingetrokken"]
        .into_iter()
        .map(|title| Group {
            title,
            notices: rows
                .iter()
                .filter(|r| r.state() == title)
                .map(|r| Item {
                    id: r.id.clone(),
                    label: if r.withdrawn() {
                        "Ingetrokken bericht".into()
                    } else {
                        r.child_name()
                    },
                    school: r.school_name.clone(),
                    when: local(r.created_at),
                })
                .collect(),
        })
        .collect();
    let ctx =
        context! { title => "Berichten", groups, csrf => session.csrf_token, signed_in => true };
    Ok(html(StatusCode::OK, Pages::get().render("list.html", ctx)))
}

/// One notice of my own schools, or 404; every look is audited.
async fn own_notice(
    portal: &Portal,
    session: &Session,
    id: &str,
    action: &'static str,
) -> Result<Row, PortalError> {
    let (email, id, now) = (session.email.clone(), id.to_string(), portal.clock.now());
    portal
        .db(move |conn| {
            write_tx(conn, |conn| {
                let Some(row) = mine(conn, &email, Some(&id))?.into_iter().next() else {
                    audit::record(conn, &email, action, Some(&id), "not_found", now)?;
                    return Ok(Err(PortalError::NotFound));
                };
                if action == action::ACKNOWLEDGE
                    && !row.withdrawn()
                    && row.acknowledged_at.is_none()
                {
                    diesel::update(notices::table.find(&id))
                        .set((
                            notices::acknowledged_at.eq(Some(ts(now))),
                            notices::updated_at.eq(ts(now)),
                        ))
                        .execute(conn)?;
                }
                audit::record(conn, &email, action, Some(&id), "ok", now)?;
                Ok::<_, diesel::result::Error>(Ok(row))
            })
            .map_err(PortalError::from)
        })
        .await?
}

pub async fn show(
    portal: web::Data<Portal>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let session = portal.verified(&req).await?;
    let row = own_notice(&portal, &session, &id, action::VIEW).await?;
    let ctx = context! {
        title => if row.withdrawn() { "Bericht ingetrokken" } else { "Vertrouwelijk bericht" },
        id => row.id,
        withdrawn => row.withdrawn(),
        child_name => row.child_name(),
        date_of_birth => row.date_of_birth.map(|d| d.format("%d-%m-%Y").to_string()).unwrap_or_default(),
        group => row.group.clone().unwrap_or_default(),
        visit_date => row.visited_at.and_utc().with_timezone(&chrono_tz::Europe::Amsterdam).format("%d-%m-%Y").to_string(),
        due => row.due_at.map(local).unwrap_or_default(),
        school => row.school_name.clone(),
        status => row.state(),
        acknowledged => row.acknowledged_at.map(local),
        csrf => session.csrf_token,
        signed_in => true,
    };
    Ok(html(
        StatusCode::OK,
        Pages::get().render("notice.html", ctx),
    ))
}

/// "Received — we will offer support today".
pub async fn acknowledge(
    portal: web::Data<Portal>,
    req: HttpRequest,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PortalError> {
    let session = portal.verified(&req).await?;
    portal.csrf(&req, &session, &form.csrf)?;
    let row = own_notice(&portal, &session, &id, action::ACKNOWLEDGE).await?;
    Ok(see_other(&format!("/notices/{}", row.id)))
}
