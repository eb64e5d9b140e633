//! The queries worker's ticket reads: a booking's tickets, one ticket, its QR image, and
//! the QR verification keys. Tickets are read by `_id` (derived from the booking's seats),
//! never by a scan of the collection.
//!
//! NOTE: serving the QR image is a read, but it counts a download. The count is a state
//! change, so it is not written here: this worker publishes a `RecordTicketDownload`
//! command (fire and forget) that the ticketing worker applies.

use bson::{doc, Document};
use domain::entities::booking::BookingStatus;
use domain::ObjectId;
use futures::future::join_all;
use serde_json::{json, Value};
use streams::codes::{ErrorCode, Reply};
use streams::commands::{new_command_id, Command, CommandEnvelope, Issuer, TicketRef};

use crate::app::context::Ctx;
use crate::store::{api_json, names, StoreError};
use crate::tickets::{seat_ids, ticket_id_for};

fn owns(d: &Document, issuer: &Option<Issuer>) -> bool {
    match issuer {
        Some(i) if i.role.is_admin() => true,
        Some(i) => d.get_object_id("userId").ok() == Some(i.user_id),
        None => false,
    }
}

async fn ticket(ctx: &Ctx, id: ObjectId) -> Result<Option<Document>, StoreError> {
    Ok(ctx
        .store
        .col(names::TICKETS)
        .find_one(doc! {"_id": id})
        .await?)
}

/// Where a booking's tickets stand: `none` (not paid), `issuing` (paid; the ticketing
/// worker, which follows `booking.confirmed`, has not written them all yet), `issued`
/// (one per seat), `cancelled` (the booking was cancelled; any tickets are void).
pub(crate) fn tickets_status(booking: &Document, issued: usize) -> &'static str {
    match booking_status(booking) {
        Some(s) if has_tickets(s) && issued >= seat_ids(booking).len() => "issued",
        Some(s) if has_tickets(s) => "issuing",
        Some(BookingStatus::Cancelled) => "cancelled",
        _ => "none",
    }
}

fn booking_status(booking: &Document) -> Option<BookingStatus> {
    booking
        .get_str("status")
        .ok()
        .and_then(BookingStatus::parse)
}

/// Whether a booking in `status` has (or is getting) its tickets: it was paid.
fn has_tickets(status: BookingStatus) -> bool {
    matches!(status, BookingStatus::Confirmed | BookingStatus::Completed)
}

/// How many of a confirmed booking's tickets exist (read by `_id`); 0 for any other.
pub(crate) async fn issued_count(ctx: &Ctx, booking: &Document) -> Result<usize, StoreError> {
    if !booking_status(booking).is_some_and(has_tickets) {
        return Ok(0);
    }
    let Ok(booking_id) = booking.get_object_id("_id") else {
        return Ok(0);
    };
    let ids: Vec<ObjectId> = seat_ids(booking)
        .iter()
        .map(|s| ticket_id_for(&booking_id, s))
        .collect();
    let mut n = 0;
    for t in join_all(ids.iter().map(|id| ticket(ctx, *id))).await {
        if t?.is_some() {
            n += 1;
        }
    }
    Ok(n)
}

/// `GET /v1/bookings/{id}/tickets`: `{bookingId, status, expected, items, total}` in seat
/// order. A booking just confirmed may have none yet: `status` is `issuing` until every
/// seat's ticket is written (see [`tickets_status`]), so a client reads again until it
/// says `issued`, instead of guessing from the count.
pub(crate) async fn booking_tickets(
    ctx: &Ctx,
    issuer: &Option<Issuer>,
    booking_id: ObjectId,
) -> Result<Reply, StoreError> {
    let booking = ctx
        .store
        .col(names::BOOKINGS)
        .find_one(doc! {"_id": booking_id})
        .await?;
    let Some(booking) = booking.filter(|b| owns(b, issuer)) else {
        return Ok(Reply::error(ErrorCode::BookingNotFound, "no such booking"));
    };
    let ids: Vec<ObjectId> = seat_ids(&booking)
        .iter()
        .map(|s| ticket_id_for(&booking_id, s))
        .collect();
    let mut items = Vec::with_capacity(ids.len());
    for t in join_all(ids.iter().map(|id| ticket(ctx, *id))).await {
        if let Some(t) = t? {
            items.push(api_json(&t));
        }
    }
    let status = tickets_status(&booking, items.len());
    let expected = match status {
        "issued" | "issuing" => ids.len(),
        _ => items.len(),
    };
    Ok(Reply::ok(
        200,
        json!({
            "bookingId": booking_id.to_hex(), "status": status, "expected": expected,
            "total": items.len(), "items": items,
        }),
    ))
}

