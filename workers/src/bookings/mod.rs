//! The bookings worker: a hold becomes a pending booking; a paid booking is confirmed
//! (seats sold); a booking is cancelled with the refund its event's policy grants, or
//! expires unpaid. Every step is idempotent: ids derive from the hold (one booking per
//! hold) or the booking (one payment, one refund), and `$set`s are harmless to repeat.

use bson::{doc, Bson, Document};
use chrono::{TimeZone, Utc};
pub use domain::bookings::decide::booking_id_for;
use domain::bookings::decide::booking_seat_id;
use domain::entities::booking::{BookingAmounts, BookingSeat, BookingSeatStatus, BookingStatus};
use domain::entities::payment::PaymentStatus;
use domain::entities::reference::{booking_reference, reference_unique};
use domain::entities::refund::{refund_for, Refund, RefundError, RefundReason, RefundStatus};
use domain::entities::Booking;
use domain::event::CancellationPolicy;
use domain::events::{
    BookingConfirmed, BookingCreated, BookingEnded, CancellationReason, DomainEvent, HoldConverted,
    RefundProcessed,
};
use domain::ids::derive_object_id;
use domain::seat::lock_key;
use domain::{DateTime, Money, ObjectId};
use futures::future::join_all;
use serde_json::{json, Value};
use streams::codes::{ErrorCode, Reply};
use streams::commands::{BookingRef, CancelBooking, CancelCause, CommandEnvelope, CreateBooking};
use streams::locks::Transferred;

use crate::app::context::{Ctx, HandlerError};
use crate::holds::seats::{free_seats, pending_value, sold_value, Owner};
use crate::store::leases::with_lease;
use crate::store::{api_json, is_duplicate_key, names, to_doc};

fn oid(d: &Document, k: &str) -> Result<ObjectId, HandlerError> {
    d.get_object_id(k)
        .map_err(|e| HandlerError::Permanent(format!("{k}: {e}")))
}

fn ids(d: &Document, k: &str) -> Vec<ObjectId> {
    d.get_array(k)
        .map(|a| a.iter().filter_map(Bson::as_object_id).collect())
        .unwrap_or_default()
}

fn money(d: &Document, k: &str) -> Result<Money, HandlerError> {
    bson::from_bson(d.get(k).cloned().unwrap_or_default())
        .map_err(|e| HandlerError::Permanent(format!("{k}: {e}")))
}

/// Writes a booking's cancellation: the booking (`set`, `version` raised) and each of its
/// seat lines, all by `_id`. Returns the booking as it is now.
async fn write_cancelled(
    ctx: &Ctx,
    booking: &Document,
    set: Document,
    now: DateTime,
) -> Result<Document, HandlerError> {
    let booking_id = oid(booking, "_id")?;
    ctx.store
        .col(names::BOOKINGS)
        .update_one(
            doc! {"_id": booking_id},
            doc! {"$set": set.clone(), "$inc": {"version": 1}},
        )
        .await?;
    let created = booking.get_datetime("createdAt").copied().unwrap_or(now);
    let lines = ctx.store.col(names::BOOKING_SEATS);
    for seat in ids(booking, "seatIds") {
        lines
            .update_one(
                doc! {"_id": booking_seat_id(&booking_id, &seat, created)},
                doc! {"$set": {"status": "cancelled", "cancelledAt": now}},
            )
            .await?;
    }
    let mut after = booking.clone();
    after.extend(set);
    Ok(after)
}

