//! The ticketing worker: issues a confirmed booking's tickets, one per seat, each with a
//! signed QR string (`domain::qr`) and a `qr_codes` document; keeps a cancelled booking's
//! tickets cancelled; and records downloads of a ticket's QR image.
//!
//! It consumes `booking.*` domain events through its durable consumer over EVENTS:
//! `booking.confirmed` issues, `booking.cancelled` cancels (the cancellation itself does
//! too, through `tickets_hook`; this covers tickets issued while it ran).
//!
//! Idempotent: a ticket's id derives from (booking, seat) and its QR code's from the
//! ticket, `issuedAt` is the booking's confirmation time and Ed25519 signatures are
//! deterministic, so a redelivered event builds the same documents and the unique `_id`
//! refuses them: a confirmed booking has exactly one ticket per seat.

pub mod cancel;
pub mod gate;
pub mod qr_image;
pub mod qr_keys;
pub mod revocations;
pub mod scans;

pub use domain::tickets::decide::{qr_code_id_for, ticket_id_for};
use std::time::Duration;

use bson::{doc, Bson, Document};
use domain::entities::qr_code::QrCode;
use domain::entities::reference::{ticket_number, BookingReference};
use domain::entities::ticket::{SeatInfo, Ticket, TicketStatus};
use domain::events::{TicketDownloaded, TicketsIssued};
use domain::qr::{QrKeyRing, QrPayload};
use domain::{DateTime, ObjectId};
use futures::future::join_all;
use serde_json::json;
use streams::codes::{ErrorCode, Reply};
use streams::commands::{CommandEnvelope, TicketRef};
use streams::events::{DomainEvent, EventEnvelope};
use streams::setup;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::app::consumer::{self, Outcome, Spec};
use crate::app::context::{Ctx, HandlerError};
use crate::app::runtime::wire_config;
use crate::store::leases::with_lease;
use crate::store::{api_json, is_duplicate_key, names, to_doc};

/// Events per fetch; a batch is handled concurrently.
const BATCH: usize = 64;

/// The QR keys of this process (loaded at start-up by every process that runs a worker
/// needing them).
pub fn keys(ctx: &Ctx) -> Result<&QrKeyRing, HandlerError> {
    ctx.qr_keys
        .as_deref()
        .ok_or_else(|| HandlerError::Permanent("no QR keys loaded in this process".into()))
}

fn oid(d: &Document, k: &str) -> Result<ObjectId, HandlerError> {
    d.get_object_id(k)
        .map_err(|e| HandlerError::Permanent(format!("{k}: {e}")))
}

/// The seat ids of a booking, in its order.
pub fn seat_ids(booking: &Document) -> Vec<ObjectId> {
    booking
        .get_array("seatIds")
        .map(|a| a.iter().filter_map(Bson::as_object_id).collect())
        .unwrap_or_default()
}

pub async fn start(
    ctx: &Ctx,
    tasks: &mut JoinSet<()>,
    stopped: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let wire = wire_config(&ctx.cfg);
    let consumer = setup::ensure_projection_consumer(
        &ctx.js,
        &ctx.ns,
        // NOTE: the durable keeps its name from before the workers were named by area:
        // it holds the consumer's position in EVENTS.
        "ticketing",
        ctx.ns.event("booking", "*"),
        &wire,
    )
    .await
    .map_err(|e| anyhow::anyhow!("ensuring the ticketing consumer: {e}"))?;
    ctx.metrics.watch(&consumer);
    tasks.spawn(consumer::each(
        ctx.clone(),
        consumer,
        Spec::new("tickets", BATCH),
        stopped.clone(),
        consumer::json::<EventEnvelope>,
        |ctx, d| async move { Outcome::of(handle(&ctx, &d.item).await, Some(Duration::from_secs(2))) },
    ));
    // The revocation lists follow the tickets' cancellations.
    crate::tickets::revocations::start(ctx, tasks, stopped).await
}

