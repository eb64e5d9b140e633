//! Tickets (`tickets`): one per booked seat, with the event and seat details copied in so a
//! ticket reads without joins, and its status machine.

use bson::oid::ObjectId;
use bson::DateTime;
use serde::{Deserialize, Serialize};

use crate::bookings::reference::TicketNumber;
use crate::shared::money::Money;

string_enum! {
    pub enum TicketStatus {
        Active => "active",
        /// Let in at the gate.
        Scanned => "scanned",
        Cancelled => "cancelled",
        /// The event is over and the ticket was never used.
        Expired => "expired",
    }
}

impl TicketStatus {
    /// An active ticket is scanned, cancelled or expires, once; a scanned or expired
    /// ticket can still be cancelled (its booking was cancelled after the gate, e.g. the
    /// event was called off: the cancellation hook cancels every ticket of the booking
    /// that is not cancelled yet). A cancelled ticket never changes.
    pub fn can_become(self, next: TicketStatus) -> bool {
        use TicketStatus::*;
        match self {
            Active => next != Active,
            Scanned | Expired => next == Cancelled,
            Cancelled => false,
        }
    }
}

/// The seat a ticket is for, as it was when booked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeatInfo {
    pub row: String,
    pub number: i32,
    pub section: String,
    pub price: Money,
}

/// The `tickets` collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ticket {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub booking_id: ObjectId,
    pub user_id: ObjectId,
    pub event_id: ObjectId,
    pub seat_id: ObjectId,
    pub qr_code_id: ObjectId,
    /// The signed QR payload.
    pub qr_string: String,
    pub ticket_number: TicketNumber,
    pub status: TicketStatus,
    pub event_name: String,
    pub event_date: DateTime,
    pub event_time: String,
    pub seat_info: SeatInfo,
    #[serde(default)]
    pub is_scanned: bool,
    pub scanned_at: Option<DateTime>,
    pub scanned_by_user_id: Option<ObjectId>,
    /// Gate or entrance where it was scanned.
    pub scan_location: Option<String>,
    pub expires_at: Option<DateTime>,
    /// First download of the ticket or its QR image.
    pub downloaded_at: Option<DateTime>,
    #[serde(default)]
    pub download_count: i64,
    pub issued_at: DateTime,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bookings::reference::{booking_reference, ticket_number};
    use crate::shared::money::Currency;
    use TicketStatus::*;

    #[test]
    fn an_active_ticket_changes_once_and_only_a_cancellation_follows() {
        assert!(
            Active.can_become(Scanned)
                && Active.can_become(Cancelled)
                && Active.can_become(Expired)
        );
        for s in [Scanned, Expired] {
            for n in TicketStatus::ALL {
                assert_eq!(s.can_become(*n), *n == Cancelled, "{s} -> {n}");
            }
        }
        assert!(TicketStatus::ALL.iter().all(|n| !Cancelled.can_become(*n)));
    }

    #[test]
    fn a_ticket_round_trips_through_bson() {
        let now = DateTime::from_millis(1_700_000_000_000);
        let t = Ticket {
            id: ObjectId::new(),
            booking_id: ObjectId::new(),
            user_id: ObjectId::new(),
            event_id: ObjectId::new(),
            seat_id: ObjectId::new(),
            qr_code_id: ObjectId::new(),
            qr_string: "payload.signature".into(),
            ticket_number: ticket_number(&booking_reference(1_700_000_000_000, 9), 0).unwrap(),
            status: Active,
            event_name: "Concert".into(),
            event_date: now,
            event_time: "19:30".into(),
            seat_info: SeatInfo {
                row: "A".into(),
                number: 1,
                section: "Premium".into(),
                price: Money::from_minor(5000, Currency::USD),
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
        };
        let doc = bson::to_document(&t).unwrap();
        assert_eq!(
            doc.get_str("ticketNumber").unwrap(),
            t.ticket_number.as_str()
        );
        assert_eq!(
            doc.get_document("seatInfo")
                .unwrap()
                .get_str("row")
                .unwrap(),
            "A"
        );
        assert_eq!(bson::from_document::<Ticket>(doc).unwrap(), t);
    }
}
