//! Revocation lists for gates that check tickets offline: the `ticket_revocations`
//! collection, kept by a projection over EVENTS, and the signed list the queries worker
//! answers (`GET /v1/events/{id}/revocations`, see `domain::revocation`).
//!
//! Every way a ticket is cancelled, and its QR code invalidated, ends in a
//! `booking.cancelled` domain event: a booking cancelled by its owner or an admin (with
//! its refund), every booking of a cancelled event (the event's cancellation fans out one
//! `CancelBooking` per booking), an unpaid booking cancelled. The projection turns each
//! into one entry per ticket of the booking, `_id` the ticket id, `version` the EVENTS
//! sequence of that event.
//!
//! NOTE: a version is the stream sequence, not a counter of ours: it only grows, no two
//! events share one, a redelivered event has the same one, and replaying EVENTS into an
//! empty collection gives every entry its version again. A list's `version` is the
//! projection consumer's ack floor: every event up to it has been applied (its entries
//! written before its ack), so a device asking `since=<version>` next time misses
//! nothing, even though a batch's events are applied concurrently and out of order.
//!
//! Audit: an entry is derived data, rebuildable from EVENTS, and writes no audit entry of
//! its own; the `booking.cancelled` event it comes from is audited (`booking_cancelled`,
//! with the reason) by the audit projection.

use std::time::Duration;

use async_nats::jetstream::consumer::pull;
use bson::{doc, Bson, Document};
use chrono::SecondsFormat;
use domain::events::BookingEnded;
use domain::revocation::{RevocationEntry, RevocationList, SignedRevocations};
use domain::{DateTime, ObjectId};
use futures::future::join_all;
use futures::TryStreamExt;
use streams::codes::{ErrorCode, Reply};
use streams::commands::Issuer;
use streams::events::{DomainEvent, EventEnvelope};
use streams::setup;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::app::consumer::{self, Outcome, Spec};
use crate::app::context::{Ctx, HandlerError};
use crate::app::runtime::wire_config;
use crate::store::{is_duplicate_key, names, StoreError};
use crate::tickets::{qr_code_id_for, seat_ids, ticket_id_for};

/// The projection's durable consumer (its ack floor is the lists' version).
pub(crate) const CONSUMER: &str = "revocations";
const BATCH: usize = 64;

/// Starts the projection (run with the ticketing worker, which owns tickets).
pub(crate) async fn start(
    ctx: &Ctx,
    tasks: &mut JoinSet<()>,
    stopped: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let consumer = setup::ensure_projection_consumer(
        &ctx.js,
        &ctx.ns,
        CONSUMER,
        ctx.ns.event("booking", "cancelled"),
        &wire_config(&ctx.cfg),
    )
    .await
    .map_err(|e| anyhow::anyhow!("ensuring the revocations consumer: {e}"))?;
    ctx.metrics.watch(&consumer);
    tasks.spawn(consumer::each(
        ctx.clone(),
        consumer,
        Spec::new(CONSUMER, BATCH),
        stopped,
        consumer::json::<EventEnvelope>,
        |ctx, d| async move {
            let applied = match &d.item.event {
                DomainEvent::BookingCancelled(e) => {
                    apply(&ctx, &d.item, e, d.stream_sequence).await
                }
                // The consumer's filter is `booking.cancelled`.
                DomainEvent::HoldCreated(_)
                | DomainEvent::HoldReleased(_)
                | DomainEvent::HoldExpired(_)
                | DomainEvent::HoldConverted(_)
                | DomainEvent::BookingCreated(_)
                | DomainEvent::BookingConfirmed(_)
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
                | DomainEvent::CommandRefused(_) => Ok(()),
            };
            Outcome::of(applied, Some(Duration::from_secs(1)))
        },
    ));
    Ok(())
}