/// The facts of a booking's end: `booking.cancelled`, or `booking.expired` when it ran out.
fn ended(
    booking: &Document,
    by: CancelledBy,
    refund: Option<(ObjectId, Money)>,
    payment_status: Option<PaymentStatus>,
) -> Result<DomainEvent, HandlerError> {
    let e = BookingEnded {
        booking_id: oid(booking, "_id")?,
        event_id: oid(booking, "eventId")?,
        user_id: booking.get_object_id("userId").ok(),
        seat_ids: ids(booking, "seatIds"),
        refund_minor: refund.map_or(0, |(_, m)| m.minor()),
        refund_id: refund.map(|(id, _)| id),
        currency: refund.map(|(_, m)| m.currency()),
        reason: Some(by.as_reason()),
        previous_status: booking
            .get_str("status")
            .ok()
            .and_then(BookingStatus::parse),
        payment_status,
    };
    Ok(match by {
        CancelledBy::Expired => DomainEvent::BookingExpired(e),
        _ => DomainEvent::BookingCancelled(e),
    })
}

pub async fn create(
    ctx: &Ctx,
    env: &CommandEnvelope,
    c: &CreateBooking,
) -> Result<Reply, HandlerError> {
    let Some(issuer) = env.issuer.clone() else {
        return Ok(Reply::error(ErrorCode::Unauthorized, "sign in to book"));
    };
    let Some(hold) = crate::holds::find_hold(ctx, c.hold_id).await? else {
        return Ok(Reply::error(ErrorCode::HoldNotFound, "no such hold"));
    };
    let user_id = oid(&hold, "userId")?;
    if user_id != issuer.user_id {
        return Ok(Reply::error(ErrorCode::HoldNotFound, "no such hold"));
    }
    let booking_id = booking_id_for(&c.hold_id);
    let bookings = ctx.store.col(names::BOOKINGS);
    // Already made from this hold: by this command (a redelivery) it is the answer; by
    // another, the hold is spent.
    if let Some(existing) = bookings.find_one(doc! {"_id": booking_id}).await? {
        if existing.get_str("commandId").ok() == Some(env.id.as_str()) {
            finish_create(ctx, env, &hold, &existing).await?;
            return Ok(Reply::ok(201, api_json(&existing)));
        }
        return Ok(Reply::error(
            ErrorCode::HoldNotActive,
            "the hold was already booked",
        ));
    }
    let status = hold.get_str("status").unwrap_or_default();
    let now = DateTime::now();
    let expired = hold
        .get_datetime("expiresAt")
        .map(|d| d.timestamp_millis() <= now.timestamp_millis())
        .unwrap_or(true);
    if status != "active" || expired {
        let s = if status == "active" {
            "expired"
        } else {
            status
        };
        return Ok(Reply::error(
            ErrorCode::HoldNotActive,
            format!("the hold is {s}"),
        ));
    }
    let event_id = oid(&hold, "eventId")?;
    let seat_ids = ids(&hold, "seatIds");
    let map = ctx.seat_maps.get(&ctx.store, event_id).await?;
    let prices: Vec<Money> = seat_ids
        .iter()
        .filter_map(|s| map.get(s).map(|i| i.price))
        .collect();
    if prices.len() != seat_ids.len() {
        return Err(HandlerError::Permanent(
            "a held seat is missing from its event".into(),
        ));
    }
    let amounts =
        BookingAmounts::new(&prices, None).map_err(|e| HandlerError::Permanent(e.to_string()))?;

    // The seats pass from the hold to the booking: compare-and-swap on each lock, with the
    // booking's longer lifetime. A lock the hold lost (expired) refuses the booking.
    let from = c.hold_id.to_hex();
    let to = pending_value(&booking_id);
    let ttl = ctx.cfg.booking_lock_ttl();
    let keys: Vec<String> = seat_ids.iter().map(|s| lock_key(&event_id, s)).collect();
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
    if lost {
        return Ok(Reply::error(
            ErrorCode::HoldNotActive,
            "the hold's seats are no longer held",
        ));
    }

    let expires_at =
        DateTime::from_millis(now.timestamp_millis() + ctx.cfg.booking_ttl().as_millis() as i64);
    let reference = booking_reference(
        now.timestamp_millis(),
        reference_unique(&booking_id.to_hex()),
    );
    let booking = Booking {
        id: booking_id,
        user_id,
        event_id,
        seat_ids: seat_ids.clone(),
        quantity: seat_ids.len() as i32,
        total_price: amounts.total(),
        discount: amounts.discount(),
        final_price: amounts.final_price(),
        currency: amounts.currency(),
        status: BookingStatus::Pending,
        booking_reference: reference,
        payment_id: None,
        payment_status: None,
        notes: None,
        cancellation_reason: None,
        version: 0,
        hold_id: c.hold_id,
        command_id: env.id.clone(),
        created_at: now,
        confirmed_at: None,
        completed_at: None,
        cancelled_at: None,
        expires_at: Some(expires_at),
        updated_at: now,
    };
    let lines: Vec<Document> = seat_ids
        .iter()
        .zip(&prices)
        .map(|(s, p)| {
            to_doc(&BookingSeat {
                id: booking_seat_id(&booking_id, s, now),
                booking_id,
                seat_id: *s,
                price_at_booking: *p,
                status: BookingSeatStatus::Confirmed,
                created_at: now,
                cancelled_at: None,
            })
        })
        .collect::<Result<_, _>>()?;
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
    let d = to_doc(&booking)?;
    let stored = match bookings.insert_one(&d).await {
        Ok(_) => d,
        Err(e) if is_duplicate_key(&e) => {
            let first = bookings
                .find_one(doc! {"_id": booking_id})
                .await?
                .unwrap_or(d);
            if first.get_str("commandId").ok() != Some(env.id.as_str()) {
                return Ok(Reply::error(
                    ErrorCode::HoldNotActive,
                    "the hold was already booked",
                ));
            }
            first
        }
        Err(e) => return Err(e.into()),
    };
    finish_create(ctx, env, &hold, &stored).await?;
    Ok(Reply::ok(201, api_json(&stored)))
}

