//! Sending a command: choose its id (from the `Idempotency-Key` or fresh), answer a
//! retried key from the stored result, publish with a reply inbox, wait, and turn the
//! outcome into a response carrying `Ticketing-Command-Id`.
//!
//! A wait that times out answers 202 `{commandId, status: "pending", location}` with a
//! `Location: /v1/commands/{id}` header; that resource answers the result once stored.
//! The gateway itself keeps nothing.

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::json;
use streams::codes::{ErrorCode, Reply};
use streams::commands::{idempotent_command_id, new_command_id, Command, CommandEnvelope, Issuer};
use streams::idempotency::{Claim, KeyRecord};

use crate::auth::AuthUser;
use crate::bus::Sent;
use crate::error::{reply_response, ApiError};
use crate::extract::{IdempotencyKey, RequestMeta};
use crate::state::AppState;

/// The response header naming the command a request became.
pub const COMMAND_ID_HEADER: HeaderName = HeaderName::from_static("ticketing-command-id");

/// Who sends a command and from where.
pub struct Origin {
    pub issuer: Option<Issuer>,
    /// What an `Idempotency-Key` is scoped to: the user's id, or `anon:<email>`.
    pub scope: String,
    pub key: IdempotencyKey,
    pub meta: RequestMeta,
}

impl Origin {
    pub fn user(user: &AuthUser, key: IdempotencyKey, meta: RequestMeta) -> Self {
        Origin {
            issuer: Some(user.issuer()),
            scope: user.user_id.to_hex(),
            key,
            meta,
        }
    }

    /// An anonymous command (registration), its key scoped to the e-mail it is about.
    pub fn anonymous(email: &str, key: IdempotencyKey, meta: RequestMeta) -> Self {
        Origin {
            issuer: None,
            scope: format!("anon:{email}"),
            key,
            meta,
        }
    }

    fn command_id(&self) -> String {
        match &self.key.0 {
            Some(k) => idempotent_command_id(&self.scope, k),
            None => new_command_id(),
        }
    }
}

/// Whether `s` has the shape of a command id this gateway gives out (a UUID, or
/// `idem-` and 32 hex digits).
pub fn is_command_id(s: &str) -> bool {
    match s.strip_prefix("idem-") {
        Some(h) => h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()),
        None => s.len() == 36 && uuid::Uuid::parse_str(s).is_ok(),
    }
}

/// Publishes `command` and answers with its worker's reply, a stored earlier reply (a
/// retried `Idempotency-Key`), or 202 pending.
pub async fn send(
    state: &AppState,
    origin: Origin,
    command: Command,
) -> Result<Response, ApiError> {
    let id = origin.command_id();
    if origin.key.0.is_some() {
        if let Some(answer) = check_key(state, &origin, &id).await? {
            return Ok(answer);
        }
    }
    let env = CommandEnvelope {
        id: id.clone(),
        issuer: origin.issuer,
        issued_at: Utc::now(),
        context: origin.meta.context(),
        command,
    };
    match state
        .bus
        .send(&env, origin.meta.request_id.as_deref())
        .await?
    {
        Sent::Replied(reply) => Ok(command_response(&id, reply)),
        Sent::Pending => Ok(pending_response(&id)),
    }
}

/// The `Idempotency-Key` rules, before anything is published: the first request with a
/// key claims it with its fingerprint; a later one with another route or body is 422
/// `idempotency_key_reused`, the same one gets the stored result, or 409
/// `idempotency_key_in_flight` while the first is still being applied. `None`: go on and
/// publish (the first request, or one whose first attempt died before publishing).
async fn check_key(
    state: &AppState,
    origin: &Origin,
    id: &str,
) -> Result<Option<Response>, ApiError> {
    let fingerprint =
        origin.meta.fingerprint.clone().ok_or_else(|| {
            ApiError::internal("an Idempotency-Key request without its fingerprint")
        })?;
    let record = KeyRecord {
        fingerprint,
        claimed_at: Utc::now(),
    };
    let first = match state.bus.claim_key(id, &record).await? {
        Claim::First => return Ok(None),
        Claim::Taken(first) => first,
    };
    if first.fingerprint != record.fingerprint {
        return Err(ApiError::new(
            ErrorCode::IdempotencyKeyReused,
            "this Idempotency-Key was used with another route or body; choose a new key for a new request",
        ));
    }
    if let Some(stored) = state.bus.stored(id).await? {
        let ours = origin.issuer.as_ref().map(|i| i.user_id.to_hex());
        if stored.issuer_id.is_some() && stored.issuer_id != ours {
            // Cannot happen with scoped ids; refuse rather than show another's result.
            return Err(ApiError::new(
                ErrorCode::IdempotencyKeyReused,
                "this Idempotency-Key was used for another request",
            ));
        }
        tracing::debug!(command_id = %id, "answering a retried Idempotency-Key from its stored result");
        return Ok(Some(command_response(id, stored.reply)));
    }
    let age = (record.claimed_at - first.claimed_at)
        .to_std()
        .unwrap_or_default();
    if age < state.in_flight_grace {
        let location = format!("/v1/commands/{id}");
        let mut r = ApiError::new(
            ErrorCode::IdempotencyKeyInFlight,
            "a request with this Idempotency-Key is still being applied; read its result at the location given",
        )
        .with_details(json!({"commandId": id, "location": location}))
        .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        if let Ok(v) = HeaderValue::from_str(&location) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        return Ok(Some(with_command_id(r, id)));
    }
    tracing::info!(command_id = %id, "Idempotency-Key claimed long ago with no result: publishing again");
    Ok(None)
}

fn with_command_id(mut r: Response, id: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(id) {
        r.headers_mut().insert(COMMAND_ID_HEADER, v);
    }
    r
}

/// A command's reply as a response, with its id in `Ticketing-Command-Id`.
pub fn command_response(id: &str, reply: Reply) -> Response {
    with_command_id(reply_response(reply), id)
}

/// 202 for a command still in flight.
pub fn pending_response(id: &str) -> Response {
    let location = format!("/v1/commands/{id}");
    let body = json!({"commandId": id, "status": "pending", "location": location});
    let mut r = (StatusCode::ACCEPTED, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    with_command_id(r, id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ids_this_gateway_gives_out_look_like_command_ids() {
        assert!(is_command_id(&new_command_id()));
        assert!(is_command_id(&idempotent_command_id("u", "k")));
        assert!(!is_command_id("idem-xyz"));
        assert!(!is_command_id("../../etc"));
        assert!(!is_command_id(""));
    }

    #[test]
    fn a_pending_answer_points_at_the_command() {
        let r = pending_response("abc");
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        assert_eq!(r.headers()[header::LOCATION], "/v1/commands/abc");
        assert_eq!(r.headers()[COMMAND_ID_HEADER], "abc");
    }
}
