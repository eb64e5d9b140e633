//! The payments worker: charges a pending booking once, with retries of transient
//! failures, then confirms it (seats sold). A failed attempt leaves the booking payable
//! with another card until it expires, is cancelled, or has failed
//! `TICKETING_PAYMENT_MAX_FAILED_ATTEMPTS` times; only then are its seats released.
//!
//! The charge-once guard is a chain of unique-key inserts: the n-th attempt at paying a
//! booking is a payment whose `_id` derives from (booking, n), and attempt n+1 is made
//! only when attempt n has failed. However many pay requests race, one inserts attempt
//! n and goes to the gateway; the others find it and answer from it (a completed one
//! stops the chain, so a booking is charged at most once). The gateway call itself is
//! idempotent by key (`<paymentId>:<attempt>`), so a redelivery after a crash charges
//! nothing twice.
//!
//! The card number waits in the `card-vault` bucket only for this handler: it is purged
//! whatever the answer (paid, declined, given up, or refused before any charge); only a
//! transient error, which asks for a redelivery that needs the card again, keeps it.

pub(crate) mod gateway;
pub(crate) mod refunds;

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use bson::doc;
use domain::entities::card::parse_card_number;
use domain::entities::payment::{Payment, PaymentStatus};
use domain::entities::Booking;
use domain::events::{DomainEvent, PaymentAttempt, PaymentFailed};
pub(crate) use domain::payments::decide::payment_id_for_attempt;
use domain::payments::decide::{
    self, ChargeStep, FinishDecision, NewAttempt, PayCommand, PayDecision,
};
use domain::user::User;
use domain::{ObjectId, Refusal};
use serde_json::{json, Value};
use streams::codes::{ErrorCode, Reply};
use streams::commands::{CommandEnvelope, PayBooking};
use tracing::{info, warn};

use crate::app::context::{Ctx, HandlerError};
use crate::bookings;
use crate::store::leases::with_lease;
use crate::store::repo::Repo;
use crate::store::{api_json, to_doc};

/// The lease that serializes "start a payment attempt" with "cancel or expire an unpaid
/// booking" (`<PAY_LEASE>.<bookingId>`), so no attempt starts on a booking being
/// cancelled and no booking is cancelled under an attempt just started.
pub(crate) const PAY_LEASE: &str = "booking_payment";

/// Most attempts read when walking a booking's chain (a safety bound only).
const MAX_CHAIN: u32 = 100;

/// The payment of the first attempt at paying a booking.
pub(crate) fn payment_id_for(booking: &ObjectId) -> ObjectId {
    payment_id_for_attempt(booking, 1)
}

/// A booking's payment attempts in order, read by `_id` until the first missing one.
pub(crate) async fn attempts(ctx: &Ctx, booking: &ObjectId) -> Result<Vec<Payment>, HandlerError> {
    let payments = Repo::<Payment>::new(&ctx.store);
    let mut out = Vec::new();
    for n in 1..=MAX_CHAIN {
        match payments.get(payment_id_for_attempt(booking, n)).await? {
            Some(p) => out.push(p),
            None => break,
        }
    }
    Ok(out)
}

/// The latest attempt at paying a booking, if any.
pub(crate) async fn latest(ctx: &Ctx, booking: &ObjectId) -> Result<Option<Payment>, HandlerError> {
    Ok(attempts(ctx, booking).await?.pop())
}

/// `POST /v1/bookings/{id}/payments`. The card leaves the vault whatever the answer.
pub(crate) async fn pay(
    ctx: &Ctx,
    env: &CommandEnvelope,
    c: &PayBooking,
) -> Result<Reply, HandlerError> {
    let out = pay_once(ctx, env, c).await;
    // A transient error asks for a redelivery, which needs the card again; everything
    // else (an answer, or a permanent error that dead-letters the command) is final.
    if !matches!(out, Err(HandlerError::Transient(_))) {
        forget_card(ctx, &c.card_token).await;
    }
    out
}

