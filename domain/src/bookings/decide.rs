//! The decisions of the bookings worker (`workers/src/bookings/mod.rs`): create a booking
//! from a hold, cancel it (unpaid, or refunded per the event's policy), expire it, and
//! confirm it once paid. The refund itself is decided in [`crate::payments::decide`].

use std::collections::HashMap;

use bson::oid::ObjectId;
use bson::DateTime;

use super::booking::{Booking, BookingAmounts, BookingSeat, BookingSeatStatus, BookingStatus};
use super::reference::{booking_reference, reference_unique};
use crate::events::CancellationReason;
use crate::holds::hold::{HoldStatus, SeatHold};
use crate::ids::derive_object_id;
use crate::payments::decide::payment_id_for_attempt;
use crate::payments::payment::PaymentStatus;
use crate::shared::actor::Actor;
use crate::shared::money::Money;
use crate::{DomainError, Refusal};

/// The booking made from a hold: one per hold.
pub fn booking_id_for(hold: &ObjectId) -> ObjectId {
    derive_object_id(
        "booking",
        &hold.to_hex(),
        hold.timestamp().timestamp_millis() / 1000,
    )
}

/// A booking's line for one seat; `created` is the booking's `createdAt`.
pub fn booking_seat_id(booking: &ObjectId, seat: &ObjectId, created: DateTime) -> ObjectId {
    derive_object_id(
        "booking_seat",
        &format!("{}:{}", booking.to_hex(), seat.to_hex()),
        created.timestamp_millis() / 1000,
    )
}

/// The create-booking command with what the worker adds to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateBooking<'a> {
    pub hold_id: ObjectId,
    pub command_id: &'a str,
    /// How long a pending booking waits for payment, in milliseconds.
    pub ttl_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CreateDecision {
    /// This command made the booking before (a redelivery): finish and answer with it.
    Replay(Booking),
    /// Move the hold's seat locks to the booking, then insert these and convert the hold.
    Create {
        booking: Booking,
        seats: Vec<BookingSeat>,
        /// The hold's new status: converted to this booking.
        hold_status: HoldStatus,
    },
    Refuse(Refusal),
}

/// Applied by `workers/src/bookings/mod.rs::create` up to the lock transfers (a lost lock is
/// [`seats_lost`]). `existing` is the booking stored under [`booking_id_for`] the hold.
/// `Err`: the stored data is inconsistent (a held seat missing from its event, bad prices).
pub fn decide_create(
    issuer: Option<Actor>,
    hold: Option<&SeatHold>,
    existing: Option<&Booking>,
    seat_prices: &HashMap<ObjectId, Money>,
    cmd: CreateBooking<'_>,
    now: DateTime,
) -> Result<CreateDecision, DomainError> {
    let refuse = |r| Ok(CreateDecision::Refuse(r));
    let Some(issuer) = issuer else {
        return refuse(Refusal::Unauthorized("sign in to book"));
    };
    let Some(hold) = hold.filter(|h| h.user_id == issuer.user_id) else {
        return refuse(Refusal::HoldNotFound);
    };
    if let Some(b) = existing {
        if b.command_id == cmd.command_id {
            return Ok(CreateDecision::Replay(b.clone()));
        }
        return refuse(Refusal::HoldNotActive("the hold was already booked".into()));
    }
    let expired = hold.expires_at.timestamp_millis() <= now.timestamp_millis();
    if !hold.status.can_become(HoldStatus::ConvertedToBooking) || expired {
        let s = match hold.status {
            HoldStatus::Active => "expired",
            other => other.as_str(),
        };
        return refuse(Refusal::HoldNotActive(format!("the hold is {s}")));
    }
    let prices: Vec<Money> = hold
        .seat_ids
        .iter()
        .filter_map(|s| seat_prices.get(s).copied())
        .collect();
    if prices.len() != hold.seat_ids.len() {
        return Err(DomainError::invalid(
            "seatIds",
            "a held seat is missing from its event",
        ));
    }
    let amounts = BookingAmounts::new(&prices, None)?;
    let booking = new_booking(hold, &amounts, cmd, now);
    let seats = hold
        .seat_ids
        .iter()
        .zip(&prices)
        .map(|(s, p)| BookingSeat {
            id: booking_seat_id(&booking.id, s, now),
            booking_id: booking.id,
            seat_id: *s,
            price_at_booking: *p,
            status: BookingSeatStatus::Confirmed,
            created_at: now,
            cancelled_at: None,
        })
        .collect();
    Ok(CreateDecision::Create {
        booking,
        seats,
        hold_status: HoldStatus::ConvertedToBooking,
    })
}

