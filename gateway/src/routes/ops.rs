//! Operations and cross-cutting reads: liveness, readiness, metrics, the OpenAPI
//! document, command results (`GET /v1/commands/{id}`) and the audit trail.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::json;
use streams::codes::ErrorCode;
use streams::queries::{AuditFilter, Query, QueryRequest};
use utoipa::IntoParams;

use super::{ask, non_blank, one_of, optional_id, page_and_limit};
use crate::auth::AuthUser;
use crate::commands::{command_response, is_command_id, pending_response};
use crate::error::ApiError;
use crate::extract::{date_or_time, DayEdge, QueryParams};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/v1/commands/{id}", get(command))
        .route("/v1/audit-logs", get(audit_logs))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "ops",
    responses((status = 200, description = "The process answers", body = crate::openapi::schemas::Health)))]
pub async fn healthz() -> impl IntoResponse {
    axum::Json(json!({"status": "ok"}))
}

/// Readiness: connected to NATS, and the queries worker reaches MongoDB.
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses(
        (status = 200, description = "Ready", body = crate::openapi::schemas::Readiness),
        (status = 503, description = "Which part failed: `down`, or `unknown` when it could not be asked", body = crate::openapi::schemas::Readiness),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let nats = state.bus.connected();
    let mongodb = if nats {
        let ping = QueryRequest {
            issuer: None,
            query: Query::Ping,
        };
        match state.bus.ask(&ping).await {
            Ok(r) if r.status == 200 => "ok",
            _ => "down",
        }
    } else {
        "unknown"
    };
    let body = json!({"nats": if nats { "ok" } else { "down" }, "mongodb": mongodb});
    let status = if nats && mongodb == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

/// Prometheus metrics: `http_requests_total` and `http_request_duration_seconds` by
/// method, route and status.
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain"),
        (status = 503, description = "`unavailable`: metrics are not enabled", body = crate::openapi::ErrorBody),
    ))]
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let Some(handle) = &state.metrics else {
        return Err(ApiError::new(
            ErrorCode::Unavailable,
            "metrics are not enabled",
        ));
    };
    handle.run_upkeep();
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response())
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "ops",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)))]
pub async fn openapi(State(state): State<AppState>) -> impl IntoResponse {
    axum::Json(crate::openapi::served(state.max_seats_per_hold))
}

/// The result of a command whose wait timed out (202 pointed here).
///
/// A stored result is answered with its status and body to its issuer (anyone for an
/// anonymous command such as a registration); another user's is 404. A well-formed id
/// with no result yet is 202 pending: the gateway keeps no list of commands in flight,
/// so an id that was never sent also reads as pending. Malformed ids are 404.
#[utoipa::path(get, path = "/v1/commands/{id}", tag = "ops",
    security((), ("bearer" = [])),
    params(("id" = crate::openapi::params::CommandId, Path, description = "Command id from `Ticketing-Command-Id`")),
    responses(
        (status = "default", description = "The command's result, as its worker answered, with its status (200, 201, 204, or one of its errors)", body = Object),
        (status = 202, description = "Not answered yet", body = crate::openapi::PendingCommand),
        (status = 404, description = "`command_not_found`", body = crate::openapi::ErrorBody),
    ))]
pub async fn command(
    State(state): State<AppState>,
    user: Option<AuthUser>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::new(ErrorCode::CommandNotFound, "no such command");
    if !is_command_id(&id) {
        return Err(not_found());
    }
    let Some(stored) = state.bus.stored(&id).await? else {
        return Ok(pending_response(&id));
    };
    let caller = user.map(|u| u.user_id.to_hex());
    match &stored.issuer_id {
        None => {}
        Some(owner) if caller.as_ref() == Some(owner) => {}
        Some(_) => return Err(not_found()),
    }
    Ok(command_response(&id, stored.reply))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Id of the changed entity.
    #[param(value_type = Option<crate::openapi::params::ObjectId>)]
    pub entity_id: Option<String>,
    /// Action such as `hold_created`. No control characters.
    #[param(pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub action: Option<String>,
    /// Id of the user who acted.
    #[param(value_type = Option<crate::openapi::params::ObjectId>)]
    pub user_id: Option<String>,
    #[param(inline, value_type = Option<crate::openapi::params::AuditStatus>)]
    pub status: Option<String>,
    /// Entries at or after this time (a plain date: from that day's start, UTC).
    #[param(value_type = Option<crate::openapi::params::DateOrTime>)]
    pub from: Option<String>,
    /// Entries before this time (a plain date: up to that day's end, UTC, inclusive).
    #[param(value_type = Option<crate::openapi::params::DateOrTime>)]
    pub to: Option<String>,
    /// From 1 (default 1).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1_000_000)]
    pub page: Option<String>,
    /// 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
}

fn audit_filter(p: AuditParams) -> Result<AuditFilter, ApiError> {
    let (page, limit) = page_and_limit(p.page.as_deref(), p.limit.as_deref())?;
    let status = one_of("status", p.status, &["success", "failure"])?;
    let from = p
        .from
        .map(|v| date_or_time("from", &v, DayEdge::Start))
        .transpose()?;
    let to =
        p.to.map(|v| date_or_time("to", &v, DayEdge::NextStart))
            .transpose()?;
    Ok(AuditFilter {
        from,
        to,
        user_id: optional_id("userId", p.user_id)?,
        entity_id: optional_id("entityId", p.entity_id)?,
        action: non_blank("action", p.action)?,
        status,
        page,
        limit,
    })
}

/// The audit trail, newest first (admins).
#[utoipa::path(get, path = "/v1/audit-logs", tag = "ops",
    security(("bearer" = [])),
    params(AuditParams),
    responses(
        (status = 200, description = "A page of entries, newest first", body = crate::openapi::schemas::Page<crate::openapi::schemas::AuditLog>),
        (status = 400, description = "`invalid_id`, `validation_failed`", body = crate::openapi::ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_token`, `token_expired`", body = crate::openapi::ErrorBody),
        (status = 403, description = "`forbidden`: admins only", body = crate::openapi::ErrorBody),
    ))]
pub async fn audit_logs(
    State(state): State<AppState>,
    user: AuthUser,
    QueryParams(p): QueryParams<AuditParams>,
) -> Result<Response, ApiError> {
    user.require_admin()?;
    let filter = audit_filter(p)?;
    ask(&state, Some(user.issuer()), Query::AuditLogs(filter)).await
}
