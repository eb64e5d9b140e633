//! The notifications' template variables, read from the store: the show, the booking
//! (reference, total, seats, tickets) and money as text.

use bson::doc;
use domain::entities::{Booking, BookingSeat, Ticket};
use domain::event::Event;
use domain::seat::Seat;
use domain::{Currency, Money, ObjectId};
use futures::TryStreamExt;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::app::context::{Ctx, HandlerError};
use crate::store::names;
use crate::store::repo::Repo;

pub(super) fn minor_text(minor: i64, currency: Currency) -> String {
    Money::from_minor(minor, currency).to_string()
}

/// Template variables about the show, and the show.
pub(super) async fn event_vars(
    ctx: &Ctx,
    event_id: Option<ObjectId>,
) -> Result<(Value, Option<Event>), HandlerError> {
    let Some(event_id) = event_id else {
        return Ok((json!({}), None));
    };
    let Some(e) = Repo::<Event>::new(&ctx.store).get(event_id).await? else {
        return Ok((json!({}), None));
    };
    let vars = json!({
        "eventName": e.name,
        "eventDate": e.event_date.to_chrono().format("%Y-%m-%d").to_string(),
        "eventTime": e.event_time,
        "venue": e.venue,
        "city": e.city,
    });
    Ok((vars, Some(e)))
}

pub(super) fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

/// The documents of `collection` whose `bookingId` is `booking_id`, decoded.
async fn of_booking<T: DeserializeOwned + Send + Sync>(
    ctx: &Ctx,
    collection: &str,
    booking_id: ObjectId,
) -> Result<Vec<T>, HandlerError> {
    Ok(ctx
        .store
        .db()
        .collection::<T>(collection)
        .find(doc! {"bookingId": booking_id})
        .await?
        .try_collect()
        .await?)
}

/// The booking's template variables: reference, total, seats, and tickets when issued.
pub(super) async fn booking_vars(ctx: &Ctx, booking: &Booking) -> Result<Value, HandlerError> {
    let lines: Vec<BookingSeat> = of_booking(ctx, names::BOOKING_SEATS, booking.id).await?;
    let seat_repo = Repo::<Seat>::new(&ctx.store);
    let mut seats = Vec::new();
    let mut labels = std::collections::HashMap::new();
    for line in &lines {
        let seat = seat_repo.get(line.seat_id).await?;
        let label = seat
            .as_ref()
            .map(|s| format!("{}{}", s.row, s.number))
            .unwrap_or_default();
        labels.insert(line.seat_id, label.clone());
        seats.push(json!({
            "label": label,
            "section": seat.map(|s| s.section).unwrap_or_default(),
            "price": line.price_at_booking.to_string(),
        }));
    }
    let tickets: Vec<Ticket> = of_booking(ctx, names::TICKETS, booking.id).await?;
    let tickets: Vec<Value> = tickets
        .iter()
        .map(|t| {
            let seat = labels.get(&t.seat_id).cloned().unwrap_or_default();
            json!({"ticketNumber": t.ticket_number.as_str(), "seat": seat})
        })
        .collect();
    Ok(json!({
        "bookingId": booking.id.to_hex(),
        "bookingReference": booking.booking_reference.as_str(),
        "total": booking.final_price.to_string(),
        "seats": seats,
        "tickets": tickets,
    }))
}

/// The booking's reference for a message (empty when there is no booking).
pub(super) async fn booking_reference(
    ctx: &Ctx,
    booking_id: Option<ObjectId>,
) -> Result<String, HandlerError> {
    let Some(b) = booking_id else {
        return Ok(String::new());
    };
    Ok(Repo::<Booking>::new(&ctx.store)
        .get(b)
        .await?
        .map(|b| b.booking_reference.as_str().to_string())
        .unwrap_or_default())
}
