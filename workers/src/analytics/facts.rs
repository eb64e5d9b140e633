//! The analytics facts: one document per sale, cancellation or refund, inserted once
//! (its `_id` derives from the domain event id), and read back typed for the metrics.

use bson::{doc, Bson, Document};
use chrono::Utc;
use domain::ids::derive_object_id;
use domain::{Currency, DateTime, ObjectId};
use futures::TryStreamExt;
use streams::events::{DomainEvent, EventEnvelope};

use super::FACTS;
use crate::app::context::{Ctx, HandlerError};
use crate::store::{is_duplicate_key, names};

/// The fact of one domain event, inserted once. Returns the show it belongs to.
pub(super) async fn record(
    ctx: &Ctx,
    ev: &EventEnvelope,
) -> Result<Option<ObjectId>, HandlerError> {
    let at = DateTime::from_millis(ev.occurred_at.timestamp_millis());
    let id = derive_object_id("afact", &ev.id, ev.occurred_at.timestamp());
    let (event_id, facts) = match &ev.event {
        DomainEvent::BookingConfirmed(e) => (
            e.event_id,
            doc! {
                "kind": "sale", "bookingId": e.booking_id,
                "amountMinor": e.final_price.minor(), "currency": e.final_price.currency().as_str(),
                "seats": sale_seats(ctx, e.booking_id).await?,
            },
        ),
        DomainEvent::BookingCancelled(e) => (
            e.event_id,
            doc! {
                "kind": "cancellation", "bookingId": e.booking_id,
                "wasConfirmed": e.was_paid().unwrap_or(false), "seatCount": e.seat_ids.len() as i64,
            },
        ),
        DomainEvent::RefundProcessed(e) => (
            e.event_id,
            doc! {
                "kind": "refund", "amountMinor": e.refund_minor,
                "currency": e.currency.unwrap_or(Currency::USD).as_str(),
            },
        ),
        // Not a sale, a cancellation or a refund.
        DomainEvent::HoldCreated(_)
        | DomainEvent::HoldReleased(_)
        | DomainEvent::HoldExpired(_)
        | DomainEvent::HoldConverted(_)
        | DomainEvent::BookingCreated(_)
        | DomainEvent::BookingExpired(_)
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
        | DomainEvent::CommandRefused(_) => return Ok(None),
    };
    let mut fact = doc! {"_id": id, "eventId": event_id, "at": at, "domainEventId": &ev.id};
    fact.extend(facts);
    match ctx.store.col(FACTS).insert_one(fact).await {
        Ok(_) => {}
        Err(e) if is_duplicate_key(&e) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(Some(event_id))
}

/// The seats of a sale as its fact keeps them: label, section and price paid.
async fn sale_seats(ctx: &Ctx, booking_id: ObjectId) -> Result<Vec<Document>, HandlerError> {
    let booking_seats: Vec<Document> = ctx
        .store
        .col(names::BOOKING_SEATS)
        .find(doc! {"bookingId": booking_id})
        .await?
        .try_collect()
        .await?;
    let mut seats = Vec::new();
    for bs in &booking_seats {
        let seat_id = bs.get_object_id("seatId").unwrap_or_default();
        let seat = ctx
            .store
            .col(names::SEATS)
            .find_one(doc! {"_id": seat_id})
            .await?
            .unwrap_or_default();
        let number = match seat.get("number") {
            Some(Bson::Int32(n)) => n.to_string(),
            Some(Bson::Int64(n)) => n.to_string(),
            Some(Bson::String(s)) => s.clone(),
            _ => String::new(),
        };
        let price = bs
            .get_document("priceAtBooking")
            .ok()
            .and_then(|p| p.get_i64("amountMinor").ok())
            .unwrap_or(0);
        seats.push(doc! {
            "seatId": seat_id,
            "label": format!("{}{}", seat.get_str("row").unwrap_or_default(), number),
            "section": seat.get_str("section").unwrap_or_default(),
            "priceMinor": price,
        });
    }
    Ok(seats)
}

/// One fact, typed.
#[derive(Debug, Clone)]
pub(super) struct Fact {
    pub(super) kind: String,
    pub(super) at: chrono::DateTime<Utc>,
    pub(super) amount_minor: i64,
    pub(super) currency: String,
    /// (label, section, price)
    pub(super) seats: Vec<(String, String, i64)>,
    pub(super) was_confirmed: bool,
    pub(super) seat_count: i64,
}

pub(super) fn fact_of(d: &Document) -> Fact {
    let seats = d
        .get_array("seats")
        .map(|a| {
            a.iter()
                .filter_map(Bson::as_document)
                .map(|s| {
                    (
                        s.get_str("label").unwrap_or_default().to_string(),
                        s.get_str("section").unwrap_or_default().to_string(),
                        s.get_i64("priceMinor").unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Fact {
        kind: d.get_str("kind").unwrap_or_default().to_string(),
        at: d
            .get_datetime("at")
            .map(|t| t.to_chrono())
            .unwrap_or_else(|_| Utc::now()),
        amount_minor: d.get_i64("amountMinor").unwrap_or(0),
        currency: d.get_str("currency").unwrap_or("USD").to_string(),
        seats,
        was_confirmed: d.get_bool("wasConfirmed").unwrap_or(false),
        seat_count: d.get_i64("seatCount").unwrap_or(0),
    }
}
