//! Tickets and gate scans: a booking's tickets, one ticket, its QR image; scanning at a
//! gate and the keys a gate needs to check QR codes offline.
//!
//! The gateway holds no signing key: the ticketing worker signs, the scans worker
//! verifies, and the queries worker draws the PNG and lists the public keys.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use streams::codes::ErrorCode;
use streams::commands::{Command, ScanTicket};
use streams::queries::{Answer, Query, QueryRequest};
use utoipa::{IntoParams, ToSchema};

use super::ask;
use crate::auth::AuthUser;
use crate::commands::{self, Origin};
use crate::error::{reply_response, ApiError};
use crate::extract::{IdPath, IdempotencyKey, Json, QueryParams, RequestMeta};
use crate::state::AppState;

/// Longest QR string accepted from a scanner (ours are about 200 characters; longer
/// input is refused here and never reaches a worker).
pub const MAX_QR_INPUT: usize = 2048;
/// Longest device id and gate name.
pub const MAX_LABEL: usize = 128;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/bookings/{id}/tickets", get(booking_tickets))
        .route("/v1/tickets/{id}", get(read))
        .route("/v1/tickets/{id}/qr.png", get(qr_png))
        .route("/v1/scans", post(scan))
        .route("/v1/scan-keys", get(scan_keys))
        .route("/v1/events/{id}/revocations", get(revocations))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScanRequest {
    /// The text of the ticket's QR code, as read.
    #[schema(
        example = "T1.dev-1a2b3c4d.AAAA....BBBB....",
        min_length = 1,
        max_length = 2048,
        pattern = "[^\\t-\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]"
    )]
    pub qr_string: String,
    /// The scanning device, 1 to 128 characters, not blank, no control characters.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "[^\\t-\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]"
    )]
    pub device_id: String,
    /// The gate or entrance, 1 to 128 characters, not blank, no control characters.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "[^\\t-\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]"
    )]
    pub gate: Option<String>,
}

/// The tickets of one of your bookings, one per seat, in seat order.
#[utoipa::path(
    get, path = "/v1/bookings/{id}/tickets", tag = "tickets", security(("bearer" = [])),
    params(("id" = crate::openapi::params::ObjectId, Path, description = "Booking id")),
    responses(
        (status = 200, description = "The tickets; they appear moments after the booking is confirmed", body = crate::openapi::schemas::BookingTickets),
        (status = 404, description = "`booking_not_found` (also another user's booking)", body = crate::openapi::ErrorBody),
    )
)]
pub async fn booking_tickets(
    State(state): State<AppState>,
    user: AuthUser,
    IdPath(booking_id): IdPath,
) -> Result<Response, ApiError> {
    ask(
        &state,
        Some(user.issuer()),
        Query::BookingTickets { booking_id },
    )
    .await
}

/// One of your tickets: number, event, seat, status and QR string.
#[utoipa::path(
    get, path = "/v1/tickets/{id}", tag = "tickets", security(("bearer" = [])),
    params(("id" = crate::openapi::params::ObjectId, Path, description = "Ticket id")),
    responses(
        (status = 200, description = "The ticket", body = crate::openapi::schemas::Ticket),
        (status = 404, description = "`ticket_not_found` (also another user's ticket)", body = crate::openapi::ErrorBody),
    )
)]
pub async fn read(
    State(state): State<AppState>,
    user: AuthUser,
    IdPath(ticket_id): IdPath,
) -> Result<Response, ApiError> {
    ask(&state, Some(user.issuer()), Query::GetTicket { ticket_id }).await
}

/// The QR code of one of your tickets, as a PNG image. Each download is counted.
#[utoipa::path(
    get, path = "/v1/tickets/{id}/qr.png", tag = "tickets", security(("bearer" = [])),
    params(("id" = crate::openapi::params::ObjectId, Path, description = "Ticket id")),
    responses(
        (status = 200, description = "The QR code", content_type = "image/png", body = Vec<u8>),
        (status = 404, description = "`ticket_not_found` (also another user's ticket)", body = crate::openapi::ErrorBody),
    )
)]
pub async fn qr_png(
    State(state): State<AppState>,
    user: AuthUser,
    IdPath(ticket_id): IdPath,
) -> Result<Response, ApiError> {
    let req = QueryRequest {
        issuer: Some(user.issuer()),
        query: Query::TicketQrPng { ticket_id },
    };
    let png = match state.bus.ask_answer(&req).await? {
        Answer::Reply(reply) if !reply.is_success() => return Ok(reply_response(reply)),
        Answer::Binary { content_type, body } if content_type == "image/png" => body,
        Answer::Reply(_) => return Err(ApiError::internal("a QR answer sent as JSON")),
        Answer::Binary { content_type, .. } => {
            return Err(ApiError::internal(format!(
                "a QR answer of type {content_type}"
            )))
        }
    };
    let mut r = (StatusCode::OK, png).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
    // A ticket is private: no shared cache may keep it.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "inline; filename=\"ticket-{}.png\"",
        ticket_id.to_hex()
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

fn label(field: &str, v: &str) -> Result<String, ApiError> {
    // Checked as sent: a control character is refused even where trimming would drop it.
    let long = v.chars().count() > MAX_LABEL;
    let control = v.chars().any(char::is_control);
    let v = v.trim();
    if long || control || v.is_empty() {
        return Err(ApiError::validation(format!(
            "{field} must be 1 to {MAX_LABEL} printable characters"
        )));
    }
    Ok(v.to_string())
}

/// Staff: scan a ticket at a gate. Every outcome is 200 with its `status`: `success`
/// (let in), `already_scanned` (with `firstScan`: when and at which gate),
/// `invalid_qr`, `ticket_cancelled` or `ticket_expired` (with `reason`). Every scan is
/// recorded.
#[utoipa::path(
    post, path = "/v1/scans", tag = "tickets", security(("bearer" = [])),
    request_body = ScanRequest,
    params(("Idempotency-Key" = Option<crate::openapi::params::IdempotencyKey>, Header, description = "Retries with the same key return the first result")),
    responses(
        (status = 200, description = "The verdict: admitted, or why not", body = crate::openapi::schemas::ScanAnswer),
        (status = 400, description = "`validation_failed`, `invalid_json`", body = crate::openapi::ErrorBody),
        (status = 403, description = "`forbidden`: staff only", body = crate::openapi::ErrorBody),
    )
)]
pub async fn scan(
    State(state): State<AppState>,
    user: AuthUser,
    key: IdempotencyKey,
    meta: RequestMeta,
    Json(body): Json<ScanRequest>,
) -> Result<Response, ApiError> {
    user.require_staff()?;
    if body.qr_string.trim().is_empty() || body.qr_string.chars().count() > MAX_QR_INPUT {
        return Err(ApiError::validation(format!(
            "qrString must be 1 to {MAX_QR_INPUT} characters"
        )));
    }
    let device_id = label("deviceId", &body.device_id)?;
    let gate = body.gate.as_deref().map(|g| label("gate", g)).transpose()?;
    let command = Command::ScanTicket(ScanTicket {
        qr_string: body.qr_string.trim().to_string(),
        device_id,
        gate,
    });
    commands::send(&state, Origin::user(&user, key, meta), command).await
}

