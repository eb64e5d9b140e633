//! The OpenAPI document served at `/openapi.json`, generated from the handlers'
//! `#[utoipa::path]` annotations, the request types, the typed answers in [`schemas`] and
//! the shared parameter schemas in [`params`]; [`standard`] adds the answers every
//! operation of a kind gives (401, 400, 413/415, 202, 503). How to annotate a new route:
//! docs/api.md, "Annotating a route".

pub mod params;
pub mod schemas;
pub mod standard;

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use standard::StandardResponses;
use streams::codes::ErrorCode;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::routes::tickets;
use crate::routes::{
    account_tokens, accounts, analytics, bookings, events, holds, notifications, ops, sessions,
};

/// Every error: `{"error": {"code", "message", "details"?}}`.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorDetail {
    /// A stable code from the table in docs/errors.md, such as `seats_unavailable`.
    #[schema(example = "seats_unavailable")]
    pub code: String,
    /// For people; may change.
    pub message: String,
    /// Facts about the error, such as the seats that were taken.
    pub details: Option<Value>,
}

/// 202: the command is durable but its worker has not answered yet.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingCommand {
    pub command_id: String,
    /// Always `pending`.
    #[schema(example = "pending")]
    pub status: String,
    /// Where to read the result: `/v1/commands/{id}`.
    pub location: String,
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Ticketing API",
        description = "Events, seats and holds. Every state change is a command: responses carry `Ticketing-Command-Id`, and a command not answered in time is 202 with `Location: /v1/commands/{id}`. Send `Idempotency-Key` on a command to make retries safe.\n\nErrors are `{\"error\": {\"code\", \"message\", \"details\"?}}`; the codes, their HTTP status and meaning are in the repository's `docs/errors.md` and in the table at the end of this description, both generated from the one code table, `streams/src/codes.rs`. Every 503 carries `Retry-After`.\n\nDates: a date parameter (`from`, `to`) takes an RFC 3339 time (`2027-01-01T18:00:00Z`, any offset) or a plain date (`2027-01-01`) meaning that whole day in UTC: a lower bound from its first instant, an upper bound to its last. `eventDate` is the event's day at the venue: `2027-01-01`, or an RFC 3339 time whose date (at its own offset) is that day. Times in answers are RFC 3339 in UTC.\n\nIds are 24 hex digits; pages are `page` 1 to 1000000 and `limit` 1 to 100. See docs/api.md."
    ),
    paths(
        accounts::register,
        accounts::login,
        accounts::me,
        sessions::logout,
        sessions::suspend,
        events::create,
        events::list,
        events::read,
        events::publish,
        events::seats,
        holds::create,
        holds::read,
        holds::release,
        bookings::create,
        bookings::read,
        bookings::mine,
        bookings::pay,
        bookings::cancel,
        bookings::cancel_event,
        bookings::payment,
        bookings::refund,
        ops::command,
        ops::audit_logs,
        ops::healthz,
        ops::readyz,
        ops::metrics,
        ops::openapi,
        tickets::booking_tickets,
        tickets::read,
        tickets::qr_png,
        tickets::scan,
        tickets::scan_keys,
        tickets::revocations,
        account_tokens::verify,
        account_tokens::reset_request,
        account_tokens::reset_confirm,
        notifications::mine,
        notifications::read,
        analytics::read,
        analytics::rebuild,
    ),
    components(schemas(
        params::ObjectId,
        params::CommandId,
        params::IdempotencyKey,
        params::DateOrTime,
        accounts::RegisterRequest,
        accounts::LoginRequest,
        accounts::TokenResponse,
        events::CreateEventRequest,
        events::SectionRequest,
        events::PolicyRequest,
        holds::CreateHoldRequest,
        bookings::CreateBookingRequest,
        bookings::PayRequest,
        bookings::CancelRequest,
        ErrorBody,
        ErrorDetail,
        PendingCommand,
        tickets::ScanRequest,
        account_tokens::VerifyRequest,
        account_tokens::ResetRequest,
        account_tokens::ResetConfirmRequest,
    )),
    modifiers(&BearerAuth, &StandardResponses, &ErrorTable),
    tags(
        (name = "accounts", description = "Registration, sign-in, your account"),
        (name = "events", description = "Events and their seats"),
        (name = "holds", description = "Seat holds"),
        (name = "bookings", description = "Bookings, payments and refunds"),
        (name = "ops", description = "Health, metrics, command results, audit"),
        (name = "tickets", description = "Tickets, QR codes and gate scans"),
    )
)]
pub struct ApiDoc;

/// The error table, from `streams::codes`: each code's status and meaning at the end of
/// the description, and the list of codes as the enum of `ErrorDetail.code`.
struct ErrorTable;

impl Modify for ErrorTable {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let mut table =
            String::from("\n\n## Error codes\n\n| code | HTTP status | meaning |\n|---|---|---|\n");
        let mut codes = ErrorCode::ALL.to_vec();
        codes.sort_by_key(|c| (c.status(), c.as_str()));
        for c in &codes {
            table.push_str(&format!(
                "| `{}` | {} | {} |\n",
                c.as_str(),
                c.status(),
                c.meaning()
            ));
        }
        let d = openapi.info.description.get_or_insert_with(String::new);
        d.push_str(&table);
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        if let Some(RefOr::T(Schema::Object(detail))) = components.schemas.get_mut("ErrorDetail") {
            if let Some(RefOr::T(Schema::Object(code))) = detail.properties.get_mut("code") {
                code.enum_values = Some(codes.iter().map(|c| c.as_str().into()).collect());
            }
        }
    }
}

