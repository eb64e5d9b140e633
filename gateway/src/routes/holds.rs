//! Holds: take seats of an event for a while, read your hold, let it go.
//!
//! The request is checked here (ids, count, repeats); the holds worker takes the seat
//! locks, all or none, and answers 409 `seats_unavailable` naming the taken seats.

use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use domain::hold::check_hold_request;
use domain::ids::parse_object_id;
use serde::Deserialize;
use serde_json::json;
use streams::codes::ErrorCode;
use streams::commands::{Command, CreateHold, ReleaseHold, ReleaseReason};
use streams::queries::Query;
use utoipa::ToSchema;

use super::ask;
use crate::auth::AuthUser;
use crate::commands::{self, Origin};
use crate::error::ApiError;
use crate::extract::{IdPath, IdempotencyKey, Json, RequestMeta};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/events/{id}/holds", post(create))
        .route("/v1/holds/{id}", get(read).delete(release))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateHoldRequest {
    /// Seat ids of this event (24 hex digits each), 1 to the configured maximum, no
    /// repeats.
    #[schema(example = json!(["65f0a0a0a0a0a0a0a0a0a0a0"]), min_items = 1, max_items = 10, value_type = Vec<crate::openapi::params::ObjectId>)]
    pub seat_ids: Vec<String>,
}

/// Hold seats of an event, all or none.
#[utoipa::path(
    post, path = "/v1/events/{id}/holds", tag = "holds",
    security(("bearer" = [])),
    request_body = CreateHoldRequest,
    params(
        ("id" = crate::openapi::params::ObjectId, Path, description = "Event id"),
        ("Idempotency-Key" = Option<crate::openapi::params::IdempotencyKey>, Header, description = "Retries with the same key return the first result"),
    ),
    responses(
        (status = 201, description = "The hold, `active`, with its seats", body = crate::openapi::schemas::Hold),
        (status = 202, description = "Accepted, still in flight", body = crate::openapi::PendingCommand),
        (status = 400, description = "`invalid_id`, `validation_failed`, `invalid_json`", body = crate::openapi::ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_token`, `token_expired`", body = crate::openapi::ErrorBody),
        (status = 404, description = "`event_not_found`, `seat_not_found`", body = crate::openapi::ErrorBody),
        (status = 409, description = "`seats_unavailable` (details name the seats), `event_not_on_sale`", body = crate::openapi::ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    IdPath(event_id): IdPath,
    key: IdempotencyKey,
    meta: RequestMeta,
    Json(body): Json<CreateHoldRequest>,
) -> Result<Response, ApiError> {
    let bad: Vec<&String> = body
        .seat_ids
        .iter()
        .filter(|s| parse_object_id(s).is_none())
        .collect();
    if !bad.is_empty() {
        return Err(
            ApiError::new(ErrorCode::InvalidId, "seatIds must be 24-hex-digit ids")
                .with_details(json!({"seatIds": bad})),
        );
    }
    let seat_ids: Vec<_> = body
        .seat_ids
        .iter()
        .filter_map(|s| parse_object_id(s))
        .collect();
    check_hold_request(&seat_ids, state.max_seats_per_hold)?;
    let command = Command::CreateHold(CreateHold { event_id, seat_ids });
    commands::send(&state, Origin::user(&user, key, meta), command).await
}

/// One of your holds.
#[utoipa::path(
    get, path = "/v1/holds/{id}", tag = "holds",
    security(("bearer" = [])),
    params(("id" = crate::openapi::params::ObjectId, Path, description = "Hold id")),
    responses(
        (status = 200, description = "The hold", body = crate::openapi::schemas::Hold),
        (status = 400, description = "`invalid_id`", body = crate::openapi::ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_token`, `token_expired`", body = crate::openapi::ErrorBody),
        (status = 404, description = "`hold_not_found` (also for another user's hold)", body = crate::openapi::ErrorBody),
    )
)]
pub async fn read(
    State(state): State<AppState>,
    user: AuthUser,
    IdPath(hold_id): IdPath,
) -> Result<Response, ApiError> {
    ask(&state, Some(user.issuer()), Query::GetHold { hold_id }).await
}

/// Let one of your holds go: its seats are available again.
#[utoipa::path(
    delete, path = "/v1/holds/{id}", tag = "holds",
    security(("bearer" = [])),
    params(
        ("id" = crate::openapi::params::ObjectId, Path, description = "Hold id"),
        ("Idempotency-Key" = Option<crate::openapi::params::IdempotencyKey>, Header, description = "Retries with the same key return the first result"),
    ),
    responses(
        (status = 204, description = "Released (also when it already was)"),
        (status = 202, description = "Accepted, still in flight", body = crate::openapi::PendingCommand),
        (status = 400, description = "`invalid_id`", body = crate::openapi::ErrorBody),
        (status = 404, description = "`hold_not_found`", body = crate::openapi::ErrorBody),
        (status = 409, description = "`hold_not_active`: expired or converted", body = crate::openapi::ErrorBody),
    )
)]
pub async fn release(
    State(state): State<AppState>,
    user: AuthUser,
    IdPath(hold_id): IdPath,
    key: IdempotencyKey,
    meta: RequestMeta,
) -> Result<Response, ApiError> {
    let command = Command::ReleaseHold(ReleaseHold {
        hold_id,
        reason: ReleaseReason::Released,
    });
    commands::send(&state, Origin::user(&user, key, meta), command).await
}
