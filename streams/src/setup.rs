//! Idempotent `ensure_*` set-up of streams, KV buckets and consumers, run at start-up by
//! every process that needs them (creating what is missing, updating what changed).

use std::time::Duration;

use async_nats::jetstream::{self, consumer, kv, stream};

use crate::names::{Area, Namespace};
use crate::WireError;

/// Tunables of the wire, with the production defaults.
#[derive(Debug, Clone)]
pub struct WireConfig {
    /// Stream and bucket replicas (3 in a NATS cluster, 1 on a single server).
    pub replicas: usize,
    /// JetStream's duplicate window for `Nats-Msg-Id`.
    pub duplicate_window: Duration,
    /// How long command results stay readable at `GET /v1/commands/{id}`.
    pub results_ttl: Duration,
    /// Deliveries before a command is dead-lettered.
    pub max_deliver: i64,
}

impl Default for WireConfig {
    fn default() -> Self {
        WireConfig {
            replicas: 1,
            duplicate_window: Duration::from_secs(300),
            results_ttl: Duration::from_secs(24 * 3600),
            max_deliver: 5,
        }
    }
}

/// Redelivery delays of command consumers. `ack_wait` is ignored once a backoff is set, so
/// the first entry is also how long a delivery may stay unacknowledged.
pub fn command_backoff() -> Vec<Duration> {
    [5, 10, 30, 60]
        .into_iter()
        .map(Duration::from_secs)
        .collect()
}

pub async fn ensure_streams(
    js: &jetstream::Context,
    ns: &Namespace,
    cfg: &WireConfig,
) -> Result<(), WireError> {
    let streams = [
        stream::Config {
            name: ns.commands_stream(),
            description: Some(
                "Commands from the gateway and other systems, deduplicated by Nats-Msg-Id.".into(),
            ),
            subjects: vec![ns.all_commands()],
            // NOTE: limits retention (not work-queue) keeps a week of commands for replay and
            // inspection; each area has exactly one durable consumer.
            retention: stream::RetentionPolicy::Limits,
            max_age: Duration::from_secs(7 * 24 * 3600),
            storage: stream::StorageType::File,
            num_replicas: cfg.replicas,
            duplicate_window: cfg.duplicate_window,
            ..Default::default()
        },
        stream::Config {
            name: ns.events_stream(),
            description: Some("Domain events: the record projections and recovery replay.".into()),
            subjects: vec![ns.all_events()],
            retention: stream::RetentionPolicy::Limits,
            max_age: Duration::ZERO,
            storage: stream::StorageType::File,
            num_replicas: cfg.replicas,
            duplicate_window: cfg.duplicate_window,
            ..Default::default()
        },
        stream::Config {
            name: ns.deadletter_stream(),
            description: Some(
                "Commands that exhausted their deliveries, with the reason in a header.".into(),
            ),
            subjects: vec![ns.all_deadletters()],
            retention: stream::RetentionPolicy::Limits,
            max_age: Duration::from_secs(30 * 24 * 3600),
            storage: stream::StorageType::File,
            num_replicas: cfg.replicas,
            ..Default::default()
        },
    ];
    for s in streams {
        js.create_or_update_stream(s)
            .await
            .map_err(WireError::nats)?;
    }
    Ok(())
}

pub async fn ensure_buckets(
    js: &jetstream::Context,
    ns: &Namespace,
    cfg: &WireConfig,
) -> Result<(kv::Store, kv::Store), WireError> {
    let locks = js
        .create_or_update_key_value(kv::Config {
            bucket: ns.seat_locks_bucket(),
            description: "Seat locks: <eventId>.<seatId> -> hold id (per-key TTL) or booking."
                .into(),
            history: 1,
            storage: stream::StorageType::File,
            num_replicas: cfg.replicas,
            // Per-key TTL and expiry markers (server 2.11+); markers live a minute.
            limit_markers: Some(Duration::from_secs(60)),
            ..Default::default()
        })
        .await
        .map_err(WireError::nats)?;
    let results = js
        .create_or_update_key_value(kv::Config {
            bucket: ns.results_bucket(),
            description: "Command results for GET /v1/commands/{id}.".into(),
            history: 1,
            max_age: cfg.results_ttl,
            storage: stream::StorageType::File,
            num_replicas: cfg.replicas,
            ..Default::default()
        })
        .await
        .map_err(WireError::nats)?;
    Ok((locks, results))
}

/// The durable pull consumer of one command area, shared by every replica of its worker.
pub async fn ensure_command_consumer(
    js: &jetstream::Context,
    ns: &Namespace,
    area: Area,
    cfg: &WireConfig,
    max_ack_pending: i64,
) -> Result<consumer::PullConsumer, WireError> {
    let stream = js
        .get_stream(ns.commands_stream())
        .await
        .map_err(WireError::nats)?;
    let name = ns.command_consumer(area);
    let mut backoff = command_backoff();
    backoff.truncate(cfg.max_deliver.max(1) as usize);
    let config = consumer::pull::Config {
        durable_name: Some(name.clone()),
        description: Some(format!("{} commands", area.as_str())),
        filter_subject: ns.commands_of(area),
        ack_policy: consumer::AckPolicy::Explicit,
        deliver_policy: consumer::DeliverPolicy::All,
        ack_wait: backoff[0],
        max_deliver: cfg.max_deliver,
        backoff,
        max_ack_pending,
        num_replicas: cfg.replicas,
        ..Default::default()
    };
    stream
        .create_consumer(config)
        .await
        .map_err(WireError::nats)?;
    stream.get_consumer(&name).await.map_err(WireError::nats)
}

