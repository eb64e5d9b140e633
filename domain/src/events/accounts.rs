//! Account events, and the refusal of a command whose sender is not proven.

use bson::oid::ObjectId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{facts, oid_hex};
use crate::user::Role;

/// `user.registered`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRegistered {
    /// Before this enum: only the envelope's `entityId`.
    #[serde(with = "oid_hex")]
    pub user_id: ObjectId,
    pub role: Role,
    pub at: DateTime<Utc>,
}
facts!(UserRegistered, "userId" => user_id);

/// `user.logged_out`: the user's tokens issued before `tokens_revoked_before` are void.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserLoggedOut {
    /// Before this enum: only the envelope's `entityId`.
    #[serde(with = "oid_hex")]
    pub user_id: ObjectId,
    pub tokens_revoked_before: DateTime<Utc>,
}
facts!(UserLoggedOut, "userId" => user_id);

/// `user.suspended`: the account may not sign in, and its tokens are void.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserSuspended {
    /// Before this enum: only the envelope's `entityId`.
    #[serde(with = "oid_hex")]
    pub user_id: ObjectId,
    pub tokens_revoked_before: DateTime<Utc>,
}
facts!(UserSuspended, "userId" => user_id);

/// `user.verified` (`data` was `{}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserVerified {
    /// Before this enum: only the envelope's `entityId`.
    #[serde(with = "oid_hex")]
    pub user_id: ObjectId,
}
facts!(UserVerified, "userId" => user_id);

/// `user.password_reset` (`data` was `{}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserPasswordReset {
    /// Before this enum: only the envelope's `entityId`.
    #[serde(with = "oid_hex")]
    pub user_id: ObjectId,
}
facts!(UserPasswordReset, "userId" => user_id);

/// `command.refused`: audited as a failure with its status code, then dead-lettered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandRefused {
    /// The audit entity's id, derived from the command id and the time of refusal.
    /// Before this enum: only the envelope's `entityId`.
    #[serde(with = "oid_hex")]
    pub refusal_id: ObjectId,
    /// `<code>: <reason>`.
    pub failure_reason: String,
    pub status_code: u16,
    /// The error code (`streams::codes::ErrorCode` as text).
    pub code: String,
    /// `<area>.<verb>` of the refused command.
    pub command: String,
    pub subject: String,
    /// The key id the message claimed to be signed with, if any.
    #[serde(default)]
    pub signer: Option<String>,
}
facts!(CommandRefused, "refusalId" => refusal_id);
