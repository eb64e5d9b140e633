//! The holds projection: the one writer of `seat_holds` documents, inserted from
//! `hold.created` and following each hold's status.

use std::collections::HashMap;
use std::future::IntoFuture;

use bson::{doc, Document};
use domain::hold::HoldStatus;
use domain::{DateTime, ObjectId};
use futures::FutureExt;
use streams::events::{DomainEvent, EventEnvelope};

use super::{bounded, persist};
use crate::app::context::{Ctx, HandlerError};
use crate::store::{is_duplicate_key, names};

/// The `seat_holds` documents, of which this projection is the one writer: a hold is
/// inserted from its `hold.created` event (which carries the whole hold), and its status
/// follows `hold.released`, `hold.expired` and `hold.converted`. Creations go first (one
/// `insert_many`; duplicates are earlier deliveries), then each touched hold's last status.
pub(super) async fn apply_holds(ctx: &Ctx, events: &[EventEnvelope]) -> Result<(), HandlerError> {
    let col = ctx.store.col(names::SEAT_HOLDS);
    let mut created = Vec::new();
    let mut changed: HashMap<ObjectId, Document> = HashMap::new();
    let mut order = Vec::new();
    for e in events {
        let at = DateTime::from_millis(e.occurred_at.timestamp_millis());
        let (id, set) = match &e.event {
            DomainEvent::HoldCreated(h) => {
                created.push(crate::store::to_doc(&h.hold)?);
                continue;
            }
            // `endedAt` starts the retention a MongoDB TTL index purges after (see
            // `store::indexes`).
            DomainEvent::HoldReleased(h) => (
                h.hold_id,
                doc! {"status": HoldStatus::Released.as_str(), "updatedAt": at, "endedAt": at},
            ),
            DomainEvent::HoldExpired(h) => (
                h.hold_id,
                doc! {"status": HoldStatus::Expired.as_str(), "updatedAt": at, "endedAt": at},
            ),
            DomainEvent::HoldConverted(h) => (
                h.hold_id,
                doc! {"status": HoldStatus::ConvertedToBooking.as_str(), "convertedToBookingId": h.booking_id, "updatedAt": at, "endedAt": at},
            ),
            DomainEvent::BookingCreated(_)
            | DomainEvent::BookingConfirmed(_)
            | DomainEvent::BookingCancelled(_)
            | DomainEvent::BookingExpired(_)
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
            | DomainEvent::CommandRefused(_) => continue,
        };
        if !changed.contains_key(&id) {
            order.push(id);
        }
        changed.insert(id, set);
    }
    if !created.is_empty() {
        let r = persist(|| {
            col.insert_many(created.clone())
                .ordered(false)
                .into_future()
        })
        .await;
        match r {
            Ok(_) => {}
            Err(e) if is_duplicate_key(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let writes = order.into_iter().map(|id| {
        let (col, set) = (col.clone(), changed[&id].clone());
        async move {
            persist(|| {
                col.update_one(doc! {"_id": id}, doc! {"$set": set.clone()})
                    .into_future()
            })
            .await?;
            Ok(())
        }
        .boxed()
    });
    bounded(writes.collect()).await
}
