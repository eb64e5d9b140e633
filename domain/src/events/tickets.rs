//! Ticket events: issued for a confirmed booking, downloaded, scanned at a gate.

use bson::oid::ObjectId;
use serde::{Deserialize, Serialize};

use super::{facts, oid_hex, oid_hex_opt};
use crate::entities::ticket_scan::TicketScan;

/// `ticket.issued`, once per booking (entity type `booking`, action `tickets_issued`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketsIssued {
    #[serde(with = "oid_hex")]
    pub booking_id: ObjectId,
    /// Before this enum: only the envelope's `eventId`.
    #[serde(with = "oid_hex")]
    pub event_id: ObjectId,
    #[serde(default, with = "oid_hex_opt")]
    pub user_id: Option<ObjectId>,
    /// Tickets issued (their ids and numbers are in `after`).
    pub count: u64,
}
facts!(TicketsIssued, "bookingId" => booking_id, show "eventId" => event_id);

/// `ticket.downloaded`: the owner downloaded the QR image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketDownloaded {
    /// Before this enum: only the envelope's `entityId`.
    #[serde(with = "oid_hex")]
    pub ticket_id: ObjectId,
    /// Before this enum: only the envelope's `eventId` (`null` if the ticket had none).
    #[serde(default, with = "oid_hex_opt")]
    pub event_id: Option<ObjectId>,
    /// Empty if the stored ticket had none.
    pub ticket_number: String,
}
facts!(TicketDownloaded, "ticketId" => ticket_id, maybe show "eventId" => event_id);

/// `ticket.scanned`: the ticket's first scan, which let its holder in. `scan` is the
/// `ticket_scans` record, whole, in its `bson` serde form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketScanned {
    /// Before this enum: only the envelope's `entityId`.
    #[serde(with = "oid_hex")]
    pub ticket_id: ObjectId,
    /// Before this enum: only the envelope's `eventId`.
    #[serde(default, with = "oid_hex_opt")]
    pub event_id: Option<ObjectId>,
    #[serde(with = "oid_hex")]
    pub scan_id: ObjectId,
    pub device_id: String,
    pub gate: Option<String>,
    pub ticket_number: Option<String>,
    pub scan: TicketScan,
}
facts!(TicketScanned, "ticketId" => ticket_id, maybe show "eventId" => event_id);

/// `ticket.scan_refused` (entity type `ticket_scan`): a scan that was not let in, with
/// why. `scan` is the `ticket_scans` record, whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketScanRefused {
    /// The scan record's id. Before this enum: only the envelope's `entityId`.
    #[serde(with = "oid_hex")]
    pub scan_id: ObjectId,
    /// Before this enum: only the envelope's `eventId` (`null` for an unknown ticket).
    #[serde(default, with = "oid_hex_opt")]
    pub event_id: Option<ObjectId>,
    /// Such as `already_scanned`, `invalid_signature`.
    pub failure_reason: String,
    /// `null` when the QR code named no known ticket.
    #[serde(default, with = "oid_hex_opt")]
    pub ticket_id: Option<ObjectId>,
    pub device_id: String,
    pub gate: Option<String>,
    pub scan: TicketScan,
}
facts!(TicketScanRefused, "scanId" => scan_id, maybe show "eventId" => event_id);
