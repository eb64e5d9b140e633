//! The scans worker: one `ScanTicket` per read of a QR code at a gate.
//!
//! The signature is checked first (`domain::qr`: unknown key, bad signature or garbage is
//! `invalid_qr`), then the ticket (unknown: `invalid_qr`; cancelled or its QR code
//! invalidated: `ticket_cancelled` with the reason; its event over: `ticket_expired`).
//! A ticket that may enter races for its first scan by inserting the `success` record
//! of `ticket_scans` under an `_id` derived from the ticket: the unique `_id` lets one
//! insert win, and every other scan answers `already_scanned` with the first scan's time
//! and gate. Every scan, whatever its outcome, is recorded in `ticket_scans`.
//!
//! NOTE: the first scan is decided by a unique-key insert, not by a conditional update of
//! the ticket: FerretDB's conditional updates are not atomic under concurrency.

use bson::{doc, Document};
use domain::entities::ticket::TicketStatus;
use domain::entities::ticket_scan::{event_over, ScanLocation, ScanStatus, TicketScan};
use domain::ids::derive_object_id;
use domain::{DateTime, ObjectId};
use serde_json::{json, Value};
use streams::codes::{ErrorCode, Reply};
use streams::commands::{CommandEnvelope, Issuer, ScanTicket};

use crate::context::{Change, Ctx, HandlerError};
use crate::leases::with_lease;
use crate::store::{bson_to_json, is_duplicate_key, names, to_doc};
use crate::ticketing::keys;

/// Longest device id and gate name kept.
pub const MAX_LABEL: usize = 128;

/// The `ticket_scans` record of a ticket's first successful scan: one per ticket.
pub fn first_scan_id(ticket: &ObjectId) -> ObjectId {
    derive_object_id(
        "first_scan",
        &ticket.to_hex(),
        ticket.timestamp().timestamp_millis() / 1000,
    )
}

/// The record of any other scan: one per scan command.
fn scan_id(env: &CommandEnvelope) -> ObjectId {
    derive_object_id("scan", &env.id, env.issued_at.timestamp())
}

/// What a gate is told about a ticket.
fn ticket_view(t: &Document) -> Value {
    let mut v = json!({});
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

/// One scan being handled: who, where, when.
struct Scan<'a> {
    ctx: &'a Ctx,
    env: &'a CommandEnvelope,
    cmd: &'a ScanTicket,
    staff: Issuer,
    now: DateTime,
}

/// The outcome of a scan that was refused.
struct Refusal<'a> {
    status: ScanStatus,
    reason: &'a str,
    message: String,
    ticket: Option<&'a Document>,
    details: Option<Document>,
}

impl Scan<'_> {
    fn record(&self, id: ObjectId, status: ScanStatus, ticket: Option<&Document>) -> TicketScan {
        TicketScan {
            id,
            ticket_id: ticket.and_then(|t| t.get_object_id("_id").ok()),
            qr_code_id: ticket.and_then(|t| t.get_object_id("qrCodeId").ok()),
            scan_status: status,
            scanned_at: self.now,
            scanned_by_device_id: self.cmd.device_id.clone(),
            scanned_by_user_id: self.staff.user_id,
            scan_location: Some(ScanLocation {
                gate: self.cmd.gate.clone(),
                ..Default::default()
            }),
            ip_address: self.env.context.ip_address.clone(),
            user_agent: self.env.context.user_agent.clone(),
            failure_reason: None,
            failure_details: None,
            command_id: Some(self.env.id.clone()),
            created_at: self.now,
        }
    }

    /// Records a scan that was not let in and answers it.
    async fn refuse(&self, r: Refusal<'_>) -> Result<Reply, HandlerError> {
        let id = scan_id(self.env);
        let mut rec = self.record(id, r.status, r.ticket);
        rec.failure_reason = Some(r.reason.to_string());
        rec.failure_details = r.details.clone();
        insert_once(self.ctx, &to_doc(&rec)?).await?;
        let ticket_id = rec.ticket_id;
        self.ctx
            .emit(
                self.env,
                Change {
                    kind: "ticket.scan_refused",
                    action: "ticket_scan_refused",
                    entity_type: "ticket_scan",
                    entity_id: id,
                    event_id: r.ticket.and_then(|t| t.get_object_id("eventId").ok()),
                    before: None,
                    after: Some(json!({"scanStatus": r.status.as_str()})),
                    data: json!({
                        "failureReason": r.reason,
                        "ticketId": ticket_id.map(|t| t.to_hex()),
                        "deviceId": self.cmd.device_id,
                        "gate": self.cmd.gate,
                    }),
                },
            )
            .await?;
        let mut body = json!({
            "status": r.status.as_str(),
            "reason": r.reason,
            "message": r.message,
            "scanId": id.to_hex(),
        });
        if let Some(t) = r.ticket {
            body["ticket"] = ticket_view(t);
        }
        if let Some(d) = r.details.filter(|_| r.status == ScanStatus::AlreadyScanned) {
            body["firstScan"] = bson_to_json(&bson::Bson::Document(d));
        }
        Ok(Reply::ok(200, body))
    }
}

