//! Hold events: a hold is created, then released, expired or converted to a booking.

use bson::oid::ObjectId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{facts, oid_hex, oid_hex_opt, oid_hex_vec};
use crate::hold::SeatHold;

/// `hold.created`. `hold` is the whole hold (the `seat_holds` projection and the live
/// view insert it as is), in its `bson` serde form (`{"$oid"}`, `{"$date"}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HoldCreated {
    /// Before this enum: only the envelope's `entityId`.
    #[serde(with = "oid_hex")]
    pub hold_id: ObjectId,
    /// Before this enum: only the envelope's `eventId`.
    #[serde(with = "oid_hex")]
    pub event_id: ObjectId,
    #[serde(with = "oid_hex")]
    pub user_id: ObjectId,
    #[serde(with = "oid_hex_vec")]
    pub seat_ids: Vec<ObjectId>,
    pub expires_at: DateTime<Utc>,
    pub hold: SeatHold,
}
facts!(HoldCreated, "holdId" => hold_id, show "eventId" => event_id);

/// `hold.released` and `hold.expired`: the seats go back on sale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HoldEnded {
    /// Before this enum: only the envelope's `entityId`.
    #[serde(with = "oid_hex")]
    pub hold_id: ObjectId,
    /// Before this enum: only the envelope's `eventId`.
    #[serde(with = "oid_hex")]
    pub event_id: ObjectId,
    #[serde(with = "oid_hex_vec")]
    pub seat_ids: Vec<ObjectId>,
    /// The hold's owner (`null` if the stored hold had none).
    #[serde(default, with = "oid_hex_opt")]
    pub user_id: Option<ObjectId>,
}
facts!(HoldEnded, "holdId" => hold_id, show "eventId" => event_id);

/// `hold.converted`: the hold became a booking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HoldConverted {
    /// Before this enum: only the envelope's `entityId`.
    #[serde(with = "oid_hex")]
    pub hold_id: ObjectId,
    /// Before this enum: only the envelope's `eventId`.
    #[serde(with = "oid_hex")]
    pub event_id: ObjectId,
    /// The booking made from it. Before this enum: only `after.convertedToBookingId`
    /// (see `DomainEvent::fill_from_snapshots`).
    #[serde(default, with = "oid_hex_opt")]
    pub booking_id: Option<ObjectId>,
}
facts!(HoldConverted, "holdId" => hold_id, show "eventId" => event_id);
