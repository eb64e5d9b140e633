//! How a [`DomainEvent`] reads and writes: adjacently tagged, `{"type", "data"}`, beside
//! the envelope keys derived from it (`action`, `entityType`, `entityId`, `eventId`), and
//! serde helpers for ids as 24-hex strings (`bson`'s `ObjectId` writes `{"$oid": ..}` in
//! JSON).
//!
//! Events published before this enum carry the entity id and the show id only in the
//! envelope (`entityId`, `eventId`), not in `data`: reading fills the struct's id keys
//! from those when `data` lacks them, so every stored event still decodes. Written
//! events carry both.
//!
//! NOTE: `entityId` and `eventId` are written as today, `{"$oid": ..}` (so a reader built
//! before this enum still reads what a newer writer publishes); both forms are read.

use bson::oid::ObjectId;
use serde::de::Error as _;
use serde::ser::{Error as _, SerializeMap};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::{DomainEvent, EventKind};

impl Serialize for DomainEvent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let kind = self.event_kind();
        let data = self.to_data().map_err(S::Error::custom)?;
        let mut m = s.serialize_map(Some(6))?;
        m.serialize_entry("type", kind.as_str())?;
        m.serialize_entry("action", kind.action())?;
        m.serialize_entry("entityType", kind.entity_type())?;
        m.serialize_entry("entityId", &self.entity_id())?;
        m.serialize_entry("eventId", &self.show_id())?;
        m.serialize_entry("data", &data)?;
        m.end()
    }
}

/// The keys a payload is read from. `action` and `entityType` follow from `type` and are
/// not read back.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: Value,
    #[serde(default)]
    entity_id: Option<ObjectId>,
    #[serde(default)]
    event_id: Option<ObjectId>,
}

impl<'de> Deserialize<'de> for DomainEvent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = Wire::deserialize(d)?;
        let kind: EventKind = w.kind.parse().map_err(D::Error::custom)?;
        let mut data = match w.data {
            Value::Null => serde_json::Map::new(),
            Value::Object(m) => m,
            other => {
                return Err(D::Error::custom(format!(
                    "{kind}: data must be an object, not {other}"
                )))
            }
        };
        let (entity_key, show_key) = kind.keys();
        fill(&mut data, entity_key, w.entity_id);
        if let Some(k) = show_key {
            fill(&mut data, k, w.event_id);
        }
        DomainEvent::from_data(kind, Value::Object(data))
            .map_err(|e| D::Error::custom(format!("{kind}: {e}")))
    }
}

/// Puts the envelope's id under `key` when `data` has none (an event published before
/// `data` carried it).
fn fill(data: &mut serde_json::Map<String, Value>, key: &str, id: Option<ObjectId>) {
    let missing = data.get(key).is_none_or(Value::is_null);
    if let (true, Some(id)) = (missing, id) {
        data.insert(key.to_string(), Value::String(id.to_hex()));
    }
}

/// An `ObjectId` as 24 hex digits (`#[serde(with = "oid_hex")]`); `{"$oid": ..}` is read too.
pub mod oid_hex {
    use super::*;

    pub fn serialize<S: Serializer>(id: &ObjectId, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&id.to_hex())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectId, D::Error> {
        ObjectId::deserialize(d)
    }
}

/// An optional `ObjectId` as 24 hex digits or `null`; use with `#[serde(default)]`.
pub mod oid_hex_opt {
    use super::*;

    pub fn serialize<S: Serializer>(id: &Option<ObjectId>, s: S) -> Result<S::Ok, S::Error> {
        match id {
            Some(id) => s.serialize_some(&id.to_hex()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ObjectId>, D::Error> {
        Option::<ObjectId>::deserialize(d)
    }
}

/// A list of `ObjectId`s as 24-hex strings.
pub mod oid_hex_vec {
    use super::*;

    pub fn serialize<S: Serializer>(ids: &[ObjectId], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(ids.iter().map(|id| id.to_hex()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ObjectId>, D::Error> {
        Vec::<ObjectId>::deserialize(d)
    }
}