/// Staff: the public keys that check QR codes offline (`T1.<kid>.<payload>.<sig>`,
/// Ed25519 over `T1.<kid>.<payload>`). The first key signs new tickets.
#[utoipa::path(
    get, path = "/v1/scan-keys", tag = "tickets", security(("bearer" = [])),
    responses(
        (status = 200, description = "The public keys", body = crate::openapi::schemas::ScanKeys),
        (status = 403, description = "`forbidden`: staff only", body = crate::openapi::ErrorBody),
    )
)]
pub async fn scan_keys(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Response, ApiError> {
    user.require_staff()?;
    ask(&state, Some(user.issuer()), Query::ScanKeys).await
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct RevocationParams {
    /// The `version` of the list the device holds: only entries newer than it are sent.
    /// 0 or absent: the whole list.
    #[param(value_type = Option<String>, pattern = "^[0-9]{1,19}$")]
    pub since: Option<String>,
}

/// `since` as a version: a whole number from 0 (absent: 0; present but blank is refused,
/// as the document's pattern says).
pub fn parse_since(since: Option<&str>) -> Result<u64, ApiError> {
    match since {
        None => Ok(0),
        Some(s) if s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse::<u64>().map_err(|_| bad_since())
        }
        Some(_) => Err(bad_since()),
    }
}

fn bad_since() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidSince,
        "since must be the version of a revocation list (a whole number from 0)",
    )
}

/// Staff: the event's revocation list, signed, for gates that check tickets offline:
/// tickets cancelled (booking cancelled or refunded, event cancelled) and QR codes
/// invalidated. The answer is `{format: "TRL1", kid, alg, payload, signature}`: `payload`
/// is base64url of the JSON `{eventId, since, version, issuedAt, entries: [{version,
/// ticketId, qrCodeId, qrSha256, bookingId, ticketNumber, reason, revokedAt}]}`, and
/// `signature` the Ed25519 signature of `TRL1.<kid>.<payload>` by a key of
/// `GET /v1/scan-keys`. Ask again with `since=<version>` for what changed since.
#[utoipa::path(
    get, path = "/v1/events/{id}/revocations", tag = "tickets", security(("bearer" = [])),
    params(("id" = crate::openapi::params::ObjectId, Path, description = "Event id"), RevocationParams),
    responses(
        (status = 200, description = "The signed list: `{format, kid, alg, payload, signature}`", body = crate::openapi::schemas::SignedRevocations),
        (status = 400, description = "`invalid_id`; `invalid_since`: not a version, or newer than the list (download it whole: `since=0`)", body = crate::openapi::ErrorBody),
        (status = 403, description = "`forbidden`: staff only", body = crate::openapi::ErrorBody),
        (status = 404, description = "`event_not_found`", body = crate::openapi::ErrorBody),
    )
)]
pub async fn revocations(
    State(state): State<AppState>,
    user: AuthUser,
    IdPath(event_id): IdPath,
    QueryParams(p): QueryParams<RevocationParams>,
) -> Result<Response, ApiError> {
    user.require_staff()?;
    let since = parse_since(p.since.as_deref())?;
    ask(
        &state,
        Some(user.issuer()),
        Query::EventRevocations { event_id, since },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_a_whole_version_or_absent() {
        assert_eq!(parse_since(None).unwrap(), 0);
        assert!(parse_since(Some(" ")).is_err());
        assert!(parse_since(Some("")).is_err());
        assert_eq!(parse_since(Some("42")).unwrap(), 42);
        assert_eq!(parse_since(Some(&u64::MAX.to_string())).unwrap(), u64::MAX);
        for bad in [
            "v1",
            "-1",
            "+1",
            "1.0",
            "1e3",
            "18446744073709551616",
            "0x10",
        ] {
            let e = parse_since(Some(bad)).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidSince, "{bad}");
            assert_eq!(e.code.status(), 400);
        }
    }
}
