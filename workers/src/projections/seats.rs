//! The seats projection: the one writer of seat documents, and the recount of each
//! touched event's `availableSeats` after the seat writes it follows.

use std::collections::{HashMap, HashSet};
use std::future::IntoFuture;

use bson::{doc, Document};
use domain::{DateTime, ObjectId};
use futures::FutureExt;
use streams::events::{DomainEvent, EventEnvelope};

use super::{bounded, holds::apply_holds, persist, scans::apply_scans};
use crate::app::context::{Ctx, HandlerError};
use crate::store::names;

/// What a domain event does to a seat document.
#[derive(Debug, Clone, PartialEq)]
enum SeatChange {
    Held {
        user: Option<ObjectId>,
        hold: ObjectId,
        until: Option<bson::DateTime>,
    },
    Pending {
        booking: ObjectId,
        until: Option<bson::DateTime>,
    },
    Booked {
        user: Option<ObjectId>,
        booking: ObjectId,
    },
    Available,
}

fn time_of(t: &chrono::DateTime<chrono::Utc>) -> Option<bson::DateTime> {
    Some(bson::DateTime::from_millis(t.timestamp_millis()))
}

/// The seat changes of one domain event, in order.
fn seat_changes(e: &DomainEvent) -> Vec<(ObjectId, SeatChange)> {
    let (seats, change) = match e {
        DomainEvent::HoldCreated(h) => (
            &h.seat_ids,
            SeatChange::Held {
                user: Some(h.user_id),
                hold: h.hold_id,
                until: time_of(&h.expires_at),
            },
        ),
        DomainEvent::HoldReleased(h) | DomainEvent::HoldExpired(h) => {
            (&h.seat_ids, SeatChange::Available)
        }
        DomainEvent::BookingCreated(b) => (
            &b.seat_ids,
            SeatChange::Pending {
                booking: b.booking_id,
                until: time_of(&b.expires_at),
            },
        ),
        DomainEvent::BookingConfirmed(b) => (
            &b.seat_ids,
            SeatChange::Booked {
                user: Some(b.user_id),
                booking: b.booking_id,
            },
        ),
        DomainEvent::BookingCancelled(b) | DomainEvent::BookingExpired(b) => {
            (&b.seat_ids, SeatChange::Available)
        }
        // A converted hold's seats follow its booking's events.
        DomainEvent::HoldConverted(_)
        | DomainEvent::RefundProcessed(_)
        | DomainEvent::PaymentInitiated(_)
        | DomainEvent::PaymentFailed(_)
        | DomainEvent::PaymentCompleted(_)
        | DomainEvent::TicketsIssued(_)
        | DomainEvent::TicketDownloaded(_)
        | DomainEvent::TicketScanned(_)
        | DomainEvent::TicketScanRefused(_)
        | DomainEvent::EventCreated(_)
        | DomainEvent::EventPublished(_)
        | DomainEvent::EventCancelled(_)
        | DomainEvent::UserRegistered(_)
        | DomainEvent::UserLoggedOut(_)
        | DomainEvent::UserSuspended(_)
        | DomainEvent::UserVerified(_)
        | DomainEvent::UserPasswordReset(_)
        | DomainEvent::CommandRefused(_) => return Vec::new(),
    };
    seats.iter().map(|s| (*s, change.clone())).collect()
}

/// Whether an event can change its show's available seats (the recount follows it).
fn touches_seats(e: &DomainEvent) -> bool {
    match e {
        DomainEvent::HoldCreated(_)
        | DomainEvent::HoldReleased(_)
        | DomainEvent::HoldExpired(_)
        | DomainEvent::HoldConverted(_)
        | DomainEvent::BookingCreated(_)
        | DomainEvent::BookingConfirmed(_)
        | DomainEvent::BookingCancelled(_)
        | DomainEvent::BookingExpired(_)
        | DomainEvent::EventCreated(_)
        | DomainEvent::EventPublished(_)
        | DomainEvent::EventCancelled(_) => true,
        DomainEvent::RefundProcessed(_)
        | DomainEvent::PaymentInitiated(_)
        | DomainEvent::PaymentFailed(_)
        | DomainEvent::PaymentCompleted(_)
        | DomainEvent::TicketsIssued(_)
        | DomainEvent::TicketDownloaded(_)
        | DomainEvent::TicketScanned(_)
        | DomainEvent::TicketScanRefused(_)
        | DomainEvent::UserRegistered(_)
        | DomainEvent::UserLoggedOut(_)
        | DomainEvent::UserSuspended(_)
        | DomainEvent::UserVerified(_)
        | DomainEvent::UserPasswordReset(_)
        | DomainEvent::CommandRefused(_) => false,
    }
}

