//! Bookings, payments and refunds: book a hold, pay for it, cancel it, read them back.
//!
//! The card number is checked here (Luhn, length) and put in the `card-vault` KV bucket
//! for a few minutes; the pay command carries only its key, the last four digits and the
//! brand, so no card number lands in the COMMANDS stream or a log.

use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use domain::entities::card::{self, parse_card_number};
use domain::entities::payment::PaymentMethod;
use domain::ids::parse_object_id;
use serde::Deserialize;
use streams::commands::{CancelBooking, CancelCause, Command, CreateBooking, EventRef, PayBooking};
use streams::queries::Query;
use utoipa::ToSchema;

use super::{ask, page_and_limit};
use crate::auth::AuthUser;
use crate::commands::{self, Origin};
use crate::error::ApiError;
use crate::extract::{parse_json, IdPath, IdempotencyKey, Json, QueryParams, RequestMeta};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/bookings", post(create))
        .route("/v1/bookings/{id}", get(read))
        .route("/v1/me/bookings", get(mine))
        .route("/v1/bookings/{id}/payments", post(pay))
        .route("/v1/bookings/{id}/cancel", post(cancel))
        .route("/v1/events/{id}/cancel", post(cancel_event))
        .route("/v1/payments/{id}", get(payment))
        .route("/v1/refunds/{id}", get(refund))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateBookingRequest {
    /// One of your active holds.
    #[schema(value_type = crate::openapi::params::ObjectId)]
    pub hold_id: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PayRequest {
    /// `card` (also `credit_card`, `debit_card`).
    pub method: String,
    /// Digits (spaces and dashes allowed); checked with Luhn. Only the last four digits
    /// and the brand are stored.
    #[schema(example = "4242424242424242")]
    pub card_number: String,
    /// Must be the booking's currency if given.
    pub currency: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CancelRequest {
    /// Free text kept with the refund.
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
pub struct PageParams {
    pub page: Option<String>,
    pub limit: Option<String>,
}

/// Book one of your active holds: a pending booking, to be paid before it expires.
#[utoipa::path(
    post, path = "/v1/bookings", tag = "bookings", security(("bearer" = [])),
    request_body = CreateBookingRequest,
    params(("Idempotency-Key" = Option<crate::openapi::params::IdempotencyKey>, Header, description = "Retries with the same key return the first result")),
    responses(
        (status = 201, description = "The booking, `pending`, to be paid before `expiresAt`", body = crate::openapi::schemas::Booking),
        (status = 400, description = "`invalid_id`, `validation_failed`, `invalid_json`", body = crate::openapi::ErrorBody),
        (status = 404, description = "`hold_not_found` (also another user's hold)", body = crate::openapi::ErrorBody),
        (status = 409, description = "`hold_not_active`: expired, released or already booked", body = crate::openapi::ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    key: IdempotencyKey,
    meta: RequestMeta,
    Json(body): Json<CreateBookingRequest>,
) -> Result<Response, ApiError> {
    let hold_id = parse_object_id(&body.hold_id).ok_or_else(|| ApiError::invalid_id("holdId"))?;
    commands::send(
        &state,
        Origin::user(&user, key, meta),
        Command::CreateBooking(CreateBooking { hold_id }),
    )
    .await
}

/// One of your bookings, with its seats and prices.
#[utoipa::path(
    get, path = "/v1/bookings/{id}", tag = "bookings", security(("bearer" = [])),
    params(("id" = crate::openapi::params::ObjectId, Path, description = "Booking id")),
    responses(
        (status = 200, description = "The booking with its seats", body = crate::openapi::schemas::Booking),
        (status = 404, description = "`booking_not_found` (also another user's booking)", body = crate::openapi::ErrorBody),
    )
)]
pub async fn read(
    State(state): State<AppState>,
    user: AuthUser,
    IdPath(booking_id): IdPath,
) -> Result<Response, ApiError> {
    ask(
        &state,
        Some(user.issuer()),
        Query::GetBooking { booking_id },
    )
    .await
}

/// Your bookings, newest first.
#[utoipa::path(
    get, path = "/v1/me/bookings", tag = "bookings", security(("bearer" = [])),
    params(crate::openapi::params::Paging),
    responses((status = 200, description = "A page of your bookings, newest first", body = crate::openapi::schemas::Page<crate::openapi::schemas::Booking>))
)]
pub async fn mine(
    State(state): State<AppState>,
    user: AuthUser,
    QueryParams(p): QueryParams<PageParams>,
) -> Result<Response, ApiError> {
    let (page, limit) = page_and_limit(p.page.as_deref(), p.limit.as_deref())?;
    ask(
        &state,
        Some(user.issuer()),
        Query::MyBookings { page, limit },
    )
    .await
}

