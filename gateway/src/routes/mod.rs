//! The HTTP surface: every route, the fallbacks, and the middleware stack (request id,
//! tracing, metrics, JSON errors, timeout, body limit).

pub mod account_tokens;
pub mod accounts;
pub mod analytics;
pub mod bookings;
pub mod events;
pub mod holds;
pub mod notifications;
pub mod ops;
pub mod sessions;
pub mod tickets;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use streams::codes::ErrorCode;
use streams::commands::Issuer;
use streams::queries::{Query, QueryRequest};
use tokio::sync::Semaphore;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::config::Config;
use crate::error::{json_response, reply_response, ApiError};
use crate::openapi::params::{MAX_LIMIT, MAX_PAGE};
use crate::state::AppState;

/// For a request with an `Idempotency-Key`: reads its body (within the body limit),
/// fingerprints method, path and canonical body ([`streams::idempotency::request_fingerprint`])
/// for the key's record, and hands the body on unchanged.
async fn fingerprint(State(limit): State<usize>, req: Request, next: Next) -> Response {
    if !req.headers().contains_key(crate::extract::IDEMPOTENCY_KEY) {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("the body is larger than {limit} bytes"),
            )
            .into_response()
        }
    };
    let fp =
        streams::idempotency::request_fingerprint(parts.method.as_str(), parts.uri.path(), &bytes);
    parts
        .extensions
        .insert(crate::extract::RequestFingerprint(fp));
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

/// The whole API with its middleware. Needs no server: tests drive it with `oneshot`.
pub fn router(state: AppState, cfg: &Config) -> Router {
    let router = Router::new()
        .merge(accounts::routes())
        .merge(events::routes())
        .merge(holds::routes())
        .merge(bookings::routes())
        .merge(ops::routes())
        .merge(tickets::routes())
        .merge(account_tokens::routes())
        .merge(notifications::routes())
        .merge(analytics::routes())
        .merge(sessions::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        // Innermost first: each layer wraps the ones above it.
        .layer(DefaultBodyLimit::max(cfg.max_body_bytes))
        .layer(middleware::from_fn_with_state(
            cfg.max_body_bytes,
            fingerprint,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            cfg.request_timeout(),
        ))
        .layer(middleware::from_fn_with_state(
            Arc::new(Semaphore::new(cfg.max_in_flight)),
            shed,
        ))
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn(crate::metrics::track))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let request_id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    // The path only: query strings may carry e-mails or search text.
                    tracing::info_span!(
                        "http",
                        method = %req.method(),
                        path = %req.uri().path(),
                        request_id,
                    )
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(middleware::from_fn(sanitize_request_id));
    // Outermost: a browser's preflight is answered before authentication and routing.
    match cors(&cfg.cors_origins()) {
        Some(layer) => router.layer(layer),
        None => router,
    }
}

/// CORS for the configured origins (`TICKETING_CORS_ORIGINS`); `None` when none is, and
/// then browsers on other origins cannot call the API (the preflight is 405).
fn cors(origins: &[HeaderValue]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{HeaderName, Method};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins.iter().cloned()))
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static(crate::extract::IDEMPOTENCY_KEY),
                HeaderName::from_static("x-request-id"),
            ])
            .expose_headers([
                header::LOCATION,
                header::RETRY_AFTER,
                crate::commands::COMMAND_ID_HEADER,
                HeaderName::from_static("x-request-id"),
            ])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

/// Longest client-supplied `x-request-id` kept; longer or odd ones are replaced.
const MAX_REQUEST_ID: usize = 128;

/// Drops a client's `x-request-id` that is too long or not plain ASCII, so a fresh one is
/// made: it travels in NATS headers and lands in the audit trail.
async fn sanitize_request_id(mut req: Request, next: Next) -> Response {
    let bad = req.headers().get("x-request-id").is_some_and(|v| {
        v.len() > MAX_REQUEST_ID
            || v.is_empty()
            || !v.as_bytes().iter().all(|b| b.is_ascii_graphic())
    });
    if bad {
        req.headers_mut().remove("x-request-id");
    }
    next.run(req).await
}

/// Seconds a client is told to wait after a 503 (every 503 says it).
pub const RETRY_AFTER_SECS: &str = "1";

