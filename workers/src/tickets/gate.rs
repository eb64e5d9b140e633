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
use domain::entities::ticket::{Ticket, TicketStatus};
use domain::entities::TicketScan;
use domain::{DateTime, ObjectId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::app::context::{Ctx, HandlerError};
use crate::store::repo::Repo;
use crate::store::{bson_to_json, to_doc};

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
    /// The gate's record of a ticket, as its document says (active unless it says
    /// otherwise).
    pub(crate) fn of(t: &Ticket) -> Result<GateTicket, HandlerError> {
        Ok(GateTicket {
            ticket_id: t.id,
            qr_code_id: Some(t.qr_code_id),
            event_id: Some(t.event_id),
            qr_sha256: qr_hash(&t.qr_string),
            status: t.status,
            cancel_reason: None,
            event_date: Some(t.event_date),
            view: view_of(&to_doc(t)?),
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
        .map_err(HandlerError::permanent)
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
    ticket: &Ticket,
    reason: &str,
) -> Result<(), HandlerError> {
    let t = GateTicket::of(ticket)?.cancelled(reason);
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
    let Some(ticket) = Repo::<Ticket>::new(&ctx.store).get(ticket_id).await? else {
        return Ok(None);
    };
    let mut t = GateTicket::of(&ticket)?;
    if let Some(reason) = crate::tickets::scans::cancellation(ctx, &ticket).await? {
        t = t.cancelled(&reason);
    }
    let first_id = crate::tickets::scans::first_scan_id(&ticket_id);
    if let Some(first) = Repo::<TicketScan>::new(&ctx.store).get(first_id).await? {
        let f = FirstScan {
            scan_id: first_id,
            command_id: first.command_id.unwrap_or_default(),
            scanned_at: first.scanned_at,
            gate: first.scan_location.and_then(|l| l.gate),
            device_id: first.scanned_by_device_id,
            scanned_by_user_id: Some(first.scanned_by_user_id),
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

    fn sample_ticket() -> Ticket {
        use domain::entities::reference::{booking_reference, ticket_number};
        let now = domain::DateTime::from_millis(1_700_000_000_000);
        let id = ObjectId::new();
        Ticket {
            id,
            booking_id: ObjectId::new(),
            user_id: ObjectId::new(),
            event_id: ObjectId::new(),
            seat_id: ObjectId::new(),
            qr_code_id: ObjectId::new(),
            qr_string: "v1.abc.sig".into(),
            ticket_number: ticket_number(&booking_reference(1_700_000_000_000, 7), 0).unwrap(),
            status: TicketStatus::Active,
            event_name: "Show".into(),
            event_date: now,
            event_time: "20:00".into(),
            seat_info: domain::entities::ticket::SeatInfo {
                row: "A".into(),
                number: 1,
                section: "Stalls".into(),
                price: domain::Money::from_minor(2500, domain::Currency::USD),
            },
            is_scanned: false,
            scanned_at: None,
            scanned_by_user_id: None,
            scan_location: None,
            expires_at: None,
            downloaded_at: None,
            download_count: 0,
            issued_at: now,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn a_cancelled_record_keeps_the_ticket_and_says_why() {
        let ticket = sample_ticket();
        let t = GateTicket::of(&ticket).unwrap();
        assert_eq!(t.status, TicketStatus::Active);
        assert_eq!(t.qr_sha256, qr_hash(&ticket.qr_string));
        assert_ne!(t.qr_sha256, qr_hash("another string"));
        let c = t.clone().cancelled("event_cancelled");
        assert_eq!(c.status, TicketStatus::Cancelled);
        assert_eq!(c.cancel_reason.as_deref(), Some("event_cancelled"));
        assert_eq!(c.view["status"], "cancelled");
        assert_eq!(c.view["id"], ticket.id.to_hex());
        // Round-trips through the bucket's JSON.
        let back: GateTicket = serde_json::from_slice(&serde_json::to_vec(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }
}