/// Text fields that refuse control characters (`char::is_control`: U+0000 to U+001F and
/// U+007F to U+009F): JSON Schema says it with `not`, which utoipa's attributes lack.
const NO_CONTROL_CHARS: &[(&str, &str)] = &[("ScanRequest", "deviceId"), ("ScanRequest", "gate")];

fn refuse_control_chars(doc: &mut Value) {
    for (schema, field) in NO_CONTROL_CHARS {
        let p = format!("/components/schemas/{schema}/properties/{field}");
        if let Some(Value::Object(o)) = doc.pointer_mut(&p) {
            o.insert(
                "not".into(),
                serde_json::json!({"pattern": "[\\u0000-\\u001F\\u007F-\\u009F]"}),
            );
        }
    }
}

/// The document as JSON, built once.
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null);
        refuse_control_chars(&mut doc);
        // No repeated seat in a hold (utoipa's attributes have no `uniqueItems`).
        if let Some(Value::Object(o)) =
            doc.pointer_mut("/components/schemas/CreateHoldRequest/properties/seatIds")
        {
            o.insert("uniqueItems".into(), Value::Bool(true));
        }
        doc
    })
}

/// The document as this gateway serves it: the hold size it is configured with.
pub fn served(max_seats_per_hold: usize) -> Value {
    let mut doc = document().clone();
    if let Some(v) =
        doc.pointer_mut("/components/schemas/CreateHoldRequest/properties/seatIds/maxItems")
    {
        *v = Value::from(max_seats_per_hold);
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operations() -> Vec<(String, String, Value)> {
        let mut ops = Vec::new();
        for (path, item) in document()["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                ops.push((path.clone(), method.clone(), op.clone()));
            }
        }
        ops
    }

    #[test]
    fn every_json_success_body_is_typed() {
        for (path, method, op) in operations() {
            if path == "/openapi.json" {
                continue;
            }
            for (status, r) in op["responses"].as_object().unwrap() {
                if !status.starts_with('2') {
                    continue;
                }
                let schema = &r["content"]["application/json"]["schema"];
                if schema.is_null() {
                    continue;
                }
                assert!(
                    schema.to_string().contains("$ref"),
                    "{method} {path} {status} has an untyped body: {schema}"
                );
            }
        }
    }

    #[test]
    fn every_operation_lists_the_statuses_it_can_answer() {
        for (path, method, op) in operations() {
            let r = &op["responses"];
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            if secured {
                assert!(r.get("401").is_some(), "{method} {path} lacks 401");
            }
            let command = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| p["name"] == "Idempotency-Key");
            if command {
                assert!(r.get("202").is_some(), "{method} {path} lacks 202");
                let reused = ErrorCode::IdempotencyKeyReused.status().to_string();
                assert!(
                    r[reused.as_str()]["description"]
                        .as_str()
                        .is_some_and(|d| d.contains("idempotency_key_reused")),
                    "{method} {path} lacks {reused} idempotency_key_reused"
                );
            }
            if !matches!(path.as_str(), "/healthz" | "/readyz" | "/metrics") {
                assert!(r.get("503").is_some(), "{method} {path} lacks 503");
            }
            if op.get("requestBody").is_some() {
                for s in ["400", "413", "415"] {
                    assert!(r.get(s).is_some(), "{method} {path} lacks {s}");
                }
            }
        }
    }

    #[test]
    fn ids_pages_and_keys_state_their_bounds() {
        for (path, method, op) in operations() {
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap();
                let schema = p["schema"].to_string();
                match name {
                    "id" if path == "/v1/commands/{id}" => {
                        assert!(schema.contains("CommandId"), "{method} {path}")
                    }
                    "id" | "entityId" | "userId" => {
                        assert!(schema.contains("ObjectId"), "{method} {path} {name}")
                    }
                    "page" => assert!(
                        p["schema"]["minimum"] == 1 && p["schema"]["maximum"] == 1_000_000,
                        "{method} {path} page: {schema}"
                    ),
                    "limit" => assert!(
                        p["schema"]["minimum"] == 1 && p["schema"]["maximum"] == 100,
                        "{method} {path} limit: {schema}"
                    ),
                    "Idempotency-Key" => assert!(schema.contains("IdempotencyKey")),
                    "from" | "to" => assert!(schema.contains("DateOrTime"), "{method} {path}"),
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn the_error_table_is_in_the_document() {
        let doc = document();
        let codes = doc["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["enum"]
            .as_array()
            .unwrap();
        assert_eq!(codes.len(), ErrorCode::ALL.len());
        let description = doc["info"]["description"].as_str().unwrap();
        assert!(description.contains("docs/errors.md"));
        assert!(description.contains("| `seats_unavailable` | 409 |"));
    }

    #[test]
    fn the_served_document_states_the_configured_hold_size() {
        let doc = served(4);
        let seat_ids = &doc["components"]["schemas"]["CreateHoldRequest"]["properties"]["seatIds"];
        assert_eq!(seat_ids["maxItems"], 4);
        assert_eq!(seat_ids["uniqueItems"], true);
    }
}