/// How long a projection's delivery may stay unacknowledged before redelivery.
pub const PROJECTION_ACK_WAIT: Duration = Duration::from_secs(10);
/// How often a projection still applying a batch tells the server it is working on it.
pub const PROJECTION_PROGRESS: Duration = Duration::from_secs(3);

/// A durable pull consumer of a projection over EVENTS.
pub async fn ensure_projection_consumer(
    js: &jetstream::Context,
    ns: &Namespace,
    name: &str,
    filter: String,
    cfg: &WireConfig,
) -> Result<consumer::PullConsumer, WireError> {
    let stream = js
        .get_stream(ns.events_stream())
        .await
        .map_err(WireError::nats)?;
    let durable = ns.projection_consumer(name);
    let config = consumer::pull::Config {
        durable_name: Some(durable.clone()),
        description: Some(format!("projection {name}")),
        filter_subject: filter,
        ack_policy: consumer::AckPolicy::Explicit,
        deliver_policy: consumer::DeliverPolicy::All,
        // Short, so a batch a crashed process had taken is redelivered within seconds;
        // a batch still being applied is kept by progress acks (see PROJECTION_PROGRESS).
        ack_wait: PROJECTION_ACK_WAIT,
        max_deliver: -1,
        max_ack_pending: 10_000,
        num_replicas: cfg.replicas,
        ..Default::default()
    };
    stream
        .create_consumer(config)
        .await
        .map_err(WireError::nats)?;
    stream.get_consumer(&durable).await.map_err(WireError::nats)
}

/// Opens a bucket someone else creates (the workers), waiting up to `wait` for it: a
/// client whose NATS identity may not create streams (the gateway) starts this way.
pub async fn open_bucket(
    js: &jetstream::Context,
    bucket: &str,
    wait: Duration,
) -> Result<kv::Store, WireError> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut logged = false;
    loop {
        match js.get_key_value(bucket).await {
            Ok(store) => return Ok(store),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(WireError::Nats(format!(
                    "bucket {bucket} not found after {} s (the workers create it; are they running?): {e}",
                    wait.as_secs()
                )))
            }
            Err(e) => {
                if !logged {
                    tracing::info!(bucket, error = %e, "waiting for the workers to create the bucket");
                    logged = true;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// `Idempotency-Key` records ([`crate::idempotency`]), kept as long as the results.
pub async fn ensure_idempotency_keys(
    js: &jetstream::Context,
    ns: &Namespace,
    cfg: &WireConfig,
) -> Result<kv::Store, WireError> {
    js.create_or_update_key_value(kv::Config {
        bucket: ns.idempotency_bucket(),
        description: "Idempotency-Key records: <command id> -> {fingerprint, claimedAt}.".into(),
        history: 1,
        max_age: cfg.results_ttl,
        storage: stream::StorageType::File,
        num_replicas: cfg.replicas,
        ..Default::default()
    })
    .await
    .map_err(WireError::nats)
}

/// Token revocations ([`crate::revocations`]), watched by every gateway.
pub async fn ensure_token_revocations(
    js: &jetstream::Context,
    ns: &Namespace,
    cfg: &WireConfig,
) -> Result<kv::Store, WireError> {
    js.create_or_update_key_value(kv::Config {
        bucket: ns.token_revocations_bucket(),
        description: "Token revocations: <userId> -> {notBefore, reason}.".into(),
        history: 1,
        max_age: crate::revocations::REVOCATION_TTL,
        storage: stream::StorageType::File,
        num_replicas: cfg.replicas,
        ..Default::default()
    })
    .await
    .map_err(WireError::nats)
}

/// The card vault: card numbers on their way from the gateway to the payments worker,
/// for ten minutes at most, so no card number is kept in the COMMANDS stream.
pub async fn ensure_card_vault(
    js: &jetstream::Context,
    ns: &Namespace,
    cfg: &WireConfig,
) -> Result<kv::Store, WireError> {
    js.create_or_update_key_value(kv::Config {
        bucket: ns.card_vault_bucket(),
        description:
            "Card numbers in transit (10 min); the payments worker deletes each after use.".into(),
        history: 1,
        max_age: Duration::from_secs(600),
        storage: stream::StorageType::File,
        num_replicas: cfg.replicas,
        ..Default::default()
    })
    .await
    .map_err(WireError::nats)
}

/// The gate's record of each ticket and its first scan (`workers::gate`): no TTL, a
/// ticket stays scannable until its event is over.
pub async fn ensure_gate_tickets(
    js: &jetstream::Context,
    ns: &Namespace,
    cfg: &WireConfig,
) -> Result<kv::Store, WireError> {
    js.create_or_update_key_value(kv::Config {
        bucket: ns.gate_tickets_bucket(),
        description:
            "Gate records: <ticketId> -> ticket as a gate sees it; <ticketId>.first -> its first scan."
                .into(),
        history: 1,
        storage: stream::StorageType::File,
        num_replicas: cfg.replicas,
        ..Default::default()
    })
    .await
    .map_err(WireError::nats)
}

/// Short leases that serialize the writers of one MongoDB document (FerretDB rewrites the
/// whole document on every update, so two concurrent updates of different fields lose
/// one of them). Per-key TTL: a crashed holder's lease runs out by itself.
pub async fn ensure_leases(
    js: &jetstream::Context,
    ns: &Namespace,
    cfg: &WireConfig,
) -> Result<kv::Store, WireError> {
    js.create_or_update_key_value(kv::Config {
        bucket: ns.leases_bucket(),
        description: "Document write leases: <collection>.<id> -> holder (seconds).".into(),
        history: 1,
        storage: stream::StorageType::File,
        num_replicas: cfg.replicas,
        limit_markers: Some(Duration::from_secs(60)),
        ..Default::default()
    })
    .await
    .map_err(WireError::nats)
}
