//! Refund windows and the payment's refund transitions, on a fixed clock.

use chrono::Duration;

use super::*;
use crate::payments::refund::Percentage;
use crate::shared::clock::Clock;
use crate::shared::fixtures::{booking, clock, event, now, payment, usd};

const DAY: i64 = 86_400_000;

fn paid() -> Payment {
    let mut p = payment(&booking(bson::oid::ObjectId::new()));
    p.status = PaymentStatus::Completed;
    p.amount = usd(999);
    p
}

#[test]
fn the_full_refund_window_ends_exactly_the_policys_days_before_the_start() {
    let e = event(14 * DAY);
    let c = clock();
    let d = decide_refund(&paid(), &e, CancelledBy::Owner, c.now()).unwrap();
    assert_eq!(
        (
            d.decision.percentage,
            d.decision.amount,
            d.decision.policy_applied
        ),
        (Percentage::FULL, usd(999), "full_refund_window")
    );
    assert_eq!(d.reason, RefundReason::UserRequested);
    c.advance(Duration::milliseconds(1));
    let d = decide_refund(&paid(), &e, CancelledBy::Owner, c.now()).unwrap();
    assert_eq!(
        (
            d.decision.percentage.get(),
            d.decision.amount,
            d.decision.policy_applied
        ),
        (50, usd(499), "late_cancellation")
    );
}

#[test]
fn after_the_start_only_a_cancelled_event_refunds() {
    let mut e = event(0);
    assert_eq!(
        decide_refund(&paid(), &e, CancelledBy::Owner, clock().now()),
        Err(RefundError::EventStarted)
    );
    assert_eq!(
        RefundError::EventStarted.refusal(),
        Some(Refusal::EventStarted)
    );
    let d = decide_refund(&paid(), &e, CancelledBy::EventCancelled, clock().now()).unwrap();
    assert_eq!(
        (d.decision.amount, d.reason),
        (usd(999), RefundReason::EventCancelled)
    );
    e.status = EventStatus::Cancelled;
    let d = decide_refund(&paid(), &e, CancelledBy::Owner, clock().now()).unwrap();
    assert_eq!(d.decision.policy_applied, "event_cancelled");
}

#[test]
fn a_refund_is_recorded_processed() {
    let b = booking(bson::oid::ObjectId::new());
    let p = paid();
    let plan = decide_refund(&p, &event(30 * DAY), CancelledBy::Owner, clock().now()).unwrap();
    let answer = RefundAnswer {
        transaction_id: "rf_1".into(),
        response: bson::doc! {},
        requested_by: None,
        note: None,
        command_id: "c",
    };
    let r = processed_refund(&b, &p, plan, answer, now()).unwrap();
    assert_eq!(
        (r.id, r.status, r.refund_amount),
        (refund_id_for(&b.id), RefundStatus::Processed, usd(999))
    );
}

#[test]
fn the_payment_follows_its_refunds_completed_partially_refunded_refunded() {
    let p = paid();
    let none = payment_after_refunds(&p, &[usd(0)], None, now()).unwrap();
    assert_eq!(
        (none.status, none.refunded_at),
        (PaymentStatus::Completed, None)
    );
    let part = payment_after_refunds(&p, &[usd(499)], Some("rf_1"), now()).unwrap();
    assert_eq!(
        (part.status, part.refunded_amount),
        (PaymentStatus::PartiallyRefunded, usd(499))
    );
    assert_eq!(part.refund_transaction_id.as_deref(), Some("rf_1"));
    let more = payment_after_refunds(&part, &[usd(499), usd(100)], Some("rf_2"), now()).unwrap();
    assert_eq!(more.status, PaymentStatus::PartiallyRefunded);
    let full = payment_after_refunds(&part, &[usd(499), usd(500)], Some("rf_2"), now()).unwrap();
    assert_eq!(full.status, PaymentStatus::Refunded);
    assert!(
        payment_after_refunds(&p, &[usd(1000)], None, now()).is_err(),
        "more than paid"
    );
    assert!(
        payment_after_refunds(&full, &[usd(1)], None, now()).is_err(),
        "refunded is final"
    );
}
