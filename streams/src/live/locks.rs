//! The seat locks as this process sees them: every key of the `seat-locks` bucket, kept
//! in memory by following the bucket's stream (see [`super::tail`]).
//!
//! The bucket holds two kinds of keys per event:
//! - `<eventId>.<seatId>`: a seat's lock; its value names the owner (a hold id while
//!   held, `b:<bookingId>` while a booking waits for payment, `s:<bookingId>` once sold);
//!   no key means the seat is for sale;
//! - `<eventId>.status`: the event's sale status (`draft`, `published`, `cancelled`,
//!   `completed`), written by the catalog before anything else of a status change.
//!
//! Both live in one stream, so their order is total: a hold that reads `published` after
//! its own lock writes are applied knows that a cancellation written before those writes
//! would have been seen, and that a cancellation written after them will see its locks.
//! That is how the hold path answers from memory and stays correct when an event is
//! cancelled concurrently.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::{self, Message};
use domain::ObjectId;
use tokio::sync::watch;

use super::tail::{Tail, ViewError};

/// The suffix of an event's sale-status key in the `seat-locks` bucket.
pub const STATUS_KEY: &str = "status";

/// The key of an event's sale status: `<eventId>.status`.
pub fn status_key(event: &ObjectId) -> String {
    format!("{}.{STATUS_KEY}", event.to_hex())
}

/// Who holds a seat, from its lock's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatLock {
    /// Held by this hold.
    Held(ObjectId),
    /// Booked by this booking, waiting for its payment.
    Pending(ObjectId),
    /// Sold to this booking.
    Sold(ObjectId),
}

impl SeatLock {
    pub fn parse(value: &[u8]) -> Option<SeatLock> {
        let v = std::str::from_utf8(value).ok()?;
        let oid = |s: &str| ObjectId::parse_str(s).ok();
        match v.split_once(':') {
            Some(("b", b)) => oid(b).map(SeatLock::Pending),
            Some(("s", b)) => oid(b).map(SeatLock::Sold),
            Some(_) => None,
            None => oid(v).map(SeatLock::Held),
        }
    }

    /// The seat's status as the API shows it.
    pub fn api_status(&self) -> &'static str {
        match self {
            SeatLock::Held(_) | SeatLock::Pending(_) => "held",
            SeatLock::Sold(_) => "booked",
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct EventLocks {
    pub seats: HashMap<ObjectId, SeatLock>,
    pub status: Option<String>,
    /// Raised by every change of this event's locks or status: two reads that see the
    /// same version see the same state (what a rendered seat map may be cached by).
    pub version: u64,
}

#[derive(Clone)]
pub struct LockView {
    events: Arc<RwLock<HashMap<ObjectId, EventLocks>>>,
    tail: Tail,
}

/// What one message of the bucket's stream does.
#[derive(Debug, PartialEq)]
enum Change {
    Seat(ObjectId, ObjectId, Option<SeatLock>),
    Status(ObjectId, Option<String>),
}

fn is_removal(m: &Message) -> bool {
    m.headers.as_ref().is_some_and(|h| {
        h.get("KV-Operation").is_some_and(|v| {
            let v = v.as_str();
            v == "DEL" || v == "PURGE"
        }) || h.get("Nats-Marker-Reason").is_some()
    })
}

fn change_of(prefix: &str, m: &Message) -> Option<Change> {
    let key = m.subject.as_str().strip_prefix(prefix)?;
    let (event, rest) = key.split_once('.')?;
    let event = ObjectId::parse_str(event).ok()?;
    let removed = is_removal(m) || m.payload.is_empty();
    if rest == STATUS_KEY {
        let status = (!removed).then(|| String::from_utf8_lossy(&m.payload).into_owned());
        return Some(Change::Status(event, status));
    }
    let seat = ObjectId::parse_str(rest).ok()?;
    let lock = if removed {
        None
    } else {
        SeatLock::parse(&m.payload)
    };
    Some(Change::Seat(event, seat, lock))
}

impl LockView {
    /// Follows the bucket `bucket` (its stream `KV_<bucket>`) from its first entry.
    pub fn start(
        js: jetstream::Context,
        bucket: &str,
        stopped: watch::Receiver<bool>,
    ) -> (LockView, tokio::task::JoinHandle<()>) {
        let events: Arc<RwLock<HashMap<ObjectId, EventLocks>>> = Default::default();
        let state = events.clone();
        let prefix = format!("$KV.{bucket}.");
        let apply = move |_seq: u64, m: &Message| {
            let Some(change) = change_of(&prefix, m) else {
                return;
            };
            let mut map = state.write().expect("not poisoned");
            match change {
                Change::Seat(event, seat, Some(lock)) => {
                    let e = map.entry(event).or_default();
                    e.seats.insert(seat, lock);
                    e.version += 1;
                }
                Change::Seat(event, seat, None) => {
                    if let Some(e) = map.get_mut(&event) {
                        e.seats.remove(&seat);
                        e.version += 1;
                    }
                }
                Change::Status(event, status) => {
                    let e = map.entry(event).or_default();
                    e.status = status;
                    e.version += 1;
                }
            }
        };
        // LastPerSubject: the current value of every key, then every change.
        let (tail, task) = Tail::start(
            js,
            format!("KV_{bucket}"),
            DeliverPolicy::LastPerSubject,
            apply,
            stopped,
        );
        (LockView { events, tail }, task)
    }

    /// The read barrier (see [`Tail::sync`]).
    pub async fn sync(&self) -> Result<(), ViewError> {
        self.tail.sync().await
    }

    /// Waits until this view has applied a revision this process wrote.
    pub async fn wait_for(&self, revision: u64) -> Result<(), ViewError> {
        self.tail.wait_for(revision, super::tail::SYNC_WAIT).await
    }

    /// The event's sale status, if the catalog has written one.
    pub fn status(&self, event: &ObjectId) -> Option<String> {
        self.events
            .read()
            .expect("not poisoned")
            .get(event)
            .and_then(|e| e.status.clone())
    }

    /// Runs `f` on the event's locks (an empty set when none is known).
    pub fn with_event<T>(&self, event: &ObjectId, f: impl FnOnce(&EventLocks) -> T) -> T {
        let map = self.events.read().expect("not poisoned");
        match map.get(event) {
            Some(e) => f(e),
            None => f(&EventLocks::default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_values_name_their_owner() {
        let id = ObjectId::new();
        assert_eq!(
            SeatLock::parse(id.to_hex().as_bytes()),
            Some(SeatLock::Held(id))
        );
        assert_eq!(
            SeatLock::parse(format!("b:{}", id.to_hex()).as_bytes()),
            Some(SeatLock::Pending(id))
        );
        assert_eq!(
            SeatLock::parse(format!("s:{}", id.to_hex()).as_bytes()),
            Some(SeatLock::Sold(id))
        );
        assert_eq!(SeatLock::parse(b"x:nothing"), None);
        assert_eq!(SeatLock::Pending(id).api_status(), "held");
        assert_eq!(SeatLock::Sold(id).api_status(), "booked");
    }
}
