//! One-time account tokens: e-mail verification and password reset, and the sign-in
//! bookkeeping (`lastLoginAt`, `loginCount`).
//!
//! A token is 32 random bytes (hex). Only its SHA-256 is stored on the user
//! (`verificationToken`, `resetPasswordToken`); the plain token travels only in the
//! `messageData` of the notification that mails it, which the API never shows and the
//! dispatcher drops once sent. Tokens never reach a log or a domain event. A token is
//! single-use: the hash is unset when it is used. User documents are written under their
//! lease (several commands write them).

use bson::{doc, Bson};
use domain::accounts::decide::{
    decide_password_reset, decide_verify_email, token_acceptable, ResetDecision,
};
use domain::entities::notification::NotificationType;
use domain::events::{DomainEvent, UserPasswordReset, UserVerified};
use domain::user::User;
use domain::{DateTime, ObjectId, Refusal};
use serde_json::json;
use sha2::{Digest, Sha256};
use streams::codes::{ErrorCode, Reply};
use streams::commands::{
    CommandEnvelope, OneTimeToken, PasswordResetConfirm, PasswordResetRequest,
};

use crate::app::context::{Ctx, HandlerError};
use crate::notifications::{self, NewNotification};
use crate::store::repo::Repo;
use crate::store::{api_json, names, to_doc};

/// A fresh one-time token (64 hex digits).
pub(crate) fn new_token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// What is stored of a token.
pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

fn refused() -> Reply {
    Reply::refused(&Refusal::InvalidOrExpiredToken)
}

/// Gives a new user a verification token and mails it, unless it was done already (a
/// redelivered registration).
pub(crate) async fn issue_verification(
    ctx: &Ctx,
    env: &CommandEnvelope,
    user_id: ObjectId,
) -> Result<(), HandlerError> {
    let key = format!("verify:{}", user_id.to_hex());
    let exists = ctx
        .store
        .col(names::NOTIFICATIONS)
        .count_documents(doc! {"userId": user_id, "commandId": &key})
        .await?
        > 0;
    if exists {
        return Ok(());
    }
    let token = new_token();
    let users = ctx.store.col(names::USERS);
    let hash = token_hash(&token);
    crate::store::leases::with_lease(ctx, names::USERS, user_id, || async {
        users
            .update_one(
                doc! {"_id": user_id},
                doc! {"$set": {"verificationToken": hash, "updatedAt": ctx.now_stored()}},
            )
            .await?;
        Ok(())
    })
    .await?;
    notifications::create(
        ctx,
        NewNotification {
            key,
            user_id,
            event_id: None,
            booking_id: None,
            kind: NotificationType::AccountVerification,
            data: json!({"token": token}),
            scheduled_for: None,
            at: env.issued_at.timestamp(),
        },
    )
    .await?;
    Ok(())
}

/// The user whose stored `field` is the hash of a one-time token, if any.
async fn holder_of(ctx: &Ctx, field: &str, hash: &str) -> Result<Option<ObjectId>, HandlerError> {
    let found = ctx
        .store
        .col(names::USERS)
        .find_one(doc! {field: hash})
        .projection(doc! {"_id": 1})
        .await?;
    Ok(found.and_then(|d| d.get_object_id("_id").ok()))
}

/// `VerifyEmail`: the e-mailed token flips `isVerified`.
pub(crate) async fn verify_email(
    ctx: &Ctx,
    env: &CommandEnvelope,
    c: &OneTimeToken,
) -> Result<Reply, HandlerError> {
    let hash = token_hash(&c.token);
    let holder = match token_acceptable(&c.token) {
        true => holder_of(ctx, "verificationToken", &hash).await?,
        false => None,
    };
    let Some(user_id) = holder else {
        return Ok(refused());
    };
    let users = Repo::<User>::new(&ctx.store);
    let updated = crate::store::leases::with_lease(ctx, names::USERS, user_id, || async {
        // Read again under the lease: a concurrent use of the same token loses here.
        let cur = users.get(user_id).await?;
        let after = match decide_verify_email(&c.token, cur.as_ref(), &hash, ctx.now_stored()) {
            Ok(after) => after,
            Err(r) => return Ok(Err(r)),
        };
        ctx.store
            .col(names::USERS)
            .update_one(
                doc! {"_id": user_id},
                doc! {"$set": {"isVerified": after.is_verified, "updatedAt": after.updated_at}, "$unset": {"verificationToken": ""}},
            )
            .await?;
        Ok(Ok(after))
    })
    .await?;
    let after = match updated {
        Ok(after) => after,
        Err(r) => return Ok(Reply::refused(&r)),
    };
    ctx.emit(
        env,
        DomainEvent::UserVerified(UserVerified { user_id }),
        Some(json!({"isVerified": false})),
        Some(json!({"isVerified": true})),
    )
    .await?;
    Ok(Reply::ok(
        200,
        json!({"verified": true, "user": api_json(&to_doc(&after)?)}),
    ))
}

