//! Event analytics (admins): the metrics per period, and a rebuild from EVENTS.

use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use streams::commands::Command;
use streams::queries::Query;
use utoipa::IntoParams;

use super::{ask, one_of};
use crate::auth::AuthUser;
use crate::commands::{self, Origin};
use crate::error::ApiError;
use crate::extract::{IdPath, IdempotencyKey, QueryParams, RequestMeta};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/events/{id}/analytics", get(read))
        .route("/v1/analytics/rebuild", post(rebuild))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct AnalyticsParams {
    /// The buckets' size: hourly, daily (default), weekly or monthly.
    #[param(inline, value_type = Option<crate::openapi::params::Period>)]
    pub period: Option<String>,
}

/// An event's metrics per period, oldest period first (admins).
#[utoipa::path(
    get, path = "/v1/events/{id}/analytics", tag = "events",
    security(("bearer" = [])),
    params(("id" = crate::openapi::params::ObjectId, Path, description = "Event id"), AnalyticsParams),
    responses(
        (status = 200, description = "The metrics, oldest period first", body = crate::openapi::schemas::Analytics),
        (status = 400, description = "`invalid_id`, `validation_failed`", body = crate::openapi::ErrorBody),
        (status = 403, description = "`forbidden`: admins only", body = crate::openapi::ErrorBody),
        (status = 404, description = "`event_not_found`", body = crate::openapi::ErrorBody),
    )
)]
pub async fn read(
    State(state): State<AppState>,
    user: AuthUser,
    IdPath(event_id): IdPath,
    QueryParams(p): QueryParams<AnalyticsParams>,
) -> Result<Response, ApiError> {
    user.require_admin()?;
    let period = one_of(
        "period",
        p.period,
        &["hourly", "daily", "weekly", "monthly"],
    )?;
    ask(
        &state,
        Some(user.issuer()),
        Query::EventAnalytics { event_id, period },
    )
    .await
}

/// Drop the analytics and rebuild them by replaying EVENTS from the start (admins).
#[utoipa::path(
    post, path = "/v1/analytics/rebuild", tag = "events",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<crate::openapi::params::IdempotencyKey>, Header, description = "Retries with the same key return the first result")),
    responses(
        (status = 200, description = "Rebuilt", body = crate::openapi::schemas::Rebuilt),
        (status = 202, description = "Still running", body = crate::openapi::PendingCommand),
        (status = 403, description = "`forbidden`: admins only", body = crate::openapi::ErrorBody),
    )
)]
pub async fn rebuild(
    State(state): State<AppState>,
    user: AuthUser,
    key: IdempotencyKey,
    meta: RequestMeta,
) -> Result<Response, ApiError> {
    user.require_admin()?;
    commands::send(
        &state,
        Origin::user(&user, key, meta),
        Command::RebuildAnalytics,
    )
    .await
}
