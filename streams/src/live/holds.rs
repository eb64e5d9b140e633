//! Recent holds as this process sees them, kept in memory by following EVENTS: a hold is
//! recorded by its `hold.created` event (which carries the whole hold), and
//! `hold.released`, `hold.expired` and `hold.converted` change its status.
//!
//! The `seat_holds` documents are a projection of the same events (see `projections`), so
//! they trail by the projection's lag; readers that must see a hold answered a moment ago
//! (booking it, releasing it, `GET /v1/holds/{id}`) read it here after [`HoldView::sync`].
//! The view starts far enough back to hold every hold that can still be active or booked;
//! older ones are read from MongoDB.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::events::{DomainEvent, EventEnvelope};
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::{self, Message};
use domain::hold::{HoldStatus, SeatHold};
use domain::{DateTime, ObjectId};
use tokio::sync::watch;

use super::tail::{Tail, ViewError};

/// Above this many holds the view forgets the ones that ended more than an hour ago.
const PRUNE_ABOVE: usize = 200_000;

#[derive(Clone)]
pub struct HoldView {
    holds: Arc<RwLock<HashMap<ObjectId, SeatHold>>>,
    tail: Tail,
}

fn apply(holds: &mut HashMap<ObjectId, SeatHold>, ev: &EventEnvelope) {
    let at = DateTime::from_millis(ev.occurred_at.timestamp_millis());
    let (id, status, booking) = match &ev.event {
        DomainEvent::HoldCreated(e) => {
            holds.entry(e.hold.id).or_insert_with(|| e.hold.clone());
            return;
        }
        DomainEvent::HoldReleased(e) => (e.hold_id, HoldStatus::Released, None),
        DomainEvent::HoldExpired(e) => (e.hold_id, HoldStatus::Expired, None),
        DomainEvent::HoldConverted(e) => (e.hold_id, HoldStatus::ConvertedToBooking, e.booking_id),
        // Not a hold's change (the subject filter lets only hold events through).
        _ => return,
    };
    if let Some(h) = holds.get_mut(&id) {
        h.status = status;
        h.updated_at = at;
        if booking.is_some() {
            h.converted_to_booking_id = booking;
        }
    }
    if holds.len() > PRUNE_ABOVE {
        let cutoff = at.timestamp_millis() - 3_600_000;
        holds.retain(|_, h| {
            h.status == HoldStatus::Active || h.updated_at.timestamp_millis() > cutoff
        });
    }
}

impl HoldView {
    /// Follows `stream` (EVENTS) from `lookback` ago.
    pub fn start(
        js: jetstream::Context,
        stream: String,
        lookback: Duration,
        stopped: watch::Receiver<bool>,
    ) -> (HoldView, tokio::task::JoinHandle<()>) {
        let holds: Arc<RwLock<HashMap<ObjectId, SeatHold>>> = Default::default();
        let state = holds.clone();
        let on_message = move |_seq: u64, m: &Message| {
            // Only hold events matter; the rest is skipped without decoding it whole.
            if !m.subject.as_str().contains(".hold.") {
                return;
            }
            if let Ok(ev) = serde_json::from_slice::<EventEnvelope>(&m.payload) {
                apply(&mut state.write().expect("not poisoned"), &ev);
            }
        };
        let since = time::OffsetDateTime::now_utc() - lookback;
        let (tail, task) = Tail::start(
            js,
            stream,
            DeliverPolicy::ByStartTime { start_time: since },
            on_message,
            stopped,
        );
        (HoldView { holds, tail }, task)
    }

    /// The read barrier (see [`Tail::sync`]).
    pub async fn sync(&self) -> Result<(), ViewError> {
        self.tail.sync().await
    }

    pub fn get(&self, id: &ObjectId) -> Option<SeatHold> {
        self.holds.read().expect("not poisoned").get(id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::events::{HoldConverted, HoldCreated};
    use domain::Money;

    fn envelope(event: DomainEvent) -> EventEnvelope {
        EventEnvelope {
            id: format!("c:{}", event.kind()),
            occurred_at: "2026-12-01T10:00:00Z".parse().unwrap(),
            command_id: "c".into(),
            actor: None,
            context: Default::default(),
            before: None,
            after: None,
            event,
        }
    }

    #[test]
    fn a_hold_is_recorded_once_then_changes_status() {
        let id = ObjectId::new();
        let hold = SeatHold {
            id,
            user_id: ObjectId::new(),
            event_id: ObjectId::new(),
            seat_ids: vec![ObjectId::new()],
            quantity: 1,
            total_price: Money::from_minor(1000, domain::money::Currency::USD),
            status: HoldStatus::Active,
            created_at: DateTime::now(),
            expires_at: DateTime::now(),
            converted_to_booking_id: None,
            command_id: "c".into(),
            updated_at: DateTime::now(),
        };
        let mut holds = HashMap::new();
        let created = envelope(DomainEvent::HoldCreated(HoldCreated {
            hold_id: id,
            event_id: hold.event_id,
            user_id: hold.user_id,
            seat_ids: hold.seat_ids.clone(),
            expires_at: chrono::Utc::now(),
            hold: hold.clone(),
        }));
        // Through the wire, as the view reads it.
        let created: EventEnvelope =
            serde_json::from_slice(&serde_json::to_vec(&created).unwrap()).unwrap();
        apply(&mut holds, &created);
        assert_eq!(holds[&id], hold);
        let converted = envelope(DomainEvent::HoldConverted(HoldConverted {
            hold_id: id,
            event_id: hold.event_id,
            booking_id: Some(ObjectId::new()),
        }));
        apply(&mut holds, &converted);
        assert_eq!(holds[&id].status, HoldStatus::ConvertedToBooking);
        assert!(holds[&id].converted_to_booking_id.is_some());
        // A redelivered creation does not bring the hold back to active.
        apply(&mut holds, &created);
        assert_eq!(holds[&id].status, HoldStatus::ConvertedToBooking);
    }
}
