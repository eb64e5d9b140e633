//! The notifications projection: which notifications each domain event makes, and the
//! pending reminders a cancellation withdraws.

use bson::{doc, Document};
use domain::bookings::decide::CancelledBy;
use domain::entities::booking::BookingStatus;
use domain::entities::notification::{Notification, NotificationStatus, NotificationType};
use domain::entities::{Booking, Payment, Refund};
use domain::events::{
    BookingConfirmed, BookingEnded, CancellationReason, EventStatusChanged, PaymentAttempt,
    RefundProcessed,
};
use domain::notifications::decide;
use domain::{DateTime, ObjectId};
use futures::TryStreamExt;
use serde_json::{json, Value};
use streams::events::{DomainEvent, EventEnvelope};

use super::vars::{booking_reference, booking_vars, event_vars, merge, minor_text};
use super::{create, NewNotification};
use crate::app::context::{Ctx, HandlerError};
use crate::store::names;
use crate::store::repo::Repo;

/// Turns one domain event into its notifications (none for most events).
pub(crate) async fn on_event(ctx: &Ctx, ev: &EventEnvelope) -> Result<(), HandlerError> {
    match &ev.event {
        DomainEvent::BookingConfirmed(e) => booking_confirmed(ctx, ev, e).await,
        DomainEvent::PaymentCompleted(e) => payment_completed(ctx, ev, e).await,
        DomainEvent::BookingCancelled(e) => booking_cancelled(ctx, ev, e).await,
        DomainEvent::RefundProcessed(e) => refund_processed(ctx, ev, e).await,
        DomainEvent::EventCancelled(e) => event_cancelled(ctx, ev, e).await,
        // No message: an expired booking was never paid, and the rest tell nobody.
        DomainEvent::HoldCreated(_)
        | DomainEvent::HoldReleased(_)
        | DomainEvent::HoldExpired(_)
        | DomainEvent::HoldConverted(_)
        | DomainEvent::BookingCreated(_)
        | DomainEvent::BookingExpired(_)
        | DomainEvent::PaymentInitiated(_)
        | DomainEvent::PaymentFailed(_)
        | DomainEvent::TicketsIssued(_)
        | DomainEvent::TicketDownloaded(_)
        | DomainEvent::TicketScanned(_)
        | DomainEvent::TicketScanRefused(_)
        | DomainEvent::EventCreated(_)
        | DomainEvent::EventPublished(_)
        | DomainEvent::UserRegistered(_)
        | DomainEvent::UserLoggedOut(_)
        | DomainEvent::UserSuspended(_)
        | DomainEvent::UserVerified(_)
        | DomainEvent::UserPasswordReset(_)
        | DomainEvent::CommandRefused(_) => Ok(()),
    }
}

/// The booking confirmation, and the reminder `reminderBefore` ahead of the show.
async fn booking_confirmed(
    ctx: &Ctx,
    ev: &EventEnvelope,
    e: &BookingConfirmed,
) -> Result<(), HandlerError> {
    let Some(booking) = Repo::<Booking>::new(&ctx.store).get(e.booking_id).await? else {
        return Err(HandlerError::Transient("booking not readable yet".into()));
    };
    let user_id = booking.user_id;
    let (evars, event) = event_vars(ctx, Some(e.event_id)).await?;
    let data = merge(booking_vars(ctx, &booking).await?, evars);
    create(
        ctx,
        NewNotification {
            key: format!("{}:booking_confirmation", ev.id),
            user_id,
            event_id: Some(e.event_id),
            booking_id: Some(e.booking_id),
            kind: NotificationType::BookingConfirmation,
            data: data.clone(),
            scheduled_for: None,
            at: ev.occurred_at.timestamp(),
        },
    )
    .await?;
    // The reminder, `reminderBefore` ahead of the show (now if that has passed).
    let starts = event.map(|e| e.event_date);
    if let Some(starts) = starts {
        let now = ctx.now().timestamp_millis();
        if starts.timestamp_millis() > now {
            let at = (starts.timestamp_millis() - ctx.cfg.reminder_before_secs * 1000).max(now);
            create(
                ctx,
                NewNotification {
                    key: format!("{}:event_reminder", ev.id),
                    user_id,
                    event_id: Some(e.event_id),
                    booking_id: Some(e.booking_id),
                    kind: NotificationType::EventReminder,
                    data,
                    scheduled_for: Some(DateTime::from_millis(at)),
                    at: ev.occurred_at.timestamp(),
                },
            )
            .await?;
        }
    }
    Ok(())
}

