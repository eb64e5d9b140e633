//! The scans projection: gate scans, decided in NATS KV by the scans worker, written to
//! `ticket_scans`, and each first scan to its ticket and QR code.

use std::future::IntoFuture;

use bson::{doc, Document};
use domain::entities::ticket::TicketStatus;
use domain::entities::TicketScan;
use domain::ObjectId;
use futures::FutureExt;
use mongodb::Collection;
use streams::events::{DomainEvent, EventEnvelope};

use super::{bounded, persist};
use crate::app::context::{Ctx, HandlerError};
use crate::store::{is_duplicate_key, names};

/// Gate scans, decided in NATS KV by the scans worker (see `gate`): every scan's
/// `ticket_scans` record (carried whole by its event; `_id` unique, so a redelivery
/// inserts nothing twice), and for each first scan the ticket's scan fields and the QR
/// code's `scanCount` (set, not incremented: one successful scan per ticket).
pub(super) async fn apply_scans(ctx: &Ctx, events: &[EventEnvelope]) -> Result<(), HandlerError> {
    let (records, firsts) = scans_of(events)?;
    insert_records(ctx, records).await?;
    let tickets = ctx.store.col(names::TICKETS);
    let qr_codes = ctx.store.col(names::QR_CODES);
    bounded(
        firsts
            .into_iter()
            .map(|(ticket_id, rec)| {
                let (tickets, qr_codes) = (tickets.clone(), qr_codes.clone());
                mark_scanned(ctx, tickets, qr_codes, ticket_id, rec).boxed()
            })
            .collect(),
    )
    .await
}

/// First scans, with their tickets.
type FirstScans = Vec<(ObjectId, TicketScan)>;

/// The batch's scan records, and its first scans.
fn scans_of(events: &[EventEnvelope]) -> Result<(Vec<Document>, FirstScans), HandlerError> {
    let mut records = Vec::new();
    let mut firsts = Vec::new();
    for e in events {
        match &e.event {
            DomainEvent::TicketScanned(s) => {
                records.push(crate::store::to_doc(&s.scan)?);
                firsts.push((s.ticket_id, s.scan.clone()));
            }
            DomainEvent::TicketScanRefused(s) => records.push(crate::store::to_doc(&s.scan)?),
            DomainEvent::HoldCreated(_)
            | DomainEvent::HoldReleased(_)
            | DomainEvent::HoldExpired(_)
            | DomainEvent::HoldConverted(_)
            | DomainEvent::BookingCreated(_)
            | DomainEvent::BookingConfirmed(_)
            | DomainEvent::BookingCancelled(_)
            | DomainEvent::BookingExpired(_)
            | DomainEvent::RefundProcessed(_)
            | DomainEvent::PaymentInitiated(_)
            | DomainEvent::PaymentFailed(_)
            | DomainEvent::PaymentCompleted(_)
            | DomainEvent::TicketsIssued(_)
            | DomainEvent::TicketDownloaded(_)
            | DomainEvent::EventCreated(_)
            | DomainEvent::EventPublished(_)
            | DomainEvent::EventCancelled(_)
            | DomainEvent::UserRegistered(_)
            | DomainEvent::UserLoggedOut(_)
            | DomainEvent::UserSuspended(_)
            | DomainEvent::UserVerified(_)
            | DomainEvent::UserPasswordReset(_)
            | DomainEvent::CommandRefused(_) => {}
        }
    }
    Ok((records, firsts))
}

/// Inserts the scan records; duplicates are earlier deliveries.
async fn insert_records(ctx: &Ctx, records: Vec<Document>) -> Result<(), HandlerError> {
    if !records.is_empty() {
        let col = ctx.store.col(names::TICKET_SCANS);
        match persist(|| {
            col.insert_many(records.clone())
                .ordered(false)
                .into_future()
        })
        .await
        {
            Ok(_) => {}
            Err(e) if is_duplicate_key(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A first scan on its ticket (status and scan fields) and on its QR code (`scanCount`),
/// each under its document's lease.
async fn mark_scanned(
    ctx: &Ctx,
    tickets: Collection<Document>,
    qr_codes: Collection<Document>,
    ticket_id: ObjectId,
    rec: TicketScan,
) -> Result<(), HandlerError> {
    let at = rec.scanned_at;
    let gate = rec.scan_location.as_ref().and_then(|l| l.gate.clone());
    let set = doc! {
        "status": TicketStatus::Scanned.as_str(), "isScanned": true, "scannedAt": at,
        "scannedByUserId": rec.scanned_by_user_id, "scanLocation": gate, "updatedAt": at,
    };
    crate::store::leases::with_lease(ctx, names::TICKETS, ticket_id, || async {
        persist(|| {
            tickets
                .update_one(doc! {"_id": ticket_id}, doc! {"$set": set.clone()})
                .into_future()
        })
        .await?;
        Ok(())
    })
    .await?;
    if let Some(qr_id) = rec.qr_code_id {
        crate::store::leases::with_lease(ctx, names::QR_CODES, qr_id, || async {
            persist(|| {
                qr_codes
                    .update_one(
                        doc! {"_id": qr_id},
                        doc! {"$set": {"scanCount": 1_i64, "lastScannedAt": at, "updatedAt": at}},
                    )
                    .into_future()
            })
            .await?;
            Ok(())
        })
        .await?;
    }
    Ok(())
}
