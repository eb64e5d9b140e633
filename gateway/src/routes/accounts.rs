//! Accounts: register, log in, read your own account.
//!
//! Passwords are checked and hashed here; the accounts worker only ever sees the hash.
//! A login reads the stored hash through the internal `credentials` query and never
//! forwards it; a wrong e-mail and a wrong password get the same 401.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use domain::ids::parse_object_id;
use domain::user::{check_name, check_password, Email, Role};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use streams::codes::ErrorCode;
use streams::commands::{Command, RegisterUser};
use streams::queries::{Query, QueryRequest};
use utoipa::ToSchema;

use crate::auth::AuthUser;
use crate::commands::{self, Origin};
use crate::error::{reply_response, ApiError};
use crate::extract::{IdempotencyKey, Json, RequestMeta};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/auth/register", post(register))
        .route("/v1/auth/login", post(login))
        .route("/v1/me", get(me))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterRequest {
    /// An e-mail address, without surrounding spaces; kept lower-case.
    #[schema(example = "ana@example.com", format = Email, max_length = 254)]
    pub email: String,
    /// 8 to 128 characters.
    #[schema(value_type = String, format = Password, min_length = 8, max_length = 128)]
    pub password: SecretString,
    /// 1 to 100 characters, not blank.
    #[schema(
        example = "Ana Silva",
        min_length = 1,
        max_length = 100,
        pattern = "[^\\t-\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]"
    )]
    pub name: String,
    /// Up to 32 digits, spaces and `+-().`; blank is none.
    #[schema(
        example = "+351 912 345 678",
        max_length = 32,
        pattern = "^( *|[0-9 +().-]*[0-9][0-9 +().-]*)$"
    )]
    pub phone: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(example = "ana@example.com")]
    pub email: String,
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

/// The answer of the internal `credentials` query. No `Debug`: it holds a hash.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Credentials {
    user_id: String,
    password_hash: String,
    role: Role,
    status: String,
}

/// An optional phone number: up to 32 digits, spaces and `+-().`.
fn check_phone(phone: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(raw) = phone else {
        return Ok(None);
    };
    let bad = || ApiError::validation("phone: must be up to 32 digits, spaces and +-().");
    if raw.chars().count() > 32 {
        return Err(bad());
    }
    // Spaces around it are dropped (and a final newline, which the document's pattern
    // lets through).
    let p = raw
        .strip_suffix('\n')
        .unwrap_or(&raw)
        .trim_matches(' ')
        .to_string();
    if p.is_empty() {
        return Ok(None);
    }
    let ok = p.chars().any(|c| c.is_ascii_digit())
        && p.chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c));
    if ok {
        Ok(Some(p))
    } else {
        Err(ApiError::validation(
            "phone: must be up to 32 digits, spaces and +-().",
        ))
    }
}

/// Create an account (role `user`, unverified).
#[utoipa::path(
    post, path = "/v1/auth/register", tag = "accounts",
    request_body = RegisterRequest,
    params(("Idempotency-Key" = Option<crate::openapi::params::IdempotencyKey>, Header, description = "Retries with the same key return the first result")),
    responses(
        (status = 201, description = "The new user (no secrets)", body = crate::openapi::schemas::User),
        (status = 202, description = "Accepted, still in flight", body = crate::openapi::PendingCommand),
        (status = 400, description = "`invalid_json`, `validation_failed`", body = crate::openapi::ErrorBody),
        (status = 409, description = "`email_taken`", body = crate::openapi::ErrorBody),
    )
)]
pub async fn register(
    State(state): State<AppState>,
    key: IdempotencyKey,
    meta: RequestMeta,
    Json(body): Json<RegisterRequest>,
) -> Result<Response, ApiError> {
    if body.email.trim() != body.email {
        return Err(ApiError::validation(
            "email: must be an e-mail address like ana@example.com",
        ));
    }
    let email = Email::parse(&body.email)?;
    check_password(body.password.expose_secret())?;
    if body.name.chars().count() > 100 {
        return Err(ApiError::validation("name: must be 1 to 100 characters"));
    }
    let name = check_name(&body.name)?;
    let phone = check_phone(body.phone)?;
    let password_hash = state.passwords.hash(body.password).await?;
    let origin = Origin::anonymous(email.as_str(), key, meta);
    let command = Command::RegisterUser(RegisterUser {
        email,
        password_hash,
        name,
        phone,
    });
    commands::send(&state, origin, command).await
}

