//! Access tokens (JWT, HS256) and the [`AuthUser`] extractor.
//!
//! A token carries `{sub: user id hex, role, iat, exp}`. A `user` token is taken as it
//! is; a `staff` or `admin` token's role is confirmed against the account (cached for a
//! minute, [`RoleCache`]), so the JWT secret alone cannot make an admin that does not
//! exist, and a demoted or disabled admin loses the rights within a minute. A missing or malformed `Authorization` header is 401 `unauthorized`, a token
//! that fails its signature or shape is 401 `invalid_token`, an expired one 401
//! `token_expired`, and a role too low 403 `forbidden`.

use std::time::Duration;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::{header, request::Parts};
use chrono::Utc;
use domain::ids::parse_object_id;
use domain::user::Role;
use domain::ObjectId;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use streams::codes::ErrorCode;
use streams::commands::Issuer;

use crate::error::ApiError;
use crate::state::AppState;

/// Seconds of clock skew tolerated on `exp` between gateway replicas.
const LEEWAY_SECS: u64 = 5;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id, hex.
    pub sub: String,
    pub role: Role,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds.
    pub exp: i64,
    /// Issued at, Unix milliseconds: what a revocation's `notBefore` is compared with
    /// (a sign-in in the same second as a logout must survive it). Tokens without it
    /// count from `iat`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat_ms: Option<i64>,
}

impl Claims {
    fn issued_at_ms(&self) -> i64 {
        self.iat_ms.unwrap_or(self.iat.saturating_mul(1000))
    }
}

/// Signing and verification keys.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl JwtKeys {
    pub fn new(secret: &SecretString) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.set_required_spec_claims(&["exp", "sub"]);
        JwtKeys {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            validation,
        }
    }

    /// A token for `user_id` with `role`, valid for `ttl`.
    pub fn issue(&self, user_id: &ObjectId, role: Role, ttl: Duration) -> Result<String, ApiError> {
        let now_ms = Utc::now().timestamp_millis();
        let now = now_ms.div_euclid(1000);
        self.sign(&Claims {
            sub: user_id.to_hex(),
            role,
            iat: now,
            exp: now.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)),
            iat_ms: Some(now_ms),
        })
    }

    /// Signs arbitrary claims (tests craft expired tokens with it).
    pub fn sign(&self, claims: &Claims) -> Result<String, ApiError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| ApiError::internal(format!("signing a token: {e}")))
    }

    /// Checks a token's signature, expiry and shape.
    pub fn verify(&self, token: &str) -> Result<AuthUser, ApiError> {
        self.verify_claims(token).map(|(user, _)| user)
    }

    /// [`JwtKeys::verify`], with the claims.
    pub fn verify_claims(&self, token: &str) -> Result<(AuthUser, Claims), ApiError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => ApiError::new(
                    ErrorCode::TokenExpired,
                    "the token has expired, sign in again",
                ),
                _ => ApiError::new(ErrorCode::InvalidToken, "the token is not valid"),
            })?;
        let user_id = parse_object_id(&data.claims.sub)
            .ok_or_else(|| ApiError::new(ErrorCode::InvalidToken, "the token is not valid"))?;
        Ok((
            AuthUser {
                user_id,
                role: data.claims.role,
            },
            data.claims,
        ))
    }
}

/// Token revocations in memory: by user, the instant before which their tokens are void
/// (`streams::revocations`). Filled by [`watch_revocations`] and by this gateway's own
/// logout answers; read on every authenticated request without a round trip.
#[derive(Default)]
pub struct Revocations {
    by_user: std::sync::RwLock<std::collections::HashMap<ObjectId, i64>>,
}

impl Revocations {
    /// Tokens of `user` issued before `not_before_ms` are void from now on.
    pub fn note(&self, user: ObjectId, not_before_ms: i64) {
        if let Ok(mut m) = self.by_user.write() {
            let e = m.entry(user).or_insert(not_before_ms);
            *e = (*e).max(not_before_ms);
        }
    }