/// Pay for a pending booking. Transient gateway errors are retried with back-off.
#[utoipa::path(
    post, path = "/v1/bookings/{id}/payments", tag = "bookings", security(("bearer" = [])),
    request_body = PayRequest,
    params(("id" = crate::openapi::params::ObjectId, Path, description = "Booking id"), ("Idempotency-Key" = Option<crate::openapi::params::IdempotencyKey>, Header, description = "Retries with the same key return the first result")),
    responses(
        (status = 201, description = "`{payment, booking, tickets}`: payment completed, booking confirmed; `tickets` is `{status: \"issuing\", expected, location}`: the tickets are issued asynchronously, read `location` (GET /v1/bookings/{id}/tickets) until its `status` is `issued`", body = crate::openapi::schemas::PaymentAnswer),
        (status = 400, description = "`validation_failed` (card number, method, currency)", body = crate::openapi::ErrorBody),
        (status = 402, description = "`card_declined`, `insufficient_funds`, `processing_error`, `card_token_expired`: details `{payment, booking, failedAttempts, attemptsLeft, bookingPayable}`; the booking stays payable with another card until it expires or has failed `TICKETING_PAYMENT_MAX_FAILED_ATTEMPTS` times (then it is cancelled and its seats released)", body = crate::openapi::ErrorBody),
        (status = 403, description = "`email_not_verified` (when paying needs a verified e-mail)", body = crate::openapi::ErrorBody),
        (status = 404, description = "`booking_not_found`", body = crate::openapi::ErrorBody),
        (status = 409, description = "`already_paid`, `payment_in_progress`, `booking_expired`, `booking_not_payable`", body = crate::openapi::ErrorBody),
    )
)]
pub async fn pay(
    State(state): State<AppState>,
    user: AuthUser,
    IdPath(booking_id): IdPath,
    key: IdempotencyKey,
    meta: RequestMeta,
    Json(body): Json<PayRequest>,
) -> Result<Response, ApiError> {
    let method = PaymentMethod::parse(body.method.trim())
        .filter(|m| m.takes_card())
        .ok_or_else(|| ApiError::validation("method must be card, credit_card or debit_card"))?;
    let number = parse_card_number(&body.card_number)?;
    let currency = body
        .currency
        .as_deref()
        .map(|c| domain::Currency::parse(c.trim()))
        .transpose()?;
    // The vault key is random: the card number never becomes part of a command id.
    let token = format!("card-{}", uuid::Uuid::new_v4().simple());
    state.bus.vault_card(&token, number.digits()).await?;
    let command = Command::PayBooking(PayBooking {
        booking_id,
        method,
        card_token: token.clone(),
        card_last4: card::last4(&number).to_string(),
        card_brand: card::brand(&number),
        currency,
    });
    let answer = commands::send(&state, Origin::user(&user, key, meta), command).await;
    // Any final answer ends the card's use: the worker purged it already, unless it never
    // ran (a retried Idempotency-Key answered from its stored result, a publish error, a
    // refusal). Only a 202 leaves it to the worker still running the payment.
    let running = matches!(&answer, Ok(r) if r.status() == axum::http::StatusCode::ACCEPTED);
    if !running {
        if let Err(e) = state.bus.forget_card(&token).await {
            tracing::warn!(error = %e, "card vault entry not purged; it expires by itself");
        }
    }
    answer
}

