//! The decisions of the payments worker (`workers/src/payments/mod.rs`): whether a pay
//! command may start attempt `n` of the booking's chain, what each gateway answer does to
//! the payment (approved, declined, a processing error retried with back-off), and what a
//! finished attempt does to the booking. Refunds are in [`super::refund_decide`].

use bson::oid::ObjectId;
use bson::{DateTime, Document};

use super::card::{CardBrand, CardOutcome};
use super::payment::{Payment, PaymentMethod, PaymentStatus};
use crate::bookings::booking::{Booking, BookingStatus};
use crate::bookings::decide::CancelledBy;
use crate::ids::derive_object_id;
use crate::shared::actor::Actor;
use crate::shared::money::{Currency, Money};
use crate::{DomainError, Refusal};

/// The payment of the `n`-th attempt (from 1) at paying a booking. The first keeps the
/// id a booking's one payment always had.
pub fn payment_id_for_attempt(booking: &ObjectId, n: u32) -> ObjectId {
    let key = if n <= 1 {
        booking.to_hex()
    } else {
        format!("{}:{n}", booking.to_hex())
    };
    derive_object_id(
        "payment",
        &key,
        booking.timestamp().timestamp_millis() / 1000,
    )
}

/// The text stored as `failureReason` (and answered) for a failure code.
pub fn message_for(code: &str) -> &'static str {
    match code {
        "insufficient_funds" => "the card has insufficient funds",
        "processing_error" => "the payment gateway could not process the card; try again later",
        "card_token_expired" => "the card details expired before the payment ran; send them again",
        _ => "the card was declined",
    }
}

/// The pay command as the decisions need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayCommand<'a> {
    pub command_id: &'a str,
    /// The currency the payer expects, if they said.
    pub currency: Option<Currency>,
    /// `TICKETING_PAYMENT_MAX_FAILED_ATTEMPTS` (at least 1 is used).
    pub max_failed: u32,
}

#[derive(Debug, Clone, PartialEq)]
// NOTE: a decision lives for one command and is matched at once; boxing its entity
// would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum PayDecision {
    /// This command's own attempt `n` exists (a redelivery): charge and finish it.
    Resume(Payment, u32),
    /// Insert attempt `n` (after [`recheck_attempt`] under the pay lease) and charge it.
    Start(u32),
    Refuse(Refusal),
}

/// Applied by `workers/src/payments/mod.rs::pay_once` up to the insert of a new attempt.
/// `verified`: the payer's `isVerified` when payers must be verified and are not admins,
/// else `None`. `chain`: the booking's attempts in order.
pub fn decide_pay(
    issuer: Option<Actor>,
    booking: Option<&Booking>,
    verified: Option<bool>,
    chain: &[Payment],
    cmd: PayCommand<'_>,
    now: DateTime,
) -> PayDecision {
    let Some(issuer) = issuer else {
        return PayDecision::Refuse(Refusal::Unauthorized("sign in to pay"));
    };
    let Some(booking) = booking.filter(|b| issuer.owns_or_admin(b.user_id)) else {
        return PayDecision::Refuse(Refusal::BookingNotFound);
    };
    if verified == Some(false) {
        return PayDecision::Refuse(Refusal::EmailNotVerified);
    }
    if let Some((i, p)) = chain
        .iter()
        .enumerate()
        .find(|(_, p)| p.command_id == cmd.command_id)
    {
        return PayDecision::Resume(p.clone(), i as u32 + 1);
    }
    match chain.last().map(|p| p.status) {
        Some(PaymentStatus::Pending) => return PayDecision::Refuse(Refusal::PaymentInProgress),
        Some(PaymentStatus::Failed) | None => {}
        Some(_) => return PayDecision::Refuse(Refusal::AlreadyPaid),
    }
    let n = chain.len() as u32 + 1;
    match recheck_attempt(booking, cmd, n, now) {
        Err(r) => PayDecision::Refuse(r),
        Ok(()) => PayDecision::Start(n),
    }
}