fn invalid_credentials() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidCredentials,
        "the e-mail or the password is wrong",
    )
}

/// Exchange an e-mail and password for an access token.
#[utoipa::path(
    post, path = "/v1/auth/login", tag = "accounts",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "A bearer token", body = TokenResponse),
        (status = 400, description = "`invalid_json`, `validation_failed`", body = crate::openapi::ErrorBody),
        (status = 401, description = "`invalid_credentials` (unknown e-mail or wrong password alike)", body = crate::openapi::ErrorBody),
        (status = 403, description = "`forbidden`: the account is suspended or deleted", body = crate::openapi::ErrorBody),
        (status = 503, description = "`unavailable`", body = crate::openapi::ErrorBody),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    Json(body): Json<LoginRequest>,
) -> Result<Response, ApiError> {
    let Ok(email) = Email::parse(&body.email) else {
        // No account can have it; take as long as a real check anyway.
        state.passwords.verify(None, body.password).await?;
        return Err(invalid_credentials());
    };
    let req = QueryRequest {
        issuer: None,
        query: Query::Credentials {
            email: email.as_str().to_string(),
        },
    };
    let reply = state.bus.ask(&req).await?;
    let creds = match reply.status {
        200 => Some(
            serde_json::from_value::<Credentials>(reply.body)
                .map_err(|e| ApiError::internal(format!("undecodable credentials: {e}")))?,
        ),
        404 => None,
        _ => return Ok(reply_response(reply)),
    };
    let hash = creds.as_ref().map(|c| c.password_hash.clone());
    let matches = state.passwords.verify(hash, body.password).await?;
    let creds = match creds {
        Some(c) if matches => c,
        _ => return Err(invalid_credentials()),
    };
    if creds.status != "active" {
        return Err(ApiError::forbidden(format!(
            "this account is {}",
            creds.status
        )));
    }
    let user_id = parse_object_id(&creds.user_id)
        .ok_or_else(|| ApiError::internal("credentials carried a malformed user id"))?;
    let token = state.jwt.issue(&user_id, creds.role, state.token_ttl)?;
    tracing::info!(user_id = %creds.user_id, "signed in");
    // Fire and forget: the sign-in never waits on the bookkeeping.
    let record = streams::commands::CommandEnvelope {
        id: streams::commands::new_command_id(),
        issuer: Some(streams::commands::Issuer {
            user_id,
            role: creds.role,
        }),
        issued_at: chrono::Utc::now(),
        context: Default::default(),
        command: Command::RecordLogin,
    };
    let bus = state.bus.clone();
    tokio::spawn(async move {
        if let Err(e) = bus.send(&record, None).await {
            tracing::warn!(error = %e, "login not recorded");
        }
    });
    Ok(axum::Json(TokenResponse {
        access_token: token,
        token_type: "Bearer".into(),
        expires_in: state.token_ttl.as_secs(),
    })
    .into_response())
}

/// The caller's own account.
#[utoipa::path(
    get, path = "/v1/me", tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user (no secrets)", body = crate::openapi::schemas::User),
        (status = 404, description = "`not_found`: the account is gone", body = crate::openapi::ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_token`, `token_expired`", body = crate::openapi::ErrorBody),
    )
)]
pub async fn me(State(state): State<AppState>, user: AuthUser) -> Result<Response, ApiError> {
    super::ask(&state, Some(user.issuer()), Query::Me).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_optional_and_loosely_checked() {
        assert_eq!(check_phone(None).unwrap(), None);
        assert_eq!(check_phone(Some("  ".into())).unwrap(), None);
        assert_eq!(
            check_phone(Some(" +351 912-345 ".into()))
                .unwrap()
                .as_deref(),
            Some("+351 912-345")
        );
        assert!(check_phone(Some("call me".into())).is_err());
        assert!(check_phone(Some("1".repeat(33))).is_err());
    }
}
