//! Seats and their status machine: `available -> held -> booked`, and back.

use bson::oid::ObjectId;
use bson::DateTime;
use serde::{Deserialize, Serialize};

use crate::shared::money::Money;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeatStatus {
    Available,
    Held,
    Booked,
    Blocked,
}

impl SeatStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SeatStatus::Available => "available",
            SeatStatus::Held => "held",
            SeatStatus::Booked => "booked",
            SeatStatus::Blocked => "blocked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "available" => Some(SeatStatus::Available),
            "held" => Some(SeatStatus::Held),
            "booked" => Some(SeatStatus::Booked),
            "blocked" => Some(SeatStatus::Blocked),
            _ => None,
        }
    }

    /// The transitions the workflows may make.
    pub fn can_become(self, next: SeatStatus) -> bool {
        use SeatStatus::*;
        matches!(
            (self, next),
            (Available, Held)
                | (Held, Available)
                | (Held, Booked)
                | (Booked, Available)
                | (Available, Blocked)
                | (Blocked, Available)
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Accessibility {
    pub is_wheelchair_accessible: bool,
    pub has_companion_seat: bool,
}

/// The `seats` collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Seat {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub event_id: ObjectId,
    pub row: String,
    pub number: i32,
    pub section: String,
    pub price: Money,
    #[serde(default)]
    pub accessibility: Accessibility,
    pub status: SeatStatus,
    pub held_by: Option<ObjectId>,
    pub held_until: Option<DateTime>,
    pub hold_id: Option<ObjectId>,
    pub booked_by: Option<ObjectId>,
    pub booking_id: Option<ObjectId>,
    pub version: i64,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

/// Key of a seat's lock in the `seat-locks` KV bucket: `<eventId>.<seatId>`.
pub fn lock_key(event_id: &ObjectId, seat_id: &ObjectId) -> String {
    format!("{}.{}", event_id.to_hex(), seat_id.to_hex())
}

#[cfg(test)]
mod tests {
    use super::*;
    use SeatStatus::*;

    #[test]
    fn a_booked_seat_cannot_be_held_and_a_held_seat_cannot_be_held_again() {
        assert!(Available.can_become(Held));
        assert!(!Held.can_become(Held));
        assert!(!Booked.can_become(Held));
        assert!(Held.can_become(Booked));
        assert!(!Available.can_become(Booked));
    }

    #[test]
    fn statuses_round_trip_as_text() {
        for s in [Available, Held, Booked, Blocked] {
            assert_eq!(SeatStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(SeatStatus::parse("sold"), None);
    }
}
