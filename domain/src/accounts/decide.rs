//! The decisions of the accounts worker (`workers/src/users/mod.rs`,
//! `workers/src/users/tokens.rs`): suspending an account, and using a one-time token
//! (e-mail verification, password reset). Token hashing and revocation stay in the worker.

use bson::DateTime;

use super::user::{User, UserStatus};
use crate::shared::actor::Actor;
use crate::Refusal;

/// Longest one-time token accepted, in bytes.
pub const MAX_TOKEN_LEN: usize = 200;

#[derive(Debug, Clone, PartialEq)]
// NOTE: a decision lives for one command and is matched at once; boxing its entity
// would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum SuspendDecision {
    /// Write this (`-> suspended`), revoke the user's tokens, record it.
    Suspend(User),
    /// Suspended before (or an account that cannot be suspended, see the NOTE): nothing
    /// to write; tokens are revoked and the change recorded again.
    Unchanged(UserStatus),
    Refuse(Refusal),
}

/// Applied by `workers/src/users/mod.rs::suspend`.
pub fn decide_suspend(
    issuer: Option<Actor>,
    target: Option<&User>,
    now: DateTime,
) -> SuspendDecision {
    let Some(admin) = issuer.filter(Actor::is_admin) else {
        return SuspendDecision::Refuse(Refusal::Forbidden("admins only"));
    };
    if target.is_some_and(|u| u.id == admin.user_id) {
        // The last admin would lock everyone out; another admin can do it.
        return SuspendDecision::Refuse(Refusal::Forbidden(
            "an admin cannot suspend their own account",
        ));
    }
    let Some(u) = target else {
        return SuspendDecision::Refuse(Refusal::AccountNotFound);
    };
    // NOTE: the worker writes `suspended` over any status but `suspended`; the state
    // machine keeps `deleted` final, so a deleted account is left as it is. No writer
    // sets `deleted` yet.
    if !u.status.can_become(UserStatus::Suspended) {
        return SuspendDecision::Unchanged(u.status);
    }
    let mut after = u.clone();
    after.status = UserStatus::Suspended;
    after.updated_at = now;
    SuspendDecision::Suspend(after)
}

/// Whether a one-time token is worth looking up at all.
pub fn token_acceptable(token: &str) -> bool {
    !token.trim().is_empty() && token.len() <= MAX_TOKEN_LEN
}

/// Applied by `workers/src/users/tokens.rs::verify_email` for the user read under its
/// lease (`user`), whose stored verification hash must still be `hash`: the user
/// verified, the token gone (single use).
pub fn decide_verify_email(
    token: &str,
    user: Option<&User>,
    hash: &str,
    now: DateTime,
) -> Result<User, Refusal> {
    if !token_acceptable(token) {
        return Err(Refusal::InvalidOrExpiredToken);
    }
    let Some(u) = user.filter(|u| u.verification_token.as_deref() == Some(hash)) else {
        return Err(Refusal::InvalidOrExpiredToken);
    };
    let mut after = u.clone();
    after.is_verified = true;
    after.verification_token = None;
    after.updated_at = now;
    Ok(after)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResetDecision {
    /// The token is live: revoke the user's tokens, then set the new password hash
    /// (`passwordChangedAt`) and drop the token.
    Reset,
    /// The token matched but expired: drop it, answer `invalid_or_expired_token`.
    Expired,
    Refuse(Refusal),
}

/// Applied by `workers/src/users/tokens.rs::confirm_password_reset` for the user read
/// under its lease, whose stored reset hash must still be `hash`.
pub fn decide_password_reset(
    token: &str,
    password_hash: &str,
    user: Option<&User>,
    hash: &str,
    now: DateTime,
) -> ResetDecision {
    if !password_hash.starts_with("$argon2") {
        return ResetDecision::Refuse(Refusal::Invalid(
            "passwordHash must be an argon2 PHC string".into(),
        ));
    }
    if !token_acceptable(token) {
        return ResetDecision::Refuse(Refusal::InvalidOrExpiredToken);
    }
    let Some(u) = user.filter(|u| u.reset_password_token.as_deref() == Some(hash)) else {
        return ResetDecision::Refuse(Refusal::InvalidOrExpiredToken);
    };
    let live = u
        .reset_password_expiry
        .is_some_and(|t| t.timestamp_millis() > now.timestamp_millis());
    if live {
        ResetDecision::Reset
    } else {
        ResetDecision::Expired
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
