//! The expiry worker: releases holds when their time runs out.
//!
//! Two paths, both ending in a `ReleaseHold { reason: Expired }` command whose id is
//! `expire-<holdId>` (JetStream drops the duplicates, and the holds worker keeps the
//! result, so a hold expires once however many replicas notice):
//!
//! - timers: every replica's core queue subscription to `hold.created` puts the hold in a
//!   deadline map; one task sleeps until the next deadline or a new entry (the pattern of
//!   mini-redis's purge task);
//! - a sweep every `expiry_sweep_secs` of `seat_holds` for active holds past `expiresAt`,
//!   the safety net for timers lost in a restart. (A hold that crashed between its locks
//!   and its insert left no seat document changed: seat documents follow domain events;
//!   its locks run out by their TTL.)

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bson::doc;
use domain::entities::booking::BookingStatus;
use domain::hold::HoldStatus;
use domain::ObjectId;
use futures::{StreamExt, TryStreamExt};
use streams::commands::{
    BookingRef, Command, CommandEnvelope, ReleaseHold, ReleaseReason, RequestContext,
};
use streams::events::{DomainEvent, EventEnvelope};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::app::context::Ctx;
use crate::store::names;

/// What a deadline ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    Hold(ObjectId),
    Booking(ObjectId),
}

type Deadlines = Arc<Mutex<BTreeSet<(i64, Due)>>>;

pub(crate) async fn start(
    ctx: &Ctx,
    tasks: &mut JoinSet<()>,
    stopped: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let deadlines: Deadlines = Arc::default();
    let wake = Arc::new(Notify::new());
    for (entity, due) in [
        ("hold", Due::Hold as fn(ObjectId) -> Due),
        ("booking", Due::Booking),
    ] {
        let sub = ctx
            .client
            .queue_subscribe(ctx.ns.event(entity, "created"), ctx.ns.expiry_queue_group())
            .await
            .map_err(|e| anyhow::anyhow!("subscribing to {entity}.created: {e}"))?;
        tasks.spawn(feed(
            sub,
            due,
            deadlines.clone(),
            wake.clone(),
            stopped.clone(),
        ));
    }
    tasks.spawn(timers(ctx.clone(), deadlines, wake, stopped.clone()));
    tasks.spawn(sweep(ctx.clone(), stopped));
    Ok(())
}

async fn feed(
    mut sub: async_nats::Subscriber,
    due: fn(ObjectId) -> Due,
    deadlines: Deadlines,
    wake: Arc<Notify>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let msg = tokio::select! {
            _ = stopped.changed() => break,
            m = sub.next() => m,
        };
        let Some(msg) = msg else { break };
        let Ok(ev) = serde_json::from_slice::<EventEnvelope>(&msg.payload) else {
            continue;
        };
        let (at, id) = match ev.event {
            DomainEvent::HoldCreated(e) => (e.expires_at, e.hold_id),
            DomainEvent::BookingCreated(e) => (e.expires_at, e.booking_id),
            // The subscriptions are to `hold.created` and `booking.created`.
            DomainEvent::HoldReleased(_)
            | DomainEvent::HoldExpired(_)
            | DomainEvent::HoldConverted(_)
            | DomainEvent::BookingConfirmed(_)
            | DomainEvent::BookingCancelled(_)
            | DomainEvent::BookingExpired(_)
            | DomainEvent::RefundProcessed(_)
            | DomainEvent::PaymentInitiated(_)
            | DomainEvent::PaymentFailed(_)
            | DomainEvent::PaymentCompleted(_)
            | DomainEvent::TicketsIssued(_)
            | DomainEvent::TicketDownloaded(_)
            | DomainEvent::TicketScanned(_)
            | DomainEvent::TicketScanRefused(_)
            | DomainEvent::EventCreated(_)
            | DomainEvent::EventPublished(_)
            | DomainEvent::EventCancelled(_)
            | DomainEvent::UserRegistered(_)
            | DomainEvent::UserLoggedOut(_)
            | DomainEvent::UserSuspended(_)
            | DomainEvent::UserVerified(_)
            | DomainEvent::UserPasswordReset(_)
            | DomainEvent::CommandRefused(_) => continue,
        };
        if let Ok(mut d) = deadlines.lock() {
            d.insert((at.timestamp_millis(), due(id)));
        }
        wake.notify_one();
    }
}

