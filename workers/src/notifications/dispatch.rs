//! The dispatcher: every `TICKETING_NOTIFY_POLL_MS` it picks the due pending
//! notifications (`scheduledFor` and `nextRetryAt` passed), claims each under its lease
//! (`pending -> sending`, `attemptCount + 1`), sends it, and records the outcome: `sent`,
//! back to `pending` with a later `nextRetryAt`, or `failed` after `maxAttempts`.

use std::sync::Arc;
use std::time::Duration;

use bson::{doc, Bson, Document};
use domain::entities::notification::{self, Medium, Notification, NotificationStatus};
use domain::notifications::decide::{self, SendOutcome};
use domain::{DateTime, ObjectId};
use futures::{StreamExt, TryStreamExt};
use tokio::sync::watch;
use tracing::{info, warn};

use super::senders::{Outgoing, SendError, Senders};
use super::{templates, STALE_SENDING};
use crate::app::context::{Ctx, HandlerError};
use crate::store::repo::Repo;
use crate::store::{bson_to_json, from_doc, names};

/// Notifications sent at once by one dispatcher.
const PARALLEL: usize = 8;

pub(crate) async fn run(ctx: Ctx, senders: Arc<Senders>, mut stopped: watch::Receiver<bool>) {
    info!("notifications dispatcher started");
    let poll = Duration::from_millis(ctx.cfg.notify_poll_ms.max(10));
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            _ = tokio::time::sleep(poll) => {}
        }
        if let Err(e) = pass(&ctx, &senders).await {
            warn!(error = %e, "notification pass failed; trying again");
        }
    }
    info!("notifications dispatcher stopped");
}

/// One pass: give up stale claims, then send what is due.
pub(crate) async fn pass(ctx: &Ctx, senders: &Senders) -> Result<(), HandlerError> {
    let col = ctx.store.col(names::NOTIFICATIONS);
    let now = ctx.now_stored();
    let stale_before =
        DateTime::from_millis(now.timestamp_millis() - STALE_SENDING.as_millis() as i64);
    for n in with_status(ctx, NotificationStatus::Sending).await? {
        let Some(after) = decide::give_up_stale(&n, stale_before, now) else {
            continue;
        };
        warn!(notification = %n.id, "a send was interrupted; not retried (at most once)");
        let set = doc! {
            "status": after.status.as_str(), "failureReason": after.failure_reason.as_deref(),
            "updatedAt": after.updated_at,
        };
        col.update_one(
            doc! {"_id": n.id, "status": NotificationStatus::Sending.as_str()},
            doc! {"$set": set},
        )
        .await?;
    }
    let due_ids = due_pending(ctx, now).await?;
    futures::stream::iter(due_ids)
        .for_each_concurrent(PARALLEL, |id| async move {
            if let Err(e) = send_one(ctx, senders, id).await {
                warn!(notification = %id, error = %e, "notification not sent this pass");
            }
        })
        .await;
    Ok(())
}

/// The notifications in `status`, decoded; one that does not decode is logged and left
/// out, so it cannot stop the dispatcher.
async fn with_status(
    ctx: &Ctx,
    status: NotificationStatus,
) -> Result<Vec<Notification>, HandlerError> {
    let docs: Vec<Document> = ctx
        .store
        .col(names::NOTIFICATIONS)
        .find(doc! {"status": status.as_str()})
        .await?
        .try_collect()
        .await?;
    Ok(docs.iter().filter_map(decoded).collect())
}

fn decoded<T: serde::de::DeserializeOwned>(d: &Document) -> Option<T> {
    from_doc(d)
        .map_err(|e| warn!(id = ?d.get("_id"), error = %e, "a notification that does not decode"))
        .ok()
}

/// When a pending notification may go: only its times are read (reminders wait pending
/// until shortly before their show, so the pending set is mostly not due).
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Timing {
    #[serde(rename = "_id")]
    id: ObjectId,
    scheduled_for: Option<DateTime>,
    next_retry_at: Option<DateTime>,
}

