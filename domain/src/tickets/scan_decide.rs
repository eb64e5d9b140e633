//! The decisions of the scans worker (`workers/src/tickets/scans.rs`, with the gate view of
//! `workers/src/tickets/gate.rs`): check the scanner and its labels, refuse a bad QR code, an
//! unknown, replaced, cancelled or expired ticket, and decide who wins the first scan.
//!
//! A refused scan is not a refused command: it is answered 200 with its [`ScanStatus`]
//! and recorded (`ticket.scan_refused`). Only a bad scanner or label is a [`Refusal`].

use bson::DateTime;

use super::qr::{QrError, QrPayload};
use super::ticket::TicketStatus;
use super::ticket_scan::{event_over, ScanStatus};
use crate::shared::actor::Actor;
use crate::Refusal;

/// Longest device id or gate name, in characters.
pub const MAX_LABEL: usize = 128;

/// A device id or gate name: trimmed, 1 to [`MAX_LABEL`] characters, no control
/// characters.
pub fn label(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty() && s.chars().count() <= MAX_LABEL && !s.chars().any(char::is_control))
        .then(|| s.to_string())
}

/// The scanner's labels, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanner {
    pub device_id: String,
    pub gate: Option<String>,
}

/// Decides the checks at the top of `workers/src/tickets/scans.rs::scan`: staff only, labels
/// within bounds.
pub fn check_scanner(
    staff: Option<Actor>,
    device_id: &str,
    gate: Option<&str>,
) -> Result<Scanner, Refusal> {
    let Some(staff) = staff else {
        return Err(Refusal::Unauthorized("sign in first"));
    };
    if !staff.role.is_staff() {
        return Err(Refusal::Forbidden("staff only"));
    }
    let device_id = label(device_id)
        .ok_or_else(|| Refusal::Invalid(format!("deviceId must be 1 to {MAX_LABEL} characters")))?;
    let gate = match gate {
        None => None,
        Some(g) => Some(label(g).ok_or_else(|| {
            Refusal::Invalid(format!("gate must be 1 to {MAX_LABEL} characters"))
        })?),
    };
    Ok(Scanner { device_id, gate })
}

/// A ticket as the gates see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateTicketState {
    pub status: TicketStatus,
    /// Why it was cancelled, when it was.
    pub cancel_reason: Option<String>,
    pub event_date: Option<DateTime>,
    /// Whether the scanned string is the ticket's current QR string.
    pub qr_matches: bool,
}

/// A scan that does not let the holder in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRejection {
    pub status: ScanStatus,
    /// Stored as `ticket_scans.failureReason`.
    pub reason: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanDecision {
    /// Record the refused scan and answer with it.
    Reject(ScanRejection),
    /// May be let in: claim the first scan ([`decide_first_scan`]).
    ClaimFirst,
}

fn reject(status: ScanStatus, reason: &str, message: impl Into<String>) -> ScanDecision {
    ScanDecision::Reject(ScanRejection {
        status,
        reason: reason.to_string(),
        message: message.into(),
    })
}

/// Decides the rest of `workers/src/tickets/scans.rs::scan`: `verified` is the QR check,
/// `ticket` the gate's view of the ticket it names (`None`: unknown), `now` the scan's
/// time (the command's `issuedAt`), `grace_secs` how long after the start late arrivals
/// still get in.
pub fn decide_scan(
    verified: Result<&QrPayload, &QrError>,
    ticket: Option<&GateTicketState>,
    now: DateTime,
    grace_secs: i64,
) -> ScanDecision {
    if let Err(e) = verified {
        return reject(ScanStatus::InvalidQr, e.reason(), e.to_string());
    }
    let Some(t) = ticket else {
        return reject(
            ScanStatus::InvalidQr,
            "unknown_ticket",
            "the QR code names no ticket of ours",
        );
    };
    if !t.qr_matches {
        return reject(
            ScanStatus::InvalidQr,
            "qr_mismatch",
            "this is not the ticket's current QR code",
        );
    }
    if t.status == TicketStatus::Cancelled {
        let reason = t.cancel_reason.as_deref().unwrap_or("ticket_cancelled");
        return reject(
            ScanStatus::TicketCancelled,
            reason,
            format!("the ticket was cancelled ({reason})"),
        );
    }
    let over = t.event_date.is_some_and(|d| event_over(d, now, grace_secs));
    if ScanStatus::for_ticket(t.status, over) == ScanStatus::TicketExpired {
        let reason = if over { "event_over" } else { "ticket_expired" };
        return reject(ScanStatus::TicketExpired, reason, "the event is over");
    }
    ScanDecision::ClaimFirst
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstScanDecision {
    /// This command holds the first scan: the ticket becomes `scanned` (`ticket.scanned`);
    /// `at` is the first scan's time (the original one on a redelivery).
    Admit { status: TicketStatus, at: DateTime },
    /// Another scan came first: refused `already_scanned`, with the first scan's details.
    Duplicate(ScanRejection),
}

/// Applied by `workers/src/tickets/scans.rs::first_scan` after the claim: `first_command_id` and
/// `first_at` are the claim's winner.
pub fn decide_first_scan(
    ticket_status: TicketStatus,
    command_id: &str,
    first_command_id: &str,
    first_at: DateTime,
) -> FirstScanDecision {
    // A redelivery of the winning command finds its own scan (the ticket may read
    // `scanned` already).
    let ours = first_command_id == command_id;
    if ours
        && (ticket_status.can_become(TicketStatus::Scanned)
            || ticket_status == TicketStatus::Scanned)
    {
        return FirstScanDecision::Admit {
            status: TicketStatus::Scanned,
            at: first_at,
        };
    }
    FirstScanDecision::Duplicate(ScanRejection {
        status: ScanStatus::AlreadyScanned,
        reason: "already_scanned".into(),
        message: "this ticket was already scanned".into(),
    })
}

#[cfg(test)]
#[path = "scan_decide_tests.rs"]
mod tests;