/// The seats projection: the one writer of seat documents. It applies the batch's seat
/// changes in stream order (coalesced per seat: only the last state is written, with
/// `version` raised by the number of changes), then recounts every touched event.
///
/// NOTE: seat documents follow the KV locks (the truth) by the projection's lag; the hot
/// path writes none of them. On FerretDB each update is its own SQLite transaction
/// (~5 ms), so a storm's seat writes are taken off the hold's latency path and coalesced.
pub(super) async fn apply_counters(
    ctx: &Ctx,
    events: &[EventEnvelope],
) -> Result<(), HandlerError> {
    apply_holds(ctx, events).await?;
    apply_scans(ctx, events).await?;
    let (order, last) = coalesced(events);
    let now = ctx.now_stored();
    let seats = ctx.store.col(names::SEATS);
    let writes = order.iter().map(|seat| {
        let (change, n) = &last[seat];
        let update = seat_update(change, *n, now);
        let (col, seat) = (seats.clone(), *seat);
        async move {
            persist(|| {
                col.update_one(doc! {"_id": seat}, update.clone())
                    .into_future()
            })
            .await?;
            Ok(())
        }
        .boxed()
    });
    // Bounded: a catch-up batch may touch thousands of seats.
    bounded(writes.collect()).await?;
    let touched: HashSet<ObjectId> = events
        .iter()
        .filter(|e| touches_seats(&e.event))
        .filter_map(|e| e.show_id())
        .collect();
    for event_id in touched {
        recount(ctx, event_id).await?;
    }
    Ok(())
}

/// The batch's seat changes coalesced per seat: the seats in the order first changed,
/// and each one's last change with the number of its changes.
fn coalesced(events: &[EventEnvelope]) -> (Vec<ObjectId>, HashMap<ObjectId, (SeatChange, i64)>) {
    let mut last: HashMap<ObjectId, (SeatChange, i64)> = HashMap::new();
    let mut order: Vec<ObjectId> = Vec::new();
    for e in events {
        for (seat, change) in seat_changes(&e.event) {
            match last.get_mut(&seat) {
                Some(entry) => {
                    entry.0 = change;
                    entry.1 += 1;
                }
                None => {
                    order.push(seat);
                    last.insert(seat, (change, 1));
                }
            }
        }
    }
    (order, last)
}

/// The update of a seat document to its last change, `version` raised by `n` changes.
fn seat_update(change: &SeatChange, n: i64, now: DateTime) -> Document {
    match change {
        SeatChange::Held { user, hold, until } => doc! {
            "$set": {"status": "held", "heldBy": user, "heldUntil": until, "holdId": hold, "updatedAt": now},
            "$unset": {"bookedBy": "", "bookingId": ""},
            "$inc": {"version": n},
        },
        SeatChange::Pending { booking, until } => doc! {
            "$set": {"status": "held", "bookingId": booking, "heldUntil": until, "updatedAt": now},
            "$inc": {"version": n},
        },
        SeatChange::Booked { user, booking } => doc! {
            "$set": {"status": "booked", "bookedBy": user, "bookingId": booking, "updatedAt": now},
            "$unset": {"heldBy": "", "heldUntil": "", "holdId": ""},
            "$inc": {"version": n},
        },
        SeatChange::Available => doc! {
            "$set": {"status": "available", "updatedAt": now},
            "$unset": {"heldBy": "", "heldUntil": "", "holdId": "", "bookedBy": "", "bookingId": ""},
            "$inc": {"version": n},
        },
    }
}

/// Sets `availableSeats` of one event to the count of its available seats, under the
/// event document's lease (the catalog writes its status).
pub(crate) async fn recount(ctx: &Ctx, event_id: ObjectId) -> Result<u64, HandlerError> {
    let n = ctx
        .store
        .col(names::SEATS)
        .count_documents(doc! {"eventId": event_id, "status": "available"})
        .await?;
    let events = ctx.store.col(names::EVENTS);
    crate::store::leases::with_lease(ctx, names::EVENTS, event_id, || async {
        events
            .update_one(
                doc! {"_id": event_id},
                doc! {"$set": {"availableSeats": n as i64}},
            )
            .await?;
        Ok(())
    })
    .await?;
    Ok(n)
}