/// `RequestPasswordReset`: mails a reset token if the account exists. The answer is the
/// same 202 either way, so the endpoint does not tell which e-mails have accounts.
pub(crate) async fn request_password_reset(
    ctx: &Ctx,
    env: &CommandEnvelope,
    c: &PasswordResetRequest,
) -> Result<Reply, HandlerError> {
    let accepted = Reply::ok(202, json!({"status": "accepted"}));
    let email = &c.email;
    let users = ctx.store.col(names::USERS);
    let Some(user) = users.find_one(doc! {"email": email.as_str()}).await? else {
        return Ok(accepted);
    };
    if user.get_str("status").unwrap_or("active") != "active" {
        return Ok(accepted);
    }
    let user_id = user.get_object_id("_id").map_err(HandlerError::permanent)?;
    let token = new_token();
    let hash = token_hash(&token);
    let expires = ctx.now() + chrono::Duration::seconds(ctx.cfg.reset_token_ttl_secs);
    crate::store::leases::with_lease(ctx, names::USERS, user_id, || async {
        users
            .update_one(
                doc! {"_id": user_id},
                doc! {"$set": {
                    "resetPasswordToken": hash,
                    "resetPasswordExpiry": DateTime::from_chrono(expires),
                    "updatedAt": ctx.now_stored(),
                }},
            )
            .await?;
        Ok(())
    })
    .await?;
    notifications::create(
        ctx,
        NewNotification {
            key: format!("{}:password_reset", env.id),
            user_id,
            event_id: None,
            booking_id: None,
            kind: NotificationType::PasswordReset,
            data: json!({"token": token, "expiresAt": expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}),
            scheduled_for: None,
            at: env.issued_at.timestamp(),
        },
    )
    .await?;
    Ok(accepted)
}

/// `ConfirmPasswordReset`: a good, unexpired token sets the new password once.
pub(crate) async fn confirm_password_reset(
    ctx: &Ctx,
    env: &CommandEnvelope,
    c: &PasswordResetConfirm,
) -> Result<Reply, HandlerError> {
    let hash = token_hash(&c.token);
    // Refused on the command alone (a bad hash, an unusable token): nothing is read.
    let precheck = decide_password_reset(&c.token, &c.password_hash, None, &hash, ctx.now_stored());
    if let ResetDecision::Refuse(r) = &precheck {
        if *r != Refusal::InvalidOrExpiredToken || !token_acceptable(&c.token) {
            return Ok(Reply::refused(r));
        }
    }
    let Some(user_id) = holder_of(ctx, "resetPasswordToken", &hash).await? else {
        return Ok(refused());
    };
    let users = Repo::<User>::new(&ctx.store);
    let done = crate::store::leases::with_lease(ctx, names::USERS, user_id, || async {
        let cur = users.get(user_id).await?;
        let now = ctx.now_stored();
        let decision = decide_password_reset(&c.token, &c.password_hash, cur.as_ref(), &hash, now);
        let mut update = doc! {"$unset": {"resetPasswordToken": "", "resetPasswordExpiry": ""}};
        match decision {
            ResetDecision::Refuse(r) => return Ok(Err(r)),
            ResetDecision::Expired => {}
            ResetDecision::Reset => {
                // Before the password changes: a crash in between is redelivered and
                // finds the token still there, so the revocation is never skipped.
                crate::users::revoke_tokens(ctx, env, user_id, "password_reset").await?;
                update.insert(
                    "$set",
                    doc! {"passwordHash": &c.password_hash, "updatedAt": now, "passwordChangedAt": now},
                );
            }
        }
        ctx.store
            .col(names::USERS)
            .update_one(doc! {"_id": user_id}, update)
            .await?;
        Ok(Ok(decision == ResetDecision::Reset))
    })
    .await?;
    match done {
        Ok(true) => {}
        Ok(false) => return Ok(refused()),
        Err(r) => return Ok(Reply::refused(&r)),
    }
    ctx.emit(
        env,
        DomainEvent::UserPasswordReset(UserPasswordReset { user_id }),
        None,
        None,
    )
    .await?;
    Ok(Reply::ok(
        200,
        json!({"passwordReset": true, "tokensRevokedBefore": env.issued_at}),
    ))
}

/// `RecordLogin`: `lastLoginAt` and `loginCount` after a successful sign-in.
pub(crate) async fn record_login(ctx: &Ctx, env: &CommandEnvelope) -> Result<Reply, HandlerError> {
    let Some(issuer) = env.issuer.clone() else {
        return Ok(Reply::error(ErrorCode::Unauthorized, "sign in first"));
    };
    let users = ctx.store.col(names::USERS);
    let user_id = issuer.user_id;
    let at = DateTime::from_chrono(env.issued_at);
    crate::store::leases::with_lease(ctx, names::USERS, user_id, || async {
        let Some(cur) = users.find_one(doc! {"_id": user_id}).await? else {
            return Ok(Reply::error(ErrorCode::NotFound, "no such account"));
        };
        let count = match cur.get("loginCount") {
            Some(Bson::Int32(n)) => i64::from(*n),
            Some(Bson::Int64(n)) => *n,
            _ => 0,
        } + 1;
        users
            .update_one(
                doc! {"_id": user_id},
                doc! {"$set": {"lastLoginAt": at, "loginCount": count}},
            )
            .await?;
        Ok(Reply::ok(200, json!({"loginCount": count})))
    })
    .await
}
