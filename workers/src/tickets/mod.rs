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

pub(crate) mod cancel;
pub(crate) mod gate;
pub(crate) mod qr_image;
pub(crate) mod qr_keys;
pub(crate) mod revocations;
pub(crate) mod scans;

pub(crate) use domain::tickets::decide::{qr_code_id_for, ticket_id_for};
use std::time::Duration;

use bson::{doc, Bson, Document};
use domain::entities::ticket::{SeatInfo, Ticket};
use domain::entities::Booking;
use domain::event::Event;
use domain::events::{TicketDownloaded, TicketsIssued};
use domain::qr::QrKeyRing;
use domain::tickets::decide::{self, DownloadDecision, IssueDecision, TicketEvent};
use domain::ObjectId;
use futures::future::join_all;
use serde_json::json;
use streams::codes::Reply;
use streams::commands::{CommandEnvelope, TicketRef};
use streams::events::{DomainEvent, EventEnvelope};
use streams::setup;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::app::consumer::{self, Outcome, Spec};
use crate::app::context::{Ctx, HandlerError};
use crate::app::runtime::wire_config;
use crate::store::leases::with_lease;
use crate::store::repo::{Entity, Repo};
use crate::store::{api_json, is_duplicate_key, names, to_doc};

/// Events per fetch; a batch is handled concurrently.
const BATCH: usize = 64;

/// The QR keys of this process (loaded at start-up by every process that runs a worker
/// needing them).
pub(crate) fn keys(ctx: &Ctx) -> Result<&QrKeyRing, HandlerError> {
    ctx.qr_keys
        .as_deref()
        .ok_or_else(|| HandlerError::Permanent("no QR keys loaded in this process".into()))
}

/// The seat ids of a booking, in its order.
pub(crate) fn seat_ids(booking: &Document) -> Vec<ObjectId> {
    booking
        .get_array("seatIds")
        .map(|a| a.iter().filter_map(Bson::as_object_id).collect())
        .unwrap_or_default()
}