/// Purges a card number from the vault (no history is kept: the bucket keeps one
/// revision per key, and a purge drops it).
pub(crate) async fn forget_card(ctx: &Ctx, token: &str) {
    if let Err(e) = ctx.vault.purge(token).await {
        warn!(error = %e, "card vault entry not purged; it expires by itself");
    }
}

/// Whether the payer's e-mail is verified, when that is required of them (`None` when it
/// is not: the setting is off, or the payer is an admin).
async fn payer_verified(ctx: &Ctx, env: &CommandEnvelope) -> Result<Option<bool>, HandlerError> {
    let Some(issuer) = env.issuer.as_ref() else {
        return Ok(None);
    };
    if !ctx.cfg.require_verified_to_pay || issuer.role.is_admin() {
        return Ok(None);
    }
    let user = Repo::<User>::new(&ctx.store).get(issuer.user_id).await?;
    Ok(Some(user.is_some_and(|u| u.is_verified)))
}

async fn pay_once(ctx: &Ctx, env: &CommandEnvelope, c: &PayBooking) -> Result<Reply, HandlerError> {
    let bookings = Repo::<Booking>::new(&ctx.store);
    let booking = match env.issuer {
        Some(_) => bookings.get(c.booking_id).await?,
        None => None,
    };
    let verified = match &booking {
        Some(_) => payer_verified(ctx, env).await?,
        None => None,
    };
    let cmd = PayCommand {
        command_id: &env.id,
        currency: c.currency,
        max_failed: ctx.cfg.payment_max_failed_attempts,
    };
    // A racing attempt that fails lets the next one in: a few turns at most.
    for _ in 0..4 {
        let chain = match &booking {
            Some(_) => attempts(ctx, &c.booking_id).await?,
            None => Vec::new(),
        };
        let decision = decide::decide_pay(
            env.actor(),
            booking.as_ref(),
            verified,
            &chain,
            cmd,
            ctx.now_stored(),
        );
        let (booking, n) = match (decision, &booking) {
            (PayDecision::Refuse(r), _) => return Ok(Reply::refused(&r)),
            (PayDecision::Resume(p, n), _) => return charge_and_finish(ctx, env, c, p, n).await,
            (PayDecision::Start(n), Some(b)) => (b, n),
            (PayDecision::Start(_), None) => {
                return Err(HandlerError::permanent("a payment without a booking"))
            }
        };
        match start_attempt(ctx, env, c, cmd, booking, n).await? {
            Err(r) => return Ok(Reply::refused(&r)),
            Ok(Some(p)) => {
                emit(ctx, env, &p, n, Step::Initiated).await?;
                return charge_and_finish(ctx, env, c, p, n).await;
            }
            // Another request took attempt n: look at the chain again.
            Ok(None) => continue,
        }
    }
    Ok(Reply::refused(&Refusal::PaymentInProgress))
}

/// Inserts attempt `n`, checked again under the lease a cancellation or an expiry takes.
/// `Ok(None)`: another request inserted attempt `n` first.
async fn start_attempt(
    ctx: &Ctx,
    env: &CommandEnvelope,
    c: &PayBooking,
    cmd: PayCommand<'_>,
    booking: &Booking,
    n: u32,
) -> Result<Result<Option<Payment>, Refusal>, HandlerError> {
    with_lease(ctx, PAY_LEASE, c.booking_id, || async {
        let now = ctx.now_stored();
        let now_booking = Repo::<Booking>::new(&ctx.store)
            .get(c.booking_id)
            .await?
            .unwrap_or_else(|| booking.clone());
        if let Err(r) = decide::recheck_attempt(&now_booking, cmd, n, now) {
            return Ok(Err(r));
        }
        let attempt = NewAttempt {
            command_id: &env.id,
            method: c.method,
            card_last4: &c.card_last4,
            card_brand: c.card_brand,
            gateway_name: ctx.gateway.name(),
            max_attempts: ctx.cfg.payment_max_attempts as i32,
        };
        let p = decide::new_attempt(booking, &attempt, n, now);
        let inserted = Repo::<Payment>::new(&ctx.store).insert_once(&p).await?;
        Ok(Ok(inserted.then_some(p)))
    })
    .await
}

