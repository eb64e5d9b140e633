//! The bookings worker: a hold becomes a pending booking; a paid booking is confirmed
//! (seats sold); a booking is cancelled with the refund its event's policy grants, or
//! expires unpaid. Every step is idempotent: ids derive from the hold (one booking per
//! hold) or the booking (one payment, one refund), and `$set`s are harmless to repeat.

use std::collections::HashMap;

use bson::{doc, Document};
use domain::bookings::decide::{
    self, booking_seat_id, CancelDecision, Cancellation, CreateDecision, ExpireDecision, ExpiryHeld,
};
pub(crate) use domain::bookings::decide::{booking_id_for, CancelledBy};
use domain::entities::booking::{BookingSeat, BookingStatus};
use domain::entities::payment::PaymentStatus;
use domain::entities::Booking;
use domain::events::{BookingConfirmed, BookingCreated, BookingEnded, DomainEvent, HoldConverted};
use domain::hold::{HoldStatus, SeatHold};
use domain::seat::lock_key;
use domain::{DomainError, Money, ObjectId, Refusal};
use futures::future::join_all;
use serde_json::{json, Value};
use streams::codes::Reply;
use streams::commands::{BookingRef, CancelBooking, CancelCause, CommandEnvelope, CreateBooking};
use streams::locks::Transferred;

use crate::app::context::{Ctx, HandlerError};
use crate::holds::seats::{free_seats, pending_value, sold_value, Owner};
use crate::store::leases::with_lease;
use crate::store::repo::Repo;
use crate::store::{api_json, is_duplicate_key, names, to_doc};

pub(crate) async fn create(
    ctx: &Ctx,
    env: &CommandEnvelope,
    c: &CreateBooking,
) -> Result<Reply, HandlerError> {
    let hold = match env.issuer {
        Some(_) => crate::holds::find_seat_hold(ctx, c.hold_id).await?,
        None => None,
    };
    let booking_id = booking_id_for(&c.hold_id);
    let repo = Repo::<Booking>::new(&ctx.store);
    let (existing, seat_prices) = match &hold {
        Some(h) => (repo.get(booking_id).await?, held_prices(ctx, h).await?),
        None => (None, HashMap::new()),
    };
    let cmd = decide::CreateBooking {
        hold_id: c.hold_id,
        command_id: &env.id,
        ttl_ms: ctx.cfg.booking_ttl().as_millis() as i64,
    };
    let decision = decide::decide_create(
        env.actor(),
        hold.as_ref(),
        existing.as_ref(),
        &seat_prices,
        cmd,
        ctx.now_stored(),
    )
    .map_err(HandlerError::permanent)?;
    let (booking, seats) = match decision {
        CreateDecision::Refuse(r) => return Ok(Reply::refused(&r)),
        CreateDecision::Replay(existing) => {
            finish_create(ctx, env, &existing).await?;
            return Ok(Reply::ok(201, api_json(&to_doc(&existing)?)));
        }
        CreateDecision::Create { booking, seats, .. } => (booking, seats),
    };
    if !take_seats_from_hold(ctx, &booking).await? {
        return Ok(Reply::refused(&decide::seats_lost()));
    }
    let lines: Vec<Document> = seats.iter().map(to_doc).collect::<Result<_, _>>()?;
    match ctx
        .store
        .col(names::BOOKING_SEATS)
        .insert_many(lines)
        .ordered(false)
        .await
    {
        Ok(_) => {}
        Err(e) if is_duplicate_key(&e) => {}
        Err(e) => return Err(e.into()),
    }
    let stored = if repo.insert_once(&booking).await? {
        booking
    } else {
        // Made from this hold meanwhile: by this command (a concurrent redelivery) it is
        // the answer; by another, the hold is spent.
        match repo.get(booking_id).await? {
            Some(first) if first.command_id == env.id => first,
            _ => {
                return Ok(Reply::refused(&Refusal::HoldNotActive(
                    "the hold was already booked".into(),
                )))
            }
        }
    };
    finish_create(ctx, env, &stored).await?;
    Ok(Reply::ok(201, api_json(&to_doc(&stored)?)))
}

/// The prices of the hold's seats, from the event's seat map (seats missing from it are
/// left out: the decision refuses the booking as inconsistent).
async fn held_prices(ctx: &Ctx, hold: &SeatHold) -> Result<HashMap<ObjectId, Money>, HandlerError> {
    let map = ctx.seat_maps.get(&ctx.store, hold.event_id).await?;
    Ok(hold
        .seat_ids
        .iter()
        .filter_map(|s| map.get(s).map(|i| (*s, i.price)))
        .collect())
}

