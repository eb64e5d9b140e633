//! What a cancellation does to a booking's tickets: each `cancelled`, and its QR code
//! invalidated (`isValid: false`, `invalidatedAt`, `invalidationReason`), so gates refuse
//! them with that reason. Harmless to repeat: the first cancellation's time and reason
//! stay.
//!
//! Tickets are found by their ids, derived from the booking's seats (reads by `_id` are
//! the ones FerretDB pushes down), and written under their document leases, since a scan
//! or a download may write the same ticket at the same moment.

use bson::doc;
use domain::entities::{QrCode, Ticket};
use domain::tickets::decide;
use domain::ObjectId;
use futures::future::join_all;
use futures::TryStreamExt;

use crate::app::context::{Ctx, HandlerError};
use crate::store::leases::with_lease;
use crate::store::names;
use crate::store::repo::Repo;
use crate::tickets::{seat_ids, ticket_id_for};

pub(crate) async fn cancel_tickets(
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
    let tickets = Repo::<Ticket>::new(&ctx.store);
    // Not issued yet: the ticketing worker checks the booking after issuing.
    let Some(ticket) = tickets.get(ticket_id).await? else {
        return Ok(());
    };
    // Gates first: from this write on, the ticket is refused at every gate.
    crate::tickets::gate::record_cancelled(ctx, &ticket, reason).await?;
    with_lease(ctx, names::TICKETS, ticket_id, || async {
        let Some(now_ticket) = tickets.get(ticket_id).await? else {
            return Ok(());
        };
        let change = decide::cancel_ticket(&now_ticket, None, reason, ctx.now_stored());
        if let Some(t) = change.ticket {
            let set = doc! {"status": t.status.as_str(), "updatedAt": t.updated_at};
            tickets.patch(ticket_id, set).await?;
        }
        Ok(())
    })
    .await?;
    let qr_id = ticket.qr_code_id;
    let qr_codes = Repo::<QrCode>::new(&ctx.store);
    with_lease(ctx, names::QR_CODES, qr_id, || async {
        let Some(qr) = qr_codes.get(qr_id).await? else {
            return Ok(());
        };
        if let Some(q) = decide::invalidate_qr(&qr, reason, ctx.now_stored()) {
            let set = doc! {
                "isValid": q.is_valid, "invalidatedAt": q.invalidated_at,
                "invalidationReason": q.invalidation_reason.as_deref(), "updatedAt": q.updated_at,
            };
            qr_codes.patch(qr_id, set).await?;
        }
        Ok(())
    })
    .await
}
