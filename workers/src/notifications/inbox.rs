//! The user's notifications as the API shows them: the list, and marking one read.

use bson::{doc, Document};
use domain::{DateTime, ObjectId};
use serde_json::Value;
use streams::codes::{ErrorCode, Reply};
use streams::commands::{CommandEnvelope, NotificationRef};

use super::SECRET_TYPES;
use crate::app::context::{Ctx, HandlerError};
use crate::store::{api_json, names};

/// A notification as the API shows it: no one-time tokens.
pub fn public_json(d: &Document) -> Value {
    let mut v = api_json(d);
    if let Some(md) = v.get_mut("messageData").and_then(Value::as_object_mut) {
        md.remove("token");
    }
    if SECRET_TYPES.contains(&d.get_str("type").unwrap_or_default()) {
        if let Some(o) = v.as_object_mut() {
            o.remove("message");
        }
    }
    v
}

/// `GET /v1/me/notifications`: the issuer's, newest first.
pub async fn mine(
    ctx: &Ctx,
    user_id: ObjectId,
    page: u32,
    limit: u32,
) -> Result<Reply, crate::store::StoreError> {
    let col = ctx.store.col(names::NOTIFICATIONS);
    let body = crate::store::paged(
        &col,
        doc! {"userId": user_id},
        doc! {"createdAt": -1, "_id": -1},
        page,
        limit,
        public_json,
    )
    .await?;
    Ok(Reply::ok(200, body))
}

/// `POST /v1/me/notifications/{id}/read`: `sent -> read` (other states keep their status
/// and get `readAt`). Another user's notification is 404.
pub async fn mark_read(
    ctx: &Ctx,
    env: &CommandEnvelope,
    c: &NotificationRef,
) -> Result<Reply, HandlerError> {
    let Some(issuer) = env.issuer.clone() else {
        return Ok(Reply::error(ErrorCode::Unauthorized, "sign in first"));
    };
    let col = ctx.store.col(names::NOTIFICATIONS);
    let id = c.notification_id;
    crate::store::leases::with_lease(ctx, names::NOTIFICATIONS, id, || async move {
        let Some(mut d) = col.find_one(doc! {"_id": id}).await? else {
            return Ok(Reply::error(
                ErrorCode::NotificationNotFound,
                "no such notification",
            ));
        };
        if d.get_object_id("userId").ok() != Some(issuer.user_id) {
            return Ok(Reply::error(
                ErrorCode::NotificationNotFound,
                "no such notification",
            ));
        }
        if d.get_datetime("readAt").is_err() {
            let now = DateTime::now();
            let mut set = doc! {"readAt": now, "updatedAt": now};
            if d.get_str("status") == Ok("sent") {
                set.insert("status", "read");
            }
            col.update_one(doc! {"_id": id}, doc! {"$set": set.clone()})
                .await?;
            d.extend(set);
        }
        Ok(Reply::ok(200, public_json(&d)))
    })
    .await
}