fn new_booking(
    hold: &SeatHold,
    amounts: &BookingAmounts,
    cmd: CreateBooking<'_>,
    now: DateTime,
) -> Booking {
    let id = booking_id_for(&hold.id);
    Booking {
        id,
        user_id: hold.user_id,
        event_id: hold.event_id,
        seat_ids: hold.seat_ids.clone(),
        quantity: hold.seat_ids.len() as i32,
        total_price: amounts.total(),
        discount: amounts.discount(),
        final_price: amounts.final_price(),
        currency: amounts.currency(),
        status: BookingStatus::Pending,
        booking_reference: booking_reference(
            now.timestamp_millis(),
            reference_unique(&id.to_hex()),
        ),
        payment_id: None,
        payment_status: None,
        notes: None,
        cancellation_reason: None,
        version: 0,
        hold_id: hold.id,
        command_id: cmd.command_id.to_string(),
        created_at: now,
        confirmed_at: None,
        completed_at: None,
        cancelled_at: None,
        expires_at: Some(DateTime::from_millis(now.timestamp_millis() + cmd.ttl_ms)),
        updated_at: now,
    }
}

/// The refusal when a seat lock moved away from the hold before the booking took it.
pub fn seats_lost() -> Refusal {
    Refusal::HoldNotActive("the hold's seats are no longer held".into())
}

/// Why a booking ends; stored as `cancellationReason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelledBy {
    PaymentFailed,
    Expired,
    Owner,
    EventCancelled,
}

impl CancelledBy {
    /// The reason as the booking events carry it.
    pub fn as_reason(self) -> CancellationReason {
        match self {
            CancelledBy::PaymentFailed => CancellationReason::PaymentFailed,
            CancelledBy::Expired => CancellationReason::Expired,
            CancelledBy::Owner => CancellationReason::UserRequested,
            CancelledBy::EventCancelled => CancellationReason::EventCancelled,
        }
    }

    /// The stored `cancellationReason`.
    pub fn reason(self) -> &'static str {
        self.as_reason().as_str()
    }
}