async fn handle(ctx: &Ctx, ev: &EventEnvelope) -> Result<(), HandlerError> {
    match &ev.event {
        DomainEvent::BookingConfirmed(e) => issue(ctx, e.booking_id).await.map(|_| ()),
        DomainEvent::BookingCancelled(e) => {
            let reason = e.reason.map_or("booking_cancelled", |r| r.as_str());
            crate::tickets::cancel::cancel_tickets(ctx, e.booking_id, reason).await
        }
        // Unpaid bookings have no tickets.
        DomainEvent::BookingCreated(_) | DomainEvent::BookingExpired(_) => Ok(()),
        // Not booking events: the consumer's filter is `booking.*`.
        DomainEvent::HoldCreated(_)
        | DomainEvent::HoldReleased(_)
        | DomainEvent::HoldExpired(_)
        | DomainEvent::HoldConverted(_)
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
        | DomainEvent::CommandRefused(_) => Ok(()),
    }
}

/// Issues the tickets of a confirmed booking and returns them in seat order; tickets
/// it already has are kept as they are. Harmless to repeat. A cancelled booking gets no
/// tickets (and any it has are cancelled).
pub async fn issue(ctx: &Ctx, booking_id: ObjectId) -> Result<Vec<Document>, HandlerError> {
    let keys = keys(ctx)?;
    let bookings = ctx.store.col(names::BOOKINGS);
    let Some(booking) = bookings.find_one(doc! {"_id": booking_id}).await? else {
        return Err(HandlerError::Permanent(format!(
            "booking {booking_id} is missing"
        )));
    };
    match booking.get_str("status").unwrap_or_default() {
        "confirmed" | "completed" => {}
        "cancelled" => {
            let reason = booking
                .get_str("cancellationReason")
                .unwrap_or("booking_cancelled");
            crate::tickets::cancel::cancel_tickets(ctx, booking_id, reason).await?;
            return Ok(Vec::new());
        }
        other => {
            // The event follows the write, so this is a stale read: look again later.
            return Err(HandlerError::Transient(format!(
                "booking {booking_id} is {other}, not confirmed"
            )));
        }
    }
    let event_id = oid(&booking, "eventId")?;
    let user_id = oid(&booking, "userId")?;
    let reference =
        BookingReference::parse(booking.get_str("bookingReference").unwrap_or_default())
            .map_err(|e| HandlerError::Permanent(e.to_string()))?;
    let Some(event) = ctx
        .store
        .col(names::EVENTS)
        .find_one(doc! {"_id": event_id})
        .await?
    else {
        return Err(HandlerError::Permanent(format!(
            "event {event_id} is missing"
        )));
    };
    let event_date = *event
        .get_datetime("eventDate")
        .map_err(|e| HandlerError::Permanent(format!("eventDate: {e}")))?;
    let map = ctx.seat_maps.get(&ctx.store, event_id).await?;
    // Whole seconds, so the stored time is the one the QR code carries.
    let confirmed = booking
        .get_datetime("confirmedAt")
        .copied()
        .unwrap_or_else(|_| DateTime::now());
    let issued_secs = confirmed.timestamp_millis().div_euclid(1000);
    let issued_at = DateTime::from_millis(issued_secs * 1000);
    let now = DateTime::now();

    let seats = seat_ids(&booking);
    let mut built = Vec::with_capacity(seats.len());
    for (i, seat_id) in seats.iter().enumerate() {
        let info = map.get(seat_id).ok_or_else(|| {
            HandlerError::Permanent(format!("seat {seat_id} is not in event {event_id}"))
        })?;
        let ticket_id = ticket_id_for(&booking_id, seat_id);
        let payload = QrPayload {
            ticket_id,
            booking_reference: reference.clone(),
            user_id,
            event_id,
            seat_id: *seat_id,
            issued_at: issued_secs,
        };
        let ticket = Ticket {
            id: ticket_id,
            booking_id,
            user_id,
            event_id,
            seat_id: *seat_id,
            qr_code_id: qr_code_id_for(&ticket_id),
            qr_string: keys.signer().sign(&payload),
            ticket_number: ticket_number(&reference, i as u32)
                .map_err(|e| HandlerError::Permanent(e.to_string()))?,
            status: TicketStatus::Active,
            event_name: event.get_str("name").unwrap_or_default().to_string(),
            event_date,
            event_time: event.get_str("eventTime").unwrap_or_default().to_string(),
            seat_info: SeatInfo {
                row: info.row.clone(),
                number: info.number,
                section: info.section.clone(),
                price: info.price,
            },
            is_scanned: false,
            scanned_at: None,
            scanned_by_user_id: None,
            scan_location: None,
            expires_at: None,
            downloaded_at: None,
            download_count: 0,
            issued_at,
            created_at: now,
            updated_at: now,
        };
        built.push(to_doc(&ticket)?);
    }
    let tickets = insert_all(ctx, names::TICKETS, built).await?;

    let mut qr_docs = Vec::with_capacity(tickets.len());
    for t in &tickets {
        let qr_string = t.get_str("qrString").unwrap_or_default();
        let (version, level) = crate::tickets::qr_image::describe(qr_string)
            .map_err(|e| HandlerError::Permanent(e.to_string()))?;
        let qr = QrCode {
            id: oid(t, "qrCodeId")?,
            ticket_id: oid(t, "_id")?,
            qr_string: qr_string.to_string(),
            qr_image: None,
            qr_image_url: None,
            version,
            error_correction_level: level,
            scan_count: 0,
            last_scanned_at: None,
            is_valid: true,
            invalidated_at: None,
            invalidation_reason: None,
            created_at: now,
            updated_at: now,
        };
        qr_docs.push(to_doc(&qr)?);
    }
    insert_all(ctx, names::QR_CODES, qr_docs).await?;
    // Gates learn of the tickets before the cancellation check below, so a cancellation
    // that comes in between overwrites what a gate reads.
    let gate: Vec<_> = tickets
        .iter()
        .filter_map(crate::tickets::gate::GateTicket::of)
        .collect();
    for r in join_all(
        gate.iter()
            .map(|g| crate::tickets::gate::record_issued(ctx, g)),
    )
    .await
    {
        r?;
    }

    // A cancellation that ran while we issued may have found no tickets to cancel: its
    // status write came first, so reading it now catches it.
    if let Some(b) = bookings.find_one(doc! {"_id": booking_id}).await? {
        if b.get_str("status").ok() == Some("cancelled") {
            let reason = b
                .get_str("cancellationReason")
                .unwrap_or("booking_cancelled");
            crate::tickets::cancel::cancel_tickets(ctx, booking_id, reason).await?;
        }
    }
    emit_issued(ctx, &booking, &tickets).await?;
    Ok(tickets)
}