/// The seats pass from the hold to the booking: compare-and-swap on each lock, with the
/// booking's longer lifetime. `false`: a lock the hold lost (expired), so no booking.
async fn take_seats_from_hold(ctx: &Ctx, booking: &Booking) -> Result<bool, HandlerError> {
    let from = booking.hold_id.to_hex();
    let to = pending_value(&booking.id);
    let ttl = ctx.cfg.booking_lock_ttl();
    let keys: Vec<String> = booking
        .seat_ids
        .iter()
        .map(|s| lock_key(&booking.event_id, s))
        .collect();
    let moved = join_all(
        keys.iter()
            .map(|k| ctx.locks.transfer(k, &from, &to, Some(ttl))),
    )
    .await;
    let mut lost = false;
    for m in moved {
        match m? {
            Transferred::Done(_) | Transferred::Already(_) => {}
            Transferred::Lost => lost = true,
        }
    }
    Ok(!lost)
}

/// The rest of a booking's creation, each step harmless to repeat: the hold is converted
/// and the booking created, as events (the projections write the hold's document).
async fn finish_create(
    ctx: &Ctx,
    env: &CommandEnvelope,
    booking: &Booking,
) -> Result<(), HandlerError> {
    ctx.emit(
        env,
        DomainEvent::HoldConverted(HoldConverted {
            hold_id: booking.hold_id,
            event_id: booking.event_id,
            booking_id: Some(booking.id),
        }),
        Some(json!({"status": HoldStatus::Active.as_str()})),
        Some(json!({
            "status": HoldStatus::ConvertedToBooking.as_str(),
            "convertedToBookingId": booking.id.to_hex(),
        })),
    )
    .await?;
    let expires_at = booking
        .expires_at
        .ok_or_else(|| HandlerError::Permanent("a new booking without expiresAt".into()))?
        .to_chrono();
    let event = DomainEvent::BookingCreated(BookingCreated {
        booking_id: booking.id,
        event_id: booking.event_id,
        user_id: booking.user_id,
        seat_ids: booking.seat_ids.clone(),
        expires_at,
    });
    ctx.emit(env, event, None, Some(api_json(&to_doc(booking)?)))
        .await
}

/// Confirms a paid booking: locks become permanent (a sale), seats `booked`, booking
/// `confirmed` through the domain's state machine. Returns the booking as the API shows it.
pub(crate) async fn confirm(
    ctx: &Ctx,
    env: &CommandEnvelope,
    booking: &Booking,
    payment_id: ObjectId,
) -> Result<Value, HandlerError> {
    make_sales_permanent(ctx, booking).await?;
    let after =
        decide::confirm(booking, payment_id, ctx.now_stored()).map_err(HandlerError::permanent)?;
    let set = doc! {
        "status": after.status.as_str(), "paymentId": payment_id,
        "paymentStatus": after.payment_status.map(|s| s.as_str()),
        "confirmedAt": after.confirmed_at, "expiresAt": after.expires_at,
        "updatedAt": after.updated_at,
    };
    Repo::<Booking>::new(&ctx.store)
        .patch_counted(booking.id, set, "version")
        .await?;
    let event = DomainEvent::BookingConfirmed(BookingConfirmed {
        booking_id: booking.id,
        event_id: booking.event_id,
        user_id: booking.user_id,
        seat_ids: booking.seat_ids.clone(),
        final_price: after.final_price,
        payment_id: Some(payment_id),
    });
    ctx.emit(
        env,
        event,
        Some(json!({"status": booking.status.as_str()})),
        Some(json!({"status": after.status.as_str(), "paymentId": payment_id.to_hex()})),
    )
    .await?;
    Ok(api_json(&to_doc(&after)?))
}

