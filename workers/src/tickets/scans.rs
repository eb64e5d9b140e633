//! The scans worker: one `ScanTicket` per read of a QR code at a gate.
//!
//! The signature is checked first (`domain::qr`: unknown key, bad signature or garbage is
//! `invalid_qr`), then the ticket (unknown: `invalid_qr`; cancelled or its QR code
//! invalidated: `ticket_cancelled` with the reason; its event over: `ticket_expired`).
//! The ticket is read from the gate's record in NATS KV (`gate`), never from MongoDB on
//! the answer path. A ticket that may enter races for its first scan with a KV create of
//! `<ticketId>.first`: one create wins, and every other scan answers `already_scanned`
//! with the first scan's time and gate. Every scan, whatever its outcome, is published as
//! a domain event carrying its whole `ticket_scans` record; the documents projection
//! writes the record, the ticket's scan fields and the QR code's `scanCount`.
//!
//! NOTE: the first scan is decided by a KV create, not by a conditional update of the
//! ticket: FerretDB's conditional updates are not atomic under concurrency, and a KV
//! create costs one NATS round trip where a MongoDB insert costs a PostgreSQL commit.

use bson::{doc, Document};
use domain::entities::ticket::{Ticket, TicketStatus};
use domain::entities::ticket_scan::{ScanLocation, ScanStatus, TicketScan};
use domain::entities::{Booking, QrCode};
use domain::events::{DomainEvent, TicketScanRefused, TicketScanned};
use domain::ids::derive_object_id;
use domain::tickets::decide::{decide_issue, IssueDecision};
use domain::tickets::scan_decide::{
    check_scanner, decide_first_scan, decide_scan, FirstScanDecision, GateTicketState,
    ScanDecision, ScanRejection, Scanner,
};
use domain::{DateTime, ObjectId};
use serde_json::{json, Value};
use streams::codes::Reply;
use streams::commands::{CommandEnvelope, Issuer, ScanTicket};

use crate::app::context::{Ctx, HandlerError};
use crate::store::bson_to_json;
use crate::store::repo::Repo;
use crate::tickets::gate::{self, FirstScan, GateTicket};
use crate::tickets::keys;

/// The `ticket_scans` record of a ticket's first successful scan: one per ticket.
pub(crate) fn first_scan_id(ticket: &ObjectId) -> ObjectId {
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

/// One scan being handled: who, where, when.
struct Scan<'a> {
    ctx: &'a Ctx,
    env: &'a CommandEnvelope,
    cmd: &'a ScanTicket,
    staff: Issuer,
    now: DateTime,
}