/// The rest of a booking's creation, each step harmless to repeat: seats point at the
/// booking, the hold is converted, the events are published.
async fn finish_create(
    ctx: &Ctx,
    env: &CommandEnvelope,
    hold: &Document,
    booking: &Document,
) -> Result<(), HandlerError> {
    let booking_id = oid(booking, "_id")?;
    let hold_id = oid(hold, "_id")?;
    // The hold's document follows from `hold.converted` (the projection is its writer).
    let event_id = oid(booking, "eventId")?;
    ctx.emit(
        env,
        DomainEvent::HoldConverted(HoldConverted {
            hold_id,
            event_id,
            booking_id: Some(booking_id),
        }),
        Some(json!({"status": "active"})),
        Some(
            json!({"status": "converted_to_booking", "convertedToBookingId": booking_id.to_hex()}),
        ),
    )
    .await?;
    let expires_at = booking
        .get_datetime("expiresAt")
        .map_err(|e| HandlerError::Permanent(format!("expiresAt: {e}")))?
        .to_chrono();
    let event = DomainEvent::BookingCreated(BookingCreated {
        booking_id,
        event_id,
        user_id: oid(booking, "userId")?,
        seat_ids: ids(booking, "seatIds"),
        expires_at,
    });
    ctx.emit(env, event, None, Some(api_json(booking))).await
}

