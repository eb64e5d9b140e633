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

pub mod gateway;

use domain::payments::decide::message_for;
pub use domain::payments::decide::payment_id_for_attempt;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use bson::{doc, Document};
use domain::entities::card::{parse_card_number, CardBrand, CardOutcome};
use domain::entities::payment::{Payment, PaymentMethod, PaymentStatus};
use domain::events::{DomainEvent, PaymentAttempt, PaymentFailed};
use domain::{Currency, DateTime, Money, ObjectId};
use serde_json::json;
use streams::codes::{ErrorCode, Reply};
use streams::commands::{CommandEnvelope, PayBooking};
use tracing::{info, warn};

use crate::app::context::{Ctx, HandlerError};
use crate::bookings::{self, CancelledBy};
use crate::store::leases::with_lease;
use crate::store::{api_json, is_duplicate_key, names, to_doc};

/// The lease that serializes "start a payment attempt" with "cancel or expire an unpaid
/// booking" (`<PAY_LEASE>.<bookingId>`), so no attempt starts on a booking being
/// cancelled and no booking is cancelled under an attempt just started.
pub const PAY_LEASE: &str = "booking_payment";

/// Most attempts read when walking a booking's chain (a safety bound only).
const MAX_CHAIN: u32 = 100;

/// The payment of the first attempt at paying a booking.
pub fn payment_id_for(booking: &ObjectId) -> ObjectId {
    payment_id_for_attempt(booking, 1)
}

/// A booking's payment attempts in order, read by `_id` until the first missing one.
pub async fn attempts(ctx: &Ctx, booking: &ObjectId) -> Result<Vec<Document>, HandlerError> {
    let payments = ctx.store.col(names::PAYMENTS);
    let mut out = Vec::new();
    for n in 1..=MAX_CHAIN {
        match payments
            .find_one(doc! {"_id": payment_id_for_attempt(booking, n)})
            .await?
        {
            Some(p) => out.push(p),
            None => break,
        }
    }
    Ok(out)
}

/// The latest attempt at paying a booking, if any.
pub async fn latest(ctx: &Ctx, booking: &ObjectId) -> Result<Option<Document>, HandlerError> {
    Ok(attempts(ctx, booking).await?.pop())
}

fn declined_code(code: &str) -> ErrorCode {
    match code {
        "insufficient_funds" => ErrorCode::InsufficientFunds,
        "processing_error" => ErrorCode::ProcessingError,
        "card_token_expired" => ErrorCode::CardTokenExpired,
        _ => ErrorCode::CardDeclined,
    }
}

