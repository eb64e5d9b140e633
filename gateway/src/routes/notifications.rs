//! Your notifications: the list (newest first) and marking one read.

use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use streams::commands::{Command, NotificationRef};
use streams::queries::Query;
use utoipa::IntoParams;

use super::{ask, page_and_limit};
use crate::auth::AuthUser;
use crate::commands::{self, Origin};
use crate::error::ApiError;
use crate::extract::{IdPath, IdempotencyKey, QueryParams, RequestMeta};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/me/notifications", get(mine))
        .route("/v1/me/notifications/{id}/read", post(read))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// From 1 (default 1).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1_000_000)]
    pub page: Option<String>,
    /// 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
}

/// Your notifications, newest first (one-time tokens are never shown).
#[utoipa::path(
    get, path = "/v1/me/notifications", tag = "accounts",
    security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "A page of your notifications, newest first", body = crate::openapi::schemas::Page<crate::openapi::schemas::Notification>),
        (status = 400, description = "`validation_failed`", body = crate::openapi::ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_token`, `token_expired`", body = crate::openapi::ErrorBody),
    )
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
        Query::MyNotifications { page, limit },
    )
    .await
}

/// Mark one of your notifications read.
#[utoipa::path(
    post, path = "/v1/me/notifications/{id}/read", tag = "accounts",
    security(("bearer" = [])),
    params(("id" = crate::openapi::params::ObjectId, Path, description = "Notification id"), ("Idempotency-Key" = Option<crate::openapi::params::IdempotencyKey>, Header, description = "Retries with the same key return the first result")),
    responses(
        (status = 200, description = "The notification, read", body = crate::openapi::schemas::Notification),
        (status = 400, description = "`invalid_id`", body = crate::openapi::ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_token`, `token_expired`", body = crate::openapi::ErrorBody),
        (status = 404, description = "`notification_not_found` (also another user's)", body = crate::openapi::ErrorBody),
    )
)]
pub async fn read(
    State(state): State<AppState>,
    user: AuthUser,
    key: IdempotencyKey,
    meta: RequestMeta,
    IdPath(notification_id): IdPath,
) -> Result<Response, ApiError> {
    let origin = Origin::user(&user, key, meta);
    let command = Command::MarkNotificationRead(NotificationRef { notification_id });
    commands::send(&state, origin, command).await
}
