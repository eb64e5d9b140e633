//! Refunds: a paid booking cancelled is refunded per its event's cancellation policy
//! (100 % when the event itself is cancelled), once: the refund's id derives from the
//! booking, so a second cancel or a redelivery finds it instead of refunding again. Then
//! the payment's refunded amount and status are recomputed from its processed refunds,
//! the tickets cancelled, the seats put back on sale and the booking `cancelled`.

use bson::doc;
use domain::bookings::decide::{self, CancelledBy};
use domain::entities::payment::PaymentStatus;
use domain::entities::refund::{Refund, RefundStatus};
use domain::entities::{Booking, Payment};
use domain::event::Event;
use domain::events::{DomainEvent, RefundProcessed};
use domain::payments::refund_decide::{self, RefundAnswer, RefundPlan};
use serde_json::json;
use streams::codes::Reply;
use streams::commands::{CancelBooking, CommandEnvelope};

use crate::app::context::{Ctx, HandlerError};
use crate::bookings::{end_booking, ended};
use crate::store::repo::Repo;
use crate::store::{api_json, names, to_doc};

/// A paid booking cancelled: refunded per its event's policy (once), its tickets
/// cancelled, its seats back on sale, the booking `cancelled`.
pub(crate) async fn refund_and_cancel(
    ctx: &Ctx,
    env: &CommandEnvelope,
    booking: &Booking,
    c: &CancelBooking,
    by: CancelledBy,
) -> Result<Reply, HandlerError> {
    let Some(event) = Repo::<Event>::new(&ctx.store).get(booking.event_id).await? else {
        return Err(HandlerError::permanent("a booking's event is missing"));
    };
    let payment_id = booking
        .payment_id
        .unwrap_or_else(|| crate::payments::payment_id_for(&booking.id));
    let Some(payment) = Repo::<Payment>::new(&ctx.store).get(payment_id).await? else {
        return Err(HandlerError::permanent(
            "a confirmed booking has no payment",
        ));
    };
    let plan = match refund_decide::decide_refund(&payment, &event, by, ctx.now()) {
        Ok(plan) => plan,
        Err(e) => {
            return match e.refusal() {
                Some(r) => Ok(Reply::refused(&r)),
                None => Err(HandlerError::permanent(e)),
            }
        }
    };
    let refund = refund_once(ctx, env, booking, &payment, plan, c.note.clone()).await?;
    let pay_status = settle_refunds(ctx, &payment, &refund).await?;
    crate::tickets::cancel::cancel_tickets(ctx, booking.id, by.reason()).await?;
    let now = ctx.now_stored();
    let cancellation = end_booking(ctx, booking, |lines| {
        decide::cancel_paid(booking, lines, by, pay_status, now)
    })
    .await?;
    let refund_json = api_json(&to_doc(&refund)?);
    let processed = DomainEvent::RefundProcessed(RefundProcessed {
        refund_id: refund.id,
        event_id: booking.event_id,
        booking_id: booking.id,
        refund_minor: refund.refund_amount.minor(),
        payment_status: pay_status,
        currency: Some(refund.refund_amount.currency()),
    });
    ctx.emit(env, processed, None, Some(refund_json.clone()))
        .await?;
    let after = &cancellation.booking;
    ctx.emit(
        env,
        ended(
            booking,
            by,
            Some((refund.id, refund.refund_amount)),
            Some(pay_status),
        ),
        Some(json!({"status": booking.status.as_str()})),
        Some(json!({
            "status": after.status.as_str(), "cancellationReason": by.reason(),
            "paymentStatus": pay_status.as_str(),
        })),
    )
    .await?;
    Ok(Reply::ok(
        200,
        json!({"booking": api_json(&to_doc(after)?), "refund": refund_json}),
    ))
}

/// The one refund of a booking's cancellation: found if made before (a second cancel or
/// a redelivery), else asked of the gateway and recorded `processed`.
async fn refund_once(
    ctx: &Ctx,
    env: &CommandEnvelope,
    booking: &Booking,
    payment: &Payment,
    plan: RefundPlan,
    note: Option<String>,
) -> Result<Refund, HandlerError> {
    let repo = Repo::<Refund>::new(&ctx.store);
    let id = refund_decide::refund_id_for(&booking.id);
    if let Some(r) = repo.get(id).await? {
        return Ok(r);
    }
    let charge_txn = payment.transaction_id.clone().unwrap_or_default();
    let answer = ctx
        .gateway
        .refund(
            &format!("refund:{}", id.to_hex()),
            &charge_txn,
            plan.decision.amount,
        )
        .await?;
    let answer = RefundAnswer {
        transaction_id: answer.transaction_id,
        response: answer.response,
        requested_by: env.issuer.as_ref().map(|i| i.user_id),
        note,
        command_id: &env.id,
    };
    let refund = refund_decide::processed_refund(booking, payment, plan, answer, ctx.now_stored())
        .map_err(HandlerError::permanent)?;
    if repo.insert_once(&refund).await? {
        return Ok(refund);
    }
    Ok(repo.get(id).await?.unwrap_or(refund))
}

/// The payment after its processed refunds, written; returns its status.
async fn settle_refunds(
    ctx: &Ctx,
    payment: &Payment,
    refund: &Refund,
) -> Result<PaymentStatus, HandlerError> {
    let mut amounts = Vec::new();
    let mut cur = ctx
        .store
        .col(names::REFUNDS)
        .find(doc! {"paymentId": payment.id, "status": RefundStatus::Processed.as_str()})
        .await?;
    while cur.advance().await? {
        let r: Refund = bson::from_document(cur.deserialize_current()?)
            .map_err(|e| HandlerError::permanent(format!("a stored refund: {e}")))?;
        amounts.push(r.refund_amount);
    }
    let after = refund_decide::payment_after_refunds(
        payment,
        &amounts,
        refund.refund_transaction_id.as_deref(),
        ctx.now_stored(),
    )
    .map_err(HandlerError::permanent)?;
    let mut set = doc! {
        "refundedAmount": bson::to_bson(&after.refunded_amount)?,
        "status": after.status.as_str(), "updatedAt": after.updated_at,
    };
    if after.refunded_amount.minor() > 0 {
        set.insert("refundedAt", after.refunded_at);
        set.insert(
            "refundTransactionId",
            after.refund_transaction_id.as_deref(),
        );
    }
    Repo::<Payment>::new(&ctx.store)
        .patch(payment.id, set)
        .await?;
    Ok(after.status)
}