async fn payment_completed(
    ctx: &Ctx,
    ev: &EventEnvelope,
    e: &PaymentAttempt,
) -> Result<(), HandlerError> {
    let Some(p) = Repo::<Payment>::new(&ctx.store).get(e.payment_id).await? else {
        return Err(HandlerError::Transient("payment not readable yet".into()));
    };
    let booking_id = Some(p.booking_id);
    let reference = booking_reference(ctx, booking_id).await?;
    let (evars, _) = event_vars(ctx, Some(e.event_id)).await?;
    let data = merge(
        json!({
            "bookingReference": reference,
            "amount": p.amount.to_string(),
            "cardLast4": p.card_last4.as_deref().unwrap_or_default(),
            "transactionId": p.transaction_id.as_deref().unwrap_or_default(),
        }),
        evars,
    );
    create(
        ctx,
        NewNotification {
            key: format!("{}:payment_confirmation", ev.id),
            user_id: p.user_id,
            event_id: Some(e.event_id),
            booking_id,
            kind: NotificationType::PaymentConfirmation,
            data,
            scheduled_for: None,
            at: ev.occurred_at.timestamp(),
        },
    )
    .await?;
    Ok(())
}

/// The booking's reminder is withdrawn; the owner is told why it ended (an event's
/// cancellation has its own message).
async fn booking_cancelled(
    ctx: &Ctx,
    ev: &EventEnvelope,
    e: &BookingEnded,
) -> Result<(), HandlerError> {
    let Some(booking) = Repo::<Booking>::new(&ctx.store).get(e.booking_id).await? else {
        return Err(HandlerError::Transient("booking not readable yet".into()));
    };
    withdraw(
        ctx,
        doc! {"bookingId": e.booking_id, "type": NotificationType::EventReminder.as_str()},
        "the booking was cancelled",
    )
    .await?;
    let kind = match e.reason {
        // An event cancellation has its own message (event_cancelled).
        Some(CancellationReason::EventCancelled) => return Ok(()),
        Some(CancellationReason::PaymentFailed) => NotificationType::PaymentFailed,
        Some(CancellationReason::Expired | CancellationReason::UserRequested) | None => {
            NotificationType::BookingCancellation
        }
    };
    let reason = e.reason.map_or("cancelled", |r| r.as_str());
    let currency = booking.final_price.currency();
    let refund_minor = e.refund_minor;
    let (evars, _) = event_vars(ctx, Some(e.event_id)).await?;
    let data = merge(
        json!({
            "bookingReference": booking.booking_reference.as_str(),
            "reason": reason,
            "refund": minor_text(refund_minor, currency),
        }),
        evars,
    );
    create(
        ctx,
        NewNotification {
            key: format!("{}:{}", ev.id, kind.as_str()),
            user_id: booking.user_id,
            event_id: Some(e.event_id),
            booking_id: Some(e.booking_id),
            kind,
            data,
            scheduled_for: None,
            at: ev.occurred_at.timestamp(),
        },
    )
    .await?;
    Ok(())
}

