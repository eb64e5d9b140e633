//! The payments worker: charges a pending booking once, with retries of transient
//! failures, then confirms it (seats sold) or cancels it (seats released).
//!
//! The charge-once guard is a unique-key insert: a booking's payment has an `_id` derived
//! from the booking id, so however many pay requests race, one inserts the payment and
//! goes to the gateway; the others find it and answer from it. The gateway call itself is
//! idempotent by key (`<paymentId>:<attempt>`), so a redelivery after a crash charges
//! nothing twice.

pub mod gateway;

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use bson::{doc, Document};
use domain::entities::card::{parse_card_number, CardBrand, CardOutcome};
use domain::entities::payment::{Payment, PaymentMethod, PaymentStatus};
use domain::ids::derive_object_id;
use domain::{Currency, DateTime, Money, ObjectId};
use serde_json::{json, Value};
use streams::codes::{ErrorCode, Reply};
use streams::commands::{CommandEnvelope, PayBooking};
use tracing::{info, warn};

use crate::bookings::{self, CancelledBy};
use crate::context::{Change, Ctx, HandlerError};
use crate::store::{api_json, is_duplicate_key, names, to_doc};

/// The payment of a booking: one per booking.
pub fn payment_id_for(booking: &ObjectId) -> ObjectId {
    derive_object_id(
        "payment",
        &booking.to_hex(),
        booking.timestamp().timestamp_millis() / 1000,
    )
}

fn declined_code(code: &str) -> ErrorCode {
    match code {
        "insufficient_funds" => ErrorCode::InsufficientFunds,
        "processing_error" => ErrorCode::ProcessingError,
        "card_token_expired" => ErrorCode::CardTokenExpired,
        _ => ErrorCode::CardDeclined,
    }
}

fn message_for(code: &str) -> &'static str {
    match code {
        "insufficient_funds" => "the card has insufficient funds",
        "processing_error" => "the payment gateway could not process the card; try again later",
        "card_token_expired" => "the card details expired before the payment ran; send them again",
        _ => "the card was declined",
    }
}

pub async fn pay(ctx: &Ctx, env: &CommandEnvelope, c: &PayBooking) -> Result<Reply, HandlerError> {
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
    let payment_id = payment_id_for(&c.booking_id);
    let payments = ctx.store.col(names::PAYMENTS);
    let existing = payments.find_one(doc! {"_id": payment_id}).await?;
    let status = booking.get_str("status").unwrap_or_default().to_string();
    if existing.is_none() {
        match status.as_str() {
            "pending" => {}
            "confirmed" | "completed" => {
                return Ok(Reply::error(ErrorCode::AlreadyPaid, "the booking is paid"))
            }
            _ => {
                return Ok(Reply::error(
                    ErrorCode::BookingNotPayable,
                    format!("a {status} booking cannot be paid"),
                ))
            }
        }
        let expired = booking
            .get_datetime("expiresAt")
            .map(|d| d.timestamp_millis() <= DateTime::now().timestamp_millis())
            .unwrap_or(false);
        if expired {
            return Ok(Reply::error(
                ErrorCode::BookingExpired,
                "the booking's payment window has closed",
            ));
        }
    }
    let amount: Money = bson::from_bson(booking.get("finalPrice").cloned().unwrap_or_default())
        .map_err(|e| HandlerError::Permanent(e.to_string()))?;
    if let Some(cur) = &c.currency {
        if !cur.eq_ignore_ascii_case(amount.currency().as_str()) {
            return Ok(Reply::error(
                ErrorCode::ValidationFailed,
                format!("the booking is priced in {}", amount.currency()),
            ));
        }
    }
    let method = PaymentMethod::parse(&c.method).unwrap_or(PaymentMethod::Card);

    // The guard: one payment per booking, first insert wins.
    let payment = match existing {
        Some(p) => p,
        None => {
            let now = DateTime::now();
            let p = Payment {
                id: payment_id,
                booking_id: c.booking_id,
                user_id: owner.unwrap_or(issuer.user_id),
                event_id: booking.get_object_id("eventId").unwrap_or_default(),
                amount,
                currency: amount.currency(),
                payment_method: method,
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
            };
            let d = to_doc(&p)?;
            match payments.insert_one(&d).await {
                Ok(_) => {
                    emit(
                        ctx,
                        env,
                        "payment.initiated",
                        "payment_initiated",
                        &d,
                        None,
                        json!({}),
                    )
                    .await?;
                    d
                }
                Err(e) if is_duplicate_key(&e) => payments
                    .find_one(doc! {"_id": payment_id})
                    .await?
                    .unwrap_or(d),
                Err(e) => return Err(e.into()),
            }
        }
    };
    // Someone else's pay request owns the charge: answer from its state.
    if payment.get_str("commandId").unwrap_or_default() != env.id {
        return Ok(match payment.get_str("status").unwrap_or_default() {
            "pending" => Reply::error(
                ErrorCode::PaymentInProgress,
                "a payment for this booking is in progress",
            ),
            "failed" => Reply::error(
                ErrorCode::BookingNotPayable,
                "the booking's payment failed and it was cancelled",
            ),
            _ => Reply::error(ErrorCode::AlreadyPaid, "the booking is paid"),
        });
    }
    let payment = charge(ctx, env, c, payment, amount).await?;
    finish(ctx, env, &booking, &payment).await
}

