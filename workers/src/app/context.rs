//! What every worker shares: connections, names, the seat locks, the results bucket.

use std::sync::Arc;

use async_nats::jetstream;
use chrono::Utc;
use serde_json::Value;
use streams::commands::CommandEnvelope;
use streams::events::{DomainEvent, EventEnvelope};
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
    /// Where "now" comes from: every handler asks [`Ctx::now`], never the system clock.
    pub clock: Arc<dyn domain::Clock>,
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

impl HandlerError {
    /// A permanent failure with `e` as its reason.
    pub(crate) fn permanent(e: impl std::fmt::Display) -> Self {
        HandlerError::Permanent(e.to_string())
    }
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

impl Ctx {
    /// Now, by this context's clock.
    pub fn now(&self) -> chrono::DateTime<Utc> {
        self.clock.now()
    }

    /// When a command these workers publish is signed: the wall clock, whatever the
    /// decisions' clock says, because its proof is checked against the time JetStream
    /// stores the message (`streams::proof`).
    pub(crate) fn signing_time(&self) -> chrono::DateTime<Utc> {
        Utc::now()
    }

    /// Now as stored: a millisecond `bson` date-time.
    pub fn now_stored(&self) -> domain::DateTime {
        self.clock.now_stored()
    }

    /// Publishes `event`, a change made by `env` (deduplicated by id: a redelivered command
    /// publishes once), with the audit log's snapshots of the entity before and after.
    pub async fn emit(
        &self,
        env: &CommandEnvelope,
        event: DomainEvent,
        before: Option<Value>,
        after: Option<Value>,
    ) -> Result<(), HandlerError> {
        let ev = EventEnvelope {
            id: format!("{}:{}", env.id, event.kind()),
            occurred_at: self.now(),
            command_id: env.id.clone(),
            actor: env.issuer.clone(),
            context: env.context.clone(),
            before,
            after,
            event,
        };
        streams::publish::publish_event(&self.js, &self.ns, &self.signer, &ev).await?;
        Ok(())
    }
}