/// Inserts a scan record; a second insert of the same record (a redelivered command) is
/// no error.
async fn insert_once(ctx: &Ctx, d: &Document) -> Result<(), HandlerError> {
    match ctx.store.col(names::TICKET_SCANS).insert_one(d).await {
        Ok(_) => Ok(()),
        Err(e) if is_duplicate_key(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn label(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty() && s.chars().count() <= MAX_LABEL && !s.chars().any(char::is_control))
        .then(|| s.to_string())
}

pub async fn scan(ctx: &Ctx, env: &CommandEnvelope, c: &ScanTicket) -> Result<Reply, HandlerError> {
    let Some(staff) = env.issuer.clone() else {
        return Ok(Reply::error(ErrorCode::Unauthorized, "sign in first"));
    };
    if !staff.role.is_staff() {
        return Ok(Reply::error(ErrorCode::Forbidden, "staff only"));
    }
    let Some(device_id) = label(&c.device_id) else {
        return Ok(Reply::error(
            ErrorCode::ValidationFailed,
            format!("deviceId must be 1 to {MAX_LABEL} characters"),
        ));
    };
    let gate = match c.gate.as_deref() {
        None => None,
        Some(g) => match label(g) {
            Some(g) => Some(g),
            None => {
                return Ok(Reply::error(
                    ErrorCode::ValidationFailed,
                    format!("gate must be 1 to {MAX_LABEL} characters"),
                ))
            }
        },
    };
    let cmd = ScanTicket {
        qr_string: c.qr_string.trim().to_string(),
        device_id,
        gate,
    };
    let s = Scan {
        ctx,
        env,
        cmd: &cmd,
        staff,
        now: DateTime::from_millis(env.issued_at.timestamp_millis()),
    };
    let payload = match keys(ctx)?.verifier().verify(&cmd.qr_string) {
        Ok(p) => p,
        Err(e) => {
            return s
                .refuse(Refusal {
                    status: ScanStatus::InvalidQr,
                    reason: e.reason(),
                    message: e.to_string(),
                    ticket: None,
                    details: None,
                })
                .await
        }
    };
    let tickets = ctx.store.col(names::TICKETS);
    let Some(ticket) = tickets.find_one(doc! {"_id": payload.ticket_id}).await? else {
        return s
            .refuse(Refusal {
                status: ScanStatus::InvalidQr,
                reason: "unknown_ticket",
                message: "the QR code names no ticket of ours".into(),
                ticket: None,
                details: None,
            })
            .await;
    };
    if ticket.get_str("qrString").ok() != Some(cmd.qr_string.as_str()) {
        return s
            .refuse(Refusal {
                status: ScanStatus::InvalidQr,
                reason: "qr_mismatch",
                message: "this is not the ticket's current QR code".into(),
                ticket: Some(&ticket),
                details: None,
            })
            .await;
    }
    if let Some(reason) = cancellation(ctx, &ticket).await? {
        return s
            .refuse(Refusal {
                status: ScanStatus::TicketCancelled,
                message: format!("the ticket was cancelled ({reason})"),
                reason: &reason,
                ticket: Some(&ticket),
                details: None,
            })
            .await;
    }
    let status = TicketStatus::parse(ticket.get_str("status").unwrap_or_default())
        .unwrap_or(TicketStatus::Active);
    let over = ticket
        .get_datetime("eventDate")
        .map(|d| event_over(*d, s.now, ctx.cfg.scan_grace_secs))
        .unwrap_or(false);
    if ScanStatus::for_ticket(status, over) == ScanStatus::TicketExpired {
        return s
            .refuse(Refusal {
                status: ScanStatus::TicketExpired,
                reason: if over { "event_over" } else { "ticket_expired" },
                message: "the event is over".into(),
                ticket: Some(&ticket),
                details: None,
            })
            .await;
    }
    first_scan(&s, &ticket).await
}

/// Why the ticket may not enter because it was cancelled: the ticket's status, its QR
/// code's invalidation, or (should the ticket not know yet) its booking's cancellation.
async fn cancellation(ctx: &Ctx, ticket: &Document) -> Result<Option<String>, HandlerError> {
    let qr = match ticket.get_object_id("qrCodeId") {
        Ok(id) => {
            ctx.store
                .col(names::QR_CODES)
                .find_one(doc! {"_id": id})
                .await?
        }
        Err(_) => None,
    };
    let qr_reason = qr.as_ref().and_then(|q| {
        (q.get_bool("isValid").ok() == Some(false)).then(|| {
            q.get_str("invalidationReason")
                .unwrap_or("qr_invalidated")
                .to_string()
        })
    });
    if ticket.get_str("status").ok() == Some("cancelled") || qr_reason.is_some() {
        return Ok(Some(qr_reason.unwrap_or_else(|| "ticket_cancelled".into())));
    }
    let booking = match ticket.get_object_id("bookingId") {
        Ok(id) => {
            ctx.store
                .col(names::BOOKINGS)
                .find_one(doc! {"_id": id})
                .await?
        }
        Err(_) => None,
    };
    Ok(booking
        .filter(|b| b.get_str("status").ok() == Some("cancelled"))
        .map(|b| {
            b.get_str("cancellationReason")
                .unwrap_or("booking_cancelled")
                .to_string()
        }))
}

/// The race for the first scan: the unique `_id` of the success record decides.
async fn first_scan(s: &Scan<'_>, ticket: &Document) -> Result<Reply, HandlerError> {
    let ctx = s.ctx;
    let ticket_id = ticket
        .get_object_id("_id")
        .map_err(|e| HandlerError::Permanent(e.to_string()))?;
    let first_id = first_scan_id(&ticket_id);
    let won = to_doc(&s.record(first_id, ScanStatus::Success, Some(ticket)))?;
    let scans = ctx.store.col(names::TICKET_SCANS);
    let first = match scans.insert_one(&won).await {
        Ok(_) => won,
        Err(e) if is_duplicate_key(&e) => scans
            .find_one(doc! {"_id": first_id})
            .await?
            .ok_or_else(|| HandlerError::Transient("the first scan is not readable yet".into()))?,
        Err(e) => return Err(e.into()),
    };
    // Ours (also when this command is redelivered after winning) or another's.
    if first.get_str("commandId").ok() != Some(s.env.id.as_str()) {
        let gate = first
            .get_document("scanLocation")
            .ok()
            .and_then(|l| l.get_str("gate").ok())
            .map(str::to_string);
        let mut details = doc! {
            "scanId": first_id,
            "scannedAt": first.get_datetime("scannedAt").ok().copied(),
            "gate": gate,
            "deviceId": first.get_str("scannedByDeviceId").unwrap_or_default(),
        };
        if let Ok(by) = first.get_object_id("scannedByUserId") {
            details.insert("scannedByUserId", by);
        }
        return s
            .refuse(Refusal {
                status: ScanStatus::AlreadyScanned,
                reason: "already_scanned",
                message: "this ticket was already scanned".into(),
                ticket: Some(ticket),
                details: Some(details),
            })
            .await;
    }
    let at = first.get_datetime("scannedAt").copied().unwrap_or(s.now);
    let tickets = ctx.store.col(names::TICKETS);
    let set = doc! {
        "status": "scanned", "isScanned": true, "scannedAt": at,
        "scannedByUserId": s.staff.user_id, "scanLocation": s.cmd.gate.clone(), "updatedAt": at,
    };
    with_lease(ctx, names::TICKETS, ticket_id, || async {
        tickets
            .update_one(doc! {"_id": ticket_id}, doc! {"$set": set.clone()})
            .await?;
        Ok(())
    })
    .await?;
    if let Ok(qr_id) = ticket.get_object_id("qrCodeId") {
        let qr_codes = ctx.store.col(names::QR_CODES);
        with_lease(ctx, names::QR_CODES, qr_id, || async {
            // One successful scan per ticket, so the count is set, not incremented: a
            // redelivery cannot count it twice.
            qr_codes
                .update_one(
                    doc! {"_id": qr_id},
                    doc! {"$set": {"scanCount": 1_i64, "lastScannedAt": at, "updatedAt": at}},
                )
                .await?;
            Ok(())
        })
        .await?;
    }
    let mut after = ticket.clone();
    after.extend(set);
    ctx.emit(
        s.env,
        Change {
            kind: "ticket.scanned",
            action: "ticket_scanned",
            entity_type: "ticket",
            entity_id: ticket_id,
            event_id: ticket.get_object_id("eventId").ok(),
            before: Some(json!({"status": ticket.get_str("status").unwrap_or("active")})),
            after: Some(json!({"status": "scanned", "gate": s.cmd.gate})),
            data: json!({
                "scanId": first_id.to_hex(),
                "deviceId": s.cmd.device_id,
                "gate": s.cmd.gate,
                "ticketNumber": ticket.get_str("ticketNumber").unwrap_or_default(),
            }),
        },
    )
    .await?;
    Ok(Reply::ok(
        200,
        json!({"status": "success", "ticket": ticket_view(&after), "scanId": first_id.to_hex()}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_trimmed_and_bounded() {
        assert_eq!(label("  gate A ").as_deref(), Some("gate A"));
        assert_eq!(label(""), None);
        assert_eq!(label("   "), None);
        assert_eq!(label(&"x".repeat(MAX_LABEL + 1)), None);
        assert_eq!(label("a\nb"), None);
    }

    #[test]
    fn the_first_scan_record_is_one_per_ticket() {
        let t = ObjectId::new();
        assert_eq!(first_scan_id(&t), first_scan_id(&t));
        assert_ne!(first_scan_id(&t), first_scan_id(&ObjectId::new()));
    }
}
