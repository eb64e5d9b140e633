//! Domain events: the durable record on the EVENTS stream that projections (audit trail,
//! seat counters, expiry timers, analytics) consume and that recovery replays.

use chrono::{DateTime, Utc};
use domain::ObjectId;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::commands::{Issuer, RequestContext};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DomainEvent {
    /// `<commandId>:<type>`: the `Nats-Msg-Id`, so a redelivered command publishes once.
    pub id: String,
    /// `<entity>.<verb>`, such as `hold.created`; also the subject's tail.
    #[serde(rename = "type")]
    pub kind: String,
    pub occurred_at: DateTime<Utc>,
    pub command_id: String,
    pub actor: Option<Issuer>,
    #[serde(default)]
    pub context: RequestContext,
    /// The audit action, such as `hold_created`.
    pub action: String,
    pub entity_type: String,
    pub entity_id: ObjectId,
    /// The show the change belongs to, when there is one (seat counters key on it).
    pub event_id: Option<ObjectId>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    /// Facts projections need beyond before/after (seat ids, expiry time...).
    #[serde(default)]
    pub data: Value,
}

impl DomainEvent {
    pub fn entity(&self) -> &str {
        self.kind.split('.').next().unwrap_or("")
    }
    pub fn verb(&self) -> &str {
        self.kind.split('.').nth(1).unwrap_or("")
    }
}