/// The booking's pending locks become sales (no TTL).
async fn make_sales_permanent(ctx: &Ctx, booking: &Booking) -> Result<(), HandlerError> {
    let from = pending_value(&booking.id);
    let to = sold_value(&booking.id);
    let keys: Vec<String> = booking
        .seat_ids
        .iter()
        .map(|s| lock_key(&booking.event_id, s))
        .collect();
    let moved = join_all(keys.iter().map(|k| ctx.locks.transfer(k, &from, &to, None))).await;
    for ((seat, key), r) in booking.seat_ids.iter().zip(&keys).zip(moved) {
        if r? == Transferred::Lost {
            // Paid but a lock is gone: only possible if the booking outlived its lock's
            // TTL. Take it back if it is free; an operator must look if it is not.
            match ctx
                .locks
                .acquire(key, &to, std::time::Duration::from_secs(1))
                .await?
            {
                streams::locks::Acquired::HeldByOther => {
                    tracing::error!(seat = %seat, booking = %booking.id, "paid booking lost a seat; needs an operator")
                }
                _ => {
                    ctx.locks.transfer(key, &to, &to, None).await?;
                }
            }
        }
    }
    Ok(())
}

/// A booking's seat lines, by their derived ids (lines never written are left out).
async fn seat_lines(ctx: &Ctx, booking: &Booking) -> Result<Vec<BookingSeat>, HandlerError> {
    let repo = Repo::<BookingSeat>::new(&ctx.store);
    let ids = booking
        .seat_ids
        .iter()
        .map(|s| booking_seat_id(&booking.id, s, booking.created_at));
    let mut lines = Vec::new();
    for line in join_all(ids.map(|id| repo.get(id))).await {
        lines.extend(line?);
    }
    Ok(lines)
}

/// Writes a cancellation the domain decided: the booking's changed fields (`version`
/// raised) and each changed seat line, all by `_id`.
async fn write_cancellation(ctx: &Ctx, c: &Cancellation) -> Result<(), HandlerError> {
    let b = &c.booking;
    let set = doc! {
        "status": b.status.as_str(), "cancelledAt": b.cancelled_at,
        "cancellationReason": b.cancellation_reason.as_deref(), "expiresAt": b.expires_at,
        "paymentStatus": b.payment_status.map(|s| s.as_str()), "paymentId": b.payment_id,
        "updatedAt": b.updated_at,
    };
    Repo::<Booking>::new(&ctx.store)
        .patch_counted(b.id, set, "version")
        .await?;
    let lines = Repo::<BookingSeat>::new(&ctx.store);
    for line in &c.seats {
        let set = doc! {"status": line.status.as_str(), "cancelledAt": line.cancelled_at};
        lines.patch(line.id, set).await?;
    }
    Ok(())
}

/// The end of a booking, whatever the path: its seats back on sale, then the cancellation
/// `decide` makes of its seat lines written.
pub(crate) async fn end_booking(
    ctx: &Ctx,
    booking: &Booking,
    decide: impl FnOnce(&[BookingSeat]) -> Result<Cancellation, DomainError>,
) -> Result<Cancellation, HandlerError> {
    free_seats(
        ctx,
        booking.event_id,
        &booking.seat_ids,
        Owner::Booking(booking.id),
    )
    .await?;
    let lines = seat_lines(ctx, booking).await?;
    let c = decide(&lines).map_err(HandlerError::permanent)?;
    write_cancellation(ctx, &c).await?;
    Ok(c)
}

/// The facts of a booking's end: `booking.cancelled`, or `booking.expired` when it ran out.
pub(crate) fn ended(
    before: &Booking,
    by: CancelledBy,
    refund: Option<(ObjectId, Money)>,
    payment_status: Option<PaymentStatus>,
) -> DomainEvent {
    let e = BookingEnded {
        booking_id: before.id,
        event_id: before.event_id,
        user_id: Some(before.user_id),
        seat_ids: before.seat_ids.clone(),
        refund_minor: refund.map_or(0, |(_, m)| m.minor()),
        refund_id: refund.map(|(id, _)| id),
        currency: refund.map(|(_, m)| m.currency()),
        reason: Some(by.as_reason()),
        previous_status: Some(before.status),
        payment_status,
    };
    match by {
        CancelledBy::Expired => DomainEvent::BookingExpired(e),
        _ => DomainEvent::BookingCancelled(e),
    }
}

/// Cancels a booking nobody paid for: seats back on sale, booking `cancelled`.
/// `failed_payment` is the last failed attempt when that is why.
pub(crate) async fn cancel_unpaid(
    ctx: &Ctx,
    env: &CommandEnvelope,
    booking: &Booking,
    by: CancelledBy,
    failed_payment: Option<ObjectId>,
) -> Result<Value, HandlerError> {
    let now = ctx.now_stored();
    let c = end_booking(ctx, booking, |lines| {
        decide::cancel_unpaid(booking, lines, by, failed_payment, now)
    })
    .await?;
    ctx.emit(
        env,
        ended(booking, by, None, None),
        Some(json!({"status": booking.status.as_str()})),
        Some(json!({"status": c.booking.status.as_str(), "cancellationReason": by.reason()})),
    )
    .await?;
    Ok(api_json(&to_doc(&c.booking)?))
}

