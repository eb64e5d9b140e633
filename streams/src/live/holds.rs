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

use crate::events::DomainEvent;
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

/// The hold a `hold.created` event carries.
pub fn hold_of(ev: &DomainEvent) -> Option<SeatHold> {
    serde_json::from_value(ev.data.get("hold")?.clone()).ok()
}

fn apply(holds: &mut HashMap<ObjectId, SeatHold>, ev: &DomainEvent) {
    let at = DateTime::from_millis(ev.occurred_at.timestamp_millis());
    let status = match ev.kind.as_str() {
        "hold.created" => {
            if let Some(h) = hold_of(ev) {
                holds.entry(h.id).or_insert(h);
            }
            return;
        }
        "hold.released" => HoldStatus::Released,
        "hold.expired" => HoldStatus::Expired,
        "hold.converted" => HoldStatus::ConvertedToBooking,
        _ => return,
    };
    if let Some(h) = holds.get_mut(&ev.entity_id) {
        h.status = status;
        h.updated_at = at;
        if status == HoldStatus::ConvertedToBooking {
            h.converted_to_booking_id = ev
                .after
                .as_ref()
                .and_then(|a| a.get("convertedToBookingId"))
                .and_then(|v| v.as_str())
                .and_then(|s| ObjectId::parse_str(s).ok());
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
            if let Ok(ev) = serde_json::from_slice::<DomainEvent>(&m.payload) {
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
    use domain::Money;
    use serde_json::json;

    fn event(kind: &str, id: ObjectId, data: serde_json::Value) -> DomainEvent {
        serde_json::from_value(json!({
            "id": format!("c:{kind}"), "type": kind, "occurredAt": "2026-12-01T10:00:00Z",
            "commandId": "c", "action": kind, "entityType": "hold", "entityId": {"$oid": id.to_hex()},
            "after": {"convertedToBookingId": ObjectId::new().to_hex()}, "data": data,
        }))
        .expect("a domain event")
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
        let created = event("hold.created", id, json!({"hold": hold}));
        apply(&mut holds, &created);
        assert_eq!(holds[&id], hold);
        apply(&mut holds, &event("hold.converted", id, json!({})));
        assert_eq!(holds[&id].status, HoldStatus::ConvertedToBooking);
        assert!(holds[&id].converted_to_booking_id.is_some());
        // A redelivered creation does not bring the hold back to active.
        apply(&mut holds, &created);
        assert_eq!(holds[&id].status, HoldStatus::ConvertedToBooking);
    }
}