pub(crate) async fn start(
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
pub async fn issue(ctx: &Ctx, booking_id: ObjectId) -> Result<Vec<Ticket>, HandlerError> {
    let keys = keys(ctx)?;
    let bookings = Repo::<Booking>::new(&ctx.store);
    let Some(booking) = bookings.get(booking_id).await? else {
        return Err(HandlerError::permanent(format!(
            "booking {booking_id} is missing"
        )));
    };
    match decide::decide_issue(&booking) {
        IssueDecision::Issue => {}
        IssueDecision::CancelTickets(reason) => {
            crate::tickets::cancel::cancel_tickets(ctx, booking_id, &reason).await?;
            return Ok(Vec::new());
        }
        // The event follows the write, so this is a stale read: look again later.
        IssueDecision::NotYet(status) => {
            return Err(HandlerError::Transient(format!(
                "booking {booking_id} is {status}, not confirmed"
            )));
        }
    }
    let built = build_tickets(ctx, keys, &booking).await?;
    let now = ctx.now_stored();
    let mut qr_codes = Vec::with_capacity(built.len());
    for t in &built {
        let (version, level) =
            crate::tickets::qr_image::describe(&t.qr_string).map_err(HandlerError::permanent)?;
        qr_codes.push(decide::new_qr_code(t, version, level, now));
    }
    // QR codes first: a ticket anyone can read has its QR code already. Both derive
    // from the booking alone (ids, signatures), so a redelivery builds the same ones.
    insert_all(ctx, qr_codes).await?;
    let tickets = insert_all(ctx, built).await?;
    // Gates learn of the tickets before the cancellation check below, so a cancellation
    // that comes in between overwrites what a gate reads.
    let mut gate = Vec::with_capacity(tickets.len());
    for t in &tickets {
        gate.push(crate::tickets::gate::GateTicket::of(t)?);
    }
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
    if let Some(b) = bookings.get(booking_id).await? {
        if let IssueDecision::CancelTickets(reason) = decide::decide_issue(&b) {
            crate::tickets::cancel::cancel_tickets(ctx, booking_id, &reason).await?;
        }
    }
    emit_issued(ctx, &booking, &tickets).await?;
    Ok(tickets)
}

/// The booking's tickets, one per seat in its order, each with its signed QR string.
async fn build_tickets(
    ctx: &Ctx,
    keys: &QrKeyRing,
    booking: &Booking,
) -> Result<Vec<Ticket>, HandlerError> {
    let event_id = booking.event_id;
    let Some(event) = Repo::<Event>::new(&ctx.store).get(event_id).await? else {
        return Err(HandlerError::permanent(format!(
            "event {event_id} is missing"
        )));
    };
    let map = ctx.seat_maps.get(&ctx.store, event_id).await?;
    let now = ctx.now_stored();
    let issued_secs = decide::issued_at_secs(booking, now);
    let details = TicketEvent {
        name: &event.name,
        date: event.event_date,
        time: &event.event_time,
    };
    let mut built = Vec::with_capacity(booking.seat_ids.len());
    for (i, seat_id) in booking.seat_ids.iter().enumerate() {
        let info = map.get(seat_id).ok_or_else(|| {
            HandlerError::permanent(format!("seat {seat_id} is not in event {event_id}"))
        })?;
        let seat_info = SeatInfo {
            row: info.row.clone(),
            number: info.number,
            section: info.section.clone(),
            price: info.price,
        };
        let qr_string = keys
            .signer()
            .sign(&decide::qr_payload(booking, *seat_id, issued_secs));
        let ticket = decide::new_ticket(
            booking,
            &details,
            (*seat_id, seat_info),
            i as u32,
            qr_string,
            now,
        )
        .map_err(HandlerError::permanent)?;
        built.push(ticket);
    }
    Ok(built)
}

/// Inserts the entities; those that exist already (a redelivery) are read back and
/// returned instead, so the answer is what is stored.
async fn insert_all<T: Entity + Clone>(ctx: &Ctx, items: Vec<T>) -> Result<Vec<T>, HandlerError> {
    if items.is_empty() {
        return Ok(items);
    }
    let col = ctx.store.db().collection::<T>(T::COLLECTION);
    match col.insert_many(&items).ordered(false).await {
        Ok(_) => Ok(items),
        Err(e) if is_duplicate_key(&e) => {
            let repo = Repo::<T>::new(&ctx.store);
            let reads = join_all(items.iter().map(|t| repo.get(t.id()))).await;
            let mut out = Vec::with_capacity(items.len());
            for (built, stored) in items.iter().zip(reads) {
                match stored? {
                    Some(s) => out.push(s),
                    // A duplicate of another unique key (ticket number, QR string): an
                    // invariant is broken; nobody can fix it by retrying.
                    None => {
                        return Err(HandlerError::permanent(format!(
                            "{}: {} clashes with another document",
                            T::COLLECTION,
                            built.id()
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
async fn emit_issued(ctx: &Ctx, booking: &Booking, tickets: &[Ticket]) -> Result<(), HandlerError> {
    let ids: Vec<String> = tickets.iter().map(|t| t.id.to_hex()).collect();
    let numbers: Vec<&str> = tickets.iter().map(|t| t.ticket_number.as_str()).collect();
    let command_id = format!("issue-{}", booking.id.to_hex());
    let ev = EventEnvelope {
        id: format!("{command_id}:ticket.issued"),
        occurred_at: ctx.now(),
        command_id,
        actor: None,
        context: Default::default(),
        before: None,
        after: Some(json!({"ticketIds": ids, "ticketNumbers": numbers})),
        event: DomainEvent::TicketsIssued(TicketsIssued {
            booking_id: booking.id,
            event_id: booking.event_id,
            user_id: Some(booking.user_id),
            count: ids.len() as u64,
        }),
    };
    streams::publish::publish_event(&ctx.js, &ctx.ns, &ctx.signer, &ev).await?;
    Ok(())
}

/// `RecordTicketDownload`: the owner downloaded the ticket's QR image. Written under the
/// ticket's lease (scans and cancellations write the same document).
pub(crate) async fn record_download(
    ctx: &Ctx,
    env: &CommandEnvelope,
    c: &TicketRef,
) -> Result<Reply, HandlerError> {
    if env.issuer.is_none() {
        // Refused before the lease: an anonymous request writes nothing.
        if let DownloadDecision::Refuse(r) = decide::decide_download(None, None, ctx.now_stored()) {
            return Ok(Reply::refused(&r));
        }
    }
    let repo = Repo::<Ticket>::new(&ctx.store);
    let outcome = with_lease(ctx, names::TICKETS, c.ticket_id, || async {
        let ticket = repo.get(c.ticket_id).await?;
        match decide::decide_download(env.actor(), ticket.as_ref(), ctx.now_stored()) {
            DownloadDecision::Refuse(r) => Ok(Err(r)),
            DownloadDecision::Record(after) => {
                let set = doc! {"updatedAt": after.updated_at, "downloadedAt": after.downloaded_at};
                repo.patch_counted(after.id, set, "downloadCount").await?;
                Ok(Ok(after))
            }
        }
    })
    .await?;
    let ticket = match outcome {
        Ok(t) => t,
        Err(r) => return Ok(Reply::refused(&r)),
    };
    ctx.emit(
        env,
        DomainEvent::TicketDownloaded(TicketDownloaded {
            ticket_id: ticket.id,
            event_id: Some(ticket.event_id),
            ticket_number: ticket.ticket_number.as_str().to_string(),
        }),
        None,
        Some(json!({"downloadCount": ticket.download_count})),
    )
    .await?;
    Ok(Reply::ok(
        200,
        json!({"ticket": api_json(&to_doc(&ticket)?)}),
    ))
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
