//! Seat holds: the request rules (how many seats, no repeats) and the status machine.

use bson::oid::ObjectId;
use bson::DateTime;
use serde::{Deserialize, Serialize};

use crate::shared::money::Money;
use crate::DomainError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldStatus {
    Active,
    /// Let go by its owner before it expired.
    Released,
    Expired,
    ConvertedToBooking,
}

impl HoldStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldStatus::Active => "active",
            HoldStatus::Released => "released",
            HoldStatus::Expired => "expired",
            HoldStatus::ConvertedToBooking => "converted_to_booking",
        }
    }

    /// Only an active hold can end, and it ends once.
    pub fn can_become(self, next: HoldStatus) -> bool {
        self == HoldStatus::Active && next != HoldStatus::Active
    }
}

/// The `seat_holds` collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeatHold {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub user_id: ObjectId,
    pub event_id: ObjectId,
    pub seat_ids: Vec<ObjectId>,
    pub quantity: i32,
    pub total_price: Money,
    pub status: HoldStatus,
    pub created_at: DateTime,
    pub expires_at: DateTime,
    pub converted_to_booking_id: Option<ObjectId>,
    /// The command that created the hold (its idempotency key).
    pub command_id: String,
    pub updated_at: DateTime,
}

/// Checks a hold request: 1 to `max` seats, no seat twice. Returns the seats in request
/// order without repeats removed (a repeat is an error, not silently dropped).
pub fn check_hold_request(seat_ids: &[ObjectId], max: usize) -> Result<(), DomainError> {
    if seat_ids.is_empty() {
        return Err(DomainError::invalid(
            "seatIds",
            "must name at least one seat",
        ));
    }
    if seat_ids.len() > max {
        return Err(DomainError::invalid(
            "seatIds",
            format!("at most {max} seats per hold"),
        ));
    }
    let mut seen = std::collections::HashSet::with_capacity(seat_ids.len());
    for s in seat_ids {
        if !seen.insert(s) {
            return Err(DomainError::invalid(
                "seatIds",
                format!("seat {} is named twice", s.to_hex()),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn empty_repeated_and_oversized_requests_are_refused() {
        let a = ObjectId::new();
        assert!(check_hold_request(&[], 10).is_err());
        assert!(check_hold_request(&[a, a], 10).is_err());
        let many: Vec<_> = (0..11).map(|_| ObjectId::new()).collect();
        assert!(check_hold_request(&many, 10).is_err());
        assert!(check_hold_request(&many[..10], 10).is_ok());
    }

    proptest! {
        #[test]
        fn a_hold_ends_at_most_once(path in proptest::collection::vec(0u8..4, 0..8)) {
            let all = [HoldStatus::Active, HoldStatus::Released, HoldStatus::Expired, HoldStatus::ConvertedToBooking];
            let mut s = HoldStatus::Active;
            let mut ended = 0;
            for i in path {
                let next = all[i as usize];
                if s.can_become(next) { s = next; ended += 1; }
            }
            prop_assert!(ended <= 1);
        }
    }
}
