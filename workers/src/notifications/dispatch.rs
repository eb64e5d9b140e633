//! The dispatcher: every `TICKETING_NOTIFY_POLL_MS` it picks the due pending
//! notifications (`scheduledFor` and `nextRetryAt` passed), claims each under its lease
//! (`pending -> sending`, `attemptCount + 1`), sends it, and records the outcome: `sent`,
//! back to `pending` with a later `nextRetryAt`, or `failed` after `maxAttempts`.

use std::sync::Arc;
use std::time::Duration;

use bson::{doc, Bson, Document};
use domain::entities::retry::retry_delay;
use domain::{DateTime, ObjectId};
use futures::{StreamExt, TryStreamExt};
use mongodb::Collection;
use tokio::sync::watch;
use tracing::{info, warn};

use super::senders::{Outgoing, SendError, Senders};
use super::{templates, SECRET_TYPES, STALE_SENDING};
use crate::app::context::{Ctx, HandlerError};
use crate::store::{bson_to_json, names};

/// Notifications sent at once by one dispatcher.
const PARALLEL: usize = 8;

pub async fn run(ctx: Ctx, senders: Arc<Senders>, mut stopped: watch::Receiver<bool>) {
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

fn due(d: &Document, now: i64) -> bool {
    let passed = |k: &str| {
        d.get_datetime(k)
            .map(|t| t.timestamp_millis() <= now)
            .unwrap_or(true)
    };
    passed("scheduledFor") && passed("nextRetryAt")
}

/// One pass: give up stale claims, then send what is due.
pub async fn pass(ctx: &Ctx, senders: &Senders) -> Result<(), HandlerError> {
    let col = ctx.store.col(names::NOTIFICATIONS);
    let now = DateTime::now().timestamp_millis();
    let stale_before = now - STALE_SENDING.as_millis() as i64;
    let stale: Vec<ObjectId> = col
        .find(doc! {"status": "sending"})
        .await?
        .try_collect::<Vec<Document>>()
        .await?
        .iter()
        .filter(|d| {
            d.get_datetime("lastAttemptAt")
                .map(|t| t.timestamp_millis() < stale_before)
                .unwrap_or(true)
        })
        .filter_map(|d| d.get_object_id("_id").ok())
        .collect();
    for id in stale {
        warn!(notification = %id, "a send was interrupted; not retried (at most once)");
        col.update_one(
            doc! {"_id": id, "status": "sending"},
            doc! {"$set": {"status": "failed", "failureReason": "the send was interrupted; its outcome is unknown", "updatedAt": DateTime::now()}},
        )
        .await?;
    }
    let due_ids: Vec<ObjectId> = col
        .find(doc! {"status": "pending"})
        .projection(doc! {"_id": 1, "scheduledFor": 1, "nextRetryAt": 1})
        .await?
        .try_collect::<Vec<Document>>()
        .await?
        .iter()
        .filter(|d| due(d, now))
        .filter_map(|d| d.get_object_id("_id").ok())
        .collect();
    futures::stream::iter(due_ids)
        .for_each_concurrent(PARALLEL, |id| async move {
            if let Err(e) = send_one(ctx, senders, id).await {
                warn!(notification = %id, error = %e, "notification not sent this pass");
            }
        })
        .await;
    Ok(())
}

/// Claims, sends and records one notification. Returns quietly when another dispatcher
/// claimed it first or it is no longer due.
pub async fn send_one(ctx: &Ctx, senders: &Senders, id: ObjectId) -> Result<(), HandlerError> {
    let col = ctx.store.col(names::NOTIFICATIONS);
    let Some(d) = claim(ctx, col.clone(), id).await? else {
        return Ok(());
    };
    let kind = d.get_str("type").unwrap_or_default().to_string();
    let medium = d.get_str("medium").unwrap_or("email").to_string();
    let to = match medium.as_str() {
        "sms" => d.get_str("phoneNumber"),
        "push_notification" => d.get_str("deviceToken"),
        _ => d.get_str("emailAddress"),
    }
    .unwrap_or_default()
    .to_string();
    let data = d
        .get_document("messageData")
        .map(|m| bson_to_json(&Bson::Document(m.clone())))
        .unwrap_or_default();
    let out = Outgoing {
        notification_id: id.to_hex(),
        kind: kind.clone(),
        to,
        rendered: templates::render(&kind, &data),
    };
    let attempt = d.get_i32("attemptCount").unwrap_or(1);
    let max = d.get_i32("maxAttempts").unwrap_or(3).max(1);
    let result = senders.for_medium(&medium).send(&out).await;
    let mut update = outcome_update(ctx, &result, attempt, max);
    // A one-time token is not kept once it went out (or never will).
    let finished = !matches!(
        update
            .get_document("$set")
            .and_then(|s| s.get_str("status")),
        Ok("pending")
    );
    if finished && SECRET_TYPES.contains(&kind.as_str()) {
        update.insert("$unset", doc! {"messageData.token": ""});
    }
    // Only this dispatcher writes a `sending` notification: no lease needed here.
    col.update_one(doc! {"_id": id}, update).await?;
    match result {
        Ok(()) => info!(notification = %id, kind, medium, attempt, "notification sent"),
        Err(e) => {
            warn!(notification = %id, kind, medium, attempt, error = %e, "notification not sent")
        }
    }
    Ok(())
}

/// Claims one notification under its lease (`pending -> sending`, `attemptCount + 1`):
/// the claimed document, or `None` when it is gone, no longer pending or not due.
async fn claim(
    ctx: &Ctx,
    col: Collection<Document>,
    id: ObjectId,
) -> Result<Option<Document>, HandlerError> {
    crate::store::leases::with_lease(ctx, names::NOTIFICATIONS, id, || async move {
        let Some(mut d) = col.find_one(doc! {"_id": id}).await? else {
            return Ok(None);
        };
        let now = DateTime::now();
        if d.get_str("status") != Ok("pending") || !due(&d, now.timestamp_millis()) {
            return Ok(None);
        }
        let attempt = d.get_i32("attemptCount").unwrap_or(0) + 1;
        let set = doc! {"status": "sending", "attemptCount": attempt, "lastAttemptAt": now, "updatedAt": now};
        col.update_one(doc! {"_id": id}, doc! {"$set": set.clone()})
            .await?;
        d.extend(set);
        Ok(Some(d))
    })
    .await
}

/// The update recording a send's outcome: `sent`, back to `pending` with a later
/// `nextRetryAt` (a passing failure before `maxAttempts`), or `failed`.
fn outcome_update(ctx: &Ctx, result: &Result<(), SendError>, attempt: i32, max: i32) -> Document {
    let now = DateTime::now();
    match result {
        Ok(()) => {
            doc! {"$set": {"status": "sent", "sentAt": now, "failureReason": Bson::Null, "nextRetryAt": Bson::Null, "updatedAt": now}}
        }
        Err(SendError::Transient(e)) if attempt < max => {
            let delay = retry_delay(
                attempt as u32,
                Duration::from_millis(ctx.cfg.notify_retry_base_ms),
                Duration::from_millis(ctx.cfg.notify_retry_cap_ms),
                rand::random(),
            );
            let at = DateTime::from_millis(now.timestamp_millis() + delay.as_millis() as i64);
            doc! {"$set": {"status": "pending", "nextRetryAt": at, "failureReason": e, "updatedAt": now}}
        }
        Err(e) => {
            doc! {"$set": {"status": "failed", "failureReason": e.to_string(), "nextRetryAt": Bson::Null, "updatedAt": now}}
        }
    }
}
