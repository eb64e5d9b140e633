//! Token revocations: `<userId> -> {notBefore, reason}` in the `token-revocations`
//! bucket. Every access token of that user issued before `notBefore` is void. The
//! accounts worker writes it (password reset, logout, suspension; a role change would
//! write the same); every gateway watches the bucket into memory, so checking a token
//! costs a map lookup and no round trip.
//!
//! `notBefore` only ever moves forward, and it is the command's `issuedAt`, not the time
//! the worker applied it: a redelivered logout cannot void a token signed in since.

use std::time::Duration;

use async_nats::jetstream::kv;
use chrono::{DateTime, Utc};
use domain::ObjectId;
use serde::{Deserialize, Serialize};

use crate::WireError;

/// How long a revocation is kept: longer than any access token lives (the gateway
/// refuses a `TICKETING_TOKEN_TTL_SECS` above it).
pub const REVOCATION_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Revocation {
    /// Tokens issued before this instant are void.
    pub not_before: DateTime<Utc>,
    /// `password_reset`, `logout`, `suspended`, `role_changed`.
    pub reason: String,
}

/// Voids every token of `user` issued before `not_before` (kept if a later revocation is
/// already there). Returns the revocation now in force.
pub async fn revoke(
    kv: &kv::Store,
    user: ObjectId,
    not_before: DateTime<Utc>,
    reason: &str,
) -> Result<Revocation, WireError> {
    let key = user.to_hex();
    let new = Revocation {
        not_before,
        reason: reason.to_string(),
    };
    let mut last = String::new();
    for _ in 0..5 {
        let entry = kv.entry(&key).await.map_err(WireError::nats)?;
        let current = entry
            .as_ref()
            .filter(|e| e.operation == kv::Operation::Put)
            .and_then(|e| serde_json::from_slice::<Revocation>(&e.value).ok());
        if let Some(cur) = &current {
            if cur.not_before >= new.not_before {
                return Ok(cur.clone());
            }
        }
        let value = serde_json::to_vec(&new)?;
        let written = match &entry {
            Some(e) => kv
                .update(&key, value.into(), e.revision)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            None => kv
                .create(&key, value.into())
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
        };
        match written {
            Ok(()) => return Ok(new),
            // Someone wrote in between: read again and compare.
            Err(e) => {
                tracing::debug!(error = %e, "revocation raced; retrying");
                last = e;
            }
        }
    }
    Err(WireError::Nats(format!(
        "revoking the tokens of {key}: {last}"
    )))
}

/// Decodes a watched entry: `(user, revocation)`, `None` for deletes and junk.
pub fn decode(entry: &kv::Entry) -> Option<(ObjectId, Option<Revocation>)> {
    let user = ObjectId::parse_str(&entry.key).ok()?;
    match entry.operation {
        kv::Operation::Put => Some((user, serde_json::from_slice(&entry.value).ok()?)),
        _ => Some((user, None)),
    }
}