async fn charge_and_finish(
    ctx: &Ctx,
    env: &CommandEnvelope,
    c: &PayBooking,
    payment: Payment,
    n: u32,
) -> Result<Reply, HandlerError> {
    let payment = charge(ctx, c, payment).await?;
    // The booking as it is now: another attempt's failure may not have touched it, but
    // a redelivery comes after this attempt's own writes.
    let Some(booking) = Repo::<Booking>::new(&ctx.store).get(c.booking_id).await? else {
        return Err(HandlerError::permanent("a paid booking is missing"));
    };
    finish(ctx, env, &booking, &payment, n).await
}

/// Writes the payment as the charge left it, by `_id`.
async fn write_payment(ctx: &Ctx, p: &Payment) -> Result<(), HandlerError> {
    let set = doc! {
        "status": p.status.as_str(), "attemptCount": p.attempt_count,
        "gatewayResponse": p.gateway_response.clone(), "transactionId": p.transaction_id.as_deref(),
        "failureCode": p.failure_code.as_deref(), "failureReason": p.failure_reason.as_deref(),
        "processedAt": p.processed_at, "nextRetryAt": p.next_retry_at, "updatedAt": p.updated_at,
    };
    Repo::<Payment>::new(&ctx.store).patch(p.id, set).await?;
    Ok(())
}

/// Calls the gateway until it approves, declines, or the attempts run out; every attempt
/// is recorded on the payment before the next.
async fn charge(ctx: &Ctx, c: &PayBooking, payment: Payment) -> Result<Payment, HandlerError> {
    if payment.status != PaymentStatus::Pending {
        return Ok(payment);
    }
    let max = payment.max_attempts.max(1) as u32;
    let mut delays = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(ctx.cfg.payment_retry_base_ms))
        .with_max_delay(Duration::from_millis(ctx.cfg.payment_retry_cap_ms))
        .with_jitter()
        .with_max_times(max as usize)
        .build();
    let card = match ctx.vault.get(&c.card_token).await {
        Ok(Some(b)) => parse_card_number(&String::from_utf8_lossy(&b)).ok(),
        Ok(None) => None,
        Err(e) => return Err(HandlerError::Transient(format!("card vault: {e}"))),
    };
    let Some(card) = card else {
        let failed =
            decide::card_gone(&payment, ctx.now_stored()).map_err(HandlerError::permanent)?;
        write_payment(ctx, &failed).await?;
        return Ok(failed);
    };
    let mut payment = payment;
    loop {
        let attempt = payment.attempt_count as u32 + 1;
        let key = format!("{}:{attempt}", payment.id.to_hex());
        let answer = ctx
            .gateway
            .charge(&key, &card, payment.amount, attempt)
            .await?;
        let next_delay = match answer.outcome {
            domain::entities::CardOutcome::Transient { .. } => delays.next(),
            _ => None,
        };
        let step = decide::decide_charge_answer(
            &payment,
            &answer,
            next_delay.map(|d| d.as_millis() as u64),
            ctx.now_stored(),
        )
        .map_err(HandlerError::permanent)?;
        match step {
            ChargeStep::Done(p) => {
                write_payment(ctx, &p).await?;
                return Ok(p);
            }
            ChargeStep::Retry {
                payment: p,
                delay_ms,
            } => {
                write_payment(ctx, &p).await?;
                info!(payment = %p.id, attempt, delay_ms, "transient gateway failure; retrying");
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                payment = p;
            }
        }
    }
}