/// `POST /v1/bookings/{id}/payments`. The card leaves the vault whatever the answer.
pub async fn pay(ctx: &Ctx, env: &CommandEnvelope, c: &PayBooking) -> Result<Reply, HandlerError> {
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
pub async fn forget_card(ctx: &Ctx, token: &str) {
    if let Err(e) = ctx.vault.purge(token).await {
        warn!(error = %e, "card vault entry not purged; it expires by itself");
    }
}

/// What the chain of attempts says about a new pay command.
enum Turn {
    /// This command's own attempt (a redelivery, or it just inserted it).
    Ours(Document, u32),
    /// Another command's attempt decides: answer with this.
    Answer(Reply),
    /// The booking may take attempt `n`.
    Next(u32),
}

fn answer_from(p: &Document) -> Option<Reply> {
    match p.get_str("status").unwrap_or_default() {
        "pending" => Some(Reply::error(
            ErrorCode::PaymentInProgress,
            "a payment for this booking is in progress",
        )),
        "failed" => None,
        _ => Some(Reply::error(ErrorCode::AlreadyPaid, "the booking is paid")),
    }
}

fn turn(chain: &[Document], env: &CommandEnvelope) -> Turn {
    if let Some((i, p)) = chain
        .iter()
        .enumerate()
        .find(|(_, p)| p.get_str("commandId").ok() == Some(env.id.as_str()))
    {
        return Turn::Ours(p.clone(), i as u32 + 1);
    }
    match chain.last().and_then(answer_from) {
        Some(r) => Turn::Answer(r),
        None => Turn::Next(chain.len() as u32 + 1),
    }
}

async fn pay_once(ctx: &Ctx, env: &CommandEnvelope, c: &PayBooking) -> Result<Reply, HandlerError> {
    let Some(issuer) = env.issuer.clone() else {
        return Ok(Reply::error(ErrorCode::Unauthorized, "sign in to pay"));
    };
    let bookings_col = ctx.store.col(names::BOOKINGS);
    let Some(booking) = bookings_col.find_one(doc! {"_id": c.booking_id}).await? else {
        return Ok(Reply::error(ErrorCode::BookingNotFound, "no such booking"));
    };
    let owner = booking.get_object_id("userId").ok();
    if owner != Some(issuer.user_id) && !issuer.role.is_admin() {
        return Ok(Reply::error(ErrorCode::BookingNotFound, "no such booking"));
    }
    if ctx.cfg.require_verified_to_pay && !issuer.role.is_admin() {
        let verified = ctx
            .store
            .col(names::USERS)
            .find_one(doc! {"_id": issuer.user_id})
            .await?
            .and_then(|u| u.get_bool("isVerified").ok())
            .unwrap_or(false);
        if !verified {
            return Ok(Reply::error(
                ErrorCode::EmailNotVerified,
                "verify your e-mail address before paying",
            ));
        }
    }
    let amount: Money = bson::from_bson(booking.get("finalPrice").cloned().unwrap_or_default())
        .map_err(|e| HandlerError::Permanent(e.to_string()))?;
    let max_failed = ctx.cfg.payment_max_failed_attempts.max(1);
    // A racing attempt that fails lets the next one in: a few turns at most.
    for _ in 0..4 {
        let chain = attempts(ctx, &c.booking_id).await?;
        let n = match turn(&chain, env) {
            Turn::Ours(p, n) => {
                return charge_and_finish(ctx, env, c, &booking, p, n, amount).await
            }
            Turn::Answer(r) => return Ok(r),
            Turn::Next(n) => n,
        };
        if let Some(refusal) = refuse_new_attempt(&booking, c, amount, n, max_failed) {
            return Ok(refusal);
        }
        // Checked again under the lease a cancellation or an expiry takes, then inserted.
        let started = with_lease(ctx, PAY_LEASE, c.booking_id, || async {
            let now_booking = bookings_col
                .find_one(doc! {"_id": c.booking_id})
                .await?
                .unwrap_or_else(|| booking.clone());
            if let Some(refusal) = refuse_new_attempt(&now_booking, c, amount, n, max_failed) {
                return Ok(Err(refusal));
            }
            let p = new_payment(
                ctx,
                env,
                c,
                &booking,
                owner.unwrap_or(issuer.user_id),
                amount,
                n,
            )?;
            let d = to_doc(&p)?;
            match ctx.store.col(names::PAYMENTS).insert_one(&d).await {
                Ok(_) => Ok(Ok(Some(d))),
                Err(e) if is_duplicate_key(&e) => Ok(Ok(None)),
                Err(e) => Err(e.into()),
            }
        })
        .await?;
        match started {
            Err(refusal) => return Ok(refusal),
            Ok(Some(d)) => {
                emit(ctx, env, &d, n, Step::Initiated).await?;
                return charge_and_finish(ctx, env, c, &booking, d, n, amount).await;
            }
            // Another request took attempt n: look at the chain again.
            Ok(None) => continue,
        }
    }
    Ok(Reply::error(
        ErrorCode::PaymentInProgress,
        "a payment for this booking is in progress",
    ))
}

/// Why the booking cannot take attempt `n`, if it cannot.
fn refuse_new_attempt(
    booking: &Document,
    c: &PayBooking,
    amount: Money,
    n: u32,
    max_failed: u32,
) -> Option<Reply> {
    let status = booking.get_str("status").unwrap_or_default();
    match status {
        "pending" => {}
        "confirmed" | "completed" => {
            return Some(Reply::error(ErrorCode::AlreadyPaid, "the booking is paid"))
        }
        _ => {
            let why = match booking.get_str("cancellationReason").unwrap_or_default() {
                "payment_failed" => "its payment failed too many times and it was cancelled",
                "expired" => "it expired unpaid",
                _ => "it was cancelled",
            };
            return Some(Reply::error(
                ErrorCode::BookingNotPayable,
                format!("the booking cannot be paid: {why}"),
            ));
        }
    }
    if n > max_failed {
        // Its last failure cancels it; that has not been written yet.
        return Some(Reply::error(
            ErrorCode::BookingNotPayable,
            "the booking cannot be paid: its payment failed too many times",
        ));
    }
    let expired = booking
        .get_datetime("expiresAt")
        .map(|d| d.timestamp_millis() <= DateTime::now().timestamp_millis())
        .unwrap_or(false);
    if expired {
        return Some(Reply::error(
            ErrorCode::BookingExpired,
            "the booking's payment window has closed",
        ));
    }
    if let Some(cur) = &c.currency {
        if !cur.eq_ignore_ascii_case(amount.currency().as_str()) {
            return Some(Reply::error(
                ErrorCode::ValidationFailed,
                format!("the booking is priced in {}", amount.currency()),
            ));
        }
    }
    None
}

fn new_payment(
    ctx: &Ctx,
    env: &CommandEnvelope,
    c: &PayBooking,
    booking: &Document,
    user_id: ObjectId,
    amount: Money,
    n: u32,
) -> Result<Payment, HandlerError> {
    let payment_id = payment_id_for_attempt(&c.booking_id, n);
    let now = DateTime::now();
    Ok(Payment {
        id: payment_id,
        booking_id: c.booking_id,
        user_id,
        event_id: booking.get_object_id("eventId").unwrap_or_default(),
        amount,
        currency: amount.currency(),
        payment_method: PaymentMethod::parse(&c.method).unwrap_or(PaymentMethod::Card),
        // Unique index: a placeholder until the gateway gives its id.
        transaction_id: Some(format!("pending_{}", payment_id.to_hex())),
        status: PaymentStatus::Pending,
        failure_reason: None,
        failure_code: None,
        gateway_response: None,
        gateway_name: ctx.gateway.name().to_string(),
        card_last4: Some(c.card_last4.clone()),
        card_brand: CardBrand::parse(&c.card_brand),
        attempt_count: 0,
        max_attempts: ctx.cfg.payment_max_attempts as i32,
        next_retry_at: None,
        refunded_amount: Money::zero(amount.currency()),
        refund_transaction_id: None,
        command_id: env.id.clone(),
        created_at: now,
        processed_at: None,
        refunded_at: None,
        updated_at: now,
    })
}

async fn charge_and_finish(
    ctx: &Ctx,
    env: &CommandEnvelope,
    c: &PayBooking,
    booking: &Document,
    payment: Document,
    n: u32,
    amount: Money,
) -> Result<Reply, HandlerError> {
    let payment = charge(ctx, c, payment, amount).await?;
    // The booking as it is now: another attempt's failure may not have touched it, but
    // a redelivery comes after this attempt's own writes.
    let booking = ctx
        .store
        .col(names::BOOKINGS)
        .find_one(doc! {"_id": c.booking_id})
        .await?
        .unwrap_or_else(|| booking.clone());
    finish(ctx, env, &booking, &payment, n).await
}

/// Calls the gateway until it approves, declines, or the attempts run out; every attempt
/// is recorded on the payment before the next.
async fn charge(
    ctx: &Ctx,
    c: &PayBooking,
    mut payment: Document,
    amount: Money,
) -> Result<Document, HandlerError> {
    let payments = ctx.store.col(names::PAYMENTS);
    let payment_id = payment
        .get_object_id("_id")
        .map_err(|e| HandlerError::Permanent(e.to_string()))?;
    if payment.get_str("status").unwrap_or_default() != "pending" {
        return Ok(payment);
    }
    let max = payment.get_i32("maxAttempts").unwrap_or(3).max(1) as u32;
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
        let now = DateTime::now();
        let set = doc! {"status": "failed", "failureCode": "card_token_expired", "failureReason": message_for("card_token_expired"), "processedAt": now, "updatedAt": now};
        payments
            .update_one(doc! {"_id": payment_id}, doc! {"$set": set.clone()})
            .await?;
        payment.extend(set);
        return Ok(payment);
    };
    let mut attempt = payment.get_i32("attemptCount").unwrap_or(0) as u32;
    loop {
        attempt += 1;
        let key = format!("{}:{attempt}", payment_id.to_hex());
        let answer = ctx.gateway.charge(&key, &card, amount, attempt).await?;
        let now = DateTime::now();
        let mut set = doc! {
            "attemptCount": attempt as i32, "gatewayResponse": answer.response.clone(), "updatedAt": now,
            "transactionId": &answer.transaction_id,
        };
        let done = match answer.outcome {
            CardOutcome::Approved => {
                set.insert("status", "completed");
                set.insert("processedAt", now);
                set.insert("nextRetryAt", bson::Bson::Null);
                set.insert("failureCode", bson::Bson::Null);
                set.insert("failureReason", bson::Bson::Null);
                true
            }
            CardOutcome::Declined { code } => {
                set.insert("status", "failed");
                set.insert("failureCode", code);
                set.insert("failureReason", message_for(code));
                set.insert("processedAt", now);
                set.insert("nextRetryAt", bson::Bson::Null);
                true
            }
            CardOutcome::Transient { code } => {
                set.insert("failureCode", code);
                set.insert("failureReason", message_for(code));
                match delays.next().filter(|_| attempt < max) {
                    Some(delay) => {
                        let at = DateTime::from_millis(
                            now.timestamp_millis() + delay.as_millis() as i64,
                        );
                        set.insert("nextRetryAt", at);
                        payments
                            .update_one(doc! {"_id": payment_id}, doc! {"$set": set.clone()})
                            .await?;
                        payment.extend(set);
                        info!(payment = %payment_id, attempt, delay_ms = delay.as_millis() as u64, "transient gateway failure; retrying");
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    None => {
                        set.insert("status", "failed");
                        set.insert("processedAt", now);
                        set.insert("nextRetryAt", bson::Bson::Null);
                        true
                    }
                }
            }
        };
        if done {
            payments
                .update_one(doc! {"_id": payment_id}, doc! {"$set": set.clone()})
                .await?;
            payment.extend(set);
            return Ok(payment);
        }
    }
}

/// The booking side of a finished attempt `n`: confirm; or, after a failure, leave the
/// booking payable with another card, or cancel it and release its seats when this was
/// the last failed attempt allowed. Idempotent.
async fn finish(
    ctx: &Ctx,
    env: &CommandEnvelope,
    booking: &Document,
    payment: &Document,
    n: u32,
) -> Result<Reply, HandlerError> {
    let booking_id = booking
        .get_object_id("_id")
        .map_err(|e| HandlerError::Permanent(e.to_string()))?;
    match payment.get_str("status").unwrap_or_default() {
        "pending" => Err(HandlerError::Transient("payment still pending".into())),
        "failed" => {
            let code = payment
                .get_str("failureCode")
                .unwrap_or("card_declined")
                .to_string();
            let max_failed = ctx.cfg.payment_max_failed_attempts.max(1);
            let last = n >= max_failed;
            let failed = Step::Failed {
                reason: code.clone(),
                max_failed,
            };
            emit(ctx, env, payment, n, failed).await?;
            // An expiry that came while this attempt ran left the booking to it.
            let expired = booking
                .get_datetime("expiresAt")
                .map(|d| d.timestamp_millis() <= DateTime::now().timestamp_millis())
                .unwrap_or(false);
            let pending = booking.get_str("status").ok() == Some("pending");
            let ends = match (last, expired) {
                _ if !pending => None,
                (true, _) => Some(CancelledBy::PaymentFailed),
                (false, true) => Some(CancelledBy::Expired),
                (false, false) => None,
            };
            let (booking_json, payable) = match ends {
                Some(by) => {
                    let failed = Some(payment_id_for_attempt(&booking_id, n));
                    let after = with_lease(ctx, PAY_LEASE, booking_id, || {
                        bookings::cancel_unpaid(ctx, env, booking, by, failed)
                    })
                    .await?;
                    (after, false)
                }
                None => (api_json(booking), pending),
            };
            let why = message_for(&code);
            let message = match booking_json["status"].as_str().unwrap_or_default() {
                _ if payable => format!(
                    "{why}; the booking stays payable with another card until it expires ({n} of {max_failed} failed attempts)"
                ),
                "cancelled" => format!("{why}; the booking was cancelled and its seats released"),
                _ => format!("{why}; the booking was paid by another attempt"),
            };
            Ok(Reply::error_with(
                declined_code(&code),
                message,
                json!({
                    "payment": api_json(payment), "booking": booking_json,
                    "attemptCount": payment.get_i32("attemptCount").unwrap_or(0),
                    "failedAttempts": n, "attemptsLeft": max_failed.saturating_sub(n),
                    "bookingPayable": payable,
                }),
            ))
        }
        // completed, or refunded since (a redelivery long after): the booking's answer.
        _ => {
            let mut confirmed = if booking.get_str("status").ok() == Some("cancelled") {
                api_json(booking)
            } else {
                bookings::confirm(ctx, env, booking, payment).await?
            };
            emit(ctx, env, payment, n, Step::Completed).await?;
            let seats = booking.get_array("seatIds").map(|a| a.len()).unwrap_or(0);
            let tickets = json!({
                "status": "issuing", "expected": seats,
                "location": format!("/v1/bookings/{}/tickets", booking_id.to_hex()),
            });
            confirmed["ticketsStatus"] = json!("issuing");
            Ok(Reply::ok(
                201,
                json!({"payment": api_json(payment), "booking": confirmed, "tickets": tickets}),
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
    payment: &Document,
    n: u32,
    step: Step,
) -> Result<(), HandlerError> {
    let id = |k: &str| {
        payment
            .get_object_id(k)
            .map_err(|e| HandlerError::Permanent(format!("{k}: {e}")))
    };
    let after = api_json(payment);
    let amount = payment
        .get_document("amount")
        .ok()
        .and_then(|a| bson::from_document::<Money>(a.clone()).ok());
    let attempt = PaymentAttempt {
        payment_id: id("_id")?,
        event_id: id("eventId")?,
        booking_id: id("bookingId")?,
        attempt_number: n,
        amount_minor: amount.map(|m| m.minor()),
        currency: amount.map(|m| m.currency()),
    };
    let (event, before) = match step {
        Step::Initiated => (DomainEvent::PaymentInitiated(attempt), None),
        Step::Completed => (
            DomainEvent::PaymentCompleted(attempt),
            Some(json!({"status": "pending"})),
        ),
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
            Some(json!({"status": "pending"})),
        ),
    };
    let after = json!({"status": after["status"], "attemptCount": after["attemptCount"], "transactionId": after["transactionId"]});
    ctx.emit(env, event, before, Some(after)).await
}

/// A currency code as stored, for callers that only have text.
pub fn currency_of(d: &Document) -> Currency {
    d.get_str("currency")
        .ok()
        .and_then(|c| Currency::parse(c).ok())
        .unwrap_or(Currency::USD)
}
