//! `Idempotency-Key` records: the first request with a key claims it here (a KV `create`,
//! so exactly one request wins) with its fingerprint; a later request with the same key
//! is compared with that record before anything else: another route or body is
//! `idempotency_key_reused`, the same request either reads the stored result or, while
//! the first is still being applied, gets `idempotency_key_in_flight`.
//!
//! The bucket keeps each record as long as the command results (24 h by default).

use async_nats::jetstream::kv;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::WireError;

/// What the first request with a key was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyRecord {
    /// SHA-256 (hex) of the request's method, path and canonical body.
    pub fingerprint: String,
    /// When the key was first claimed.
    pub claimed_at: DateTime<Utc>,
}

/// The outcome of claiming a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This request is the first with the key.
    First,
    /// Another request claimed it before: here is what it was.
    Taken(KeyRecord),
}

/// Claims `command_id` for `record`, or returns the record that holds it.
pub async fn claim(
    kv: &kv::Store,
    command_id: &str,
    record: &KeyRecord,
) -> Result<Claim, WireError> {
    let value = serde_json::to_vec(record)?;
    // A lost race on `create` is retried a few times: the winner's record may be read
    // just after it is written, or a record may expire between create and get.
    for _ in 0..3 {
        match kv.create(command_id, value.clone().into()).await {
            Ok(_) => return Ok(Claim::First),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                match kv.get(command_id).await.map_err(WireError::nats)? {
                    Some(b) => return Ok(Claim::Taken(serde_json::from_slice(&b)?)),
                    None => continue,
                }
            }
            Err(e) => return Err(WireError::nats(e)),
        }
    }
    Err(WireError::Nats(format!(
        "idempotency key {command_id}: neither created nor readable"
    )))
}

/// A request's fingerprint: SHA-256 over the method, the path and the body, the body
/// made canonical when it is JSON (keys sorted, no insignificant white space), so a
/// client that re-serializes the same request is not told it sent another.
pub fn request_fingerprint(method: &str, path: &str, body: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update(b" ");
    h.update(path.as_bytes());
    h.update(b"\n");
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) => h.update(serde_json::to_vec(&canonical(v)).unwrap_or_default()),
        Err(_) => h.update(body),
    }
    hex::encode(h.finalize())
}

/// `v` with every object's keys sorted (serde_json keeps insertion order in this
/// workspace: its `preserve_order` feature is on).
fn canonical(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            let sorted: std::collections::BTreeMap<String, Value> =
                m.into_iter().map(|(k, v)| (k, canonical(v))).collect();
            Value::Object(sorted.into_iter().collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(canonical).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_request_reserialized_has_the_same_fingerprint() {
        let a = request_fingerprint("POST", "/v1/bookings", br#"{"holdId":"x","n":1}"#);
        let b = request_fingerprint("POST", "/v1/bookings", b"{ \"n\": 1,\n \"holdId\": \"x\" }");
        assert_eq!(a, b);
    }

    #[test]
    fn another_route_method_or_body_has_another_fingerprint() {
        let a = request_fingerprint("POST", "/v1/bookings", br#"{"holdId":"x"}"#);
        assert_ne!(
            a,
            request_fingerprint("POST", "/v1/bookings", br#"{"holdId":"y"}"#)
        );
        assert_ne!(
            a,
            request_fingerprint("POST", "/v1/events/e/holds", br#"{"holdId":"x"}"#)
        );
        assert_ne!(
            a,
            request_fingerprint("DELETE", "/v1/bookings", br#"{"holdId":"x"}"#)
        );
        assert_ne!(
            request_fingerprint("POST", "/v1/x", b"not json"),
            request_fingerprint("POST", "/v1/x", b"not  json")
        );
    }
}
