//! The cancellation of an event: sales stop, the event is marked cancelled, and every
//! live booking and active hold gets its own undoing command.

use std::collections::BTreeSet;

use bson::{doc, Document};
use domain::catalog::decide::{self, CancelEventDecision};
use domain::entities::booking::BookingStatus;
use domain::event::{Event, EventStatus};
use domain::events::{DomainEvent, EventStatusChanged};
use domain::hold::HoldStatus;
use domain::ObjectId;
use futures::TryStreamExt;
use serde_json::json;
use streams::codes::Reply;
use streams::commands::{
    CancelBooking, CancelCause, Command, CommandEnvelope, EventRef, ReleaseHold, ReleaseReason,
};
use streams::live::locks::{status_key, SeatLock};

use super::event_for_admin;
use crate::app::context::{Ctx, HandlerError};
use crate::store::repo::Repo;
use crate::store::{api_json, names, to_doc};

/// Cancels an event: the event first, then one command per booking (full refund) and per
/// active hold, published with ids derived from them. A restart in the middle redelivers
/// this command, which publishes again; JetStream and the handlers drop the duplicates.
pub(crate) async fn cancel_event(
    ctx: &Ctx,
    env: &CommandEnvelope,
    c: &EventRef,
) -> Result<Reply, HandlerError> {
    let event = event_for_admin(ctx, env, c.event_id).await?;
    let after = match decide::decide_cancel_event(env.actor(), event.as_ref(), ctx.now_stored()) {
        CancelEventDecision::Refuse(r) => return Ok(Reply::refused(&r)),
        CancelEventDecision::Cancel(after) => after,
    };
    let before =
        event.ok_or_else(|| HandlerError::Permanent("cancelled without its event".into()))?;
    mark_cancelled(ctx, env, &before, after.as_ref()).await?;
    let bookings = live_bookings(ctx, c.event_id).await?;
    let holds = active_holds(ctx, c.event_id).await?;
    fan_out(ctx, env, undo_commands(&bookings, &holds)).await?;
    let mut v = api_json(&to_doc(after.as_ref().unwrap_or(&before))?);
    // The refunds run as one command per booking: GET /v1/events/{id} says when they
    // are done (`cancellation.status`), each booking when it is (`status`, `paymentStatus`).
    v["cancellation"] = json!({
        "bookings": bookings.len(), "holds": holds.len(),
        "status": if bookings.is_empty() { "done" } else { "processing" },
        "location": format!("/v1/events/{}", c.event_id.to_hex()),
    });
    Ok(Reply::ok(200, v))
}

/// Stops the sales, writes the cancelled event (`after`; `None`: cancelled before) and
/// says so in EVENTS.
async fn mark_cancelled(
    ctx: &Ctx,
    env: &CommandEnvelope,
    before: &Event,
    after: Option<&Event>,
) -> Result<(), HandlerError> {
    let event_id = before.id;
    let cancelled = EventStatus::Cancelled.as_str();
    // Sales stop first: the status key shares its stream with the seat locks, so once our
    // view has applied this write, every hold that will ever be answered 201 for this
    // event has its locks in the view (a later one sees `cancelled` and gives them back).
    let rev = ctx.locks.put(&status_key(&event_id), cancelled).await?;
    ctx.live
        .locks
        .wait_for(rev)
        .await
        .map_err(|e| HandlerError::Transient(e.to_string()))?;
    if let Some(a) = after {
        let repo = Repo::<Event>::new(&ctx.store);
        crate::store::leases::with_lease(ctx, names::EVENTS, event_id, || async {
            let set = doc! {
                "status": a.status.as_str(), "cancelledAt": a.cancelled_at,
                "updatedAt": a.updated_at,
            };
            repo.patch(event_id, set).await?;
            Ok(())
        })
        .await?;
    }
    ctx.emit(
        env,
        DomainEvent::EventCancelled(EventStatusChanged {
            event_id,
            previous_status: Some(before.status),
        }),
        Some(json!({"status": before.status.as_str()})),
        Some(json!({"status": cancelled})),
    )
    .await?;
    Ok(())
}

/// The event's bookings still to undo: pending, confirmed or completed.
async fn live_bookings(ctx: &Ctx, event_id: ObjectId) -> Result<Vec<Document>, HandlerError> {
    Ok(ctx
        .store
        .col(names::BOOKINGS)
        .find(doc! {"eventId": event_id, "status": {"$in": [
            BookingStatus::Pending.as_str(), BookingStatus::Confirmed.as_str(),
            BookingStatus::Completed.as_str(),
        ]}})
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
        .find(doc! {"eventId": event_id, "status": HoldStatus::Active.as_str()})
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
            issued_at: ctx.signing_time(),
            context: env.context.clone(),
            command,
        };
        streams::publish::publish_command(&ctx.js, &ctx.ns, &ctx.signer, &sub, None, None).await?;
    }
    Ok(())
}