/// Why the booking cannot take attempt `n`, if it cannot (`refuse_new_attempt`); checked
/// again on the booking read under the pay lease.
pub fn recheck_attempt(
    booking: &Booking,
    cmd: PayCommand<'_>,
    n: u32,
    now: DateTime,
) -> Result<(), Refusal> {
    match booking.status {
        BookingStatus::Pending => {}
        BookingStatus::Confirmed | BookingStatus::Completed => return Err(Refusal::AlreadyPaid),
        BookingStatus::Cancelled => {
            return Err(Refusal::BookingNotPayable(
                match booking.cancellation_reason.as_deref() {
                    Some("payment_failed") => "the booking cannot be paid: its payment failed too many times and it was cancelled",
                    Some("expired") => "the booking cannot be paid: it expired unpaid",
                    _ => "the booking cannot be paid: it was cancelled",
                },
            ))
        }
    }
    if n > cmd.max_failed.max(1) {
        // Its last failure cancels it; that has not been written yet.
        return Err(Refusal::BookingNotPayable(
            "the booking cannot be paid: its payment failed too many times",
        ));
    }
    if booking
        .expires_at
        .is_some_and(|at| at.timestamp_millis() <= now.timestamp_millis())
    {
        return Err(Refusal::BookingExpired);
    }
    match cmd.currency {
        Some(cur) if cur != booking.final_price.currency() => Err(Refusal::Invalid(format!(
            "the booking is priced in {}",
            booking.final_price.currency()
        ))),
        _ => Ok(()),
    }
}

/// What the worker adds to attempt `n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttempt<'a> {
    pub command_id: &'a str,
    pub method: PaymentMethod,
    pub card_last4: &'a str,
    pub card_brand: CardBrand,
    pub gateway_name: &'a str,
    /// `TICKETING_PAYMENT_MAX_ATTEMPTS`: gateway calls per attempt.
    pub max_attempts: i32,
}

/// Attempt `n` at paying `booking`, `pending` (`new_payment`). `payer` is the booking's
/// owner.
pub fn new_attempt(booking: &Booking, a: &NewAttempt<'_>, n: u32, now: DateTime) -> Payment {
    let id = payment_id_for_attempt(&booking.id, n);
    let amount = booking.final_price;
    Payment {
        id,
        booking_id: booking.id,
        user_id: booking.user_id,
        event_id: booking.event_id,
        amount,
        currency: amount.currency(),
        payment_method: a.method,
        // Unique index: a placeholder until the gateway gives its id.
        transaction_id: Some(format!("pending_{}", id.to_hex())),
        status: PaymentStatus::Pending,
        failure_reason: None,
        failure_code: None,
        gateway_response: None,
        gateway_name: a.gateway_name.to_string(),
        card_last4: Some(a.card_last4.to_string()),
        card_brand: Some(a.card_brand),
        attempt_count: 0,
        max_attempts: a.max_attempts,
        next_retry_at: None,
        refunded_amount: Money::zero(amount.currency()),
        refund_transaction_id: None,
        command_id: a.command_id.to_string(),
        created_at: now,
        processed_at: None,
        refunded_at: None,
        updated_at: now,
    }
}

fn fail(p: &mut Payment, code: &str, now: DateTime) -> Result<(), DomainError> {
    move_to(p, PaymentStatus::Failed)?;
    p.failure_code = Some(code.to_string());
    p.failure_reason = Some(message_for(code).to_string());
    p.processed_at = Some(now);
    p.next_retry_at = None;
    p.updated_at = now;
    Ok(())
}

fn move_to(p: &mut Payment, next: PaymentStatus) -> Result<(), DomainError> {
    if !p.status.can_become(next) {
        return Err(DomainError::invalid(
            "status",
            format!("a {} payment cannot become {next}", p.status),
        ));
    }
    p.status = next;
    Ok(())
}

/// The card left the vault before the charge: the attempt fails `card_token_expired`.
pub fn card_gone(payment: &Payment, now: DateTime) -> Result<Payment, DomainError> {
    let mut p = payment.clone();
    fail(&mut p, "card_token_expired", now)?;
    Ok(p)
}

/// A gateway answer, as the charge loop has it.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayAnswer {
    pub outcome: CardOutcome,
    pub transaction_id: String,
    pub response: Document,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ChargeStep {
    /// Approved or declined, or out of retries: write it; the attempt is finished.
    Done(Payment),
    /// A processing error with attempts left: write it (still `pending`, `nextRetryAt`
    /// set), wait `delay_ms`, call the gateway again.
    Retry { payment: Payment, delay_ms: u64 },
}

