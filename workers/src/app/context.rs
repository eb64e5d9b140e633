//! What every worker shares: connections, names, the seat locks, the results bucket.

use std::sync::Arc;

use async_nats::jetstream;
use chrono::Utc;
use domain::ObjectId;
use serde_json::Value;
use streams::commands::CommandEnvelope;
use streams::events::DomainEvent;
use streams::locks::SeatLocks;
use streams::replies::Results;
use streams::{Namespace, WireError};

use crate::app::config::Config;
use crate::store::{Store, StoreError};

#[derive(Clone)]
pub struct Ctx {
    pub cfg: Arc<Config>,
    pub ns: Namespace,
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub store: Store,
    pub locks: SeatLocks,
    /// Document write leases (see `leases`).
    pub leases: SeatLocks,
    pub results: Results,
    pub seat_maps: crate::events::seat_map::SeatMaps,
    /// The seat locks and recent holds in memory, fed by NATS (see `streams::live`).
    pub live: streams::live::Live,
    /// Group commit of new holds.
    pub hold_inserts: crate::store::batch::Inserter,
    /// The payment provider (simulated by default).
    pub gateway: Arc<dyn crate::payments::gateway::PaymentGateway>,
    /// Each ticket as a gate sees it, and its first scan (see `gate`).
    pub gate: async_nats::jetstream::kv::Store,
    /// Card numbers in transit from the gateway.
    pub vault: async_nats::jetstream::kv::Store,
    /// Token revocations the gateways watch (see `streams::revocations`).
    pub revocations: async_nats::jetstream::kv::Store,
    /// QR signing and verification keys; loaded only by processes that run the
    /// ticketing, scans or queries worker.
    pub qr_keys: Option<Arc<domain::qr::QrKeyRing>>,
    /// The workers' own key: signs the commands they fan out and every event.
    pub signer: Arc<streams::proof::CommandSigner>,
    /// The keys whose commands the workers apply, with their grants.
    pub trust: Arc<streams::proof::Trust>,
    /// This stack's Prometheus metrics (see `metrics`).
    pub metrics: crate::app::metrics::Metrics,
}

/// Why a handler could not finish. Business refusals are not errors: they are replies.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Worth another delivery later (a server was unreachable, a write timed out).
    #[error("transient: {0}")]
    Transient(String),
    /// Will fail the same way every time (undecodable command, broken invariant).
    #[error("permanent: {0}")]
    Permanent(String),
}

impl From<StoreError> for HandlerError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Mongo(e) => HandlerError::Transient(e.to_string()),
            StoreError::Bson(e) => HandlerError::Permanent(e),
            StoreError::Unavailable(e) => HandlerError::Transient(e),
        }
    }
}

impl From<mongodb::error::Error> for HandlerError {
    fn from(e: mongodb::error::Error) -> Self {
        HandlerError::Transient(e.to_string())
    }
}

impl From<WireError> for HandlerError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Encoding(e) => HandlerError::Permanent(e.to_string()),
            WireError::Nats(e) => HandlerError::Transient(e),
            WireError::Timeout(e) => HandlerError::Transient(e.to_string()),
        }
    }
}

impl From<bson::ser::Error> for HandlerError {
    fn from(e: bson::ser::Error) -> Self {
        HandlerError::Permanent(e.to_string())
    }
}

/// The facts of a domain event a handler fills in; the rest comes from the command.
pub struct Change {
    pub kind: &'static str,
    pub action: &'static str,
    pub entity_type: &'static str,
    pub entity_id: ObjectId,
    pub event_id: Option<ObjectId>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub data: Value,
}

impl Ctx {
    /// Publishes the domain event of a change made by `env` (deduplicated by id).
    pub async fn emit(&self, env: &CommandEnvelope, c: Change) -> Result<(), HandlerError> {
        let ev = DomainEvent {
            id: format!("{}:{}", env.id, c.kind),
            kind: c.kind.to_string(),
            occurred_at: Utc::now(),
            command_id: env.id.clone(),
            actor: env.issuer.clone(),
            context: env.context.clone(),
            action: c.action.to_string(),
            entity_type: c.entity_type.to_string(),
            entity_id: c.entity_id,
            event_id: c.event_id,
            before: c.before,
            after: c.after,
            data: c.data,
        };
        streams::publish::publish_event(&self.js, &self.ns, &self.signer, &ev).await?;
        Ok(())
    }
}