    /// The revocation of `user` expired from the bucket.
    pub fn forget(&self, user: &ObjectId) {
        if let Ok(mut m) = self.by_user.write() {
            m.remove(user);
        }
    }

    /// Whether a token of `user` issued at `issued_at_ms` was revoked.
    pub fn revoked(&self, user: &ObjectId, issued_at_ms: i64) -> bool {
        self.by_user
            .read()
            .ok()
            .and_then(|m| m.get(user).copied())
            .is_some_and(|nb| issued_at_ms < nb)
    }

    pub fn len(&self) -> usize {
        self.by_user.read().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Loads every revocation of the bucket (waiting up to five seconds for the ones
/// already there), then keeps following it in the background, re-watching after an
/// error. A gateway that started serving knows every revocation made before.
pub async fn watch_revocations(
    kv: async_nats::jetstream::kv::Store,
    revs: std::sync::Arc<Revocations>,
) {
    use futures::StreamExt;
    let (loaded_tx, loaded_rx) = tokio::sync::oneshot::channel::<()>();
    let mut loaded_tx = Some(loaded_tx);
    let initial = kv.status().await.map(|s| s.values()).unwrap_or(0);
    if initial == 0 {
        if let Some(tx) = loaded_tx.take() {
            let _ = tx.send(());
        }
    }
    tokio::spawn(async move {
        loop {
            match kv.watch_all_from_revision(1).await {
                Ok(mut w) => {
                    while let Some(entry) = w.next().await {
                        let Ok(entry) = entry else { break };
                        match streams::revocations::decode(&entry) {
                            Some((user, Some(r))) => {
                                revs.note(user, r.not_before.timestamp_millis())
                            }
                            Some((user, None)) => revs.forget(&user),
                            None => {}
                        }
                        if entry.delta == 0 {
                            if let Some(tx) = loaded_tx.take() {
                                let _ = tx.send(());
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch the token revocations; retrying")
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    if tokio::time::timeout(Duration::from_secs(5), loaded_rx)
        .await
        .is_err()
    {
        tracing::warn!("token revocations not loaded within 5 s; serving with what arrived");
    }
}

/// A token's caller: signature, expiry, revocation, and (staff and admin) the role.
async fn authenticate(state: &AppState, token: &str) -> Result<AuthUser, ApiError> {
    let (user, claims) = state.jwt.verify_claims(token)?;
    if state
        .revocations
        .revoked(&user.user_id, claims.issued_at_ms())
    {
        return Err(ApiError::new(
            ErrorCode::TokenRevoked,
            "the token was revoked (a logout, password reset or suspension since it was issued); sign in again",
        ));
    }
    state.roles.confirm(state, user).await
}

/// The signed-in caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthUser {
    pub user_id: ObjectId,
    pub role: Role,
}

impl AuthUser {
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.role.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden("admins only"))
        }
    }

    /// Staff or admin.
    pub fn require_staff(&self) -> Result<(), ApiError> {
        if self.role.is_staff() {
            Ok(())
        } else {
            Err(ApiError::forbidden("staff only"))
        }
    }

    pub fn issuer(&self) -> Issuer {
        Issuer {
            user_id: self.user_id,
            role: self.role,
        }
    }
}

/// Staff and admin roles confirmed recently, by user: `(role, when)`.
pub struct RoleCache {
    confirmed: std::sync::Mutex<std::collections::HashMap<ObjectId, (Role, std::time::Instant)>>,
    ttl: Duration,
}

impl Default for RoleCache {
    fn default() -> Self {
        RoleCache {
            confirmed: Default::default(),
            ttl: Duration::from_secs(60),
        }
    }
}

impl RoleCache {
    /// `user` as the token says, once its staff or admin role is confirmed.
    pub async fn confirm(&self, state: &AppState, user: AuthUser) -> Result<AuthUser, ApiError> {
        if user.role == Role::User {
            return Ok(user);
        }
        let fresh = self
            .confirmed
            .lock()
            .ok()
            .and_then(|m| m.get(&user.user_id).copied())
            .is_some_and(|(role, at)| role == user.role && at.elapsed() < self.ttl);
        if fresh {
            return Ok(user);
        }
        if state.bus.account_holds_role(&user.issuer()).await? {
            if let Ok(mut m) = self.confirmed.lock() {
                if m.len() > 10_000 {
                    m.clear();
                }
                m.insert(user.user_id, (user.role, std::time::Instant::now()));
            }
            Ok(user)
        } else {
            Err(ApiError::new(
                ErrorCode::InvalidToken,
                "the token's account does not hold that role (sign in again)",
            ))
        }
    }
}

/// The bearer token of a request: `None` without an `Authorization` header.
fn bearer(parts: &Parts) -> Result<Option<&str>, ApiError> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let garbled = || ApiError::unauthorized("the Authorization header must be `Bearer <token>`");
    let value = value.to_str().map_err(|_| garbled())?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(garbled)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(garbled());
    }
    Ok(Some(token))
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match bearer(parts)? {
            Some(token) => authenticate(state, token).await,
            None => Err(ApiError::unauthorized(
                "sign in first: send `Authorization: Bearer <token>`",
            )),
        }
    }
}

/// `Option<AuthUser>`: anonymous without the header, but a header that is present must
/// be valid.
impl OptionalFromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Self::Rejection> {
        match bearer(parts)? {
            Some(token) => authenticate(state, token).await.map(Some),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secret: &str) -> JwtKeys {
        JwtKeys::new(&SecretString::from(secret))
    }

    #[test]
    fn a_token_round_trips_to_its_user_and_role() {
        let k = keys("s3cret");
        let id = ObjectId::new();
        let t = k.issue(&id, Role::Admin, Duration::from_secs(60)).unwrap();
        assert_eq!(
            k.verify(&t).unwrap(),
            AuthUser {
                user_id: id,
                role: Role::Admin
            }
        );
    }

    #[test]
    fn expired_forged_and_garbled_tokens_are_refused_with_their_codes() {
        let k = keys("s3cret");
        let now = Utc::now().timestamp();
        let expired = k
            .sign(&Claims {
                sub: ObjectId::new().to_hex(),
                role: Role::User,
                iat: now - 7200,
                exp: now - 3600,
                iat_ms: None,
            })
            .unwrap();
        assert_eq!(
            k.verify(&expired).unwrap_err().code,
            ErrorCode::TokenExpired
        );
        let forged = keys("other")
            .issue(&ObjectId::new(), Role::Admin, Duration::from_secs(60))
            .unwrap();
        assert_eq!(k.verify(&forged).unwrap_err().code, ErrorCode::InvalidToken);
        assert_eq!(
            k.verify("not.a.jwt").unwrap_err().code,
            ErrorCode::InvalidToken
        );
        let bad_sub = k
            .sign(&Claims {
                sub: "me".into(),
                role: Role::User,
                iat: now,
                exp: now + 60,
                iat_ms: None,
            })
            .unwrap();
        assert_eq!(
            k.verify(&bad_sub).unwrap_err().code,
            ErrorCode::InvalidToken
        );
    }

    #[test]
    fn roles_gate_admin_and_staff_rights() {
        let u = |role| AuthUser {
            user_id: ObjectId::new(),
            role,
        };
        assert!(u(Role::Admin).require_admin().is_ok());
        assert!(u(Role::Admin).require_staff().is_ok());
        assert!(u(Role::Staff).require_staff().is_ok());
        assert_eq!(
            u(Role::Staff).require_admin().unwrap_err().code,
            ErrorCode::Forbidden
        );
        assert_eq!(
            u(Role::User).require_staff().unwrap_err().code,
            ErrorCode::Forbidden
        );
    }
}