/// Confirms a paid booking: locks become permanent (a sale), seats `booked`, booking
/// `confirmed`. Returns the booking as the API shows it.
pub async fn confirm(
    ctx: &Ctx,
    env: &CommandEnvelope,
    booking: &Document,
    payment: &Document,
) -> Result<Value, HandlerError> {
    let booking_id = oid(booking, "_id")?;
    let event_id = oid(booking, "eventId")?;
    let user_id = oid(booking, "userId")?;
    let seat_ids = ids(booking, "seatIds");
    let from = pending_value(&booking_id);
    let to = sold_value(&booking_id);
    let keys: Vec<String> = seat_ids.iter().map(|s| lock_key(&event_id, s)).collect();
    let moved = join_all(keys.iter().map(|k| ctx.locks.transfer(k, &from, &to, None))).await;
    for (seat, r) in seat_ids.iter().zip(moved) {
        if r? == Transferred::Lost {
            // Paid but a lock is gone: only possible if the booking outlived its lock's
            // TTL. Take it back if it is free; an operator must look if it is not.
            let key = lock_key(&event_id, seat);
            match ctx
                .locks
                .acquire(&key, &to, std::time::Duration::from_secs(1))
                .await?
            {
                streams::locks::Acquired::HeldByOther => {
                    tracing::error!(seat = %seat, booking = %booking_id, "paid booking lost a seat; needs an operator")
                }
                _ => {
                    ctx.locks.transfer(&key, &to, &to, None).await?;
                }
            }
        }
    }
    let now = DateTime::now();
    let payment_id = oid(payment, "_id")?;
    let set = doc! {
        "status": "confirmed", "paymentId": payment_id, "paymentStatus": "completed", "confirmedAt": now,
        "expiresAt": Bson::Null, "updatedAt": now,
    };
    ctx.store
        .col(names::BOOKINGS)
        .update_one(
            doc! {"_id": booking_id},
            doc! {"$set": set.clone(), "$inc": {"version": 1}},
        )
        .await?;
    let mut after = booking.clone();
    after.extend(set);
    let after_json = api_json(&after);
    let event = DomainEvent::BookingConfirmed(BookingConfirmed {
        booking_id,
        event_id,
        user_id,
        seat_ids,
        final_price: money(&after, "finalPrice")?,
        payment_id: Some(payment_id),
    });
    ctx.emit(
        env,
        event,
        Some(json!({"status": booking.get_str("status").unwrap_or("pending")})),
        Some(json!({"status": "confirmed", "paymentId": payment_id.to_hex()})),
    )
    .await?;
    Ok(after_json)
}

/// Why an unpaid booking ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelledBy {
    PaymentFailed,
    Expired,
    Owner,
    EventCancelled,
}

impl CancelledBy {
    fn as_reason(self) -> CancellationReason {
        match self {
            CancelledBy::PaymentFailed => CancellationReason::PaymentFailed,
            CancelledBy::Expired => CancellationReason::Expired,
            CancelledBy::Owner => CancellationReason::UserRequested,
            CancelledBy::EventCancelled => CancellationReason::EventCancelled,
        }
    }

    fn reason(self) -> &'static str {
        self.as_reason().as_str()
    }
}

/// Cancels a booking nobody paid for: seats back on sale, booking `cancelled`.
/// `failed_payment` is the last failed attempt when that is why.
pub async fn cancel_unpaid(
    ctx: &Ctx,
    env: &CommandEnvelope,
    booking: &Document,
    by: CancelledBy,
    failed_payment: Option<ObjectId>,
) -> Result<Value, HandlerError> {
    let booking_id = oid(booking, "_id")?;
    let event_id = oid(booking, "eventId")?;
    free_seats(
        ctx,
        event_id,
        &ids(booking, "seatIds"),
        Owner::Booking(booking_id),
    )
    .await?;
    let now = DateTime::now();
    let mut set = doc! {"status": "cancelled", "cancelledAt": now, "cancellationReason": by.reason(), "expiresAt": Bson::Null, "updatedAt": now};
    if by == CancelledBy::PaymentFailed {
        set.insert("paymentStatus", "failed");
        set.insert(
            "paymentId",
            failed_payment.unwrap_or_else(|| crate::payments::payment_id_for(&booking_id)),
        );
    }
    let after = write_cancelled(ctx, booking, set, now).await?;
    ctx.emit(
        env,
        ended(booking, by, None, None)?,
        Some(json!({"status": booking.get_str("status").unwrap_or_default()})),
        Some(json!({"status": "cancelled", "cancellationReason": by.reason()})),
    )
    .await?;
    Ok(api_json(&after))
}

