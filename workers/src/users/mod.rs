//! The accounts worker: registration and the first admin.
//!
//! The password arrives hashed (argon2id, by the gateway). The user's id is derived from
//! the command id, so a redelivered registration hits the unique `_id` and reads back the
//! first result; a different registration with the same e-mail hits the unique `email`
//! index and is refused with 409 `email_taken`.

pub(crate) mod tokens;

use bson::doc;
use domain::accounts::decide::{self, SuspendDecision};
use domain::events::{DomainEvent, UserLoggedOut, UserRegistered, UserSuspended};
use domain::ids::derive_object_id;
use domain::user::{check_name, Email, Preferences, Role, User, UserStatus};
use domain::{DateTime, ObjectId};
use serde_json::json;
use streams::codes::{ErrorCode, Reply};
use streams::commands::{CommandEnvelope, RegisterUser};

use crate::app::context::{Ctx, HandlerError};
use crate::store::repo::Repo;
use crate::store::{api_json, is_duplicate_key, names, to_doc};

/// Registers a user; `admin` creates the configured first admin (verified, role admin)
/// unless an account with that e-mail exists already.
pub(crate) async fn register(
    ctx: &Ctx,
    env: &CommandEnvelope,
    c: &RegisterUser,
    admin: bool,
) -> Result<Reply, HandlerError> {
    let (email, name) = match checked(env, c, admin) {
        Ok(v) => v,
        Err(refused) => return Ok(refused),
    };
    let users = ctx.store.col(names::USERS);
    if admin {
        if let Some(existing) = users.find_one(doc! {"email": email.as_str()}).await? {
            return Ok(Reply::ok(200, api_json(&existing)));
        }
    }
    let user = new_user(env, c, email, name, admin, ctx.now_stored());
    let id = user.id;
    let mut d = to_doc(&user)?;
    d.insert("commandId", env.id.as_str());
    match users.insert_one(&d).await {
        Ok(_) => {}
        Err(e) if is_duplicate_key(&e) => return replay(ctx, env, id, admin).await,
        Err(e) => return Err(e.into()),
    }
    if !admin {
        crate::users::tokens::issue_verification(ctx, env, id).await?;
    }
    let after = api_json(&d);
    ctx.emit(
        env,
        DomainEvent::UserRegistered(UserRegistered {
            user_id: id,
            role: user.role,
            at: ctx.now(),
        }),
        None,
        Some(after.clone()),
    )
    .await?;
    Ok(Reply::ok(201, after))
}

/// The registration's e-mail and name, or the refusal of the request.
fn checked(env: &CommandEnvelope, c: &RegisterUser, admin: bool) -> Result<(Email, String), Reply> {
    let email = c.email.clone();
    let name = check_name(&c.name)
        .map_err(|e| Reply::error(ErrorCode::ValidationFailed, e.to_string()))?;
    if !c.password_hash.starts_with("$argon2") {
        return Err(Reply::error(
            ErrorCode::ValidationFailed,
            "passwordHash must be an argon2 PHC string",
        ));
    }
    if admin && env.issuer.is_some() {
        return Err(Reply::error(
            ErrorCode::Forbidden,
            "the first admin comes from configuration only",
        ));
    }
    Ok((email, name))
}

/// The new account, its id derived from the command id.
fn new_user(
    env: &CommandEnvelope,
    c: &RegisterUser,
    email: Email,
    name: String,
    admin: bool,
    now: DateTime,
) -> User {
    let id = derive_object_id("user", &env.id, env.issued_at.timestamp());
    User {
        id,
        email,
        password_hash: c.password_hash.clone(),
        name,
        phone: c
            .phone
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string),
        address: None,
        is_verified: admin,
        verification_token: None,
        reset_password_token: None,
        reset_password_expiry: None,
        last_login_at: None,
        login_count: 0,
        role: if admin { Role::Admin } else { Role::User },
        status: UserStatus::Active,
        preferences: Preferences::default(),
        created_at: now,
        updated_at: now,
    }
}

