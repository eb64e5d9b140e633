//! Show events (an `events` document: the entity type is `event`).

use bson::oid::ObjectId;
use serde::{Deserialize, Serialize};

use super::{facts, oid_hex};
use crate::event::EventStatus;

/// `event.created`: a draft show with its seat plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventCreated {
    /// Before this enum: only the envelope's `entityId` and `eventId`.
    #[serde(with = "oid_hex")]
    pub event_id: ObjectId,
    /// Seats in the plan.
    pub seats: u64,
}
facts!(EventCreated, "eventId" => event_id, show "eventId" => event_id);

/// `event.published` and `event.cancelled` (`data` was `{}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventStatusChanged {
    /// Before this enum: only the envelope's `entityId` and `eventId`.
    #[serde(with = "oid_hex")]
    pub event_id: ObjectId,
    /// The status before. Before this enum: only `before.status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_status: Option<EventStatus>,
}
facts!(EventStatusChanged, "eventId" => event_id, show "eventId" => event_id);