/// `POST /v1/bookings/{id}/cancel` and the event-cancellation fan-out.
pub async fn cancel(
    ctx: &Ctx,
    env: &CommandEnvelope,
    c: &CancelBooking,
) -> Result<Reply, HandlerError> {
    let Some(issuer) = env.issuer.clone() else {
        return Ok(Reply::error(ErrorCode::Unauthorized, "sign in first"));
    };
    let bookings = ctx.store.col(names::BOOKINGS);
    let Some(booking) = bookings.find_one(doc! {"_id": c.booking_id}).await? else {
        return Ok(Reply::error(ErrorCode::BookingNotFound, "no such booking"));
    };
    let owner = oid(&booking, "userId")?;
    if owner != issuer.user_id && !issuer.role.is_admin() {
        return Ok(Reply::error(ErrorCode::BookingNotFound, "no such booking"));
    }
    if c.cause == CancelCause::EventCancelled && !issuer.role.is_admin() {
        return Ok(Reply::error(
            ErrorCode::Forbidden,
            "only admins cancel events",
        ));
    }
    let status = BookingStatus::parse(booking.get_str("status").unwrap_or_default())
        .unwrap_or(BookingStatus::Cancelled);
    let by = if c.cause == CancelCause::EventCancelled {
        CancelledBy::EventCancelled
    } else {
        CancelledBy::Owner
    };
    match status {
        BookingStatus::Pending => {
            // A payment in flight decides the booking; cancel only when none is running.
            // Under the lease a new payment attempt takes, so none starts meanwhile.
            with_lease(ctx, crate::payments::PAY_LEASE, c.booking_id, || async {
                if payment_running(ctx, &c.booking_id).await? {
                    return Ok(Reply::error(
                        ErrorCode::PaymentInProgress,
                        "a payment for this booking is in progress",
                    ));
                }
                let now_booking = bookings
                    .find_one(doc! {"_id": c.booking_id})
                    .await?
                    .unwrap_or_else(|| booking.clone());
                if now_booking.get_str("status").ok() != Some("pending") {
                    return Ok(Reply::error(
                        ErrorCode::BookingNotCancellable,
                        "the booking changed meanwhile; read it again",
                    ));
                }
                let after = cancel_unpaid(ctx, env, &now_booking, by, None).await?;
                Ok(Reply::ok(
                    200,
                    json!({"booking": after, "refund": Value::Null}),
                ))
            })
            .await
        }
        BookingStatus::Confirmed | BookingStatus::Completed => {
            refund_and_cancel(ctx, env, &booking, c, by).await
        }
        BookingStatus::Cancelled => Ok(Reply::error(
            ErrorCode::BookingNotCancellable,
            "the booking is already cancelled",
        )),
    }
}