/// The pending notifications due at `now`.
async fn due_pending(ctx: &Ctx, now: DateTime) -> Result<Vec<ObjectId>, HandlerError> {
    let docs: Vec<Document> = ctx
        .store
        .col(names::NOTIFICATIONS)
        .find(doc! {"status": NotificationStatus::Pending.as_str()})
        .projection(doc! {"_id": 1, "scheduledFor": 1, "nextRetryAt": 1})
        .await?
        .try_collect()
        .await?;
    Ok(docs
        .iter()
        .filter_map(decoded::<Timing>)
        .filter(|t| notification::due(t.scheduled_for, t.next_retry_at, now))
        .map(|t| t.id)
        .collect())
}

/// Claims, sends and records one notification. Returns quietly when another dispatcher
/// claimed it first or it is no longer due.
pub(crate) async fn send_one(
    ctx: &Ctx,
    senders: &Senders,
    id: ObjectId,
) -> Result<(), HandlerError> {
    let Some(n) = claim(ctx, id).await? else {
        return Ok(());
    };
    let to = match n.medium {
        Medium::Sms => n.phone_number.as_deref(),
        Medium::PushNotification => n.device_token.as_deref(),
        Medium::Email => n.email_address.as_deref(),
    }
    .unwrap_or_default()
    .to_string();
    let data = bson_to_json(&Bson::Document(n.message_data.clone()));
    let out = Outgoing {
        notification_id: id.to_hex(),
        kind: n.kind.as_str().to_string(),
        to,
        rendered: templates::render(n.kind.as_str(), &data),
    };
    let result = senders.for_medium(n.medium.as_str()).send(&out).await;
    let outcome = match &result {
        Ok(()) => SendOutcome::Sent,
        Err(SendError::Transient(e)) => SendOutcome::Transient(e.clone()),
        Err(SendError::Permanent(e)) => SendOutcome::Permanent(e.clone()),
    };
    let policy = decide::retry_policy(
        &n,
        ctx.cfg.notify_retry_base_ms,
        ctx.cfg.notify_retry_cap_ms,
    );
    let Some(d) = decide::decide_send(&n, &outcome, policy, rand::random(), ctx.now_stored())
    else {
        return Err(HandlerError::Permanent(
            "a claimed notification is not sending".into(),
        ));
    };
    let a = &d.notification;
    let mut update = doc! {"$set": {
        "status": a.status.as_str(), "sentAt": a.sent_at, "failureReason": a.failure_reason.as_deref(),
        "nextRetryAt": a.next_retry_at, "updatedAt": a.updated_at,
    }};
    // A one-time token is not kept once it went out (or never will).
    if d.drop_token {
        update.insert("$unset", doc! {"messageData.token": ""});
    }
    // Only this dispatcher writes a `sending` notification: no lease needed here.
    ctx.store
        .col(names::NOTIFICATIONS)
        .update_one(doc! {"_id": id}, update)
        .await?;
    let (kind, medium, attempt) = (n.kind.as_str(), n.medium.as_str(), n.attempt_count);
    match result {
        Ok(()) => info!(notification = %id, kind, medium, attempt, "notification sent"),
        Err(e) => {
            warn!(notification = %id, kind, medium, attempt, error = %e, "notification not sent")
        }
    }
    Ok(())
}

/// Claims one notification under its lease (`pending -> sending`, `attemptCount + 1`):
/// the claimed notification, or `None` when it is gone, no longer pending or not due.
async fn claim(ctx: &Ctx, id: ObjectId) -> Result<Option<Notification>, HandlerError> {
    let repo = Repo::<Notification>::new(&ctx.store);
    crate::store::leases::with_lease(ctx, names::NOTIFICATIONS, id, || async {
        let Some(n) = repo.get(id).await? else {
            return Ok(None);
        };
        let Some(c) = decide::claim(&n, ctx.now_stored()) else {
            return Ok(None);
        };
        let set = doc! {
            "status": c.status.as_str(), "attemptCount": c.attempt_count,
            "lastAttemptAt": c.last_attempt_at, "updatedAt": c.updated_at,
        };
        repo.patch(id, set).await?;
        Ok(Some(c))
    })
    .await
}