/// The booking side of a finished attempt `n`: confirm; or, after a failure, leave the
/// booking payable with another card, or cancel it and release its seats when this was
/// the last failed attempt allowed. Idempotent.
async fn finish(
    ctx: &Ctx,
    env: &CommandEnvelope,
    booking: &Booking,
    payment: &Payment,
    n: u32,
) -> Result<Reply, HandlerError> {
    let max_failed = ctx.cfg.payment_max_failed_attempts.max(1);
    let decision = decide::decide_finish(booking, payment, n, max_failed, ctx.now_stored());
    let payment_json = api_json(&to_doc(payment)?);
    match decision {
        FinishDecision::StillPending => {
            Err(HandlerError::Transient("payment still pending".into()))
        }
        FinishDecision::Failed {
            ends,
            payable,
            attempts_left,
            refusal,
        } => {
            let reason = payment
                .failure_code
                .clone()
                .unwrap_or_else(|| "card_declined".into());
            emit(ctx, env, payment, n, Step::Failed { reason, max_failed }).await?;
            let booking_json = match ends {
                Some(by) => {
                    with_lease(ctx, PAY_LEASE, booking.id, || {
                        bookings::cancel_unpaid(ctx, env, booking, by, Some(payment.id))
                    })
                    .await?
                }
                None => api_json(&to_doc(booking)?),
            };
            Ok(Reply::error_with(
                ErrorCode::of(&refusal),
                refusal.to_string(),
                json!({
                    "payment": payment_json, "booking": booking_json,
                    "attemptCount": payment.attempt_count,
                    "failedAttempts": n, "attemptsLeft": attempts_left,
                    "bookingPayable": payable,
                }),
            ))
        }
        // completed, or refunded since (a redelivery long after): the booking's answer.
        FinishDecision::Paid { confirm } => {
            let mut confirmed = if confirm {
                bookings::confirm(ctx, env, booking, payment.id).await?
            } else {
                api_json(&to_doc(booking)?)
            };
            emit(ctx, env, payment, n, Step::Completed).await?;
            let tickets = json!({
                "status": "issuing", "expected": booking.seat_ids.len(),
                "location": format!("/v1/bookings/{}/tickets", booking.id.to_hex()),
            });
            confirmed["ticketsStatus"] = json!("issuing");
            Ok(Reply::ok(
                201,
                json!({"payment": payment_json, "booking": confirmed, "tickets": tickets}),
            ))
        }
    }
}

/// Which step of attempt `n` a payment event records.
enum Step {
    Initiated,
    Completed,
    Failed { reason: String, max_failed: u32 },
}

async fn emit(
    ctx: &Ctx,
    env: &CommandEnvelope,
    payment: &Payment,
    n: u32,
    step: Step,
) -> Result<(), HandlerError> {
    let attempt = PaymentAttempt {
        payment_id: payment.id,
        event_id: payment.event_id,
        booking_id: payment.booking_id,
        attempt_number: n,
        amount_minor: Some(payment.amount.minor()),
        currency: Some(payment.amount.currency()),
    };
    let pending = || Some(json!({"status": PaymentStatus::Pending.as_str()}));
    let (event, before) = match step {
        Step::Initiated => (DomainEvent::PaymentInitiated(attempt), None),
        Step::Completed => (DomainEvent::PaymentCompleted(attempt), pending()),
        Step::Failed { reason, max_failed } => (
            DomainEvent::PaymentFailed(PaymentFailed {
                payment_id: attempt.payment_id,
                event_id: attempt.event_id,
                booking_id: attempt.booking_id,
                failure_reason: reason,
                attempt_number: n,
                failed_attempts: n,
                max_failed_attempts: max_failed,
                amount_minor: attempt.amount_minor,
                currency: attempt.currency,
            }),
            pending(),
        ),
    };
    let after = json!({
        "status": payment.status.as_str(), "attemptCount": payment.attempt_count,
        "transactionId": payment.transaction_id.as_deref().map_or(Value::Null, Value::from),
    });
    ctx.emit(env, event, before, Some(after)).await
}