/// Sheds load: a request over the in-flight bound is answered 503 `overloaded` at once
/// (probes and metrics are always answered, so an overloaded gateway is not restarted
/// for being busy).
async fn shed(State(slots): State<Arc<Semaphore>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if matches!(path, "/healthz" | "/readyz" | "/metrics") {
        return next.run(req).await;
    }
    match slots.try_acquire_owned() {
        Ok(permit) => {
            let response = next.run(req).await;
            drop(permit);
            response
        }
        Err(_) => ApiError::new(
            ErrorCode::Overloaded,
            "the gateway is handling too many requests, try again shortly",
        )
        .into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::from_status(StatusCode::NOT_FOUND)
}

async fn method_not_allowed() -> ApiError {
    ApiError::from_status(StatusCode::METHOD_NOT_ALLOWED)
}

/// Gives every error response our JSON body, including those made below the handlers
/// (the timeout layer's 503, a 413 from the body limit); headers such as `Allow` and
/// `x-request-id` are kept. Every 503 carries `Retry-After`.
async fn json_errors(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let status = response.status();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .entry(header::RETRY_AFTER)
            .or_insert(HeaderValue::from_static(RETRY_AFTER_SECS));
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let (_, body) = ApiError::from_status(status).into_response().into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, body)
}

/// Asks the queries worker and forwards its reply.
pub async fn ask(
    state: &AppState,
    issuer: Option<Issuer>,
    query: Query,
) -> Result<Response, ApiError> {
    let reply = state.bus.ask(&QueryRequest { issuer, query }).await?;
    Ok(reply_response(reply))
}

/// Asks the queries worker and forwards its reply's body as the worker wrote it (no
/// decoding here: for large bodies such as seat maps).
pub async fn ask_raw(
    state: &AppState,
    issuer: Option<Issuer>,
    query: Query,
) -> Result<Response, ApiError> {
    let reply = state.bus.ask_raw(&QueryRequest { issuer, query }).await?;
    let Ok(status) = StatusCode::from_u16(reply.status) else {
        return Err(ApiError::internal(format!(
            "a reply had the invalid status {}",
            reply.status
        )));
    };
    Ok(json_response(status, reply.body))
}

/// Page and page size from the query string: page 1 to [`MAX_PAGE`] (default 1), limit 1
/// to [`MAX_LIMIT`] (default 20); anything else, an empty value included, is 400
/// `validation_failed`. The document states the same bounds (`openapi::params`).
pub fn page_and_limit(page: Option<&str>, limit: Option<&str>) -> Result<(u32, u32), ApiError> {
    let page = match page {
        None => 1,
        Some(p) => p
            .parse::<u32>()
            .ok()
            .filter(|p| (1..=MAX_PAGE).contains(p))
            .ok_or_else(|| {
                ApiError::validation(format!("page must be a whole number from 1 to {MAX_PAGE}"))
            })?,
    };
    let limit = match limit {
        None => 20,
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| {
                ApiError::validation(format!(
                    "limit must be a whole number from 1 to {MAX_LIMIT}"
                ))
            })?,
    };
    Ok((page, limit))
}

/// A free-text query-string value, with blanks treated as absent.
///
/// A value with a control character (a NUL byte, a newline...) is refused with
/// `validation_failed`: no name, city or search text has one, and the database refuses a
/// NUL in a string (it answered 503 before this check).
pub fn non_blank(field: &str, v: Option<String>) -> Result<Option<String>, ApiError> {
    let v = v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    if v.as_deref()
        .is_some_and(|s| s.chars().any(char::is_control))
    {
        return Err(ApiError::validation(format!(
            "{field}: must not contain control characters"
        )));
    }
    Ok(v)
}

/// A query-string value that must be one of `allowed` when present; an empty value is
/// refused like any other value outside the list (the document states the list).
pub fn one_of(
    field: &str,
    v: Option<String>,
    allowed: &[&str],
) -> Result<Option<String>, ApiError> {
    match v {
        None => Ok(None),
        Some(s) if allowed.contains(&s.as_str()) => Ok(Some(s)),
        Some(_) => Err(ApiError::validation(format!(
            "{field}: must be one of {}",
            allowed.join(", ")
        ))),
    }
}

/// An optional ObjectId in the query string; an empty value is 400 `invalid_id`.
pub fn optional_id(field: &str, v: Option<String>) -> Result<Option<domain::ObjectId>, ApiError> {
    match v {
        None => Ok(None),
        Some(s) => domain::ids::parse_object_id(&s)
            .map(Some)
            .ok_or_else(|| ApiError::invalid_id(field)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_default_and_bad_numbers_are_refused() {
        assert_eq!(page_and_limit(None, None).unwrap(), (1, 20));
        assert_eq!(page_and_limit(Some("3"), Some("100")).unwrap(), (3, 100));
        assert_eq!(
            page_and_limit(Some("1000000"), None).unwrap(),
            (1_000_000, 20)
        );
        for (p, l) in [
            (Some("0"), None),
            (Some(""), None),
            (Some("1000001"), None),
            (Some("2147483648"), None),
            (None, Some("")),
            (None, Some("0")),
            (Some("x"), None),
            (None, Some("101")),
            (None, Some("-1")),
        ] {
            assert!(page_and_limit(p, l).is_err(), "{p:?} {l:?}");
        }
    }
}
