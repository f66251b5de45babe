//! The police API's OpenAPI 3.1 document, served at `GET /openapi.json`. It is built
//! from the code, so it cannot drift from it: the operation from the handler's
//! `#[utoipa::path]`, the request's limits from the contract's constants, the
//! outcomes and reason codes from their enums, and each error status with exactly the
//! reason codes that [`ApiError`] answers with it.

use super::{ApiDoc, ApiError, MODE_HEADER};
use crate::access::api_keys::Mode;
use crate::contract::home_visit::{
    self, MAX_CHILDREN, MAX_INCIDENT_ID_CHARS, MAX_NAME_CHARS, MAX_UNIT_CHARS,
};
use crate::contract::{Reason, Rejection, MAX_BODY_BYTES};
use crate::notices::Outcome;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;
use std::borrow::Cow;
use std::collections::BTreeMap;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{
    ArrayBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

/// `GET /openapi.json`: the document, built once.
pub async fn document() -> HttpResponse {
    static JSON: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let body = JSON.get_or_init(|| {
        ApiDoc::openapi()
            .to_json()
            .expect("the document serialises")
    });
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body.as_str())
}

/// `format: uuid` (utoipa's `KnownFormat::Uuid` needs the uuid crate's feature).
fn uuid() -> SchemaFormat {
    SchemaFormat::Custom("uuid".into())
}

fn typed(t: Type) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(t)
}

/// `t`, or null: the contract takes null for an optional field as absent.
fn nullable(t: Type) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::from_iter([t, Type::Null]))
}

fn text_enum(values: impl IntoIterator<Item = &'static str>, description: &str) -> Schema {
    typed(Type::String)
        .enum_values(Some(values))
        .description(Some(description))
        .into()
}

/// No control characters (Unicode `Cc`), as `char::is_control` checks.
const NO_CONTROL: &str = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$";

/// The request body, `police.home_visit.v1`. Unknown fields are ignored.
pub struct HomeVisit;

impl PartialSchema for HomeVisit {
    fn schema() -> RefOr<Schema> {
        let incident = format!("^[A-Za-z0-9._/-]{{1,{MAX_INCIDENT_ID_CHARS}}}$");
        let children = ArrayBuilder::new()
            .items(Child::schema())
            .min_items(Some(1))
            .max_items(Some(MAX_CHILDREN))
            .description(Some("No BSN may appear twice (`duplicate_child`)"));
        ObjectBuilder::new()
            .description(Some(format!(
                "Contract section 1. At most {MAX_BODY_BYTES} bytes (`too_large`). Rules a \
                 schema cannot state are answered with 422 and their reason code: the visit \
                 more than 5 minutes ahead of the service's clock (`invalid_field`) or older \
                 than its window (`too_old`), the BSN's eleven test (`invalid_bsn`), a date of \
                 birth after the visit (`invalid_field`), a BSN twice (`duplicate_child`)."
            )))
            .property(
                "schema",
                text_enum(
                    [home_visit::SCHEMA],
                    "any other value is `unsupported_schema`",
                ),
            )
            .required("schema")
            .property("event_id", typed(Type::String).format(Some(uuid())))
            .required("event_id")
            .property("incident_id", typed(Type::String).pattern(Some(incident)))
            .required("incident_id")
            .property(
                "revision",
                nullable(Type::Integer)
                    .minimum(Some(1))
                    .maximum(Some(i64::MAX))
                    .default(Some(json!(1))),
            )
            .property(
                "status",
                nullable(Type::String)
                    .enum_values(Some([Some("active"), Some("withdrawn"), None]))
                    .default(Some(json!("active"))),
            )
            .property(
                "visited_at",
                typed(Type::String).format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
            )
            .required("visited_at")
            .property(
                "police_unit",
                nullable(Type::String).max_length(Some(MAX_UNIT_CHARS)),
            )
            .property("children", children)
            .required("children")
            .examples([example_event()])
            .into()
    }
}

impl ToSchema for HomeVisit {
    fn name() -> Cow<'static, str> {
        "HomeVisit".into()
    }
}

fn example_event() -> serde_json::Value {
    json!({
        "schema": home_visit::SCHEMA,
        "event_id": "6f1c2a9e-3b7d-4c1e-9a52-0d6f3e1b7a44",
        "incident_id": "2026-GV-004211",
        "revision": 1,
        "status": "active",
        "visited_at": "2026-11-22T21:40:00+01:00",
        "police_unit": "Midden-Nederland / Gooi en Vechtstreek",
        "children": [{"bsn": "111222333", "given_name": "Sanne", "family_name": "de Vries",
                      "date_of_birth": "2016-04-12", "present_during_incident": true}]
    })
}

/// One child of an event.
pub struct Child;

impl PartialSchema for Child {
    fn schema() -> RefOr<Schema> {
        let name = || {
            typed(Type::String)
                .min_length(Some(1))
                .max_length(Some(MAX_NAME_CHARS))
                .pattern(Some(NO_CONTROL))
        };
        ObjectBuilder::new()
            .property(
                "bsn",
                typed(Type::String)
                    .pattern(Some("^[0-9]{9}$"))
                    .description(Some("9 digits that pass the eleven test, not `000000000`")),
            )
            .required("bsn")
            .property("given_name", name())
            .required("given_name")
            .property("family_name", name())
            .required("family_name")
            .property(
                "date_of_birth",
                typed(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
                    .description(Some("not after the visit")),
            )
            .required("date_of_birth")
            .property(
                "present_during_incident",
                nullable(Type::Boolean).default(Some(json!(true))),
            )
            .into()
    }
}

impl ToSchema for Child {
    fn name() -> Cow<'static, str> {
        "Child".into()
    }
}

