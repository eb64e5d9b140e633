//! Extractors that reject in our error format: JSON bodies, ObjectId path segments,
//! query strings, the `Idempotency-Key` header, and the request's context (request id,
//! client address, user agent) for the audit trail.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::{header, request::Parts, HeaderMap, StatusCode};
use domain::ids::parse_object_id;
use domain::ObjectId;
use serde::de::DeserializeOwned;
use streams::codes::ErrorCode;
use streams::commands::RequestContext;
use tower_http::request_id::RequestId;

use crate::error::ApiError;

/// The longest `Idempotency-Key` accepted.
pub const MAX_IDEMPOTENCY_KEY: usize = 200;
/// The header carrying it.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Longest user agent kept for the audit trail.
const MAX_USER_AGENT: usize = 512;

/// A JSON body. Wrong content type 415 `unsupported_media_type`, too large 413
/// `payload_too_large`, broken JSON 400 `invalid_json`, the wrong shape (missing or
/// unknown fields, wrong types) 400 `validation_failed` with serde's message.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// Parses a JSON body, classifying serde's errors.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::validation(e.to_string()),
        _ => ApiError::new(
            ErrorCode::InvalidJson,
            format!("the body is not valid JSON: {e}"),
        ),
    })
}

impl<S, T> FromRequest<S> for Json<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::from_status(StatusCode::UNSUPPORTED_MEDIA_TYPE));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE)
            } else {
                ApiError::new(ErrorCode::InvalidJson, "the body could not be read")
            }
        })?;
        parse_json(&bytes).map(Json)
    }
}

/// One ObjectId path segment; anything else is 400 `invalid_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdPath(pub ObjectId);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::invalid_id("the id in the path"))?;
        parse_object_id(&raw)
            .map(IdPath)
            .ok_or_else(|| ApiError::invalid_id("the id in the path"))
    }
}

/// A query string; a malformed one is 400 `validation_failed`.
#[derive(Debug, Clone, Default)]
pub struct QueryParams<T>(pub T);

impl<S, T> FromRequestParts<S> for QueryParams<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(t)| QueryParams(t))
            .map_err(|e| ApiError::validation(e.body_text()))
    }
}

/// The `Idempotency-Key` header, when given: 1 to 200 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(v) = parts.headers.get(IDEMPOTENCY_KEY) else {
            return Ok(IdempotencyKey(None));
        };
        let bad = || {
            ApiError::validation(format!(
                "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
            ))
        };
        let key = v.to_str().map_err(|_| bad())?.trim();
        if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
            return Err(bad());
        }
        Ok(IdempotencyKey(Some(key.to_string())))
    }
}

/// The fingerprint of a request that carries an `Idempotency-Key` (method, path and
/// canonical body), put in the request's extensions by `routes::fingerprint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFingerprint(pub String);

/// Where a request came from, for the command envelope and the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestMeta {
    pub request_id: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    /// Set when the request has an `Idempotency-Key`.
    pub fingerprint: Option<String>,
}

impl RequestMeta {
    pub fn context(&self) -> RequestContext {
        RequestContext {
            request_id: self.request_id.clone(),
            ip_address: self.ip_address.clone(),
            user_agent: self.user_agent.clone(),
            fingerprint: self.fingerprint.clone(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestMeta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let request_id = parts
            .extensions
            .get::<RequestId>()
            .and_then(|r| r.header_value().to_str().ok())
            .map(str::to_string);
        let ip_address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(a)| a.ip().to_string());
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(MAX_USER_AGENT).collect());
        let fingerprint = parts
            .extensions
            .get::<RequestFingerprint>()
            .map(|f| f.0.clone());
        Ok(RequestMeta {
            request_id,
            ip_address,
            user_agent,
            fingerprint,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        a: u32,
    }

    #[test]
    fn syntax_errors_and_shape_errors_get_different_codes() {
        assert_eq!(
            parse_json::<Body>(b"{").unwrap_err().code,
            ErrorCode::InvalidJson
        );
        assert_eq!(
            parse_json::<Body>(b"").unwrap_err().code,
            ErrorCode::InvalidJson
        );
        let unknown = parse_json::<Body>(br#"{"a": 1, "b": 2}"#).unwrap_err();
        assert_eq!(unknown.code, ErrorCode::ValidationFailed);
        assert!(
            unknown.message.contains("unknown field"),
            "{}",
            unknown.message
        );
        assert_eq!(
            parse_json::<Body>(br#"{}"#).unwrap_err().code,
            ErrorCode::ValidationFailed
        );
        assert_eq!(
            parse_json::<Body>(br#"{"a": "x"}"#).unwrap_err().code,
            ErrorCode::ValidationFailed
        );
    }

    #[test]
    fn json_content_types_are_recognised() {
        let mut h = HeaderMap::new();
        assert!(!is_json(&h));
        h.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        assert!(is_json(&h));
        h.insert(
            header::CONTENT_TYPE,
            "application/merge-patch+json".parse().unwrap(),
        );
        assert!(is_json(&h));
        h.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert!(!is_json(&h));
    }
}
