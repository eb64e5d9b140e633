//! Every transition of a booking and its seat lines, allowed and refused, on a fixed clock.

use chrono::Duration;

use super::*;
use crate::shared::clock::Clock;
use crate::shared::fixtures::{
    admin, at, booking, booking_seats, clock, hold, now, usd, user_actor,
};

fn prices(h: &SeatHold) -> HashMap<ObjectId, Money> {
    h.seat_ids.iter().map(|s| (*s, usd(1500))).collect()
}

fn cmd(h: &SeatHold) -> CreateBooking<'_> {
    CreateBooking {
        hold_id: h.id,
        command_id: "book-1",
        ttl_ms: 1_800_000,
    }
}

#[test]
fn an_active_hold_becomes_a_pending_booking_with_confirmed_seat_lines() {
    let me = user_actor();
    let h = hold(me.user_id);
    let CreateDecision::Create {
        booking,
        seats,
        hold_status,
    } = decide_create(Some(me), Some(&h), None, &prices(&h), cmd(&h), now()).unwrap()
    else {
        panic!("not created")
    };
    assert_eq!(hold_status, HoldStatus::ConvertedToBooking);
    assert_eq!(booking.id, booking_id_for(&h.id));
    assert_eq!(booking.status, BookingStatus::Pending);
    assert_eq!(booking.final_price, usd(3000));
    assert_eq!(booking.expires_at, Some(at(1_800_000)));
    assert_eq!(seats.len(), 2);
    assert!(seats
        .iter()
        .all(|s| s.status == BookingSeatStatus::Confirmed && s.booking_id == booking.id));
}

#[test]
fn a_hold_expires_for_booking_at_its_deadline() {
    let me = user_actor();
    let h = hold(me.user_id);
    let c = clock();
    c.advance(Duration::milliseconds(599_999));
    assert!(matches!(
        decide_create(
            Some(me),
            Some(&h),
            None,
            &prices(&h),
            cmd(&h),
            c.now_stored()
        )
        .unwrap(),
        CreateDecision::Create { .. }
    ));
    c.advance(Duration::milliseconds(1));
    assert_eq!(
        decide_create(
            Some(me),
            Some(&h),
            None,
            &prices(&h),
            cmd(&h),
            c.now_stored()
        )
        .unwrap(),
        CreateDecision::Refuse(Refusal::HoldNotActive("the hold is expired".into()))
    );
}

#[test]
fn bookings_from_missing_foreign_spent_or_ended_holds_are_refused() {
    let me = user_actor();
    let mut h = hold(me.user_id);
    let p = prices(&h);
    let r = |d: Result<CreateDecision, DomainError>| match d.unwrap() {
        CreateDecision::Refuse(r) => r,
        o => panic!("{o:?}"),
    };
    assert_eq!(
        r(decide_create(None, Some(&h), None, &p, cmd(&h), now())),
        Refusal::Unauthorized("sign in to book")
    );
    assert_eq!(
        r(decide_create(Some(me), None, None, &p, cmd(&h), now())),
        Refusal::HoldNotFound
    );
    assert_eq!(
        r(decide_create(
            Some(user_actor()),
            Some(&h),
            None,
            &p,
            cmd(&h),
            now()
        )),
        Refusal::HoldNotFound
    );
    let mut other = booking(me.user_id);
    other.command_id = "another".into();
    assert_eq!(
        r(decide_create(
            Some(me),
            Some(&h),
            Some(&other),
            &p,
            cmd(&h),
            now()
        )),
        Refusal::HoldNotActive("the hold was already booked".into())
    );
    other.command_id = "book-1".into();
    assert_eq!(
        decide_create(Some(me), Some(&h), Some(&other), &p, cmd(&h), now()).unwrap(),
        CreateDecision::Replay(other)
    );
    h.status = HoldStatus::Released;
    assert_eq!(
        r(decide_create(Some(me), Some(&h), None, &p, cmd(&h), now())),
        Refusal::HoldNotActive("the hold is released".into())
    );
    h.status = HoldStatus::Active;
    assert!(decide_create(Some(me), Some(&h), None, &HashMap::new(), cmd(&h), now()).is_err());
    assert_eq!(seats_lost().code(), "hold_not_active");
}

#[test]
fn cancelling_routes_pending_to_unpaid_and_confirmed_to_refund() {
    let me = user_actor();
    let mut b = booking(me.user_id);
    assert_eq!(
        decide_cancel(Some(me), Some(&b), false),
        CancelDecision::CancelUnpaid(CancelledBy::Owner)
    );
    b.status = BookingStatus::Confirmed;
    assert_eq!(
        decide_cancel(Some(me), Some(&b), false),
        CancelDecision::RefundAndCancel(CancelledBy::Owner)
    );
    assert_eq!(
        decide_cancel(Some(admin()), Some(&b), true),
        CancelDecision::RefundAndCancel(CancelledBy::EventCancelled)
    );
    assert_eq!(
        decide_cancel(Some(me), Some(&b), true),
        CancelDecision::Refuse(Refusal::Forbidden("only admins cancel events"))
    );
    b.status = BookingStatus::Cancelled;
    assert_eq!(
        decide_cancel(Some(me), Some(&b), false),
        CancelDecision::Refuse(Refusal::BookingNotCancellable(
            "the booking is already cancelled"
        ))
    );
    b.status = BookingStatus::Completed;
    assert_eq!(
        decide_cancel(Some(me), Some(&b), false).clone(),
        CancelDecision::Refuse(Refusal::BookingNotCancellable("the booking is completed"))
    );
    assert_eq!(
        decide_cancel(None, Some(&b), false),
        CancelDecision::Refuse(Refusal::Unauthorized("sign in first"))
    );
    assert_eq!(
        decide_cancel(Some(user_actor()), Some(&b), false),
        CancelDecision::Refuse(Refusal::BookingNotFound)
    );
}