async fn refund_and_cancel(
    ctx: &Ctx,
    env: &CommandEnvelope,
    booking: &Document,
    c: &CancelBooking,
    by: CancelledBy,
) -> Result<Reply, HandlerError> {
    let booking_id = oid(booking, "_id")?;
    let event_id = oid(booking, "eventId")?;
    let Some(event) = ctx
        .store
        .col(names::EVENTS)
        .find_one(doc! {"_id": event_id})
        .await?
    else {
        return Err(HandlerError::Permanent(
            "a booking's event is missing".into(),
        ));
    };
    let payment_id = booking
        .get_object_id("paymentId")
        .unwrap_or_else(|_| crate::payments::payment_id_for(&booking_id));
    let payments = ctx.store.col(names::PAYMENTS);
    let Some(payment) = payments.find_one(doc! {"_id": payment_id}).await? else {
        return Err(HandlerError::Permanent(
            "a confirmed booking has no payment".into(),
        ));
    };
    let paid = money(&payment, "amount")?;
    let refunded = money(&payment, "refundedAmount").unwrap_or(Money::zero(paid.currency()));
    let policy: CancellationPolicy = event
        .get_document("cancellationPolicy")
        .ok()
        .and_then(|p| bson::from_document(p.clone()).ok())
        .unwrap_or_default();
    let starts = event
        .get_datetime("eventDate")
        .map(|d| d.timestamp_millis())
        .unwrap_or(0);
    let starts = Utc
        .timestamp_millis_opt(starts)
        .single()
        .unwrap_or_else(Utc::now);
    let event_cancelled =
        by == CancelledBy::EventCancelled || event.get_str("status").ok() == Some("cancelled");
    let decision = match refund_for(paid, refunded, policy, Utc::now(), starts, event_cancelled) {
        Ok(d) => d,
        Err(RefundError::EventStarted) => {
            return Ok(Reply::error(
                ErrorCode::EventStarted,
                "the event has started; its bookings can no longer be cancelled",
            ))
        }
        Err(RefundError::Invalid(e)) => return Err(HandlerError::Permanent(e.to_string())),
    };

    // One refund per cancellation: its id derives from the booking, so a second cancel
    // (or a redelivery) finds it instead of refunding again.
    let refund_id = derive_object_id(
        "refund",
        &booking_id.to_hex(),
        booking_id.timestamp().timestamp_millis() / 1000,
    );
    let refunds = ctx.store.col(names::REFUNDS);
    let refund_doc = match refunds.find_one(doc! {"_id": refund_id}).await? {
        Some(r) => r,
        None => {
            let charge_txn = payment
                .get_str("transactionId")
                .unwrap_or_default()
                .to_string();
            let answer = ctx
                .gateway
                .refund(
                    &format!("refund:{}", refund_id.to_hex()),
                    &charge_txn,
                    decision.amount,
                )
                .await?;
            let now = DateTime::now();
            let refund = Refund {
                id: refund_id,
                payment_id,
                booking_id,
                user_id: oid(booking, "userId")?,
                original_amount: paid,
                refund_amount: decision.amount,
                refund_percentage: decision.percentage,
                reason: if event_cancelled {
                    RefundReason::EventCancelled
                } else {
                    RefundReason::UserRequested
                },
                refund_policy: decision.policy_applied.to_string(),
                status: RefundStatus::Processed,
                failure_reason: None,
                refund_transaction_id: Some(answer.transaction_id.clone()),
                gateway_response: Some(answer.response.clone()),
                requested_by: env.issuer.as_ref().map(|i| i.user_id),
                approved_by: None,
                processing_notes: c.note.clone(),
                command_id: env.id.clone(),
                created_at: now,
                processed_at: Some(now),
                updated_at: now,
            };
            let d = to_doc(&refund)?;
            match refunds.insert_one(&d).await {
                Ok(_) => d,
                Err(e) if is_duplicate_key(&e) => refunds
                    .find_one(doc! {"_id": refund_id})
                    .await?
                    .unwrap_or(d),
                Err(e) => return Err(e.into()),
            }
        }
    };
    let refund_amount = money(&refund_doc, "refundAmount")?;
    // refundedAmount is the refunds' sum, recomputed, so repeating this changes nothing.
    let mut total_refunded = Money::zero(paid.currency());
    let mut cur = refunds
        .find(doc! {"paymentId": payment_id, "status": "processed"})
        .await?;
    while cur.advance().await? {
        let r = cur.deserialize_current()?;
        let m = money(&r, "refundAmount")?;
        total_refunded = total_refunded
            .checked_add(m)
            .ok_or_else(|| HandlerError::Permanent("refund currencies differ".into()))?;
    }
    if total_refunded.minor() > paid.minor() {
        return Err(HandlerError::Permanent(format!(
            "refunds {} exceed payment {}",
            total_refunded, paid
        )));
    }
    let pay_status = PaymentStatus::after_refunds(paid, total_refunded)
        .map_err(|e| HandlerError::Permanent(e.to_string()))?;
    let now = DateTime::now();
    let mut pset = doc! {"refundedAmount": bson::to_bson(&total_refunded)?, "status": pay_status.as_str(), "updatedAt": now};
    if total_refunded.minor() > 0 {
        pset.insert("refundedAt", now);
        pset.insert(
            "refundTransactionId",
            refund_doc
                .get_str("refundTransactionId")
                .unwrap_or_default(),
        );
    }
    payments
        .update_one(doc! {"_id": payment_id}, doc! {"$set": pset})
        .await?;

    crate::tickets::cancel::cancel_tickets(ctx, booking_id, by.reason()).await?;
    free_seats(
        ctx,
        event_id,
        &ids(booking, "seatIds"),
        Owner::Booking(booking_id),
    )
    .await?;
    let set = doc! {
        "status": "cancelled", "cancelledAt": now, "cancellationReason": by.reason(), "paymentStatus": pay_status.as_str(),
        "updatedAt": now,
    };
    let after = write_cancelled(ctx, booking, set, now).await?;
    let refund_json = api_json(&refund_doc);
    let processed = DomainEvent::RefundProcessed(RefundProcessed {
        refund_id,
        event_id,
        booking_id,
        refund_minor: refund_amount.minor(),
        payment_status: pay_status,
        currency: Some(refund_amount.currency()),
    });
    ctx.emit(env, processed, None, Some(refund_json.clone()))
        .await?;
    ctx.emit(
        env,
        ended(booking, by, Some((refund_id, refund_amount)), Some(pay_status))?,
        Some(json!({"status": booking.get_str("status").unwrap_or_default()})),
        Some(json!({"status": "cancelled", "cancellationReason": by.reason(), "paymentStatus": pay_status.as_str()})),
    )
    .await?;
    Ok(Reply::ok(
        200,
        json!({"booking": api_json(&after), "refund": refund_json}),
    ))
}

