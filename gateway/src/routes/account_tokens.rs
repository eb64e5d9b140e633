//! The e-mailed one-time tokens: verify an address, reset a forgotten password.
//!
//! A reset request always answers 202, whether or not the e-mail has an account, so the
//! endpoint cannot be used to find out who is registered. The new password is checked and
//! hashed (argon2id) here; only the hash travels to the accounts worker.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use domain::user::{check_password, Email};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use streams::commands::{Command, OneTimeToken, PasswordResetConfirm, PasswordResetRequest};
use utoipa::ToSchema;

use crate::commands::{self, Origin};
use crate::error::ApiError;
use crate::extract::{IdempotencyKey, Json, RequestMeta};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/auth/verify", post(verify))
        .route("/v1/auth/password-reset", post(reset_request))
        .route("/v1/auth/password-reset/confirm", post(reset_confirm))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerifyRequest {
    /// The token from the verification e-mail.
    #[schema(value_type = String)]
    pub token: SecretString,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResetRequest {
    #[schema(example = "ana@example.com")]
    pub email: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResetConfirmRequest {
    /// The token from the reset e-mail.
    #[schema(value_type = String)]
    pub token: SecretString,
    /// 8 to 128 characters.
    #[schema(value_type = String, format = Password, min_length = 8, max_length = 128)]
    pub new_password: SecretString,
}

/// Token commands are anonymous; their idempotency scope is the token's hash prefix.
fn scope_of(token: &str) -> String {
    use sha2::{Digest, Sha256};
    format!(
        "token:{}",
        hex::encode(&Sha256::digest(token.as_bytes())[..8])
    )
}

/// Verify an e-mail address with the e-mailed token.
#[utoipa::path(
    post, path = "/v1/auth/verify", tag = "accounts",
    request_body = VerifyRequest,
    params(("Idempotency-Key" = Option<crate::openapi::params::IdempotencyKey>, Header, description = "Retries with the same key return the first result")),
    responses(
        (status = 200, description = "Verified", body = crate::openapi::schemas::Verified),
        (status = 400, description = "`invalid_or_expired_token` (unknown or used), `validation_failed`", body = crate::openapi::ErrorBody),
    )
)]
pub async fn verify(
    State(state): State<AppState>,
    key: IdempotencyKey,
    meta: RequestMeta,
    Json(body): Json<VerifyRequest>,
) -> Result<Response, ApiError> {
    let token = body.token.expose_secret().trim().to_string();
    let origin = Origin::anonymous(&scope_of(&token), key, meta);
    commands::send(&state, origin, Command::VerifyEmail(OneTimeToken { token })).await
}

/// Ask for a password-reset e-mail. Always 202: the answer does not tell whether the
/// address has an account.
#[utoipa::path(
    post, path = "/v1/auth/password-reset", tag = "accounts",
    request_body = ResetRequest,
    responses(
        (status = 202, description = "Accepted, whether or not the e-mail has an account", body = crate::openapi::schemas::Accepted),
        (status = 400, description = "`invalid_json`, `validation_failed` (malformed body only)", body = crate::openapi::ErrorBody),
    )
)]
pub async fn reset_request(
    State(state): State<AppState>,
    meta: RequestMeta,
    Json(body): Json<ResetRequest>,
) -> Result<Response, ApiError> {
    // NOTE: a malformed e-mail gets the same 202 without a command (no account can have
    // it): refusing it would be the only answer here that is not 202.
    if let Ok(email) = Email::parse(&body.email) {
        let origin = Origin::anonymous(email.as_str(), IdempotencyKey(None), meta);
        let command = Command::RequestPasswordReset(PasswordResetRequest { email });
        // Whatever the worker says (or if it is slow), the client learns nothing more.
        if let Err(e) = commands::send(&state, origin, command).await {
            tracing::warn!(error = %e, "password reset request not sent");
        }
    }
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({"status": "accepted"})),
    )
        .into_response())
}

/// Set a new password with the e-mailed reset token (single use, expires).
#[utoipa::path(
    post, path = "/v1/auth/password-reset/confirm", tag = "accounts",
    request_body = ResetConfirmRequest,
    params(("Idempotency-Key" = Option<crate::openapi::params::IdempotencyKey>, Header, description = "Retries with the same key return the first result")),
    responses(
        (status = 200, description = "The password is changed", body = crate::openapi::schemas::PasswordReset),
        (status = 400, description = "`invalid_or_expired_token`, `validation_failed`", body = crate::openapi::ErrorBody),
    )
)]
pub async fn reset_confirm(
    State(state): State<AppState>,
    key: IdempotencyKey,
    meta: RequestMeta,
    Json(body): Json<ResetConfirmRequest>,
) -> Result<Response, ApiError> {
    check_password(body.new_password.expose_secret())?;
    let token = body.token.expose_secret().trim().to_string();
    let password_hash = state.passwords.hash(body.new_password).await?;
    let origin = Origin::anonymous(&scope_of(&token), key, meta);
    let command = Command::ConfirmPasswordReset(PasswordResetConfirm {
        token,
        password_hash,
    });
    commands::send(&state, origin, command).await
}