#[test]
fn an_unpaid_cancellation_waits_for_a_running_payment() {
    let mut b = booking(ObjectId::new());
    assert_eq!(recheck_unpaid(&b, true), Err(Refusal::PaymentInProgress));
    assert_eq!(recheck_unpaid(&b, false), Ok(()));
    b.status = BookingStatus::Confirmed;
    assert_eq!(
        recheck_unpaid(&b, false),
        Err(Refusal::BookingNotCancellable(
            "the booking changed meanwhile; read it again"
        ))
    );
    assert!(
        payment_running(Some(PaymentStatus::Pending))
            && payment_running(Some(PaymentStatus::Completed))
    );
    assert!(!payment_running(Some(PaymentStatus::Failed)) && !payment_running(None));
}

#[test]
fn cancelling_unpaid_closes_the_window_and_cancels_each_seat_line_once() {
    let b = booking(ObjectId::new());
    let mut seats = booking_seats(&b);
    seats[1].status = BookingSeatStatus::Cancelled;
    let c = cancel_unpaid(&b, &seats, CancelledBy::Expired, None, at(5)).unwrap();
    assert_eq!(c.booking.status, BookingStatus::Cancelled);
    assert_eq!(c.booking.cancellation_reason.as_deref(), Some("expired"));
    assert_eq!(
        (
            c.booking.expires_at,
            c.booking.cancelled_at,
            c.booking.version
        ),
        (None, Some(at(5)), 1)
    );
    assert_eq!(c.booking.payment_status, None);
    assert_eq!(c.seats.len(), 1);
    assert_eq!(
        (c.seats[0].status, c.seats[0].cancelled_at),
        (BookingSeatStatus::Cancelled, Some(at(5)))
    );
    let f = cancel_unpaid(&b, &[], CancelledBy::PaymentFailed, None, at(5)).unwrap();
    assert_eq!(f.booking.payment_status, Some(PaymentStatus::Failed));
    assert_eq!(f.booking.payment_id, Some(payment_id_for_attempt(&b.id, 1)));
    let mut done = b.clone();
    done.status = BookingStatus::Cancelled;
    assert!(cancel_unpaid(&done, &[], CancelledBy::Owner, None, at(5)).is_err());
}

#[test]
fn a_paid_booking_is_cancelled_with_its_payments_new_status() {
    let mut b = booking(ObjectId::new());
    b.status = BookingStatus::Confirmed;
    let c = cancel_paid(
        &b,
        &booking_seats(&b),
        CancelledBy::Owner,
        PaymentStatus::PartiallyRefunded,
        at(9),
    )
    .unwrap();
    assert_eq!(c.booking.status, BookingStatus::Cancelled);
    assert_eq!(
        c.booking.payment_status,
        Some(PaymentStatus::PartiallyRefunded)
    );
    assert_eq!(
        c.booking.cancellation_reason.as_deref(),
        Some("user_requested")
    );
    assert_eq!(c.seats.len(), 2);
}

#[test]
fn a_pending_booking_expires_at_its_deadline_unless_a_payment_runs() {
    let b = booking(ObjectId::new());
    let c = clock();
    c.advance(Duration::milliseconds(1_799_999));
    assert_eq!(
        decide_expire(Some(&b), c.now_stored()),
        ExpireDecision::NotYetDue
    );
    c.advance(Duration::milliseconds(1));
    assert_eq!(
        decide_expire(Some(&b), c.now_stored()),
        ExpireDecision::Expire
    );
    assert_eq!(recheck_expiry(&b, true), Err(ExpiryHeld::PaymentInProgress));
    assert_eq!(recheck_expiry(&b, false), Ok(()));
    let mut paid = b.clone();
    paid.status = BookingStatus::Confirmed;
    assert_eq!(
        decide_expire(Some(&paid), c.now_stored()),
        ExpireDecision::NotPending(BookingStatus::Confirmed)
    );
    assert_eq!(
        recheck_expiry(&paid, false),
        Err(ExpiryHeld::NotPending(BookingStatus::Confirmed))
    );
    assert_eq!(
        decide_expire(None, c.now_stored()),
        ExpireDecision::Refuse(Refusal::BookingNotFound)
    );
}

#[test]
fn a_paid_booking_is_confirmed_and_a_cancelled_one_cannot_be() {
    let b = booking(ObjectId::new());
    let p = ObjectId::new();
    let c = confirm(&b, p, at(7)).unwrap();
    assert_eq!(
        (c.status, c.payment_id, c.payment_status),
        (
            BookingStatus::Confirmed,
            Some(p),
            Some(PaymentStatus::Completed)
        )
    );
    assert_eq!((c.confirmed_at, c.expires_at), (Some(at(7)), None));
    assert!(confirm(&c, p, at(8)).is_ok(), "a redelivery confirms again");
    let mut x = b.clone();
    x.status = BookingStatus::Cancelled;
    assert!(confirm(&x, p, at(7)).is_err());
}
