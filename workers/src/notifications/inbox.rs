//! The user's notifications as the API shows them: the list, and marking one read.

use bson::{doc, Document};
use domain::entities::notification::{Notification, NotificationType};
use domain::notifications::decide::{self, ReadDecision};
use domain::ObjectId;
use serde_json::Value;
use streams::codes::Reply;
use streams::commands::{CommandEnvelope, NotificationRef};

use crate::app::context::{Ctx, HandlerError};
use crate::store::repo::Repo;
use crate::store::{api_json, names, to_doc};

/// A notification as the API shows it: no one-time tokens.
pub(crate) fn public_json(d: &Document) -> Value {
    let mut v = api_json(d);
    if let Some(md) = v.get_mut("messageData").and_then(Value::as_object_mut) {
        md.remove("token");
    }
    let kind = d.get_str("type").ok().and_then(NotificationType::parse);
    if kind.is_some_and(decide::is_secret) {
        if let Some(o) = v.as_object_mut() {
            o.remove("message");
        }
    }
    v
}

/// `GET /v1/me/notifications`: the issuer's, newest first.
pub(crate) async fn mine(
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
pub(crate) async fn mark_read(
    ctx: &Ctx,
    env: &CommandEnvelope,
    c: &NotificationRef,
) -> Result<Reply, HandlerError> {
    if env.issuer.is_none() {
        // Refused before the lease: an anonymous request writes nothing.
        if let ReadDecision::Refuse(r) = decide::decide_mark_read(None, None, ctx.now_stored()) {
            return Ok(Reply::refused(&r));
        }
    }
    let repo = Repo::<Notification>::new(&ctx.store);
    let id = c.notification_id;
    crate::store::leases::with_lease(ctx, names::NOTIFICATIONS, id, || async {
        let n = repo.get(id).await?;
        let after = match decide::decide_mark_read(env.actor(), n.as_ref(), ctx.now_stored()) {
            ReadDecision::Refuse(r) => return Ok(Reply::refused(&r)),
            ReadDecision::AlreadyRead => n.ok_or_else(|| {
                HandlerError::Permanent("a notification read without itself".into())
            })?,
            ReadDecision::Mark(after) => {
                let set = doc! {
                    "readAt": after.read_at, "status": after.status.as_str(),
                    "updatedAt": after.updated_at,
                };
                repo.patch(id, set).await?;
                after
            }
        };
        Ok(Reply::ok(200, public_json(&to_doc(&after)?)))
    })
    .await
}