async fn refund_processed(
    ctx: &Ctx,
    ev: &EventEnvelope,
    e: &RefundProcessed,
) -> Result<(), HandlerError> {
    let Some(r) = Repo::<Refund>::new(&ctx.store).get(e.refund_id).await? else {
        return Err(HandlerError::Transient("refund not readable yet".into()));
    };
    let booking_id = Some(r.booking_id);
    let reference = booking_reference(ctx, booking_id).await?;
    let (evars, _) = event_vars(ctx, Some(e.event_id)).await?;
    let pct = serde_json::to_value(r.refund_percentage).unwrap_or(Value::Null);
    let data = merge(
        json!({
            "bookingReference": reference,
            "refundAmount": r.refund_amount.to_string(),
            "originalAmount": r.original_amount.to_string(),
            "refundPercentage": match pct { Value::String(s) => s, v => v.to_string() },
        }),
        evars,
    );
    create(
        ctx,
        NewNotification {
            key: format!("{}:refund_processed", ev.id),
            user_id: r.user_id,
            event_id: Some(e.event_id),
            booking_id,
            kind: NotificationType::RefundProcessed,
            data,
            scheduled_for: None,
            at: ev.occurred_at.timestamp(),
        },
    )
    .await?;
    Ok(())
}

/// Reminders withdrawn; everyone with a live booking, or one this cancellation ended, is
/// told.
async fn event_cancelled(
    ctx: &Ctx,
    ev: &EventEnvelope,
    e: &EventStatusChanged,
) -> Result<(), HandlerError> {
    let event_id = e.event_id;
    withdraw(
        ctx,
        doc! {"eventId": event_id, "type": NotificationType::EventReminder.as_str()},
        "the event was cancelled",
    )
    .await?;
    // Everyone with a live booking, or one this cancellation ended.
    let bookings: Vec<Booking> = ctx
        .store
        .db()
        .collection::<Booking>(names::BOOKINGS)
        .find(doc! {"eventId": event_id})
        .await?
        .try_collect()
        .await?;
    let ended_by_it = CancelledBy::EventCancelled.reason();
    let mut users: Vec<ObjectId> = bookings
        .iter()
        .filter(|b| {
            matches!(b.status, BookingStatus::Confirmed | BookingStatus::Pending)
                || b.cancellation_reason.as_deref() == Some(ended_by_it)
        })
        .map(|b| b.user_id)
        .collect();
    users.sort();
    users.dedup();
    let (evars, _) = event_vars(ctx, Some(event_id)).await?;
    for user_id in users {
        create(
            ctx,
            NewNotification {
                key: format!("{}:event_cancelled:{}", ev.id, user_id.to_hex()),
                user_id,
                event_id: Some(event_id),
                booking_id: None,
                kind: NotificationType::EventCancelled,
                data: evars.clone(),
                scheduled_for: None,
                at: ev.occurred_at.timestamp(),
            },
        )
        .await?;
    }
    Ok(())
}

/// Gives up the pending notifications matching `filter` (reminders of a cancelled
/// booking or event), each under its lease so a dispatcher's claim cannot interleave.
async fn withdraw(ctx: &Ctx, filter: Document, reason: &str) -> Result<(), HandlerError> {
    let col = ctx.store.col(names::NOTIFICATIONS);
    let mut f = filter;
    f.insert("status", NotificationStatus::Pending.as_str());
    let ids: Vec<ObjectId> = col
        .find(f)
        .projection(doc! {"_id": 1})
        .await?
        .try_collect::<Vec<Document>>()
        .await?
        .iter()
        .filter_map(|d| d.get_object_id("_id").ok())
        .collect();
    let repo = Repo::<Notification>::new(&ctx.store);
    for id in ids {
        let repo = &repo;
        crate::store::leases::with_lease(ctx, names::NOTIFICATIONS, id, || async move {
            let Some(n) = repo.get(id).await? else {
                return Ok(());
            };
            if let Some(after) = decide::withdraw(&n, reason, ctx.now_stored()) {
                let set = doc! {
                    "status": after.status.as_str(), "failureReason": after.failure_reason.as_deref(),
                    "nextRetryAt": after.next_retry_at, "updatedAt": after.updated_at,
                };
                repo.patch(id, set).await?;
            }
            Ok(())
        })
        .await?;
    }
    Ok(())
}