/// `GET /v1/tickets/{id}`.
pub(crate) async fn get_ticket(
    ctx: &Ctx,
    issuer: &Option<Issuer>,
    ticket_id: ObjectId,
) -> Result<Reply, StoreError> {
    Ok(match ticket(ctx, ticket_id).await? {
        Some(t) if owns(&t, issuer) => Reply::ok(200, api_json(&t)),
        _ => Reply::error(ErrorCode::TicketNotFound, "no such ticket"),
    })
}

/// `GET /v1/tickets/{id}/qr.png`: the PNG itself (`Ok`, sent as a binary answer), or the
/// refusal. A download by the owner is counted.
pub(crate) async fn qr_png(
    ctx: &Ctx,
    issuer: &Option<Issuer>,
    ticket_id: ObjectId,
) -> Result<Result<Vec<u8>, Reply>, StoreError> {
    let Some(t) = ticket(ctx, ticket_id).await?.filter(|t| owns(t, issuer)) else {
        return Ok(Err(Reply::error(
            ErrorCode::TicketNotFound,
            "no such ticket",
        )));
    };
    let text = t.get_str("qrString").unwrap_or_default().to_string();
    let png = match tokio::task::spawn_blocking(move || crate::tickets::qr_image::png(&text)).await
    {
        Ok(Ok(png)) => png,
        Ok(Err(e)) => {
            tracing::error!(ticket = %ticket_id, error = %e, "QR image not drawn");
            return Ok(Err(Reply::error(ErrorCode::Internal, "internal error")));
        }
        Err(e) => {
            tracing::error!(ticket = %ticket_id, error = %e, "QR drawing task failed");
            return Ok(Err(Reply::error(ErrorCode::Internal, "internal error")));
        }
    };
    if let Some(i) = issuer
        .as_ref()
        .filter(|i| t.get_object_id("userId").ok() == Some(i.user_id))
    {
        record_download(ctx, i.clone(), ticket_id);
    }
    Ok(Ok(png))
}

/// Publishes `RecordTicketDownload` without waiting: a lost count never fails a download.
fn record_download(ctx: &Ctx, issuer: Issuer, ticket_id: ObjectId) {
    let env = CommandEnvelope {
        id: new_command_id(),
        issuer: Some(issuer),
        issued_at: ctx.signing_time(),
        context: Default::default(),
        command: Command::RecordTicketDownload(TicketRef { ticket_id }),
    };
    let (js, ns, signer) = (ctx.js.clone(), ctx.ns.clone(), ctx.signer.clone());
    tokio::spawn(async move {
        if let Err(e) = streams::publish::publish_command(&js, &ns, &signer, &env, None, None).await
        {
            tracing::warn!(ticket = %ticket_id, error = %e, "download not recorded");
        }
    });
}

/// `GET /v1/scan-keys` (staff): `{keys: [{kid, alg, publicKey}]}`, the signing key first.
pub(crate) fn scan_keys(ctx: &Ctx, issuer: &Option<Issuer>) -> Reply {
    if !issuer.as_ref().is_some_and(|i| i.role.is_staff()) {
        return Reply::error(ErrorCode::Forbidden, "staff only");
    }
    match &ctx.qr_keys {
        Some(k) => {
            let keys: Vec<Value> = k
                .verifier()
                .public_keys()
                .into_iter()
                .filter_map(|k| serde_json::to_value(k).ok())
                .collect();
            Reply::ok(200, json!({"keys": keys}))
        }
        None => {
            tracing::error!("the queries worker runs without QR keys");
            Reply::error(ErrorCode::Internal, "internal error")
        }
    }
}
