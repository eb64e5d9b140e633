//! Ticket scans (`ticket_scans`): one record per scan at a gate, good or bad, and the rule
//! that names a scan's outcome from the ticket's state.

use bson::oid::ObjectId;
use bson::{DateTime, Document};
use serde::{Deserialize, Serialize};

use super::ticket::TicketStatus;

string_enum! {
    /// The outcome of one scan. A scan is a record, not a state: it never changes.
    pub enum ScanStatus {
        /// The first scan of a valid ticket: let in.
        Success => "success",
        AlreadyScanned => "already_scanned",
        /// The event is over or the ticket expired.
        TicketExpired => "ticket_expired",
        /// Bad signature, unreadable payload or unknown ticket.
        InvalidQr => "invalid_qr",
        TicketCancelled => "ticket_cancelled",
    }
}

impl ScanStatus {
    pub fn is_success(self) -> bool {
        self == ScanStatus::Success
    }

    /// The outcome for a ticket whose QR signature checked out, from its status and whether
    /// the event is over. `Success` means "may be let in", the caller still has to win the
    /// first-scan race (a KV create or a unique insert); the loser gets `AlreadyScanned`.
    pub fn for_ticket(status: TicketStatus, event_over: bool) -> ScanStatus {
        match status {
            TicketStatus::Cancelled => ScanStatus::TicketCancelled,
            TicketStatus::Scanned => ScanStatus::AlreadyScanned,
            TicketStatus::Expired => ScanStatus::TicketExpired,
            TicketStatus::Active if event_over => ScanStatus::TicketExpired,
            TicketStatus::Active => ScanStatus::Success,
        }
    }
}

/// Whether an event that started at `starts_at` is over for the gates at `now`: its
/// tickets still get in until `grace_secs` after the start (late arrivals), not after.
pub fn event_over(starts_at: DateTime, now: DateTime, grace_secs: i64) -> bool {
    now.timestamp_millis()
        > starts_at
            .timestamp_millis()
            .saturating_add(grace_secs.saturating_mul(1000))
}

/// Where the scan happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ScanLocation {
    pub gate: Option<String>,
    pub section: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

/// The `ticket_scans` collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketScan {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    /// Unknown when the QR string did not name a real ticket.
    pub ticket_id: Option<ObjectId>,
    pub qr_code_id: Option<ObjectId>,
    pub scan_status: ScanStatus,
    pub scanned_at: DateTime,
    pub scanned_by_device_id: String,
    /// The staff member who scanned.
    pub scanned_by_user_id: ObjectId,
    pub scan_location: Option<ScanLocation>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    /// Why the scan did not succeed.
    pub failure_reason: Option<String>,
    pub failure_details: Option<Document>,
    /// The scan command (its idempotency key).
    pub command_id: Option<String>,
    pub created_at: DateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_active_ticket_before_the_end_of_its_event_gets_in() {
        assert_eq!(
            ScanStatus::for_ticket(TicketStatus::Active, false),
            ScanStatus::Success
        );
        assert_eq!(
            ScanStatus::for_ticket(TicketStatus::Active, true),
            ScanStatus::TicketExpired
        );
        assert_eq!(
            ScanStatus::for_ticket(TicketStatus::Scanned, false),
            ScanStatus::AlreadyScanned
        );
        assert_eq!(
            ScanStatus::for_ticket(TicketStatus::Cancelled, false),
            ScanStatus::TicketCancelled
        );
        assert_eq!(
            ScanStatus::for_ticket(TicketStatus::Expired, false),
            ScanStatus::TicketExpired
        );
        let ok = TicketStatus::ALL
            .iter()
            .flat_map(|s| [(s, false), (s, true)])
            .filter(|(s, over)| ScanStatus::for_ticket(**s, *over).is_success())
            .count();
        assert_eq!(ok, 1);
    }

    #[test]
    fn an_event_is_over_for_the_gates_only_after_its_grace() {
        let start = DateTime::from_millis(1_700_000_000_000);
        let at = |secs: i64| DateTime::from_millis(1_700_000_000_000 + secs * 1000);
        assert!(!event_over(start, at(-3600), 3600));
        assert!(!event_over(start, at(3600), 3600));
        assert!(event_over(start, at(3601), 3600));
        assert!(event_over(start, at(1), 0));
    }

    #[test]
    fn a_scan_of_an_unknown_ticket_round_trips_through_bson() {
        let now = DateTime::from_millis(1_700_000_000_000);
        let s = TicketScan {
            id: ObjectId::new(),
            ticket_id: None,
            qr_code_id: None,
            scan_status: ScanStatus::InvalidQr,
            scanned_at: now,
            scanned_by_device_id: "gate-a-1".into(),
            scanned_by_user_id: ObjectId::new(),
            scan_location: Some(ScanLocation {
                gate: Some("A".into()),
                ..Default::default()
            }),
            ip_address: None,
            user_agent: None,
            failure_reason: Some("bad signature".into()),
            failure_details: None,
            command_id: Some("scan-1".into()),
            created_at: now,
        };
        let doc = bson::to_document(&s).unwrap();
        assert_eq!(doc.get_str("scanStatus").unwrap(), "invalid_qr");
        assert_eq!(bson::from_document::<TicketScan>(doc).unwrap(), s);
    }
}