/// The expiry worker: a pending booking past `expiresAt` with no payment running.
pub async fn expire(
    ctx: &Ctx,
    env: &CommandEnvelope,
    c: &BookingRef,
) -> Result<Reply, HandlerError> {
    let Some(booking) = ctx
        .store
        .col(names::BOOKINGS)
        .find_one(doc! {"_id": c.booking_id})
        .await?
    else {
        return Ok(Reply::error(ErrorCode::BookingNotFound, "no such booking"));
    };
    if booking.get_str("status").ok() != Some("pending") {
        return Ok(Reply::ok(
            200,
            json!({"expired": false, "status": booking.get_str("status").unwrap_or_default()}),
        ));
    }
    let due = booking
        .get_datetime("expiresAt")
        .map(|d| d.timestamp_millis() <= DateTime::now().timestamp_millis())
        .unwrap_or(false);
    if !due {
        // Not stored as a result (that would answer the real expiry later): retried.
        return Err(HandlerError::Transient("booking not yet expired".into()));
    }
    with_lease(ctx, crate::payments::PAY_LEASE, c.booking_id, || async {
        if payment_running(ctx, &c.booking_id).await? {
            // The payment in flight decides; it confirms the booking, or leaves it
            // pending (and past due) for the next sweep.
            return Ok(Reply::ok(
                200,
                json!({"expired": false, "reason": "payment in progress"}),
            ));
        }
        let now_booking = ctx
            .store
            .col(names::BOOKINGS)
            .find_one(doc! {"_id": c.booking_id})
            .await?
            .unwrap_or_else(|| booking.clone());
        if now_booking.get_str("status").ok() != Some("pending") {
            return Ok(Reply::ok(
                200,
                json!({"expired": false, "status": now_booking.get_str("status").unwrap_or_default()}),
            ));
        }
        let after = cancel_unpaid(ctx, env, &now_booking, CancelledBy::Expired, None).await?;
        Ok(Reply::ok(200, json!({"expired": true, "booking": after})))
    })
    .await
}

/// Whether an attempt at paying the booking decides it: its latest payment `pending`, or
/// `completed` while the booking is not yet confirmed (the attempt is confirming it).
async fn payment_running(ctx: &Ctx, booking_id: &ObjectId) -> Result<bool, HandlerError> {
    Ok(crate::payments::latest(ctx, booking_id)
        .await?
        .is_some_and(|p| matches!(p.get_str("status"), Ok("pending" | "completed"))))
}
