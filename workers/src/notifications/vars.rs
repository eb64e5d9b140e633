//! The notifications' template variables, read from the store: the show, the booking
//! (reference, total, seats, tickets) and money as text.

use bson::{doc, Document};
use domain::ObjectId;
use futures::TryStreamExt;
use serde_json::{json, Value};

use crate::app::context::{Ctx, HandlerError};
use crate::store::{bson_to_json, names};

pub(super) fn money_text(d: Option<&Document>) -> String {
    d.map(|m| {
        format!(
            "{} {}",
            m.get_str("amount").unwrap_or_default(),
            m.get_str("currency").unwrap_or_default()
        )
    })
    .unwrap_or_default()
}

pub(super) fn minor_text(minor: i64, currency: &str) -> String {
    let cur = domain::Currency::parse(currency).unwrap_or(domain::Currency::USD);
    domain::Money::from_minor(minor, cur).to_string()
}

/// Template variables about the show.
pub(super) async fn event_vars(
    ctx: &Ctx,
    event_id: Option<ObjectId>,
) -> Result<(Value, Option<Document>), HandlerError> {
    let Some(event_id) = event_id else {
        return Ok((json!({}), None));
    };
    let ev = ctx
        .store
        .col(names::EVENTS)
        .find_one(doc! {"_id": event_id})
        .await?;
    let Some(e) = ev else {
        return Ok((json!({}), None));
    };
    let date = e
        .get_datetime("eventDate")
        .ok()
        .map(|d| d.to_chrono().format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    Ok((
        json!({
            "eventName": e.get_str("name").unwrap_or_default(),
            "eventDate": date,
            "eventTime": e.get_str("eventTime").unwrap_or_default(),
            "venue": e.get_str("venue").unwrap_or_default(),
            "city": e.get_str("city").unwrap_or_default(),
        }),
        Some(e),
    ))
}

pub(super) fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

/// The booking's template variables: reference, total, seats, and tickets when issued.
pub(super) async fn booking_vars(ctx: &Ctx, booking: &Document) -> Result<Value, HandlerError> {
    let booking_id = booking.get_object_id("_id").unwrap_or_default();
    let seat_docs: Vec<Document> = ctx
        .store
        .col(names::BOOKING_SEATS)
        .find(doc! {"bookingId": booking_id})
        .await?
        .try_collect()
        .await?;
    let mut seats = Vec::new();
    let mut labels = std::collections::HashMap::new();
    for bs in &seat_docs {
        let seat_id = bs.get_object_id("seatId").unwrap_or_default();
        let seat = ctx
            .store
            .col(names::SEATS)
            .find_one(doc! {"_id": seat_id})
            .await?
            .unwrap_or_default();
        let label = format!(
            "{}{}",
            seat.get_str("row").unwrap_or_default(),
            seat.get("number")
                .map(|n| bson_to_json(n).to_string())
                .unwrap_or_default()
        );
        labels.insert(seat_id, label.clone());
        seats.push(json!({
            "label": label,
            "section": seat.get_str("section").unwrap_or_default(),
            "price": money_text(bs.get_document("priceAtBooking").ok()),
        }));
    }
    let tickets: Vec<Value> = ctx
        .store
        .col(names::TICKETS)
        .find(doc! {"bookingId": booking_id})
        .await?
        .try_collect::<Vec<Document>>()
        .await?
        .iter()
        .map(|t| {
            let seat = t
                .get_object_id("seatId")
                .ok()
                .and_then(|s| labels.get(&s).cloned())
                .unwrap_or_default();
            json!({"ticketNumber": t.get_str("ticketNumber").unwrap_or_default(), "seat": seat})
        })
        .collect();
    Ok(json!({
        "bookingId": booking_id.to_hex(),
        "bookingReference": booking.get_str("bookingReference").unwrap_or_default(),
        "total": money_text(booking.get_document("finalPrice").ok()),
        "seats": seats,
        "tickets": tickets,
    }))
}

pub(super) async fn find(
    ctx: &Ctx,
    col: &str,
    id: ObjectId,
) -> Result<Option<Document>, HandlerError> {
    Ok(ctx.store.col(col).find_one(doc! {"_id": id}).await?)
}

/// The booking's reference for a message (empty when there is no booking).
pub(super) async fn booking_reference(
    ctx: &Ctx,
    booking_id: Option<ObjectId>,
) -> Result<String, HandlerError> {
    let Some(b) = booking_id else {
        return Ok(String::new());
    };
    Ok(find(ctx, names::BOOKINGS, b)
        .await?
        .and_then(|b| b.get_str("bookingReference").ok().map(str::to_string))
        .unwrap_or_default())
}