/// Calls the gateway until it approves, declines, or the attempts run out; every attempt
/// is recorded on the payment before the next.
async fn charge(
    ctx: &Ctx,
    env: &CommandEnvelope,
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
    let vault = ctx.vault.clone();
    let card = match vault.get(&c.card_token).await {
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
            if let Err(e) = vault.delete(&c.card_token).await {
                warn!(error = %e, "card vault entry not deleted; it expires by itself");
            }
            let _ = env;
            return Ok(payment);
        }
    }
}

/// The booking side of a finished payment: confirm, or cancel and release. Idempotent.
async fn finish(
    ctx: &Ctx,
    env: &CommandEnvelope,
    booking: &Document,
    payment: &Document,
) -> Result<Reply, HandlerError> {
    let booking_id = booking
        .get_object_id("_id")
        .map_err(|e| HandlerError::Permanent(e.to_string()))?;
    match payment.get_str("status").unwrap_or_default() {
        "completed" => {
            let confirmed = bookings::confirm(ctx, env, booking, payment).await?;
            emit(
                ctx,
                env,
                "payment.completed",
                "payment_completed",
                payment,
                Some(json!({"status": "pending"})),
                json!({"bookingId": booking_id.to_hex()}),
            )
            .await?;
            Ok(Reply::ok(
                201,
                json!({"payment": api_json(payment), "booking": confirmed}),
            ))
        }
        "failed" => {
            let code = payment
                .get_str("failureCode")
                .unwrap_or("card_declined")
                .to_string();
            emit(
                ctx,
                env,
                "payment.failed",
                "payment_failed",
                payment,
                Some(json!({"status": "pending"})),
                json!({"bookingId": booking_id.to_hex(), "failureReason": code}),
            )
            .await?;
            let cancelled =
                bookings::cancel_unpaid(ctx, env, booking, CancelledBy::PaymentFailed).await?;
            Ok(Reply::error_with(
                declined_code(&code),
                message_for(&code),
                json!({"payment": api_json(payment), "booking": cancelled, "attemptCount": payment.get_i32("attemptCount").unwrap_or(0)}),
            ))
        }
        other => Err(HandlerError::Transient(format!("payment still {other}"))),
    }
}

async fn emit(
    ctx: &Ctx,
    env: &CommandEnvelope,
    kind: &'static str,
    action: &'static str,
    payment: &Document,
    before: Option<Value>,
    data: Value,
) -> Result<(), HandlerError> {
    let id = payment
        .get_object_id("_id")
        .map_err(|e| HandlerError::Permanent(e.to_string()))?;
    let after = api_json(payment);
    let mut data = data;
    data["amountMinor"] = json!(payment
        .get_document("amount")
        .ok()
        .and_then(|a| a.get_i64("amountMinor").ok()));
    ctx.emit(
        env,
        Change {
            kind,
            action,
            entity_type: "payment",
            entity_id: id,
            event_id: payment.get_object_id("eventId").ok(),
            before,
            after: Some(json!({"status": after["status"], "attemptCount": after["attemptCount"], "transactionId": after["transactionId"]})),
            data,
        },
    )
    .await
}

/// A currency code as stored, for callers that only have text.
pub fn currency_of(d: &Document) -> Currency {
    d.get_str("currency")
        .ok()
        .and_then(|c| Currency::parse(c).ok())
        .unwrap_or(Currency::USD)
}