async fn timers(
    ctx: Ctx,
    deadlines: Deadlines,
    wake: Arc<Notify>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let now = ctx.now().timestamp_millis();
        let mut due = Vec::new();
        let mut next = None;
        if let Ok(mut d) = deadlines.lock() {
            while let Some(&(at, id)) = d.first() {
                if at > now {
                    next = Some(at);
                    break;
                }
                d.pop_first();
                due.push(id);
            }
        }
        for d in due {
            match d {
                Due::Hold(id) => expire(&ctx, id).await,
                Due::Booking(id) => expire_booking(&ctx, id).await,
            }
        }
        let sleep = next
            .map(|at| Duration::from_millis((at - now).max(0) as u64 + 50))
            .unwrap_or(Duration::from_secs(3600));
        tokio::select! {
            _ = stopped.changed() => break,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(sleep) => {}
        }
    }
}

/// Publishes the expiry command of one hold (deduplicated by its id).
async fn expire(ctx: &Ctx, hold_id: ObjectId) {
    let env = CommandEnvelope {
        id: format!("expire-{}", hold_id.to_hex()),
        issuer: None,
        issued_at: ctx.signing_time(),
        context: RequestContext {
            request_id: None,
            ip_address: None,
            user_agent: Some("expiry-worker".into()),
            fingerprint: None,
        },
        command: Command::ReleaseHold(ReleaseHold {
            hold_id,
            reason: ReleaseReason::Expired,
        }),
    };
    match streams::publish::publish_command(&ctx.js, &ctx.ns, &ctx.signer, &env, None, None).await {
        Ok(p) => {
            ctx.metrics.expiry_command("hold", true);
            debug!(hold = %hold_id, duplicate = p.duplicate, "expiry requested")
        }
        Err(e) => {
            ctx.metrics.expiry_command("hold", false);
            warn!(hold = %hold_id, error = %e, "expiry command not published; the sweep will retry")
        }
    }
}

/// Publishes the expiry command of one pending booking (deduplicated by its id).
async fn expire_booking(ctx: &Ctx, booking_id: ObjectId) {
    let env = CommandEnvelope {
        id: format!("expire-booking-{}", booking_id.to_hex()),
        issuer: None,
        issued_at: ctx.signing_time(),
        context: RequestContext {
            request_id: None,
            ip_address: None,
            user_agent: Some("expiry-worker".into()),
            fingerprint: None,
        },
        command: Command::ExpireBooking(BookingRef { booking_id }),
    };
    match streams::publish::publish_command(&ctx.js, &ctx.ns, &ctx.signer, &env, None, None).await {
        Ok(p) => {
            ctx.metrics.expiry_command("booking", true);
            debug!(booking = %booking_id, duplicate = p.duplicate, "booking expiry requested")
        }
        Err(e) => {
            ctx.metrics.expiry_command("booking", false);
            warn!(booking = %booking_id, error = %e, "booking expiry not published; the sweep will retry")
        }
    }
}

async fn sweep(ctx: Ctx, mut stopped: watch::Receiver<bool>) {
    let period = Duration::from_secs(ctx.cfg.expiry_sweep_secs.max(1));
    info!(period_secs = period.as_secs(), "expiry sweep started");
    loop {
        if let Err(e) = sweep_holds(&ctx).await {
            warn!(error = %e, "expiry sweep failed; next round retries");
        }
        tokio::select! {
            _ = stopped.changed() => break,
            _ = tokio::time::sleep(period) => {}
        }
    }
}

async fn sweep_holds(ctx: &Ctx) -> Result<(), mongodb::error::Error> {
    let now = ctx.now_stored();
    let mut cur = ctx
        .store
        .col(names::SEAT_HOLDS)
        .find(doc! {"status": HoldStatus::Active.as_str(), "expiresAt": {"$lte": now}})
        .projection(doc! {"_id": 1})
        .await?;
    while let Some(d) = cur.try_next().await? {
        if let Ok(id) = d.get_object_id("_id") {
            expire(ctx, id).await;
        }
    }
    let mut cur = ctx
        .store
        .col(names::BOOKINGS)
        .find(doc! {"status": BookingStatus::Pending.as_str(), "expiresAt": {"$lte": now}})
        .projection(doc! {"_id": 1})
        .await?;
    while let Some(d) = cur.try_next().await? {
        if let Ok(id) = d.get_object_id("_id") {
            expire_booking(ctx, id).await;
        }
    }
    Ok(())
}
