//! Operations and cross-cutting reads: liveness, readiness, metrics, the OpenAPI
//! document, command results (`GET /v1/commands/{id}`) and the audit trail.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use domain::ids::parse_object_id;
use serde::Deserialize;
use serde_json::json;
use streams::codes::ErrorCode;
use streams::queries::{AuditFilter, Query, QueryRequest};
use utoipa::IntoParams;

use super::{ask, non_blank, page_and_limit};
use crate::auth::AuthUser;
use crate::commands::{command_response, is_command_id, pending_response};
use crate::error::ApiError;
use crate::extract::QueryParams;
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
    responses((status = 200, description = "`{\"status\": \"ok\"}`", body = Object)))]
pub async fn healthz() -> impl IntoResponse {
    axum::Json(json!({"status": "ok"}))
}

/// Readiness: connected to NATS, and the queries worker reaches MongoDB.
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses(
        (status = 200, description = "`{\"nats\": \"ok\", \"mongodb\": \"ok\"}`", body = Object),
        (status = 503, description = "Which part failed: `down`, or `unknown` when it could not be asked", body = Object),
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
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
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
pub async fn openapi() -> impl IntoResponse {
    axum::Json(crate::openapi::document().clone())
}

/// The result of a command whose wait timed out (202 pointed here).
///
/// A stored result is answered with its status and body to its issuer (anyone for an
/// anonymous command such as a registration); another user's is 404. A well-formed id
/// with no result yet is 202 pending: the gateway keeps no list of commands in flight,
/// so an id that was never sent also reads as pending. Malformed ids are 404.
#[utoipa::path(get, path = "/v1/commands/{id}", tag = "ops",
    security((), ("bearer" = [])),
    params(("id" = String, Path, description = "Command id from `Ticketing-Command-Id`")),
    responses(
        (status = 200, description = "The command's result, as its worker answered (any status)", body = Object),
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
    pub entity_id: Option<String>,
    /// Action such as `hold_created`.
    pub action: Option<String>,
    /// Id of the user who acted.
    pub user_id: Option<String>,
    /// success or failure.
    pub status: Option<String>,
    /// Entries at or after this time (RFC 3339).
    pub from: Option<String>,
    /// Entries before this time (RFC 3339).
    pub to: Option<String>,
    #[param(value_type = Option<u32>)]
    pub page: Option<String>,
    #[param(value_type = Option<u32>)]
    pub limit: Option<String>,
}

fn optional_id(field: &str, v: Option<String>) -> Result<Option<domain::ObjectId>, ApiError> {
    match non_blank(v) {
        None => Ok(None),
        Some(s) => parse_object_id(&s)
            .map(Some)
            .ok_or_else(|| ApiError::invalid_id(field)),
    }
}

fn audit_filter(p: AuditParams) -> Result<AuditFilter, ApiError> {
    let (page, limit) = page_and_limit(p.page.as_deref(), p.limit.as_deref())?;
    let status = non_blank(p.status);
    if let Some(s) = &status {
        if s != "success" && s != "failure" {
            return Err(ApiError::validation("status: must be success or failure"));
        }
    }
    let instant = |field: &str, v: Option<String>| match non_blank(v) {
        None => Ok(None),
        Some(t) => chrono::DateTime::parse_from_rfc3339(&t)
            .map(|t| Some(t.with_timezone(&chrono::Utc)))
            .map_err(|_| {
                ApiError::validation(format!(
                    "{field}: must be an RFC 3339 time like 2027-03-14T20:00:00Z"
                ))
            }),
    };
    let from = instant("from", p.from)?;
    let to = instant("to", p.to)?;
    Ok(AuditFilter {
        from,
        to,
        user_id: optional_id("userId", p.user_id)?,
        entity_id: optional_id("entityId", p.entity_id)?,
        action: non_blank(p.action),
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
        (status = 200, description = "`{items, page, limit, total}`", body = Object),
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
