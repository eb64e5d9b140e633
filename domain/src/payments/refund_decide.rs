//! The refund half of `workers/src/payments/refunds.rs::refund_and_cancel`: how much of a paid
//! booking's payment comes back under the event's cancellation policy, the refund record,
//! and the payment's status and refunded amount after its refunds.

use bson::oid::ObjectId;
use bson::{DateTime, Document};

use super::payment::{Payment, PaymentStatus};
use super::refund::{refund_for, Refund, RefundDecision, RefundError, RefundReason, RefundStatus};
use crate::bookings::booking::Booking;
use crate::bookings::decide::CancelledBy;
use crate::catalog::event::{Event, EventStatus};
use crate::ids::derive_object_id;
use crate::shared::money::Money;
use crate::{DomainError, Refusal};

/// The one refund of a booking's cancellation: a second cancel (or a redelivery) finds it
/// instead of refunding again.
pub fn refund_id_for(booking: &ObjectId) -> ObjectId {
    derive_object_id(
        "refund",
        &booking.to_hex(),
        booking.timestamp().timestamp_millis() / 1000,
    )
}

/// What to refund, and the reason stored with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefundPlan {
    pub decision: RefundDecision,
    pub reason: RefundReason,
}

impl RefundError {
    /// The refusal a cancellation answers with, or `None` for an inconsistency of the
    /// stored data (the worker's permanent error).
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            RefundError::EventStarted => Some(Refusal::EventStarted),
            RefundError::Invalid(_) => None,
        }
    }
}

/// The refund of `payment` when its booking is cancelled `by` at `now`: the event's policy
/// applies, unless the event was cancelled (by this cause or its status): 100 %.
/// `EventStarted` is answered `event_started`.
pub fn decide_refund(
    payment: &Payment,
    event: &Event,
    by: CancelledBy,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<RefundPlan, RefundError> {
    let event_cancelled =
        by == CancelledBy::EventCancelled || event.status == EventStatus::Cancelled;
    let decision = refund_for(
        payment.amount,
        payment.refunded_amount,
        event.cancellation_policy,
        now,
        event.event_date.to_chrono(),
        event_cancelled,
    )?;
    let reason = if event_cancelled {
        RefundReason::EventCancelled
    } else {
        RefundReason::UserRequested
    };
    Ok(RefundPlan { decision, reason })
}

/// The gateway's answer to a refund and who asked for it.
#[derive(Debug, Clone, PartialEq)]
pub struct RefundAnswer<'a> {
    pub transaction_id: String,
    pub response: Document,
    pub requested_by: Option<ObjectId>,
    pub note: Option<String>,
    pub command_id: &'a str,
}

/// The refund record once the gateway answered: `pending -> processed`.
pub fn processed_refund(
    booking: &Booking,
    payment: &Payment,
    plan: RefundPlan,
    answer: RefundAnswer<'_>,
    now: DateTime,
) -> Result<Refund, DomainError> {
    if !RefundStatus::Pending.can_become(RefundStatus::Processed) {
        return Err(DomainError::invalid(
            "status",
            "a refund cannot be processed",
        ));
    }
    Ok(Refund {
        id: refund_id_for(&booking.id),
        payment_id: payment.id,
        booking_id: booking.id,
        user_id: booking.user_id,
        original_amount: payment.amount,
        refund_amount: plan.decision.amount,
        refund_percentage: plan.decision.percentage,
        reason: plan.reason,
        refund_policy: plan.decision.policy_applied.to_string(),
        status: RefundStatus::Processed,
        failure_reason: None,
        refund_transaction_id: Some(answer.transaction_id),
        gateway_response: Some(answer.response),
        requested_by: answer.requested_by,
        approved_by: None,
        processing_notes: answer.note,
        command_id: answer.command_id.to_string(),
        created_at: now,
        processed_at: Some(now),
        updated_at: now,
    })
}

/// The payment after its processed refunds (`processed`, their amounts): `refundedAmount`
/// is their sum, recomputed, so repeating this changes nothing; the status follows
/// ([`PaymentStatus::after_refunds`]) through the payment's state machine. A refund
/// transaction is named once something was refunded.
pub fn payment_after_refunds(
    payment: &Payment,
    processed: &[Money],
    refund_transaction_id: Option<&str>,
    now: DateTime,
) -> Result<Payment, DomainError> {
    let paid = payment.amount;
    let total = Money::sum(paid.currency(), processed)
        .ok_or_else(|| DomainError::invalid("refundAmount", "refund currencies differ"))?;
    if total.minor() > paid.minor() {
        return Err(DomainError::invalid(
            "refundedAmount",
            format!("refunds {total} exceed payment {paid}"),
        ));
    }
    let status = PaymentStatus::after_refunds(paid, total)?;
    if status != payment.status && !payment.status.can_become(status) {
        return Err(DomainError::invalid(
            "status",
            format!("a {} payment cannot become {status}", payment.status),
        ));
    }
    let mut p = payment.clone();
    p.refunded_amount = total;
    p.status = status;
    p.updated_at = now;
    if total.minor() > 0 {
        p.refunded_at = Some(now);
        p.refund_transaction_id = Some(refund_transaction_id.unwrap_or_default().to_string());
    }
    Ok(p)
}

#[cfg(test)]
#[path = "refund_decide_tests.rs"]
mod tests;
