//! Facts that events published before this enum carried only in the audit snapshots
//! (`before`, `after`), filled in from them: the migration of old events, in one place.
//!
//! Reading a payload fills the ids from the envelope by itself (see `wire`); the snapshots
//! belong to the envelope, so its reader calls [`DomainEvent::fill_from_snapshots`] after
//! decoding. A fact the event already has is kept.

use bson::oid::ObjectId;
use serde_json::Value;

use super::{CancellationReason, DomainEvent};
use crate::entities::booking::BookingStatus;
use crate::entities::payment::PaymentStatus;
use crate::event::EventStatus;
use crate::money::Currency;

fn text<'a>(snapshot: Option<&'a Value>, key: &str) -> Option<&'a str> {
    snapshot?.get(key)?.as_str()
}

fn oid(snapshot: Option<&Value>, key: &str) -> Option<ObjectId> {
    ObjectId::parse_str(text(snapshot, key)?).ok()
}

fn keep<T>(slot: &mut Option<T>, found: Option<T>) {
    if slot.is_none() {
        *slot = found;
    }
}

impl DomainEvent {
    /// Fills the facts an older event carried only in `before`/`after`.
    pub fn fill_from_snapshots(&mut self, before: Option<&Value>, after: Option<&Value>) {
        match self {
            DomainEvent::HoldConverted(e) => {
                keep(&mut e.booking_id, oid(after, "convertedToBookingId"));
            }
            DomainEvent::BookingConfirmed(e) => {
                keep(&mut e.payment_id, oid(after, "paymentId"));
            }
            DomainEvent::BookingCancelled(e) | DomainEvent::BookingExpired(e) => {
                let reason = text(after, "cancellationReason").and_then(CancellationReason::parse);
                keep(&mut e.reason, reason);
                let was = text(before, "status").and_then(BookingStatus::parse);
                keep(&mut e.previous_status, was);
                let paid = text(after, "paymentStatus").and_then(PaymentStatus::parse);
                keep(&mut e.payment_status, paid);
            }
            DomainEvent::RefundProcessed(e) => {
                let currency = after
                    .and_then(|a| a.get("refundAmount"))
                    .and_then(|m| m.get("currency"))
                    .and_then(Value::as_str)
                    .and_then(|c| Currency::parse(c).ok());
                keep(&mut e.currency, currency);
            }
            DomainEvent::EventPublished(e) | DomainEvent::EventCancelled(e) => {
                let was = text(before, "status")
                    .and_then(|s| serde_json::from_value::<EventStatus>(Value::from(s)).ok());
                keep(&mut e.previous_status, was);
            }
            // Nothing a consumer reads is only in their snapshots.
            DomainEvent::HoldCreated(_)
            | DomainEvent::HoldReleased(_)
            | DomainEvent::HoldExpired(_)
            | DomainEvent::BookingCreated(_)
            | DomainEvent::PaymentInitiated(_)
            | DomainEvent::PaymentFailed(_)
            | DomainEvent::PaymentCompleted(_)
            | DomainEvent::TicketsIssued(_)
            | DomainEvent::TicketDownloaded(_)
            | DomainEvent::TicketScanned(_)
            | DomainEvent::TicketScanRefused(_)
            | DomainEvent::EventCreated(_)
            | DomainEvent::UserRegistered(_)
            | DomainEvent::UserLoggedOut(_)
            | DomainEvent::UserSuspended(_)
            | DomainEvent::UserVerified(_)
            | DomainEvent::UserPasswordReset(_)
            | DomainEvent::CommandRefused(_) => {}
        }
    }
}
