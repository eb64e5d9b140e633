//! What a cancellation does to a booking's tickets: cancelled, and their QR codes
//! invalidated, so gates refuse them. Harmless to repeat.

use bson::{doc, Bson};
use domain::{DateTime, ObjectId};
use futures::TryStreamExt;

use crate::context::{Ctx, HandlerError};
use crate::store::names;

pub async fn cancel_tickets(
    ctx: &Ctx,
    booking_id: ObjectId,
    reason: &str,
) -> Result<(), HandlerError> {
    let tickets = ctx.store.col(names::TICKETS);
    let ids: Vec<ObjectId> = tickets
        .find(doc! {"bookingId": booking_id})
        .projection(doc! {"_id": 1})
        .await?
        .try_collect::<Vec<_>>()
        .await?
        .iter()
        .filter_map(|d| d.get_object_id("_id").ok())
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let now = DateTime::now();
    for id in &ids {
        tickets
            .update_one(
                doc! {"_id": id},
                doc! {"$set": {"status": "cancelled", "updatedAt": now}},
            )
            .await?;
    }
    let ticket_ids: Vec<Bson> = ids.iter().map(|i| Bson::ObjectId(*i)).collect();
    ctx.store
        .col(names::QR_CODES)
        .update_many(
            doc! {"ticketId": {"$in": ticket_ids}},
            doc! {"$set": {"isValid": false, "invalidatedAt": now, "invalidationReason": reason, "updatedAt": now}},
        )
        .await?;
    Ok(())
}