/// The insert hit a unique index: our own earlier insert (a redelivery) or someone
/// else's e-mail.
async fn replay(
    ctx: &Ctx,
    env: &CommandEnvelope,
    id: ObjectId,
    admin: bool,
) -> Result<Reply, HandlerError> {
    let users = ctx.store.col(names::USERS);
    match users.find_one(doc! {"_id": id}).await? {
        Some(first) => {
            if !admin {
                // A redelivery whose first run stopped before mailing the token.
                crate::users::tokens::issue_verification(ctx, env, id).await?;
            }
            Ok(Reply::ok(if admin { 200 } else { 201 }, api_json(&first)))
        }
        None => Ok(Reply::error(
            ErrorCode::EmailTaken,
            "an account with this e-mail exists",
        )),
    }
}

/// Ends every token of `user` issued before the command (`streams::revocations`): the
/// gateways stop taking them as soon as their watch of the bucket sees it.
pub(crate) async fn revoke_tokens(
    ctx: &Ctx,
    env: &CommandEnvelope,
    user: domain::ObjectId,
    reason: &str,
) -> Result<streams::revocations::Revocation, HandlerError> {
    Ok(streams::revocations::revoke(&ctx.revocations, user, env.issued_at, reason).await?)
}

/// `Logout`: the caller's tokens issued before now stop working, on every gateway.
pub(crate) async fn logout(ctx: &Ctx, env: &CommandEnvelope) -> Result<Reply, HandlerError> {
    let Some(issuer) = env.issuer.clone() else {
        return Ok(Reply::error(ErrorCode::Unauthorized, "sign in first"));
    };
    let r = revoke_tokens(ctx, env, issuer.user_id, "logout").await?;
    ctx.emit(
        env,
        DomainEvent::UserLoggedOut(UserLoggedOut {
            user_id: issuer.user_id,
            tokens_revoked_before: r.not_before,
        }),
        None,
        None,
    )
    .await?;
    Ok(Reply::ok(200, json!({"tokensRevokedBefore": r.not_before})))
}

/// `SuspendUser` (admin): the account may no longer sign in, and its tokens end.
pub(crate) async fn suspend(
    ctx: &Ctx,
    env: &CommandEnvelope,
    c: &streams::commands::UserRef,
) -> Result<Reply, HandlerError> {
    if !env.actor().is_some_and(|a| a.is_admin()) {
        // Refused before the lease: a non-admin's request writes nothing.
        if let SuspendDecision::Refuse(r) =
            decide::decide_suspend(env.actor(), None, ctx.now_stored())
        {
            return Ok(Reply::refused(&r));
        }
    }
    let users = Repo::<User>::new(&ctx.store);
    let user_id = c.user_id;
    let was = crate::store::leases::with_lease(ctx, names::USERS, user_id, || async {
        let target = users.get(user_id).await?;
        match decide::decide_suspend(env.actor(), target.as_ref(), ctx.now_stored()) {
            SuspendDecision::Refuse(r) => Ok(Err(r)),
            SuspendDecision::Unchanged(status) => Ok(Ok(status)),
            SuspendDecision::Suspend(after) => {
                let set = doc! {"status": after.status.as_str(), "updatedAt": after.updated_at};
                users.patch(user_id, set).await?;
                Ok(Ok(target.map_or(UserStatus::Active, |u| u.status)))
            }
        }
    })
    .await?;
    let was = match was {
        Ok(s) => s,
        Err(r) => return Ok(Reply::refused(&r)),
    };
    // After the write: a crash in between is redelivered and revokes then.
    let r = revoke_tokens(ctx, env, user_id, "suspended").await?;
    let suspended = UserStatus::Suspended.as_str();
    ctx.emit(
        env,
        DomainEvent::UserSuspended(UserSuspended {
            user_id,
            tokens_revoked_before: r.not_before,
        }),
        Some(json!({"status": was.as_str()})),
        Some(json!({"status": suspended})),
    )
    .await?;
    Ok(Reply::ok(
        200,
        json!({"id": user_id.to_hex(), "status": suspended, "tokensRevokedBefore": r.not_before}),
    ))
}