/// The entries of one `booking.cancelled` event at stream sequence `seq`. Harmless to
/// repeat: an entry exists once per ticket, and the first revocation's version and
/// reason stay.
pub(crate) async fn apply(
    ctx: &Ctx,
    ev: &EventEnvelope,
    cancelled: &BookingEnded,
    seq: u64,
) -> Result<(), HandlerError> {
    let booking_id = cancelled.booking_id;
    let booking = ctx
        .store
        .col(names::BOOKINGS)
        .find_one(doc! {"_id": booking_id})
        .await?;
    let event_id = cancelled.event_id;
    let mut seats: Vec<ObjectId> = cancelled.seat_ids.clone();
    if seats.is_empty() {
        seats = booking.as_ref().map(seat_ids).unwrap_or_default();
    }
    // Tickets exist only for a booking that was paid; they may not be issued yet (the
    // ticketing worker runs beside us), and their ids are known in advance.
    let was_paid = cancelled.was_paid().unwrap_or(false);
    let reason = cancelled
        .reason
        .map_or("booking_cancelled", |r| r.as_str())
        .to_string();
    let revoked_at = DateTime::from_millis(ev.occurred_at.timestamp_millis());
    let version = i64::try_from(seq)
        .map_err(|_| HandlerError::Permanent(format!("sequence {seq} out of range")))?;
    let col = ctx.store.col(names::TICKET_REVOCATIONS);
    let writes = seats.iter().map(|seat| {
        let ticket_id = ticket_id_for(&booking_id, seat);
        let (col, reason, ev_id) = (col.clone(), reason.clone(), ev.id.clone());
        async move {
            let ticket = ctx
                .store
                .col(names::TICKETS)
                .find_one(doc! {"_id": ticket_id})
                .await?;
            if ticket.is_none() && !was_paid {
                return Ok::<(), HandlerError>(());
            }
            let mut d = doc! {
                "_id": ticket_id,
                "ticketId": ticket_id,
                "eventId": event_id,
                "bookingId": booking_id,
                "qrCodeId": qr_code_id_for(&ticket_id),
                "reason": reason,
                "revokedAt": revoked_at,
                "version": version,
                "domainEventId": ev_id,
                "createdAt": ctx.now_stored(),
            };
            if let Some(t) = &ticket {
                if let Ok(q) = t.get_object_id("qrCodeId") {
                    d.insert("qrCodeId", q);
                }
                if let Ok(qr) = t.get_str("qrString") {
                    d.insert("qrSha256", crate::tickets::gate::qr_hash(qr));
                }
                if let Ok(n) = t.get_str("ticketNumber") {
                    d.insert("ticketNumber", n);
                }
            }
            match col.insert_one(&d).await {
                Ok(_) => Ok(()),
                // Revoked before (a redelivery, or an earlier cause): that entry stays.
                Err(e) if is_duplicate_key(&e) => Ok(()),
                Err(e) => Err(e.into()),
            }
        }
    });
    for r in join_all(writes).await {
        r?;
    }
    Ok(())
}

/// The list's version now: the projection's ack floor on EVENTS.
async fn current_version(ctx: &Ctx) -> Result<u64, StoreError> {
    let consumer = ctx
        .js
        .get_consumer_from_stream::<pull::Config, _, _>(
            ctx.ns.projection_consumer(CONSUMER),
            ctx.ns.events_stream(),
        )
        .await
        .map_err(|e| StoreError::Unavailable(format!("revocations consumer: {e}")))?;
    Ok(consumer.cached_info().ack_floor.stream_sequence)
}

fn opt_str(d: &Document, k: &str) -> Option<String> {
    match d.get(k) {
        Some(Bson::String(s)) => Some(s.clone()),
        Some(Bson::ObjectId(o)) => Some(o.to_hex()),
        _ => None,
    }
}

