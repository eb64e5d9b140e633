//! What a gate needs to know of each ticket, in the `gate-tickets` KV bucket, so a scan
//! is decided without a database round trip:
//!
//! - `<ticketId>`: the ticket as a gate sees it ([`GateTicket`]): a hash of its current
//!   QR string, whether it is cancelled (and why), its event's date, and what the gate
//!   shows. Written once at issuance (create: a redelivered issuance never undoes a
//!   cancellation), overwritten by a cancellation.
//! - `<ticketId>.first`: the ticket's first successful scan ([`FirstScan`]). A KV create
//!   decides the race between gates: one create wins, every other scan reads the winner.
//!
//! MongoDB (`ticket_scans`, the ticket's scan fields, the QR code's `scanCount`) is
//! written from the scan's domain event by the documents projection. A ticket issued
//! before this bucket existed is read once from MongoDB and written here
//! ([`gate_ticket`]).

use async_nats::jetstream::kv;
use bson::{doc, Document};
use domain::entities::ticket::TicketStatus;
use domain::{DateTime, ObjectId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::app::context::{Ctx, HandlerError};
use crate::store::{bson_to_json, names};

/// A ticket as the gate sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GateTicket {
    pub ticket_id: ObjectId,
    pub qr_code_id: Option<ObjectId>,
    pub event_id: Option<ObjectId>,
    /// SHA-256 of the ticket's current QR string, hex: a scan must present that one.
    pub qr_sha256: String,
    pub status: TicketStatus,
    /// Why it may not enter, once cancelled (the QR code's invalidation reason).
    pub cancel_reason: Option<String>,
    pub event_date: Option<DateTime>,
    /// What a gate is shown: id, ticketNumber, status, event, seat, booking.
    pub view: Value,
}

/// The first successful scan of a ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FirstScan {
    pub scan_id: ObjectId,
    pub command_id: String,
    pub scanned_at: DateTime,
    pub gate: Option<String>,
    pub device_id: String,
    pub scanned_by_user_id: Option<ObjectId>,
}

pub(crate) fn qr_hash(qr: &str) -> String {
    hex::encode(Sha256::digest(qr.as_bytes()))
}

fn first_key(ticket: &ObjectId) -> String {
    format!("{}.first", ticket.to_hex())
}

/// What a gate is shown of a ticket document.
pub(crate) fn view_of(t: &Document) -> Value {
    let mut v = serde_json::json!({});
    for k in [
        "_id",
        "ticketNumber",
        "status",
        "eventId",
        "eventName",
        "eventDate",
        "eventTime",
        "seatInfo",
        "bookingId",
        "scannedAt",
    ] {
        if let Some(x) = t.get(k) {
            let key = if k == "_id" { "id" } else { k };
            v[key] = bson_to_json(x);
        }
    }
    v
}

impl GateTicket {
    /// The gate's record of a ticket document (active unless the document says
    /// otherwise); `None` when it has no id or QR string.
    pub(crate) fn of(t: &Document) -> Option<GateTicket> {
        let status = TicketStatus::parse(t.get_str("status").unwrap_or("active"))
            .unwrap_or(TicketStatus::Active);
        Some(GateTicket {
            ticket_id: t.get_object_id("_id").ok()?,
            qr_code_id: t.get_object_id("qrCodeId").ok(),
            event_id: t.get_object_id("eventId").ok(),
            qr_sha256: qr_hash(t.get_str("qrString").ok()?),
            status,
            cancel_reason: None,
            event_date: t.get_datetime("eventDate").ok().copied(),
            view: view_of(t),
        })
    }

    pub(crate) fn cancelled(mut self, reason: &str) -> GateTicket {
        self.status = TicketStatus::Cancelled;
        self.cancel_reason = Some(reason.to_string());
        self.view["status"] = Value::from(TicketStatus::Cancelled.as_str());
        self
    }
}

fn encode<T: Serialize>(v: &T) -> Result<bytes::Bytes, HandlerError> {
    serde_json::to_vec(v)
        .map(Into::into)
        .map_err(|e| HandlerError::Permanent(e.to_string()))
}

fn transient(e: impl std::fmt::Display) -> HandlerError {
    HandlerError::Transient(format!("gate-tickets bucket: {e}"))
}

/// Writes a newly issued ticket, unless the gate knows it already (a redelivery must not
/// undo a cancellation that came in between).
pub(crate) async fn record_issued(ctx: &Ctx, t: &GateTicket) -> Result<(), HandlerError> {
    match ctx.gate.create(t.ticket_id.to_hex(), encode(t)?).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(transient(e)),
    }
}

