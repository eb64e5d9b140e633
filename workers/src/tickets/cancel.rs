//! What a cancellation does to a booking's tickets: each `cancelled`, and its QR code
//! invalidated (`isValid: false`, `invalidatedAt`, `invalidationReason`), so gates refuse
//! them with that reason. Harmless to repeat: the first cancellation's time and reason
//! stay.
//!
//! Tickets are found by their ids, derived from the booking's seats (reads by `_id` are
//! the ones FerretDB pushes down), and written under their document leases, since a scan
//! or a download may write the same ticket at the same moment.

use bson::{doc, Bson};
use domain::{DateTime, ObjectId};
use futures::future::join_all;
use futures::TryStreamExt;

use crate::app::context::{Ctx, HandlerError};
use crate::store::leases::with_lease;
use crate::store::names;
use crate::tickets::{seat_ids, ticket_id_for};

pub async fn cancel_tickets(
    ctx: &Ctx,
    booking_id: ObjectId,
    reason: &str,
) -> Result<(), HandlerError> {
    let booking = ctx
        .store
        .col(names::BOOKINGS)
        .find_one(doc! {"_id": booking_id})
        .await?;
    let ids: Vec<ObjectId> = match booking {
        Some(b) => seat_ids(&b)
            .iter()
            .map(|s| ticket_id_for(&booking_id, s))
            .collect(),
        None => ctx
            .store
            .col(names::TICKETS)
            .find(doc! {"bookingId": booking_id})
            .projection(doc! {"_id": 1})
            .await?
            .try_collect::<Vec<_>>()
            .await?
            .iter()
            .filter_map(|d| d.get_object_id("_id").ok())
            .collect(),
    };
    for r in join_all(ids.iter().map(|id| cancel_ticket(ctx, *id, reason))).await {
        r?;
    }
    Ok(())
}

async fn cancel_ticket(ctx: &Ctx, ticket_id: ObjectId, reason: &str) -> Result<(), HandlerError> {
    let tickets = ctx.store.col(names::TICKETS);
    // Not issued yet: the ticketing worker checks the booking after issuing.
    let Some(ticket) = tickets.find_one(doc! {"_id": ticket_id}).await? else {
        return Ok(());
    };
    let now = DateTime::now();
    // Gates first: from this write on, the ticket is refused at every gate.
    crate::tickets::gate::record_cancelled(ctx, &ticket, reason).await?;
    if ticket.get_str("status").ok() != Some("cancelled") {
        with_lease(ctx, names::TICKETS, ticket_id, || async {
            tickets
                .update_one(
                    doc! {"_id": ticket_id},
                    doc! {"$set": {"status": "cancelled", "updatedAt": now}},
                )
                .await?;
            Ok(())
        })
        .await?;
    }
    let Ok(qr_id) = ticket.get_object_id("qrCodeId") else {
        return Ok(());
    };
    let qr_codes = ctx.store.col(names::QR_CODES);
    with_lease(ctx, names::QR_CODES, qr_id, || async {
        let valid = qr_codes
            .find_one(doc! {"_id": qr_id})
            .await?
            .is_some_and(|q| !matches!(q.get("isValid"), Some(Bson::Boolean(false))));
        if valid {
            qr_codes
                .update_one(
                    doc! {"_id": qr_id},
                    doc! {"$set": {
                        "isValid": false, "invalidatedAt": now, "invalidationReason": reason,
                        "updatedAt": now,
                    }},
                )
                .await?;
        }
        Ok(())
    })
    .await
}
