//! The decisions of the ticketing worker (`workers/src/tickets/mod.rs`,
//! `workers/src/tickets/cancel.rs`): issue a confirmed booking's tickets and QR codes,
//! record a download, cancel tickets and invalidate their QR codes. Scans are in
//! [`super::scan_decide`].

use bson::oid::ObjectId;
use bson::DateTime;

use super::qr::QrPayload;
use super::qr_code::{ErrorCorrectionLevel, QrCode, QrValidity};
use super::ticket::{SeatInfo, Ticket, TicketStatus};
use crate::bookings::booking::{Booking, BookingStatus};
use crate::bookings::reference::ticket_number;
use crate::ids::derive_object_id;
use crate::shared::actor::Actor;
use crate::{DomainError, Refusal};

/// The ticket of `seat` in `booking`.
pub fn ticket_id_for(booking: &ObjectId, seat: &ObjectId) -> ObjectId {
    derive_object_id(
        "ticket",
        &format!("{}:{}", booking.to_hex(), seat.to_hex()),
        booking.timestamp().timestamp_millis() / 1000,
    )
}

/// The QR code of a ticket.
pub fn qr_code_id_for(ticket: &ObjectId) -> ObjectId {
    derive_object_id(
        "qr_code",
        &ticket.to_hex(),
        ticket.timestamp().timestamp_millis() / 1000,
    )
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssueDecision {
    /// Confirmed (or completed): issue its tickets.
    Issue,
    /// Cancelled: no tickets; cancel any it has, with this reason.
    CancelTickets(String),
    /// Still pending: a stale read, retry later.
    NotYet(BookingStatus),
}

/// Decides the status switch of `workers/src/tickets/mod.rs::issue` (also run again after
/// issuing, to catch a cancellation that came meanwhile).
pub fn decide_issue(booking: &Booking) -> IssueDecision {
    match booking.status {
        BookingStatus::Confirmed | BookingStatus::Completed => IssueDecision::Issue,
        BookingStatus::Cancelled => IssueDecision::CancelTickets(
            booking
                .cancellation_reason
                .clone()
                .unwrap_or_else(|| "booking_cancelled".into()),
        ),
        s => IssueDecision::NotYet(s),
    }
}

/// When a booking's tickets count as issued: its confirmation, in whole seconds (the time
/// the QR code carries), or `now` for a booking without one.
pub fn issued_at_secs(booking: &Booking, now: DateTime) -> i64 {
    booking
        .confirmed_at
        .unwrap_or(now)
        .timestamp_millis()
        .div_euclid(1000)
}

/// The event details a ticket copies in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketEvent<'a> {
    pub name: &'a str,
    pub date: DateTime,
    pub time: &'a str,
}

/// The QR payload of the `seat_id` ticket of `booking` (to be signed by the worker's key).
pub fn qr_payload(booking: &Booking, seat_id: ObjectId, issued_secs: i64) -> QrPayload {
    QrPayload {
        ticket_id: ticket_id_for(&booking.id, &seat_id),
        booking_reference: booking.booking_reference.clone(),
        user_id: booking.user_id,
        event_id: booking.event_id,
        seat_id,
        issued_at: issued_secs,
    }
}

/// Ticket number `index` (in seat order) of `booking`, `active`, carrying `qr_string`.
pub fn new_ticket(
    booking: &Booking,
    event: &TicketEvent<'_>,
    seat: (ObjectId, SeatInfo),
    index: u32,
    qr_string: String,
    now: DateTime,
) -> Result<Ticket, DomainError> {
    let (seat_id, seat_info) = seat;
    let id = ticket_id_for(&booking.id, &seat_id);
    let issued_secs = issued_at_secs(booking, now);
    Ok(Ticket {
        id,
        booking_id: booking.id,
        user_id: booking.user_id,
        event_id: booking.event_id,
        seat_id,
        qr_code_id: qr_code_id_for(&id),
        qr_string,
        ticket_number: ticket_number(&booking.booking_reference, index)?,
        status: TicketStatus::Active,
        event_name: event.name.to_string(),
        event_date: event.date,
        event_time: event.time.to_string(),
        seat_info,
        is_scanned: false,
        scanned_at: None,
        scanned_by_user_id: None,
        scan_location: None,
        expires_at: None,
        downloaded_at: None,
        download_count: 0,
        issued_at: DateTime::from_millis(issued_secs * 1000),
        created_at: now,
        updated_at: now,
    })
}

/// The QR code of `ticket`, valid; `version` and `level` describe its symbol.
pub fn new_qr_code(
    ticket: &Ticket,
    version: i32,
    level: ErrorCorrectionLevel,
    now: DateTime,
) -> QrCode {
    QrCode {
        id: ticket.qr_code_id,
        ticket_id: ticket.id,
        qr_string: ticket.qr_string.clone(),
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
    }
}

#[derive(Debug, Clone, PartialEq)]
// NOTE: a decision lives for one command and is matched at once; boxing its entity
// would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum DownloadDecision {
    /// Write the ticket as it is after this download (`downloadCount` + 1, the first
    /// download's time kept) and record `ticket.downloaded`.
    Record(Ticket),
    Refuse(Refusal),
}

/// Applied by `workers/src/tickets/mod.rs::record_download`. Another user's ticket is 404.
pub fn decide_download(
    issuer: Option<Actor>,
    ticket: Option<&Ticket>,
    now: DateTime,
) -> DownloadDecision {
    let Some(issuer) = issuer else {
        return DownloadDecision::Refuse(Refusal::Unauthorized("sign in first"));
    };
    let Some(t) = ticket.filter(|t| t.user_id == issuer.user_id) else {
        return DownloadDecision::Refuse(Refusal::TicketNotFound);
    };
    let mut after = t.clone();
    after.downloaded_at = Some(t.downloaded_at.unwrap_or(now));
    after.download_count += 1;
    after.updated_at = now;
    DownloadDecision::Record(after)
}

/// What a cancellation does to one ticket and its QR code; `None`: nothing to write.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketCancellation {
    pub ticket: Option<Ticket>,
    pub qr_code: Option<QrCode>,
}

/// Applied by `workers/src/tickets/cancel.rs::cancel_ticket`: the ticket `cancelled` unless it
/// is already, its QR code invalidated with `reason` unless it is already (the first
/// cancellation's time and reason stay). Harmless to repeat.
pub fn cancel_ticket(
    ticket: &Ticket,
    qr_code: Option<&QrCode>,
    reason: &str,
    now: DateTime,
) -> TicketCancellation {
    let ticket = ticket
        .status
        .can_become(TicketStatus::Cancelled)
        .then(|| Ticket {
            status: TicketStatus::Cancelled,
            updated_at: now,
            ..ticket.clone()
        });
    let qr_code = qr_code.and_then(|q| invalidate_qr(q, reason, now));
    TicketCancellation { ticket, qr_code }
}

/// The QR code invalidated (`valid -> invalidated`), or `None` if it is not valid.
pub fn invalidate_qr(qr: &QrCode, reason: &str, now: DateTime) -> Option<QrCode> {
    if !qr.validity().can_become(QrValidity::Invalidated) {
        return None;
    }
    let mut q = qr.clone();
    q.invalidate(now, reason);
    Some(q)
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