/// Whether a booking's latest payment attempt decides it: `pending`, or `completed`
/// while the booking is not yet confirmed (the attempt is confirming it).
pub fn payment_running(latest: Option<PaymentStatus>) -> bool {
    matches!(
        latest,
        Some(PaymentStatus::Pending | PaymentStatus::Completed)
    )
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelDecision {
    /// Unpaid: under the pay lease, check [`recheck_unpaid`], then [`cancel_unpaid`].
    CancelUnpaid(CancelledBy),
    /// Paid: refund per the policy ([`crate::payments::decide::decide_refund`]), cancel
    /// the tickets, free the seats, then [`cancel_paid`].
    RefundAndCancel(CancelledBy),
    Refuse(Refusal),
}

/// Decides the first half of `workers/src/bookings/mod.rs::cancel`. `event_cancelled` is the
/// command's cause (`CancelCause::EventCancelled`).
pub fn decide_cancel(
    issuer: Option<Actor>,
    booking: Option<&Booking>,
    event_cancelled: bool,
) -> CancelDecision {
    let Some(issuer) = issuer else {
        return CancelDecision::Refuse(Refusal::Unauthorized("sign in first"));
    };
    let Some(booking) = booking.filter(|b| issuer.owns_or_admin(b.user_id)) else {
        return CancelDecision::Refuse(Refusal::BookingNotFound);
    };
    if event_cancelled && !issuer.is_admin() {
        return CancelDecision::Refuse(Refusal::Forbidden("only admins cancel events"));
    }
    let by = if event_cancelled {
        CancelledBy::EventCancelled
    } else {
        CancelledBy::Owner
    };
    match booking.status {
        BookingStatus::Cancelled => CancelDecision::Refuse(Refusal::BookingNotCancellable(
            "the booking is already cancelled",
        )),
        // NOTE: the worker today sends `completed` bookings down the refund path too; the
        // state machine keeps `completed` final, so it is refused here. No writer sets
        // `completed` yet, so no booking reaches this arm.
        s if !s.can_become(BookingStatus::Cancelled) => {
            CancelDecision::Refuse(Refusal::BookingNotCancellable("the booking is completed"))
        }
        BookingStatus::Pending => CancelDecision::CancelUnpaid(by),
        _ => CancelDecision::RefundAndCancel(by),
    }
}

/// Under the pay lease, before an unpaid booking is cancelled by its owner: a payment in
/// flight decides it, and a booking that changed meanwhile is read again by the caller.
pub fn recheck_unpaid(now_booking: &Booking, payment_running: bool) -> Result<(), Refusal> {
    if payment_running {
        return Err(Refusal::PaymentInProgress);
    }
    if now_booking.status != BookingStatus::Pending {
        return Err(Refusal::BookingNotCancellable(
            "the booking changed meanwhile; read it again",
        ));
    }
    Ok(())
}

/// A booking and its seat lines after a cancellation.
#[derive(Debug, Clone, PartialEq)]
pub struct Cancellation {
    pub booking: Booking,
    /// The lines that change (`confirmed -> cancelled`); lines cancelled before stay.
    pub seats: Vec<BookingSeat>,
}

fn cancel(
    booking: &Booking,
    seats: &[BookingSeat],
    by: CancelledBy,
    now: DateTime,
) -> Result<Cancellation, DomainError> {
    if !booking.status.can_become(BookingStatus::Cancelled) {
        return Err(DomainError::invalid(
            "status",
            format!("a {} booking cannot be cancelled", booking.status),
        ));
    }
    let mut after = booking.clone();
    after.status = BookingStatus::Cancelled;
    after.cancelled_at = Some(now);
    after.cancellation_reason = Some(by.reason().to_string());
    after.updated_at = now;
    after.version += 1;
    let seats = seats
        .iter()
        .filter(|l| l.status.can_become(BookingSeatStatus::Cancelled))
        .map(|l| BookingSeat {
            status: BookingSeatStatus::Cancelled,
            cancelled_at: Some(now),
            ..l.clone()
        })
        .collect();
    Ok(Cancellation {
        booking: after,
        seats,
    })
}

/// Applied by `workers/src/bookings/mod.rs::cancel_unpaid`: `pending -> cancelled`, the payment
/// window closed; after a failed payment, the booking names it (`failed_payment`, else
/// the first attempt's payment).
pub fn cancel_unpaid(
    booking: &Booking,
    seats: &[BookingSeat],
    by: CancelledBy,
    failed_payment: Option<ObjectId>,
    now: DateTime,
) -> Result<Cancellation, DomainError> {
    let mut c = cancel(booking, seats, by, now)?;
    c.booking.expires_at = None;
    if by == CancelledBy::PaymentFailed {
        c.booking.payment_status = Some(PaymentStatus::Failed);
        c.booking.payment_id =
            Some(failed_payment.unwrap_or_else(|| payment_id_for_attempt(&booking.id, 1)));
    }
    Ok(c)
}

/// The end of `workers/src/payments/refunds.rs::refund_and_cancel`: `confirmed -> cancelled`
/// with the payment's status after its refunds.
pub fn cancel_paid(
    booking: &Booking,
    seats: &[BookingSeat],
    by: CancelledBy,
    payment_status: PaymentStatus,
    now: DateTime,
) -> Result<Cancellation, DomainError> {
    let mut c = cancel(booking, seats, by, now)?;
    c.booking.payment_status = Some(payment_status);
    Ok(c)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpireDecision {
    /// Under the pay lease, check [`recheck_expiry`], then [`cancel_unpaid`] as `Expired`.
    Expire,
    /// Not pending (any more): 200 `expired: false` with its status.
    NotPending(BookingStatus),
    /// Early: retried later (not stored as a result).
    NotYetDue,
    Refuse(Refusal),
}

/// Decides the first half of `workers/src/bookings/mod.rs::expire`.
pub fn decide_expire(booking: Option<&Booking>, now: DateTime) -> ExpireDecision {
    let Some(b) = booking else {
        return ExpireDecision::Refuse(Refusal::BookingNotFound);
    };
    if b.status != BookingStatus::Pending {
        return ExpireDecision::NotPending(b.status);
    }
    if !b.is_expired(now) {
        return ExpireDecision::NotYetDue;
    }
    ExpireDecision::Expire
}

/// Why an expiry found under the lease leaves the booking alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryHeld {
    /// 200 `expired: false, reason: "payment in progress"`.
    PaymentInProgress,
    NotPending(BookingStatus),
}

/// Under the pay lease: a payment in flight decides (it confirms the booking, or leaves it
/// past due for the next sweep).
pub fn recheck_expiry(now_booking: &Booking, payment_running: bool) -> Result<(), ExpiryHeld> {
    if payment_running {
        return Err(ExpiryHeld::PaymentInProgress);
    }
    if now_booking.status != BookingStatus::Pending {
        return Err(ExpiryHeld::NotPending(now_booking.status));
    }
    Ok(())
}

/// Decides the booking side of `workers/src/bookings/mod.rs::confirm`: `pending -> confirmed`
/// by payment `payment_id`; a confirmed booking (a redelivery) is confirmed again as is.
pub fn confirm(
    booking: &Booking,
    payment_id: ObjectId,
    now: DateTime,
) -> Result<Booking, DomainError> {
    if booking.status != BookingStatus::Confirmed
        && !booking.status.can_become(BookingStatus::Confirmed)
    {
        return Err(DomainError::invalid(
            "status",
            format!("a {} booking cannot be confirmed", booking.status),
        ));
    }
    let mut after = booking.clone();
    after.status = BookingStatus::Confirmed;
    after.payment_id = Some(payment_id);
    after.payment_status = Some(PaymentStatus::Completed);
    after.confirmed_at = Some(now);
    after.expires_at = None;
    after.updated_at = now;
    after.version += 1;
    Ok(after)
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
