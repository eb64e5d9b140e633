//! Every transition of a payment attempt, allowed and refused, on a fixed clock.

use chrono::Duration;

use super::*;
use crate::shared::clock::Clock;
use crate::shared::fixtures::{admin, at, booking, clock, now, payment, user_actor};

fn cmd() -> PayCommand<'static> {
    PayCommand {
        command_id: "pay-1",
        currency: None,
        max_failed: 3,
    }
}

fn answer(outcome: CardOutcome) -> GatewayAnswer {
    GatewayAnswer {
        outcome,
        transaction_id: "sim_1".into(),
        response: bson::doc! {"ok": 1},
    }
}

#[test]
fn the_first_pay_command_starts_attempt_one_and_a_redelivery_resumes_it() {
    let me = user_actor();
    let b = booking(me.user_id);
    assert_eq!(
        decide_pay(Some(me), Some(&b), None, &[], cmd(), now()),
        PayDecision::Start(1)
    );
    let mut p = payment(&b);
    p.command_id = "pay-1".into();
    assert_eq!(
        decide_pay(Some(me), Some(&b), None, &[p.clone()], cmd(), now()),
        PayDecision::Resume(p, 1)
    );
}

#[test]
fn a_failed_attempt_lets_the_next_in_until_the_maximum_of_failed_attempts() {
    let me = user_actor();
    let b = booking(me.user_id);
    let mut failed = payment(&b);
    failed.status = PaymentStatus::Failed;
    let chain = vec![failed.clone(), failed.clone()];
    assert_eq!(
        decide_pay(Some(me), Some(&b), None, &chain, cmd(), now()),
        PayDecision::Start(3)
    );
    let chain = vec![failed.clone(), failed.clone(), failed];
    assert_eq!(
        decide_pay(Some(me), Some(&b), None, &chain, cmd(), now()),
        PayDecision::Refuse(Refusal::BookingNotPayable(
            "the booking cannot be paid: its payment failed too many times"
        ))
    );
}

#[test]
fn a_running_or_completed_attempt_answers_other_pay_commands() {
    let me = user_actor();
    let b = booking(me.user_id);
    let mut p = payment(&b);
    assert_eq!(
        decide_pay(Some(me), Some(&b), None, &[p.clone()], cmd(), now()),
        PayDecision::Refuse(Refusal::PaymentInProgress)
    );
    p.status = PaymentStatus::Completed;
    assert_eq!(
        decide_pay(Some(me), Some(&b), None, &[p], cmd(), now()),
        PayDecision::Refuse(Refusal::AlreadyPaid)
    );
}

#[test]
fn pay_commands_are_refused_for_strangers_unverified_payers_and_closed_bookings() {
    let me = user_actor();
    let mut b = booking(me.user_id);
    assert_eq!(
        decide_pay(None, Some(&b), None, &[], cmd(), now()),
        PayDecision::Refuse(Refusal::Unauthorized("sign in to pay"))
    );
    assert_eq!(
        decide_pay(Some(user_actor()), Some(&b), None, &[], cmd(), now()),
        PayDecision::Refuse(Refusal::BookingNotFound)
    );
    assert_eq!(
        decide_pay(Some(admin()), Some(&b), None, &[], cmd(), now()),
        PayDecision::Start(1)
    );
    assert_eq!(
        decide_pay(Some(me), Some(&b), Some(false), &[], cmd(), now()),
        PayDecision::Refuse(Refusal::EmailNotVerified)
    );
    let eur = PayCommand {
        currency: Some(Currency::parse("EUR").unwrap()),
        ..cmd()
    };
    assert_eq!(
        recheck_attempt(&b, eur, 1, now()),
        Err(Refusal::Invalid("the booking is priced in USD".into()))
    );
    assert_eq!(
        recheck_attempt(
            &b,
            PayCommand {
                currency: Some(Currency::USD),
                ..cmd()
            },
            1,
            now()
        ),
        Ok(())
    );
    b.status = BookingStatus::Confirmed;
    assert_eq!(
        recheck_attempt(&b, cmd(), 1, now()),
        Err(Refusal::AlreadyPaid)
    );
    b.status = BookingStatus::Cancelled;
    for (why, text) in [
        (
            Some("payment_failed"),
            "the booking cannot be paid: its payment failed too many times and it was cancelled",
        ),
        (
            Some("expired"),
            "the booking cannot be paid: it expired unpaid",
        ),
        (None, "the booking cannot be paid: it was cancelled"),
    ] {
        b.cancellation_reason = why.map(String::from);
        assert_eq!(
            recheck_attempt(&b, cmd(), 1, now()),
            Err(Refusal::BookingNotPayable(text))
        );
    }
}

#[test]
fn the_payment_window_closes_at_the_bookings_deadline() {
    let b = booking(ObjectId::new());
    let c = clock();
    c.advance(Duration::milliseconds(1_799_999));
    assert_eq!(recheck_attempt(&b, cmd(), 1, c.now_stored()), Ok(()));
    c.advance(Duration::milliseconds(1));
    assert_eq!(
        recheck_attempt(&b, cmd(), 1, c.now_stored()),
        Err(Refusal::BookingExpired)
    );
}