/// Marks a ticket cancelled for every gate, from its document.
pub(crate) async fn record_cancelled(
    ctx: &Ctx,
    ticket: &Document,
    reason: &str,
) -> Result<(), HandlerError> {
    let Some(t) = GateTicket::of(ticket) else {
        return Ok(());
    };
    let t = t.cancelled(reason);
    ctx.gate
        .put(t.ticket_id.to_hex(), encode(&t)?)
        .await
        .map(|_| ())
        .map_err(transient)
}

async fn get<T: for<'de> Deserialize<'de>>(
    ctx: &Ctx,
    key: &str,
) -> Result<Option<T>, HandlerError> {
    match ctx.gate.get(key).await.map_err(transient)? {
        None => Ok(None),
        Some(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| HandlerError::Permanent(format!("gate entry {key}: {e}"))),
    }
}

/// The gate's record of a ticket: from the bucket, or (a ticket issued before the bucket
/// existed) read once from MongoDB, with its cancellation and any first scan, and written
/// to the bucket. `None`: no such ticket.
pub(crate) async fn gate_ticket(
    ctx: &Ctx,
    ticket_id: ObjectId,
) -> Result<Option<GateTicket>, HandlerError> {
    if let Some(t) = get::<GateTicket>(ctx, &ticket_id.to_hex()).await? {
        return Ok(Some(t));
    }
    let Some(doc) = ctx
        .store
        .col(names::TICKETS)
        .find_one(doc! {"_id": ticket_id})
        .await?
    else {
        return Ok(None);
    };
    let Some(mut t) = GateTicket::of(&doc) else {
        return Ok(None);
    };
    if let Some(reason) = crate::tickets::scans::cancellation(ctx, &doc).await? {
        t = t.cancelled(&reason);
    }
    if let Some(first) = ctx
        .store
        .col(names::TICKET_SCANS)
        .find_one(doc! {"_id": crate::tickets::scans::first_scan_id(&ticket_id)})
        .await?
    {
        let f = FirstScan {
            scan_id: crate::tickets::scans::first_scan_id(&ticket_id),
            command_id: first.get_str("commandId").unwrap_or_default().to_string(),
            scanned_at: first
                .get_datetime("scannedAt")
                .copied()
                .unwrap_or_else(|_| ctx.now_stored()),
            gate: first
                .get_document("scanLocation")
                .ok()
                .and_then(|l| l.get_str("gate").ok())
                .map(str::to_string),
            device_id: first
                .get_str("scannedByDeviceId")
                .unwrap_or_default()
                .to_string(),
            scanned_by_user_id: first.get_object_id("scannedByUserId").ok(),
        };
        let _ = claim_first(ctx, &ticket_id, &f).await?;
    }
    record_issued(ctx, &t).await?;
    // Whichever write won (ours, or a cancellation in between) is the record.
    Ok(get::<GateTicket>(ctx, &ticket_id.to_hex())
        .await?
        .or(Some(t)))
}

/// The race for the first scan: creates `<ticketId>.first` with `mine`, or reads the one
/// that won. The answer is the winner (`mine` itself when this scan won, or when it is a
/// redelivery of the winning command).
pub(crate) async fn claim_first(
    ctx: &Ctx,
    ticket_id: &ObjectId,
    mine: &FirstScan,
) -> Result<FirstScan, HandlerError> {
    let key = first_key(ticket_id);
    match ctx.gate.create(&key, encode(mine)?).await {
        Ok(_) => Ok(mine.clone()),
        Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => get::<FirstScan>(ctx, &key)
            .await?
            .ok_or_else(|| HandlerError::Transient("the first scan is not readable yet".into())),
        Err(e) => Err(transient(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancelled_record_keeps_the_ticket_and_says_why() {
        let id = ObjectId::new();
        let d = doc! {"_id": id, "qrString": "abc", "status": "active", "ticketNumber": "T-1"};
        let t = GateTicket::of(&d).unwrap();
        assert_eq!(t.status, TicketStatus::Active);
        assert_eq!(t.qr_sha256, qr_hash("abc"));
        assert_ne!(t.qr_sha256, qr_hash("abd"));
        let c = t.clone().cancelled("event_cancelled");
        assert_eq!(c.status, TicketStatus::Cancelled);
        assert_eq!(c.cancel_reason.as_deref(), Some("event_cancelled"));
        assert_eq!(c.view["status"], "cancelled");
        assert_eq!(c.view["id"], id.to_hex());
        // Round-trips through the bucket's JSON.
        let back: GateTicket = serde_json::from_slice(&serde_json::to_vec(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        assert!(
            GateTicket::of(&doc! {"_id": id}).is_none(),
            "no QR string, no record"
        );
    }
}