fn rfc3339(d: &Document, k: &str) -> String {
    d.get_datetime(k)
        .map(|t| t.to_chrono().to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}

fn entry_of(d: &Document) -> Option<RevocationEntry> {
    let version = match d.get("version") {
        Some(Bson::Int64(v)) => u64::try_from(*v).ok()?,
        Some(Bson::Int32(v)) => u64::try_from(*v).ok()?,
        _ => return None,
    };
    Some(RevocationEntry {
        version,
        ticket_id: d.get_object_id("ticketId").ok()?.to_hex(),
        qr_code_id: opt_str(d, "qrCodeId"),
        qr_sha256: opt_str(d, "qrSha256"),
        booking_id: opt_str(d, "bookingId"),
        ticket_number: opt_str(d, "ticketNumber"),
        reason: d.get_str("reason").unwrap_or("cancelled").to_string(),
        revoked_at: rfc3339(d, "revokedAt"),
    })
}

/// `GET /v1/events/{id}/revocations?since=` (staff): the signed list of the entries after
/// `since`, up to the version now.
pub(crate) async fn list(
    ctx: &Ctx,
    issuer: &Option<Issuer>,
    event_id: ObjectId,
    since: u64,
) -> Result<Reply, StoreError> {
    if !issuer.as_ref().is_some_and(|i| i.role.is_staff()) {
        return Ok(Reply::error(ErrorCode::Forbidden, "staff only"));
    }
    let Some(keys) = &ctx.qr_keys else {
        tracing::error!("the queries worker runs without QR keys");
        return Ok(Reply::error(ErrorCode::Internal, "internal error"));
    };
    if ctx
        .store
        .col(names::EVENTS)
        .find_one(doc! {"_id": event_id})
        .projection(doc! {"_id": 1})
        .await?
        .is_none()
    {
        return Ok(Reply::error(ErrorCode::EventNotFound, "no such event"));
    }
    // The version first: every entry up to it is written by now.
    let version = current_version(ctx).await?;
    // A version the list has not reached: the device's copy is of another history (the
    // EVENTS stream was recreated). It gets the whole list, which says so (`since: 0`),
    // and replaces its copy.
    let since = if since > version {
        tracing::info!(
            since,
            version,
            "a revocation list asked from beyond its version: sending it whole"
        );
        0
    } else {
        since
    };
    let filter = doc! {
        "eventId": event_id,
        "version": {"$gt": since as i64, "$lte": version as i64},
    };
    let docs: Vec<Document> = ctx
        .store
        .col(names::TICKET_REVOCATIONS)
        .find(filter)
        .sort(doc! {"version": 1, "_id": 1})
        .await?
        .try_collect()
        .await?;
    let list = RevocationList {
        event_id: event_id.to_hex(),
        since,
        version,
        issued_at: ctx
            .signing_time()
            .to_rfc3339_opts(SecondsFormat::Secs, true),
        entries: docs.iter().filter_map(entry_of).collect(),
    };
    let signed = SignedRevocations::sign(keys.signer(), &list);
    Ok(Reply::ok(
        200,
        serde_json::to_value(signed).map_err(|e| StoreError::Bson(e.to_string()))?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_entry_reads_back_as_a_list_entry() {
        let (t, e, b) = (ObjectId::new(), ObjectId::new(), ObjectId::new());
        let d = doc! {
            "_id": t, "ticketId": t, "eventId": e, "bookingId": b, "qrCodeId": qr_code_id_for(&t),
            "qrSha256": "ab", "ticketNumber": "TKT-1", "reason": "event_cancelled",
            "revokedAt": DateTime::from_millis(1_764_000_000_000), "version": 42_i64,
        };
        let entry = entry_of(&d).unwrap();
        assert_eq!(entry.version, 42);
        assert_eq!(entry.ticket_id, t.to_hex());
        assert_eq!(entry.booking_id, Some(b.to_hex()));
        assert_eq!(entry.reason, "event_cancelled");
        assert_eq!(entry.revoked_at, "2025-11-24T16:00:00.000Z");
        assert!(
            entry_of(&doc! {"ticketId": t}).is_none(),
            "no version, no entry"
        );
    }
}