/// Decides one turn of `workers/src/payments/mod.rs::charge`. `next_delay_ms` is the next
/// delay of the attempt's back-off (the worker's jittered `backon` iterator, taken on every
/// transient answer), `None` when it has run out.
pub fn decide_charge_answer(
    payment: &Payment,
    answer: &GatewayAnswer,
    next_delay_ms: Option<u64>,
    now: DateTime,
) -> Result<ChargeStep, DomainError> {
    let mut p = payment.clone();
    let attempt = p.attempt_count + 1;
    let max = p.max_attempts.max(1);
    p.attempt_count = attempt;
    p.gateway_response = Some(answer.response.clone());
    p.transaction_id = Some(answer.transaction_id.clone());
    p.updated_at = now;
    match answer.outcome {
        CardOutcome::Approved => {
            move_to(&mut p, PaymentStatus::Completed)?;
            p.processed_at = Some(now);
            p.next_retry_at = None;
            p.failure_code = None;
            p.failure_reason = None;
            Ok(ChargeStep::Done(p))
        }
        CardOutcome::Declined { code } => {
            fail(&mut p, code, now)?;
            Ok(ChargeStep::Done(p))
        }
        CardOutcome::Transient { code } => match next_delay_ms.filter(|_| attempt < max) {
            Some(delay_ms) => {
                p.failure_code = Some(code.to_string());
                p.failure_reason = Some(message_for(code).to_string());
                p.next_retry_at = Some(DateTime::from_millis(
                    now.timestamp_millis() + delay_ms as i64,
                ));
                Ok(ChargeStep::Retry {
                    payment: p,
                    delay_ms,
                })
            }
            None => {
                fail(&mut p, code, now)?;
                Ok(ChargeStep::Done(p))
            }
        },
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum FinishDecision {
    /// The payment is still pending: retry the command later.
    StillPending,
    /// Paid: confirm the booking (unless it was cancelled meanwhile, then only answer).
    Paid { confirm: bool },
    /// The attempt failed. `ends`: the booking is cancelled (its last allowed failure, or
    /// it expired while the attempt ran); the answer is `refusal`.
    Failed {
        ends: Option<CancelledBy>,
        payable: bool,
        attempts_left: u32,
        refusal: Refusal,
    },
}

/// Applied by `workers/src/payments/mod.rs::finish`: the booking side of finished attempt
/// `n` (`booking` as read after the charge).
pub fn decide_finish(
    booking: &Booking,
    payment: &Payment,
    n: u32,
    max_failed: u32,
    now: DateTime,
) -> FinishDecision {
    let max_failed = max_failed.max(1);
    match payment.status {
        PaymentStatus::Pending => FinishDecision::StillPending,
        PaymentStatus::Failed => {
            let code = payment.failure_code.as_deref().unwrap_or("card_declined");
            let expired = booking
                .expires_at
                .is_some_and(|at| at.timestamp_millis() <= now.timestamp_millis());
            let pending = booking.status == BookingStatus::Pending;
            let ends = match (n >= max_failed, expired) {
                _ if !pending => None,
                (true, _) => Some(CancelledBy::PaymentFailed),
                (false, true) => Some(CancelledBy::Expired),
                (false, false) => None,
            };
            let payable = ends.is_none() && pending;
            let why = message_for(code);
            let message = if payable {
                format!("{why}; the booking stays payable with another card until it expires ({n} of {max_failed} failed attempts)")
            } else if ends.is_some() || booking.status == BookingStatus::Cancelled {
                format!("{why}; the booking was cancelled and its seats released")
            } else {
                format!("{why}; the booking was paid by another attempt")
            };
            FinishDecision::Failed {
                ends,
                payable,
                attempts_left: max_failed.saturating_sub(n),
                refusal: Refusal::Declined {
                    code: code.to_string(),
                    message,
                },
            }
        }
        _ => FinishDecision::Paid {
            confirm: booking.status != BookingStatus::Cancelled,
        },
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
