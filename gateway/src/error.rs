//! The gateway's one error type and the one place replies become HTTP responses.
//!
//! Every failure is an [`ApiError`] carrying a [`ErrorCode`] from the shared table in
//! `streams::codes`; its status and the `{"error": {"code", "message"}}` body come from
//! that table. Worker replies ([`Reply`]) are forwarded as they are, through
//! [`reply_response`]. A 5xx never carries internals: they are logged here and the client
//! reads `internal` or `unavailable`.

use std::fmt::Display;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::DomainError;
use serde_json::Value;
use streams::codes::{ErrorCode, Reply};
use streams::WireError;

/// An error answered to the client.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            details: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn validation(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::ValidationFailed, message)
    }

    pub fn invalid_id(what: &str) -> Self {
        ApiError::new(
            ErrorCode::InvalidId,
            format!("{what} must be a 24-hex-digit id"),
        )
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::Unauthorized, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::Forbidden, message)
    }

    /// An unexpected failure: logged with its cause, answered as a bare `internal`.
    pub fn internal(cause: impl Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        ApiError::new(ErrorCode::Internal, "internal error")
    }

    /// The message bus failed: logged with its cause, answered as `unavailable`.
    pub fn unavailable(cause: impl Display) -> Self {
        tracing::warn!(error = %cause, "message bus unavailable");
        ApiError::new(
            ErrorCode::Unavailable,
            "the service is unavailable, try again shortly",
        )
    }

    /// The error for a bare HTTP status produced below our handlers (the router's
    /// fallbacks, the timeout and body-limit layers).
    pub fn from_status(status: StatusCode) -> Self {
        match status {
            StatusCode::NOT_FOUND => ApiError::new(ErrorCode::NotFound, "no such resource"),
            StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
                ErrorCode::MethodNotAllowed,
                "this method is not allowed on this resource",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::new(ErrorCode::PayloadTooLarge, "the request body is too large")
            }
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "send JSON with Content-Type: application/json",
            ),
            StatusCode::UNAUTHORIZED => ApiError::unauthorized("sign in first"),
            StatusCode::FORBIDDEN => ApiError::forbidden("not allowed"),
            StatusCode::REQUEST_TIMEOUT
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT => ApiError::new(
                ErrorCode::Unavailable,
                "the request took too long, try again shortly",
            ),
            s if s.is_client_error() => ApiError::validation("the request is not valid"),
            _ => ApiError::new(ErrorCode::Internal, "internal error"),
        }
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn into_reply(self) -> Reply {
        match self.details {
            Some(d) => Reply::error_with(self.code, self.message, d),
            None => Reply::error(self.code, self.message),
        }
    }
}

impl Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        reply_response(self.into_reply())
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        ApiError::validation(e.to_string())
    }
}

impl From<WireError> for ApiError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Nats(_) | WireError::Timeout(_) => ApiError::unavailable(e),
            WireError::Encoding(_) => ApiError::internal(e),
        }
    }
}

/// A worker's reply as an HTTP response: its status and JSON body, unchanged. A 204 (or
/// a null body) has no body at all.
pub fn reply_response(reply: Reply) -> Response {
    let Ok(status) = StatusCode::from_u16(reply.status) else {
        return ApiError::internal(format!("a reply had the invalid status {}", reply.status))
            .into_response();
    };
    if status == StatusCode::NO_CONTENT || reply.body.is_null() {
        return status.into_response();
    }
    match serde_json::to_vec(&reply.body) {
        Ok(bytes) => json_response(status, bytes),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

/// A response whose body is JSON text already.
pub fn json_response(status: StatusCode, body: impl Into<axum::body::Body>) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.into(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_their_status_through_the_shared_table() {
        assert_eq!(
            ApiError::new(ErrorCode::SeatsUnavailable, "x").status(),
            StatusCode::CONFLICT
        );
        assert_eq!(
            ApiError::from_status(StatusCode::METHOD_NOT_ALLOWED).code,
            ErrorCode::MethodNotAllowed
        );
        assert_eq!(
            ApiError::from(WireError::nats("connection refused")).code,
            ErrorCode::Unavailable
        );
    }

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let e = ApiError::internal("mongodb://secret-host refused");
        assert_eq!(e.message, "internal error");
    }

    #[test]
    fn a_204_reply_has_no_body() {
        let r = reply_response(Reply::ok(204, Value::Null));
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert!(r.headers().get(header::CONTENT_TYPE).is_none());
    }
}