/// The answer to an accepted event: one outcome per child, in the event's order.
pub struct EventAnswer;

impl PartialSchema for EventAnswer {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .property("event_id", typed(Type::String).format(Some(uuid())))
            .required("event_id")
            .property(
                "outcomes",
                ArrayBuilder::new().items(ChildOutcome::schema()),
            )
            .required("outcomes")
            .into()
    }
}

impl ToSchema for EventAnswer {
    fn name() -> Cow<'static, str> {
        "EventAnswer".into()
    }
}

pub struct ChildOutcome;

impl PartialSchema for ChildOutcome {
    fn schema() -> RefOr<Schema> {
        let outcomes = Outcome::ALL.iter().map(|o| o.as_str());
        ObjectBuilder::new()
            .property("child_index", typed(Type::Integer).minimum(Some(0)))
            .required("child_index")
            .property(
                "outcome",
                text_enum(outcomes, "contract section 1, \"Decision per child\""),
            )
            .required("outcome")
            .into()
    }
}

impl ToSchema for ChildOutcome {
    fn name() -> Cow<'static, str> {
        "ChildOutcome".into()
    }
}

/// The key in `Authorization: Bearer <key>`.
pub struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, doc: &mut Document) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "An API key from `schoolsignal apikey create --scope events:write` \
                 (`--mode test` for a test key)",
            ))
            .build();
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme("api_key", SecurityScheme::Http(scheme));
    }
}

/// Every error the API answers, from [`ApiError`] itself: by status, the reason
/// codes it carries.
pub fn error_reasons() -> BTreeMap<u16, Vec<&'static str>> {
    let mut errors = vec![
        ApiError::Unauthorized,
        ApiError::Forbidden("events:write"),
        ApiError::Unavailable,
    ];
    errors.extend(
        Reason::ALL
            .into_iter()
            .map(|r| ApiError::Rejected(Rejection::new(r))),
    );
    let mut by_status: BTreeMap<u16, Vec<&'static str>> = BTreeMap::new();
    for e in &errors {
        by_status
            .entry(e.status_code().as_u16())
            .or_default()
            .push(e.reason());
    }
    by_status
}

/// Adds each error status of `POST /v1/events`, with its reason codes, and the
/// `Schoolsignal-Mode` header to each answer past the key check.
pub struct ErrorResponses;

impl Modify for ErrorResponses {
    fn modify(&self, doc: &mut Document) {
        let Some(post) = doc
            .paths
            .paths
            .get_mut("/v1/events")
            .and_then(|item| item.post.as_mut())
        else {
            return;
        };
        let mut statuses = error_reasons();
        // The request deadline's answer, on every route.
        let timeout = vec![crate::http::deadline::TIMEOUT_REASON];
        statuses.insert(StatusCode::REQUEST_TIMEOUT.as_u16(), timeout);
        for (status, reasons) in statuses {
            let body = ObjectBuilder::new()
                .property(
                    "reason",
                    text_enum(reasons.iter().copied(), "the reason code"),
                )
                .required("reason")
                .property(
                    "error",
                    typed(Type::String).description(Some(
                        "a short English explanation, with no value from the request",
                    )),
                )
                .required("error");
            let description = StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("error");
            let response = ResponseBuilder::new()
                .description(format!("{description}: `{}`", reasons.join("`, `")))
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(body)).build(),
                );
            post.responses
                .responses
                .insert(status.to_string(), response.build().into());
        }
        // Every answer past the key check says its mode; 401 and 403 fail it, and 408
        // and a 503 can come before the key is known.
        for (status, response) in post.responses.responses.iter_mut() {
            if let (RefOr::T(response), false) = (
                response,
                ["401", "403", "408", "503"].contains(&status.as_str()),
            ) {
                response
                    .headers
                    .insert(MODE_HEADER_NAME.to_string(), mode_header().into());
            }
        }
    }
}

/// The header's name as documented (HTTP names are case-insensitive).
const MODE_HEADER_NAME: &str = "Schoolsignal-Mode";

/// `Schoolsignal-Mode`: `live`, or `test` for a test key (nothing was kept).
pub fn mode_header() -> utoipa::openapi::header::Header {
    debug_assert!(MODE_HEADER.eq_ignore_ascii_case(MODE_HEADER_NAME));
    HeaderBuilder::new()
        .schema(Some(text_enum(
            Mode::ALL.iter().map(|m| m.as_str()),
            "the key's mode",
        )))
        .description(Some(
            "`test`: the event was decided against the real registry and rolled back: \
             no notice, email, outcome message or inbox row was kept",
        ))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_code_is_documented_under_its_status() {
        let doc: serde_json::Value =
            serde_json::from_str(&ApiDoc::openapi().to_json().unwrap()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let responses = &doc["paths"]["/v1/events"]["post"]["responses"];
        for reason in Reason::ALL {
            let error = ApiError::Rejected(Rejection::new(reason));
            let status = error.status_code().as_u16().to_string();
            let codes = &responses[&status]["content"]["application/json"]["schema"]["properties"]
                ["reason"]["enum"];
            assert!(
                codes.as_array().unwrap().contains(&json!(reason.as_str())),
                "{reason} under {status}: {codes}"
            );
        }
        for status in ["200", "202", "401", "403", "408", "503"] {
            assert!(responses[status].is_object(), "{status} documented");
        }
        let outcomes =
            &doc["components"]["schemas"]["ChildOutcome"]["properties"]["outcome"]["enum"];
        assert_eq!(outcomes.as_array().unwrap().len(), Outcome::ALL.len());
    }
}