/// Inserts the documents; those that exist already (a redelivery) are read back and
/// returned instead, so the answer is what is stored.
async fn insert_all(
    ctx: &Ctx,
    collection: &str,
    docs: Vec<Document>,
) -> Result<Vec<Document>, HandlerError> {
    if docs.is_empty() {
        return Ok(docs);
    }
    let col = ctx.store.col(collection);
    match col.insert_many(docs.clone()).ordered(false).await {
        Ok(_) => Ok(docs),
        Err(e) if is_duplicate_key(&e) => {
            let reads = join_all(docs.iter().map(|d| {
                let col = col.clone();
                let id = d.get("_id").cloned().unwrap_or(Bson::Null);
                async move { col.find_one(doc! {"_id": id}).await }
            }))
            .await;
            let mut out = Vec::with_capacity(docs.len());
            for (built, stored) in docs.into_iter().zip(reads) {
                match stored? {
                    Some(s) => out.push(s),
                    // A duplicate of another unique key (ticket number, QR string): an
                    // invariant is broken; nobody can fix it by retrying.
                    None => {
                        return Err(HandlerError::Permanent(format!(
                            "{collection}: {:?} clashes with another document",
                            built.get("_id")
                        )))
                    }
                }
            }
            Ok(out)
        }
        Err(e) => Err(e.into()),
    }
}