/// `POST /v1/bookings/{id}/cancel` and the event-cancellation fan-out.
pub(crate) async fn cancel(
    ctx: &Ctx,
    env: &CommandEnvelope,
    c: &CancelBooking,
) -> Result<Reply, HandlerError> {
    let repo = Repo::<Booking>::new(&ctx.store);
    let booking = match env.issuer {
        Some(_) => repo.get(c.booking_id).await?,
        None => None,
    };
    let event_cancelled = c.cause == CancelCause::EventCancelled;
    match decide::decide_cancel(env.actor(), booking.as_ref(), event_cancelled) {
        CancelDecision::Refuse(r) => Ok(Reply::refused(&r)),
        CancelDecision::RefundAndCancel(by) => {
            let booking =
                booking.ok_or_else(|| HandlerError::permanent("decided without its booking"))?;
            crate::payments::refunds::refund_and_cancel(ctx, env, &booking, c, by).await
        }
        // A payment in flight decides the booking; cancel only when none is running.
        // Under the lease a new payment attempt takes, so none starts meanwhile.
        CancelDecision::CancelUnpaid(by) => {
            with_lease(ctx, crate::payments::PAY_LEASE, c.booking_id, || async {
                let running = payment_running(ctx, &c.booking_id).await?;
                let Some(now_booking) = repo.get(c.booking_id).await? else {
                    return Ok(Reply::refused(&Refusal::BookingNotFound));
                };
                if let Err(r) = decide::recheck_unpaid(&now_booking, running) {
                    return Ok(Reply::refused(&r));
                }
                let after = cancel_unpaid(ctx, env, &now_booking, by, None).await?;
                Ok(Reply::ok(
                    200,
                    json!({"booking": after, "refund": Value::Null}),
                ))
            })
            .await
        }
    }
}

/// The expiry worker: a pending booking past `expiresAt` with no payment running.
pub(crate) async fn expire(
    ctx: &Ctx,
    env: &CommandEnvelope,
    c: &BookingRef,
) -> Result<Reply, HandlerError> {
    let repo = Repo::<Booking>::new(&ctx.store);
    let booking = repo.get(c.booking_id).await?;
    match decide::decide_expire(booking.as_ref(), ctx.now_stored()) {
        ExpireDecision::Refuse(r) => return Ok(Reply::refused(&r)),
        ExpireDecision::NotPending(s) => return Ok(not_expired(s)),
        // Not stored as a result (that would answer the real expiry later): retried.
        ExpireDecision::NotYetDue => {
            return Err(HandlerError::Transient("booking not yet expired".into()))
        }
        ExpireDecision::Expire => {}
    }
    with_lease(ctx, crate::payments::PAY_LEASE, c.booking_id, || async {
        let running = payment_running(ctx, &c.booking_id).await?;
        let Some(now_booking) = repo.get(c.booking_id).await? else {
            return Ok(Reply::refused(&Refusal::BookingNotFound));
        };
        match decide::recheck_expiry(&now_booking, running) {
            // The payment in flight decides; it confirms the booking, or leaves it
            // pending (and past due) for the next sweep.
            Err(ExpiryHeld::PaymentInProgress) => Ok(Reply::ok(
                200,
                json!({"expired": false, "reason": "payment in progress"}),
            )),
            Err(ExpiryHeld::NotPending(s)) => Ok(not_expired(s)),
            Ok(()) => {
                let after =
                    cancel_unpaid(ctx, env, &now_booking, CancelledBy::Expired, None).await?;
                Ok(Reply::ok(200, json!({"expired": true, "booking": after})))
            }
        }
    })
    .await
}

fn not_expired(status: BookingStatus) -> Reply {
    Reply::ok(200, json!({"expired": false, "status": status.as_str()}))
}

/// Whether an attempt at paying the booking decides it (see `decide::payment_running`).
async fn payment_running(ctx: &Ctx, booking_id: &ObjectId) -> Result<bool, HandlerError> {
    let latest = crate::payments::latest(ctx, booking_id).await?;
    Ok(decide::payment_running(latest.map(|p| p.status)))
}