impl Scan<'_> {
    fn record(&self, id: ObjectId, status: ScanStatus, ticket: Option<&GateTicket>) -> TicketScan {
        TicketScan {
            id,
            ticket_id: ticket.map(|t| t.ticket_id),
            qr_code_id: ticket.and_then(|t| t.qr_code_id),
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
    async fn refuse(
        &self,
        r: ScanRejection,
        ticket: Option<&GateTicket>,
        details: Option<Document>,
    ) -> Result<Reply, HandlerError> {
        let id = scan_id(self.env);
        let mut rec = self.record(id, r.status, ticket);
        rec.failure_reason = Some(r.reason.clone());
        rec.failure_details = details.clone();
        let event = DomainEvent::TicketScanRefused(TicketScanRefused {
            scan_id: id,
            event_id: ticket.and_then(|t| t.event_id),
            failure_reason: r.reason.clone(),
            ticket_id: rec.ticket_id,
            device_id: self.cmd.device_id.clone(),
            gate: self.cmd.gate.clone(),
            scan: rec,
        });
        let after = json!({"scanStatus": r.status.as_str()});
        self.ctx.emit(self.env, event, None, Some(after)).await?;
        let mut body = json!({
            "status": r.status.as_str(),
            "reason": r.reason,
            "message": r.message,
            "scanId": id.to_hex(),
        });
        if let Some(t) = ticket {
            body["ticket"] = t.view.clone();
        }
        if let Some(d) = details.filter(|_| r.status == ScanStatus::AlreadyScanned) {
            body["firstScan"] = bson_to_json(&bson::Bson::Document(d));
        }
        Ok(Reply::ok(200, body))
    }
}

pub(crate) async fn scan(
    ctx: &Ctx,
    env: &CommandEnvelope,
    c: &ScanTicket,
) -> Result<Reply, HandlerError> {
    let scanner = match check_scanner(env.actor(), &c.device_id, c.gate.as_deref()) {
        Ok(s) => s,
        Err(r) => return Ok(Reply::refused(&r)),
    };
    let (Some(staff), Scanner { device_id, gate }) = (env.issuer.clone(), scanner) else {
        return Err(HandlerError::Permanent(
            "a scanner checked without its issuer".into(),
        ));
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
    let verified = keys(ctx)?.verifier().verify(&cmd.qr_string);
    let ticket = match &verified {
        Ok(p) => gate::gate_ticket(ctx, p.ticket_id).await?,
        Err(_) => None,
    };
    let state = ticket.as_ref().map(|t| GateTicketState {
        status: t.status,
        cancel_reason: t.cancel_reason.clone(),
        event_date: t.event_date,
        qr_matches: t.qr_sha256 == gate::qr_hash(&cmd.qr_string),
    });
    let decision = decide_scan(
        verified.as_ref(),
        state.as_ref(),
        s.now,
        ctx.cfg.scan_grace_secs,
    );
    match (decision, &ticket) {
        (ScanDecision::ClaimFirst, Some(t)) => first_scan(&s, t).await,
        (ScanDecision::Reject(r), t) => s.refuse(r, t.as_ref(), None).await,
        (ScanDecision::ClaimFirst, None) => Err(HandlerError::Permanent(
            "a scan admitted without its ticket".into(),
        )),
    }
}

/// Why the ticket may not enter because it was cancelled: the ticket's status, its QR
/// code's invalidation, or (should the ticket not know yet) its booking's cancellation.
pub(crate) async fn cancellation(
    ctx: &Ctx,
    ticket: &Ticket,
) -> Result<Option<String>, HandlerError> {
    let qr = Repo::<QrCode>::new(&ctx.store)
        .get(ticket.qr_code_id)
        .await?;
    let qr_reason = qr.filter(|q| !q.is_valid).map(|q| {
        q.invalidation_reason
            .unwrap_or_else(|| "qr_invalidated".into())
    });
    if ticket.status == TicketStatus::Cancelled || qr_reason.is_some() {
        return Ok(Some(qr_reason.unwrap_or_else(|| "ticket_cancelled".into())));
    }
    let booking = Repo::<Booking>::new(&ctx.store)
        .get(ticket.booking_id)
        .await?;
    Ok(match booking.map(|b| decide_issue(&b)) {
        Some(IssueDecision::CancelTickets(reason)) => Some(reason),
        _ => None,
    })
}

/// The race for the first scan: a KV create of `<ticketId>.first` decides.
async fn first_scan(s: &Scan<'_>, ticket: &GateTicket) -> Result<Reply, HandlerError> {
    let ctx = s.ctx;
    let ticket_id = ticket.ticket_id;
    let first_id = first_scan_id(&ticket_id);
    let mine = FirstScan {
        scan_id: first_id,
        command_id: s.env.id.clone(),
        scanned_at: s.now,
        gate: s.cmd.gate.clone(),
        device_id: s.cmd.device_id.clone(),
        scanned_by_user_id: Some(s.staff.user_id),
    };
    let first = gate::claim_first(ctx, &ticket_id, &mine).await?;
    // Ours (also when this command is redelivered after winning) or another's.
    let decision = decide_first_scan(
        ticket.status,
        &s.env.id,
        &first.command_id,
        first.scanned_at,
    );
    let at = match decision {
        FirstScanDecision::Admit { at, .. } => at,
        FirstScanDecision::Duplicate(r) => {
            let mut details = doc! {
                "scanId": first.scan_id,
                "scannedAt": first.scanned_at,
                "gate": first.gate.clone(),
                "deviceId": first.device_id.clone(),
            };
            if let Some(by) = first.scanned_by_user_id {
                details.insert("scannedByUserId", by);
            }
            return s.refuse(r, Some(ticket), Some(details)).await;
        }
    };
    let mut rec = s.record(first_id, ScanStatus::Success, Some(ticket));
    rec.scanned_at = at;
    let mut view = ticket.view.clone();
    view["status"] = Value::from(TicketStatus::Scanned.as_str());
    view["scannedAt"] = bson_to_json(&bson::Bson::DateTime(at));
    let event = DomainEvent::TicketScanned(TicketScanned {
        ticket_id,
        event_id: ticket.event_id,
        scan_id: first_id,
        device_id: s.cmd.device_id.clone(),
        gate: s.cmd.gate.clone(),
        ticket_number: ticket.view["ticketNumber"].as_str().map(str::to_string),
        scan: rec,
    });
    ctx.emit(
        s.env,
        event,
        Some(json!({"status": ticket.status.as_str()})),
        Some(json!({"status": TicketStatus::Scanned.as_str(), "gate": s.cmd.gate})),
    )
    .await?;
    Ok(Reply::ok(
        200,
        json!({"status": ScanStatus::Success.as_str(), "ticket": view, "scanId": first_id.to_hex()}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_scan_record_is_one_per_ticket() {
        let t = ObjectId::new();
        assert_eq!(first_scan_id(&t), first_scan_id(&t));
        assert_ne!(first_scan_id(&t), first_scan_id(&ObjectId::new()));
    }
}
