//! Domain events: the durable record on the EVENTS stream that projections (audit trail,
//! seat counters, expiry timers, analytics) consume and that recovery replays.
//!
//! An EVENTS message is an [`EventEnvelope`]: where the change came from (command, actor,
//! request context, time), the audit snapshots, and the [`DomainEvent`] itself, whose keys
//! (`type`, `action`, `entityType`, `entityId`, `eventId`, `data`) sit beside the
//! envelope's as they did before the enum existed (see `domain::events`). Reading an
//! envelope fills the facts older events carried only in the snapshots
//! (`DomainEvent::fill_from_snapshots`), so every stored event decodes to the same enum.

use chrono::{DateTime, Utc};
use domain::ObjectId;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::commands::{Issuer, RequestContext};

pub use domain::events::{DomainEvent, EventKind};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", from = "Stored")]
pub struct EventEnvelope {
    /// `<commandId>:<type>`: the `Nats-Msg-Id`, so a redelivered command publishes once.
    pub id: String,
    pub occurred_at: DateTime<Utc>,
    pub command_id: String,
    pub actor: Option<Issuer>,
    #[serde(default)]
    pub context: RequestContext,
    /// The audit log's snapshots of the entity.
    pub before: Option<Value>,
    pub after: Option<Value>,
    #[serde(flatten)]
    pub event: DomainEvent,
}

/// The envelope as read, before the facts of older events are filled in.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stored {
    id: String,
    occurred_at: DateTime<Utc>,
    command_id: String,
    actor: Option<Issuer>,
    #[serde(default)]
    context: RequestContext,
    #[serde(default)]
    before: Option<Value>,
    #[serde(default)]
    after: Option<Value>,
    #[serde(flatten)]
    event: DomainEvent,
}

impl From<Stored> for EventEnvelope {
    fn from(s: Stored) -> Self {
        let mut event = s.event;
        event.fill_from_snapshots(s.before.as_ref(), s.after.as_ref());
        EventEnvelope {
            id: s.id,
            occurred_at: s.occurred_at,
            command_id: s.command_id,
            actor: s.actor,
            context: s.context,
            before: s.before,
            after: s.after,
            event,
        }
    }
}

impl EventEnvelope {
    pub fn kind(&self) -> EventKind {
        self.event.event_kind()
    }

    /// The changed entity (a hold, a booking...).
    pub fn entity_id(&self) -> ObjectId {
        self.event.entity_id()
    }

    /// The show the change belongs to, when there is one (seat counters key on it).
    pub fn show_id(&self) -> Option<ObjectId> {
        self.event.show_id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::events::CancellationReason;
    use serde_json::json;

    /// An event as the workers published it before the enum: ids only in the envelope,
    /// the reason only in `after`. It decodes whole, facts filled in.
    #[test]
    fn an_event_stored_before_the_enum_decodes_with_its_facts() {
        let (booking, show, seat) = (ObjectId::new(), ObjectId::new(), ObjectId::new());
        let stored = json!({
            "id": "c1:booking.cancelled", "type": "booking.cancelled",
            "occurredAt": "2026-11-01T10:00:00Z", "commandId": "c1", "actor": null,
            "action": "booking_cancelled", "entityType": "booking",
            "entityId": {"$oid": booking.to_hex()}, "eventId": {"$oid": show.to_hex()},
            "before": {"status": "confirmed"},
            "after": {"status": "cancelled", "cancellationReason": "user_requested"},
            "data": {"userId": null, "refundMinor": 500, "seatIds": [seat.to_hex()]},
        });
        let ev: EventEnvelope = serde_json::from_value(stored).expect("decodes");
        let DomainEvent::BookingCancelled(e) = &ev.event else {
            panic!("{:?}", ev.event)
        };
        assert_eq!((e.booking_id, e.event_id), (booking, show));
        assert_eq!(e.seat_ids, vec![seat]);
        assert_eq!(e.reason, Some(CancellationReason::UserRequested));
        assert_eq!(e.was_paid(), Some(true));
        assert_eq!(ev.show_id(), Some(show));
        // Written again, it keeps the envelope's keys beside the event's.
        let again = serde_json::to_value(&ev).unwrap();
        assert_eq!(again["type"], "booking.cancelled");
        assert_eq!(again["action"], "booking_cancelled");
        assert_eq!(again["commandId"], "c1");
        assert_eq!(again["data"]["bookingId"], booking.to_hex());
        let back: EventEnvelope = serde_json::from_value(again).unwrap();
        assert_eq!(back, ev);
    }
}
