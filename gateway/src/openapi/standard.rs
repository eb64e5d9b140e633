//! The answers every operation of a kind can give, added to the document in one place so
//! no route's annotation has to repeat them (and none can forget one):
//!
//! | the operation | gets |
//! |---|---|
//! | needs a bearer token (`security(("bearer" = []))`) | 401 `unauthorized`, `invalid_token`, `token_expired` |
//! | takes an optional token (`security((), ("bearer" = []))`) | 401 `invalid_token`, `token_expired` (a token sent must be valid) |
//! | has parameters or a body | 400 `validation_failed` (and `invalid_id` for an id parameter) |
//! | has a JSON body | 400 `invalid_json`, 413 `payload_too_large`, 415 `unsupported_media_type` |
//! | takes `Idempotency-Key` (it is a command) | 202 still in flight ([`PendingCommand`]), 409 `idempotency_key_reused` |
//! | any but `/healthz`, `/readyz`, `/metrics` | 503 `unavailable`, `overloaded`, `request_expired`, with `Retry-After` |
//!
//! Each code's status comes from the one code table (`streams::codes`).
//!
//! A route lists only what is its own: its success with a typed body, its 403, 404, 409,
//! 402. When a route lists a status named here too, the codes are appended to its
//! description.
//!
//! [`PendingCommand`]: super::PendingCommand

use std::collections::BTreeMap;

use streams::codes::ErrorCode;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::Type;
use utoipa::openapi::{ContentBuilder, ObjectBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::Modify;

/// The header naming a command-backed operation.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// Routes that are answered even when the gateway sheds load.
const NEVER_SHED: &[&str] = &["/healthz", "/readyz", "/metrics"];

pub struct StandardResponses;

fn error_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}

/// Adds `status` with `codes`, or appends the codes its description lacks.
fn add(op: &mut Operation, status: &str, codes: &[&str], make: impl FnOnce(String) -> Response) {
    let listed = codes
        .iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ");
    match op.responses.responses.get_mut(status) {
        Some(RefOr::T(r)) => {
            let missing: Vec<String> = codes
                .iter()
                .map(|c| format!("`{c}`"))
                .filter(|c| !r.description.contains(c.as_str()))
                .collect();
            if !missing.is_empty() {
                r.description = format!("{}; also {}", r.description, missing.join(", "));
            }
        }
        Some(RefOr::Ref(_)) => {}
        None => {
            op.responses
                .responses
                .insert(status.to_string(), RefOr::T(make(listed)));
        }
    }
}

/// Adds error answers for `codes`, each under its status from the one code table.
fn add_errors(op: &mut Operation, codes: &[ErrorCode]) {
    let mut by_status: BTreeMap<u16, Vec<&str>> = BTreeMap::new();
    for c in codes {
        by_status.entry(c.status()).or_default().push(c.as_str());
    }
    for (status, names) in by_status {
        add(op, &status.to_string(), &names, |l| {
            let mut r = error_response(&l);
            if status == 503 {
                r.headers.insert(
                    "Retry-After".into(),
                    HeaderBuilder::new()
                        .schema(ObjectBuilder::new().schema_type(Type::Integer))
                        .description(Some("Seconds to wait"))
                        .build(),
                );
            }
            r
        });
    }
}

fn standardise(path: &str, op: &mut Operation) {
    let security = serde_json::to_value(&op.security).unwrap_or_default();
    let requirements = security.as_array().cloned().unwrap_or_default();
    let optional = requirements
        .iter()
        .any(|r| r.as_object().is_some_and(|o| o.is_empty()));
    if !requirements.is_empty() {
        let codes: &[ErrorCode] = if optional {
            &[
                ErrorCode::InvalidToken,
                ErrorCode::TokenExpired,
                ErrorCode::TokenRevoked,
            ]
        } else {
            &[
                ErrorCode::Unauthorized,
                ErrorCode::InvalidToken,
                ErrorCode::TokenExpired,
                ErrorCode::TokenRevoked,
            ]
        };
        add_errors(op, codes);
    }
    let params = op.parameters.clone().unwrap_or_default();
    let has_body = op.request_body.is_some();
    let json_body = op
        .request_body
        .as_ref()
        .is_some_and(|b| b.content.contains_key("application/json"));
    let mut bad = Vec::new();
    if json_body {
        bad.extend([
            ErrorCode::InvalidJson,
            ErrorCode::PayloadTooLarge,
            ErrorCode::UnsupportedMediaType,
        ]);
    }
    if !params.is_empty() || has_body {
        bad.push(ErrorCode::ValidationFailed);
    }
    if params
        .iter()
        .any(|p| p.parameter_in == ParameterIn::Path && p.name == "id")
    {
        bad.push(ErrorCode::InvalidId);
    }
    add_errors(op, &bad);
    let command = params
        .iter()
        .any(|p| p.parameter_in == ParameterIn::Header && p.name == IDEMPOTENCY_HEADER);
    if command {
        add(op, "202", &[], |_| {
            ResponseBuilder::new()
                .description(
                    "Accepted: the command is durable but its worker has not answered yet; \
                     read the result at `Location` (`/v1/commands/{id}`)",
                )
                .header(
                    "Location",
                    HeaderBuilder::new()
                        .schema(ObjectBuilder::new().schema_type(Type::String))
                        .description(Some("`/v1/commands/{id}`"))
                        .build(),
                )
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("PendingCommand")))
                        .build(),
                )
                .build()
        });
        add_errors(
            op,
            &[
                ErrorCode::IdempotencyKeyReused,
                ErrorCode::IdempotencyKeyInFlight,
            ],
        );
    }
    if !NEVER_SHED.contains(&path) {
        add_errors(
            op,
            &[
                ErrorCode::Unavailable,
                ErrorCode::Overloaded,
                ErrorCode::RequestExpired,
            ],
        );
    }
}

impl Modify for StandardResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                standardise(path, op);
            }
        }
    }
}
