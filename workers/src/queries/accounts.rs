//! The queries worker's account reads: the credentials a login checks, and the
//! issuer's own account.

use bson::doc;
use serde_json::json;
use streams::codes::{ErrorCode, Reply};
use streams::commands::Issuer;

use crate::app::context::Ctx;
use crate::store::{api_json, names, StoreError};

/// The account behind `email` with its password hash, for the gateway's login only.
pub(super) async fn credentials(ctx: &Ctx, email: &str) -> Result<Reply, StoreError> {
    let email = email.trim().to_ascii_lowercase();
    let users = ctx.store.col(names::USERS);
    Ok(match users.find_one(doc! {"email": &email}).await? {
        Some(u) => Reply::ok(
            200,
            json!({
                "userId": u.get_object_id("_id").map(|o| o.to_hex()).unwrap_or_default(),
                "email": email,
                "passwordHash": u.get_str("passwordHash").unwrap_or_default(),
                "role": u.get_str("role").unwrap_or("user"),
                "status": u.get_str("status").unwrap_or("active"),
            }),
        ),
        None => Reply::error(ErrorCode::NotFound, "no such account"),
    })
}

/// The issuer's own account.
pub(super) async fn me(ctx: &Ctx, issuer: &Option<Issuer>) -> Result<Reply, StoreError> {
    let Some(i) = issuer else {
        return Ok(Reply::error(ErrorCode::Unauthorized, "sign in first"));
    };
    let users = ctx.store.col(names::USERS);
    Ok(match users.find_one(doc! {"_id": i.user_id}).await? {
        Some(u) => Reply::ok(200, api_json(&u)),
        None => Reply::error(ErrorCode::NotFound, "no such account"),
    })
}