/// `ticket.issued`, once per booking: its id is `issue-<bookingId>:ticket.issued`, so a
/// redelivery inside the duplicate window publishes nothing, and the audit entry derived
/// from it is written once in any case.
async fn emit_issued(
    ctx: &Ctx,
    booking: &Document,
    tickets: &[Document],
) -> Result<(), HandlerError> {
    let booking_id = oid(booking, "_id")?;
    let ids: Vec<String> = tickets
        .iter()
        .filter_map(|t| t.get_object_id("_id").ok().map(|o| o.to_hex()))
        .collect();
    let numbers: Vec<&str> = tickets
        .iter()
        .filter_map(|t| t.get_str("ticketNumber").ok())
        .collect();
    let command_id = format!("issue-{}", booking_id.to_hex());
    let ev = EventEnvelope {
        id: format!("{command_id}:ticket.issued"),
        occurred_at: chrono::Utc::now(),
        command_id,
        actor: None,
        context: Default::default(),
        before: None,
        after: Some(json!({"ticketIds": ids, "ticketNumbers": numbers})),
        event: DomainEvent::TicketsIssued(TicketsIssued {
            booking_id,
            event_id: oid(booking, "eventId")?,
            user_id: booking.get_object_id("userId").ok(),
            count: ids.len() as u64,
        }),
    };
    streams::publish::publish_event(&ctx.js, &ctx.ns, &ctx.signer, &ev).await?;
    Ok(())
}

/// `RecordTicketDownload`: the owner downloaded the ticket's QR image. Written under the
/// ticket's lease (scans and cancellations write the same document).
pub async fn record_download(
    ctx: &Ctx,
    env: &CommandEnvelope,
    c: &TicketRef,
) -> Result<Reply, HandlerError> {
    let Some(issuer) = env.issuer.clone() else {
        return Ok(Reply::error(ErrorCode::Unauthorized, "sign in first"));
    };
    let tickets = ctx.store.col(names::TICKETS);
    let outcome = with_lease(ctx, names::TICKETS, c.ticket_id, || async {
        let Some(t) = tickets.find_one(doc! {"_id": c.ticket_id}).await? else {
            return Ok(None);
        };
        if t.get_object_id("userId").ok() != Some(issuer.user_id) {
            return Ok(None);
        }
        let now = DateTime::now();
        let mut set = doc! {"updatedAt": now};
        let first = !matches!(t.get("downloadedAt"), Some(Bson::DateTime(_)));
        if first {
            set.insert("downloadedAt", now);
        }
        tickets
            .update_one(
                doc! {"_id": c.ticket_id},
                doc! {"$set": set, "$inc": {"downloadCount": 1}},
            )
            .await?;
        let count = t
            .get_i64("downloadCount")
            .or_else(|_| t.get_i32("downloadCount").map(i64::from))
            .unwrap_or(0)
            + 1;
        Ok(Some((t, count)))
    })
    .await?;
    let Some((ticket, count)) = outcome else {
        return Ok(Reply::error(ErrorCode::TicketNotFound, "no such ticket"));
    };
    ctx.emit(
        env,
        DomainEvent::TicketDownloaded(TicketDownloaded {
            ticket_id: c.ticket_id,
            event_id: ticket.get_object_id("eventId").ok(),
            ticket_number: ticket
                .get_str("ticketNumber")
                .unwrap_or_default()
                .to_string(),
        }),
        None,
        Some(json!({"downloadCount": count})),
    )
    .await?;
    let mut after = api_json(&ticket);
    after["downloadCount"] = json!(count);
    Ok(Reply::ok(200, json!({"ticket": after})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_derive_from_the_booking_and_seat() {
        let (b, s) = (ObjectId::new(), ObjectId::new());
        let t = ticket_id_for(&b, &s);
        assert_eq!(t, ticket_id_for(&b, &s));
        assert_ne!(t, ticket_id_for(&b, &ObjectId::new()));
        assert_ne!(t, ticket_id_for(&ObjectId::new(), &s));
        assert_eq!(qr_code_id_for(&t), qr_code_id_for(&t));
        assert_ne!(qr_code_id_for(&t), t);
    }
}