#[test]
fn a_new_attempt_is_pending_for_the_final_price_under_its_derived_id() {
    let b = booking(ObjectId::new());
    let a = NewAttempt {
        command_id: "pay-2",
        method: PaymentMethod::Card,
        card_last4: "4242",
        card_brand: CardBrand::Visa,
        gateway_name: "simulated",
        max_attempts: 3,
    };
    let p = new_attempt(&b, &a, 2, now());
    assert_eq!(p.id, payment_id_for_attempt(&b.id, 2));
    assert_ne!(p.id, payment_id_for_attempt(&b.id, 1));
    assert_eq!(
        (p.status, p.amount, p.attempt_count),
        (PaymentStatus::Pending, b.final_price, 0)
    );
    assert_eq!(p.card_brand, Some(CardBrand::Visa));
}

#[test]
fn an_approval_completes_and_a_decline_fails_the_payment() {
    let p = payment(&booking(ObjectId::new()));
    let ChargeStep::Done(ok) =
        decide_charge_answer(&p, &answer(CardOutcome::Approved), Some(1000), now()).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (ok.status, ok.attempt_count, ok.processed_at),
        (PaymentStatus::Completed, 1, Some(now()))
    );
    let ChargeStep::Done(no) = decide_charge_answer(
        &p,
        &answer(CardOutcome::Declined {
            code: "insufficient_funds",
        }),
        Some(1000),
        now(),
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!(
        (no.status, no.failure_code.as_deref()),
        (PaymentStatus::Failed, Some("insufficient_funds"))
    );
    assert_eq!(
        no.failure_reason.as_deref(),
        Some("the card has insufficient funds")
    );
    assert!(
        decide_charge_answer(&ok, &answer(CardOutcome::Approved), None, now()).is_err(),
        "completed once"
    );
}

#[test]
fn a_processing_error_is_retried_after_the_back_off_until_the_attempts_run_out() {
    let mut p = payment(&booking(ObjectId::new()));
    let err = answer(CardOutcome::Transient {
        code: "processing_error",
    });
    let ChargeStep::Retry {
        payment: r,
        delay_ms,
    } = decide_charge_answer(&p, &err, Some(1500), now()).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (r.status, r.attempt_count, delay_ms),
        (PaymentStatus::Pending, 1, 1500)
    );
    assert_eq!(r.next_retry_at, Some(at(1500)));
    p.attempt_count = 2;
    let ChargeStep::Done(last) = decide_charge_answer(&p, &err, Some(1500), now()).unwrap() else {
        panic!()
    };
    assert_eq!(
        (last.status, last.attempt_count, last.next_retry_at),
        (PaymentStatus::Failed, 3, None)
    );
    p.attempt_count = 0;
    assert!(
        matches!(decide_charge_answer(&p, &err, None, now()).unwrap(), ChargeStep::Done(d) if d.status == PaymentStatus::Failed)
    );
    let gone = card_gone(&p, now()).unwrap();
    assert_eq!(
        (gone.status, gone.failure_code.as_deref()),
        (PaymentStatus::Failed, Some("card_token_expired"))
    );
}

#[test]
fn a_failed_attempt_leaves_the_booking_payable_until_the_last_allowed_one() {
    let b = booking(ObjectId::new());
    let mut p = payment(&b);
    p.status = PaymentStatus::Failed;
    p.failure_code = Some("card_declined".into());
    let FinishDecision::Failed {
        ends,
        payable,
        attempts_left,
        refusal,
    } = decide_finish(&b, &p, 1, 3, now())
    else {
        panic!()
    };
    assert_eq!((ends, payable, attempts_left), (None, true, 2));
    assert_eq!(refusal.to_string(), "the card was declined; the booking stays payable with another card until it expires (1 of 3 failed attempts)");
    assert_eq!(refusal.code(), "card_declined");
    let FinishDecision::Failed {
        ends,
        payable,
        refusal,
        ..
    } = decide_finish(&b, &p, 3, 3, now())
    else {
        panic!()
    };
    assert_eq!((ends, payable), (Some(CancelledBy::PaymentFailed), false));
    assert_eq!(
        refusal.to_string(),
        "the card was declined; the booking was cancelled and its seats released"
    );
    let FinishDecision::Failed { ends, .. } = decide_finish(&b, &p, 1, 3, at(1_800_000)) else {
        panic!()
    };
    assert_eq!(ends, Some(CancelledBy::Expired));
    let mut paid = b.clone();
    paid.status = BookingStatus::Confirmed;
    let FinishDecision::Failed { ends, refusal, .. } = decide_finish(&paid, &p, 3, 3, now()) else {
        panic!()
    };
    assert_eq!(ends, None);
    assert_eq!(
        refusal.to_string(),
        "the card was declined; the booking was paid by another attempt"
    );
}

#[test]
fn a_completed_attempt_confirms_the_booking_unless_it_was_cancelled() {
    let mut b = booking(ObjectId::new());
    let mut p = payment(&b);
    assert_eq!(
        decide_finish(&b, &p, 1, 3, now()),
        FinishDecision::StillPending
    );
    p.status = PaymentStatus::Completed;
    assert_eq!(
        decide_finish(&b, &p, 1, 3, now()),
        FinishDecision::Paid { confirm: true }
    );
    b.status = BookingStatus::Cancelled;
    assert_eq!(
        decide_finish(&b, &p, 1, 3, now()),
        FinishDecision::Paid { confirm: false }
    );
}