/// Cancel one of your bookings: a paid one is refunded by the event's policy.
#[utoipa::path(
    post, path = "/v1/bookings/{id}/cancel", tag = "bookings", security(("bearer" = [])),
    request_body = CancelRequest,
    params(("id" = crate::openapi::params::ObjectId, Path, description = "Booking id"), ("Idempotency-Key" = Option<crate::openapi::params::IdempotencyKey>, Header, description = "Retries with the same key return the first result")),
    responses(
        (status = 200, description = "The booking, cancelled, and its refund (null for an unpaid booking)", body = crate::openapi::schemas::CancelAnswer),
        (status = 404, description = "`booking_not_found`", body = crate::openapi::ErrorBody),
        (status = 409, description = "`booking_not_cancellable`, `event_started`, `payment_in_progress`", body = crate::openapi::ErrorBody),
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    user: AuthUser,
    IdPath(booking_id): IdPath,
    key: IdempotencyKey,
    meta: RequestMeta,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    // The body is optional: none, or `{"reason": "..."}`.
    let body: CancelRequest = if body.iter().all(u8::is_ascii_whitespace) {
        CancelRequest::default()
    } else {
        parse_json(&body)?
    };
    let note = body
        .reason
        .map(|r| r.trim().chars().take(500).collect::<String>())
        .filter(|r| !r.is_empty());
    let command = Command::CancelBooking(CancelBooking {
        booking_id,
        cause: CancelCause::UserRequested,
        note,
    });
    commands::send(&state, Origin::user(&user, key, meta), command).await
}

/// Cancel an event (admin): every confirmed booking is refunded in full, pending bookings
/// and holds are released, by commands that survive a restart.
#[utoipa::path(
    post, path = "/v1/events/{id}/cancel", tag = "events", security(("bearer" = [])),
    params(("id" = crate::openapi::params::ObjectId, Path, description = "Event id"), ("Idempotency-Key" = Option<crate::openapi::params::IdempotencyKey>, Header, description = "Retries with the same key return the first result")),
    responses(
        (status = 200, description = "The event, `cancelled`, with how many bookings and holds are being undone", body = crate::openapi::schemas::Event),
        (status = 403, description = "`forbidden`", body = crate::openapi::ErrorBody),
        (status = 404, description = "`event_not_found`", body = crate::openapi::ErrorBody),
        (status = 409, description = "`event_not_cancellable`", body = crate::openapi::ErrorBody),
    )
)]
pub async fn cancel_event(
    State(state): State<AppState>,
    user: AuthUser,
    IdPath(event_id): IdPath,
    key: IdempotencyKey,
    meta: RequestMeta,
) -> Result<Response, ApiError> {
    user.require_admin()?;
    commands::send(
        &state,
        Origin::user(&user, key, meta),
        Command::CancelEvent(EventRef { event_id }),
    )
    .await
}

/// One of your payments.
#[utoipa::path(
    get, path = "/v1/payments/{id}", tag = "bookings", security(("bearer" = [])),
    params(("id" = crate::openapi::params::ObjectId, Path, description = "Payment id")),
    responses((status = 200, description = "The payment (of the card, its brand only)", body = crate::openapi::schemas::Payment),
        (status = 404, description = "`payment_not_found`", body = crate::openapi::ErrorBody))
)]
pub async fn payment(
    State(state): State<AppState>,
    user: AuthUser,
    IdPath(payment_id): IdPath,
) -> Result<Response, ApiError> {
    ask(
        &state,
        Some(user.issuer()),
        Query::GetPayment { payment_id },
    )
    .await
}

/// One of your refunds.
#[utoipa::path(
    get, path = "/v1/refunds/{id}", tag = "bookings", security(("bearer" = [])),
    params(("id" = crate::openapi::params::ObjectId, Path, description = "Refund id")),
    responses((status = 200, description = "The refund", body = crate::openapi::schemas::Refund),
        (status = 404, description = "`refund_not_found`", body = crate::openapi::ErrorBody))
)]
pub async fn refund(
    State(state): State<AppState>,
    user: AuthUser,
    IdPath(refund_id): IdPath,
) -> Result<Response, ApiError> {
    ask(&state, Some(user.issuer()), Query::GetRefund { refund_id }).await
}
