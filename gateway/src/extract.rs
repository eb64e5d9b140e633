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

/// The `Idempotency-Key` header, when given: 1 to 200 visible ASCII characters, no spaces
/// (the document's `IdempotencyKey` schema says the same).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(v) = parts.headers.get(IDEMPOTENCY_KEY) else {
            return Ok(IdempotencyKey(None));
        };
        let key = v.as_bytes();
        if key.is_empty()
            || key.len() > MAX_IDEMPOTENCY_KEY
            || !key.iter().all(u8::is_ascii_graphic)
        {
            return Err(ApiError::validation(format!(
                "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters without spaces"
            )));
        }
        Ok(IdempotencyKey(Some(
            String::from_utf8_lossy(key).into_owned(),
        )))
    }
}

/// The fingerprint of a request that carries an `Idempotency-Key` (method, path and
/// canonical body), put in the request's extensions by `routes::fingerprint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFingerprint(pub String);

/// Which instant of a day a plain date stands for in a date parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayEdge {
    /// Its first instant (an inclusive lower bound: `from`).
    Start,
    /// Its last millisecond (an inclusive upper bound).
    End,
    /// The first instant of the next day (an exclusive upper bound: "before").
    NextStart,
}

/// A date parameter: an RFC 3339 time (any offset, answered in UTC), or a plain date
/// `YYYY-MM-DD` meaning that day in UTC, at `edge`. Anything else, an empty value
/// included, is 400 `validation_failed` naming `field`.
pub fn date_or_time(
    field: &str,
    v: &str,
    edge: DayEdge,
) -> Result<chrono::DateTime<chrono::Utc>, ApiError> {
    use chrono::{Duration, NaiveDate, Utc};
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&Utc));
    }
    let bad = || {
        ApiError::validation(format!(
            "{field}: must be an RFC 3339 time like 2027-03-14T20:00:00Z or a date like 2027-03-14"
        ))
    };
    // Exactly `YYYY-MM-DD` (chrono alone would take `2027-3-4`).
    let shaped = v.len() == 10
        && v.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !shaped {
        return Err(bad());
    }
    let day = NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| bad())?;
    let start = day.and_hms_opt(0, 0, 0).ok_or_else(bad)?.and_utc();
    Ok(match edge {
        DayEdge::Start => start,
        DayEdge::End => start + Duration::days(1) - Duration::milliseconds(1),
        DayEdge::NextStart => start + Duration::days(1),
    })
}

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
    fn dates_are_rfc_3339_times_or_plain_days() {
        let t = |v: &str, e| date_or_time("from", v, e).map(|t| t.to_rfc3339());
        assert_eq!(
            t("2027-01-01", DayEdge::Start).unwrap(),
            "2027-01-01T00:00:00+00:00"
        );
        assert_eq!(
            t("2027-01-01", DayEdge::End).unwrap(),
            "2027-01-01T23:59:59.999+00:00"
        );
        assert_eq!(
            t("2027-01-01", DayEdge::NextStart).unwrap(),
            "2027-01-02T00:00:00+00:00"
        );
        assert_eq!(
            t("2027-01-01T18:30:00+02:00", DayEdge::End).unwrap(),
            "2027-01-01T16:30:00+00:00"
        );
        for bad in [
            "",
            " ",
            "2027-1-1",
            "2027-13-01",
            "tomorrow",
            "2027-01-01T25:00:00Z",
        ] {
            let e = t(bad, DayEdge::Start).unwrap_err();
            assert_eq!(e.code, ErrorCode::ValidationFailed, "{bad:?}");
            assert!(e.message.starts_with("from:"), "{}", e.message);
        }
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
