//! The cancellation of an event: sales stop, the event is marked cancelled, and every
//! live booking and active hold gets its own undoing command.

use std::collections::BTreeSet;

use bson::{doc, Document};
use chrono::Utc;
use domain::event::EventStatus;
use domain::events::{DomainEvent, EventStatusChanged};
use domain::{DateTime, ObjectId};
use futures::TryStreamExt;
use serde_json::json;
use streams::codes::{ErrorCode, Reply};
use streams::commands::{
    CancelBooking, CancelCause, Command, CommandEnvelope, EventRef, ReleaseHold, ReleaseReason,
};
use streams::live::locks::{status_key, SeatLock};

use super::require_admin;
use crate::app::context::{Ctx, HandlerError};
use crate::store::{api_json, names};

/// Cancels an event: the event first, then one command per booking (full refund) and per
/// active hold, published with ids derived from them. A restart in the middle redelivers
/// this command, which publishes again; JetStream and the handlers drop the duplicates.
pub async fn cancel_event(
    ctx: &Ctx,
    env: &CommandEnvelope,
    c: &EventRef,
) -> Result<Reply, HandlerError> {
    if let Some(r) = require_admin(env) {
        return Ok(r);
    }
    let events = ctx.store.col(names::EVENTS);
    let Some(before) = events.find_one(doc! {"_id": c.event_id}).await? else {
        return Ok(Reply::error(ErrorCode::EventNotFound, "no such event"));
    };
    let status = before.get_str("status").unwrap_or_default().to_string();
    if status == "completed" {
        return Ok(Reply::error(
            ErrorCode::EventNotCancellable,
            "a completed event cannot be cancelled",
        ));
    }
    let now = mark_cancelled(ctx, env, c.event_id, &status).await?;
    let bookings = live_bookings(ctx, c.event_id).await?;
    let holds = active_holds(ctx, c.event_id).await?;
    fan_out(ctx, env, undo_commands(&bookings, &holds)).await?;
    let mut after = before.clone();
    after.insert("status", "cancelled");
    after.insert(
        "cancelledAt",
        before
            .get_datetime("cancelledAt")
            .ok()
            .copied()
            .unwrap_or(now),
    );
    let mut v = api_json(&after);
    // The refunds run as one command per booking: GET /v1/events/{id} says when they
    // are done (`cancellation.status`), each booking when it is (`status`, `paymentStatus`).
    v["cancellation"] = json!({
        "bookings": bookings.len(), "holds": holds.len(),
        "status": if bookings.is_empty() { "done" } else { "processing" },
        "location": format!("/v1/events/{}", c.event_id.to_hex()),
    });
    Ok(Reply::ok(200, v))
}

/// Stops the sales, marks the event cancelled (unless it is already) and says so in
/// EVENTS. Returns the time of the cancellation.
async fn mark_cancelled(
    ctx: &Ctx,
    env: &CommandEnvelope,
    event_id: ObjectId,
    status: &str,
) -> Result<DateTime, HandlerError> {
    let events = ctx.store.col(names::EVENTS);
    // Sales stop first: the status key shares its stream with the seat locks, so once our
    // view has applied this write, every hold that will ever be answered 201 for this
    // event has its locks in the view (a later one sees `cancelled` and gives them back).
    let rev = ctx.locks.put(&status_key(&event_id), "cancelled").await?;
    ctx.live
        .locks
        .wait_for(rev)
        .await
        .map_err(|e| HandlerError::Transient(e.to_string()))?;
    let now = DateTime::now();
    if status != "cancelled" {
        crate::store::leases::with_lease(ctx, names::EVENTS, event_id, || async {
            events
                .update_one(
                    doc! {"_id": event_id},
                    doc! {"$set": {"status": "cancelled", "cancelledAt": now, "updatedAt": now}},
                )
                .await?;
            Ok(())
        })
        .await?;
    }
    ctx.emit(
        env,
        DomainEvent::EventCancelled(EventStatusChanged {
            event_id,
            previous_status: EventStatus::parse(status),
        }),
        Some(json!({"status": status})),
        Some(json!({"status": EventStatus::Cancelled.as_str()})),
    )
    .await?;
    Ok(now)
}

/// The event's bookings still to undo: pending, confirmed or completed.
async fn live_bookings(ctx: &Ctx, event_id: ObjectId) -> Result<Vec<Document>, HandlerError> {
    Ok(ctx
        .store
        .col(names::BOOKINGS)
        .find(doc! {"eventId": event_id, "status": {"$in": ["pending", "confirmed", "completed"]}})
        .projection(doc! {"_id": 1})
        .await?
        .try_collect()
        .await?)
}

/// Active holds: the locks held by a hold id (the truth), and any the `seat_holds`
/// projection knows of.
async fn active_holds(ctx: &Ctx, event_id: ObjectId) -> Result<BTreeSet<ObjectId>, HandlerError> {
    let mut holds: BTreeSet<ObjectId> = ctx.live.locks.with_event(&event_id, |e| {
        e.seats
            .values()
            .filter_map(|l| match l {
                SeatLock::Held(h) => Some(*h),
                _ => None,
            })
            .collect()
    });
    let mut cur = ctx
        .store
        .col(names::SEAT_HOLDS)
        .find(doc! {"eventId": event_id, "status": "active"})
        .projection(doc! {"_id": 1})
        .await?;
    while let Some(h) = cur.try_next().await? {
        if let Ok(id) = h.get_object_id("_id") {
            holds.insert(id);
        }
    }
    Ok(holds)
}

/// One command per booking (cancelled, refunded in full) and per hold (released), each
/// with an id derived from what it undoes.
fn undo_commands(bookings: &[Document], holds: &BTreeSet<ObjectId>) -> Vec<(String, Command)> {
    let mut commands = Vec::new();
    for b in bookings {
        let Ok(id) = b.get_object_id("_id") else {
            continue;
        };
        commands.push((
            format!("evcancel-{}", id.to_hex()),
            Command::CancelBooking(CancelBooking {
                booking_id: id,
                cause: CancelCause::EventCancelled,
                note: Some("event cancelled".into()),
            }),
        ));
    }
    for &id in holds {
        commands.push((
            format!("evcancel-hold-{}", id.to_hex()),
            Command::ReleaseHold(ReleaseHold {
                hold_id: id,
                reason: ReleaseReason::Released,
            }),
        ));
    }
    commands
}

/// Publishes the undoing commands, with the issuer of the cancellation.
async fn fan_out(
    ctx: &Ctx,
    env: &CommandEnvelope,
    commands: Vec<(String, Command)>,
) -> Result<(), HandlerError> {
    let issuer = env.issuer.clone();
    for (id, command) in commands {
        let sub = CommandEnvelope {
            id,
            issuer: issuer.clone(),
            // Signed now by the workers' key: a redelivered cancellation may come long
            // after the admin's command was signed.
            issued_at: Utc::now(),
            context: env.context.clone(),
            command,
        };
        streams::publish::publish_command(&ctx.js, &ctx.ns, &ctx.signer, &sub, None, None).await?;
    }
    Ok(())
}
