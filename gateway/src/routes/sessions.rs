//! Ending tokens: a user signs out everywhere; an admin suspends an account.
//!
//! Both are commands to the accounts worker, which writes a revocation
//! (`streams::revocations`) that every gateway watches: tokens issued before it are 401
//! `token_revoked` on every gateway within moments, and on this one at once.

use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use chrono::Utc;
use streams::commands::{Command, UserRef};

use crate::auth::AuthUser;
use crate::commands::{self, Origin};
use crate::error::ApiError;
use crate::extract::{IdPath, IdempotencyKey, RequestMeta};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/auth/logout", post(logout))
        .route("/v1/users/{id}/suspend", post(suspend))
}

/// Sign out everywhere: every token of the caller issued before now stops working.
#[utoipa::path(
    post, path = "/v1/auth/logout", tag = "accounts",
    security(("bearer" = [])),
    params(
        ("Idempotency-Key" = Option<crate::openapi::params::IdempotencyKey>, Header, description = "Retries with the same key return the first result"),
    ),
    responses(
        (status = 200, description = "`{tokensRevokedBefore}`: tokens issued before that instant are void", body = crate::openapi::schemas::LoggedOut),
        (status = 202, description = "Accepted, still in flight", body = crate::openapi::PendingCommand),
        (status = 401, description = "`unauthorized`, `invalid_token`, `token_expired`, `token_revoked`", body = crate::openapi::ErrorBody),
    )
)]
pub async fn logout(
    State(state): State<AppState>,
    user: AuthUser,
    key: IdempotencyKey,
    meta: RequestMeta,
) -> Result<Response, ApiError> {
    let before = Utc::now().timestamp_millis();
    let r = commands::send(&state, Origin::user(&user, key, meta), Command::Logout).await?;
    if r.status().is_success() && r.status() != axum::http::StatusCode::ACCEPTED {
        // The watch brings the worker's exact instant; this gateway need not wait for it.
        state.revocations.note(user.user_id, before);
    }
    Ok(r)
}

/// Admin: suspend an account. It can no longer sign in, and its tokens stop working.
#[utoipa::path(
    post, path = "/v1/users/{id}/suspend", tag = "accounts",
    security(("bearer" = [])),
    params(
        ("id" = crate::openapi::params::ObjectId, Path, description = "User id"),
        ("Idempotency-Key" = Option<crate::openapi::params::IdempotencyKey>, Header, description = "Retries with the same key return the first result"),
    ),
    responses(
        (status = 200, description = "`{id, status: suspended, tokensRevokedBefore}`", body = crate::openapi::schemas::Suspended),
        (status = 202, description = "Accepted, still in flight", body = crate::openapi::PendingCommand),
        (status = 400, description = "`invalid_id`", body = crate::openapi::ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_token`, `token_expired`, `token_revoked`", body = crate::openapi::ErrorBody),
        (status = 403, description = "`forbidden`: admins only", body = crate::openapi::ErrorBody),
        (status = 404, description = "`not_found`", body = crate::openapi::ErrorBody),
    )
)]
pub async fn suspend(
    State(state): State<AppState>,
    user: AuthUser,
    IdPath(user_id): IdPath,
    key: IdempotencyKey,
    meta: RequestMeta,
) -> Result<Response, ApiError> {
    user.require_admin()?;
    let before = Utc::now().timestamp_millis();
    let r = commands::send(
        &state,
        Origin::user(&user, key, meta),
        Command::SuspendUser(UserRef { user_id }),
    )
    .await?;
    if r.status() == axum::http::StatusCode::OK {
        state.revocations.note(user_id, before);
    }
    Ok(r)
}
