//! Start-up and the command loop shared by every command worker: pull from the area's
//! durable consumer, bound the handlers in flight, answer once, keep the result, ack; and
//! dead-letter what exhausts its deliveries.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, kv};

use secrecy::ExposeSecret;
use streams::locks::SeatLocks;
use streams::proof::{CommandSigner, Trust};
use streams::replies::Results;
use streams::setup::{self, WireConfig};
use streams::Namespace;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::info;

use crate::app::config::Config;
use crate::app::context::Ctx;
use crate::app::worker::Worker;
use crate::app::{commands, consumer};
use crate::store::Store;

/// A running workers process: stop it with [`Running::shutdown`].
pub struct Running {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    pub ctx: Ctx,
    /// Where `GET /metrics` answers (None when `TICKETING_WORKERS_METRICS_ADDR=off`).
    pub metrics_addr: Option<SocketAddr>,
}

impl Running {
    /// Stops taking new messages, lets handlers in flight finish, and returns.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }

    /// Stops at once, as a killed process would (for fault tests): every loop and the
    /// handlers it runs are dropped wherever they are; nothing is acknowledged, so
    /// JetStream redelivers what was in flight to the next process.
    pub async fn kill(mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

pub(crate) fn wire_config(cfg: &Config) -> WireConfig {
    WireConfig {
        replicas: cfg.stream_replicas,
        max_deliver: cfg.max_deliver,
        ..WireConfig::default()
    }
}

/// Connects, ensures streams, buckets and indexes, and starts the configured workers.
pub async fn run(cfg: Config) -> anyhow::Result<Running> {
    run_with_clock(cfg, Arc::new(domain::SystemClock)).await
}

/// [`run`] with another clock: every decision of these workers takes `now` from it (a
/// test sets it, say, past a hold's expiry).
pub async fn run_with_clock(cfg: Config, clock: Arc<dyn domain::Clock>) -> anyhow::Result<Running> {
    cfg.check_workers()?;
    let cfg = Arc::new(cfg);
    let ns = Namespace::new(&cfg.namespace);
    let (signer, trust) = load_keys(&cfg)?;
    let client = streams::connect::connect(
        &cfg.nats_url,
        "ticketing-workers",
        cfg.nats_user.as_deref(),
        cfg.nats_password.as_ref().map(|p| p.expose_secret()),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let js = jetstream::new(client.clone());
    let wire = wire_config(&cfg);
    setup::ensure_streams(&js, &ns, &wire)
        .await
        .map_err(|e| anyhow::anyhow!("ensuring streams: {e}"))?;
    let (locks_kv, results_kv) = setup::ensure_buckets(&js, &ns, &wire)
        .await
        .map_err(|e| anyhow::anyhow!("ensuring KV buckets: {e}"))?;
    let store = open_store(&cfg).await?;
    let buckets = Buckets::ensure(&js, &ns, &wire).await?;
    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    // Far enough back for every hold that may still be active or booked.
    let lookback = cfg.hold_ttl() + Duration::from_secs(45 * 60);
    let live = streams::live::Live::start(&js, &ns, lookback, &mut tasks, stopped.clone())
        .await
        .map_err(|e| anyhow::anyhow!("loading the live views: {e}"))?;
    let ctx = Ctx {
        clock,
        live,
        gateway: Arc::new(crate::payments::gateway::Simulated::new(store.clone())),
        vault: buckets.vault,
        revocations: buckets.revocations,
        gate: buckets.gate,
        locks: SeatLocks::new(js.clone(), locks_kv, ns.seat_locks_bucket()),
        leases: SeatLocks::new(js.clone(), buckets.leases, ns.leases_bucket()),
        results: Results::new(results_kv),
        seat_maps: Default::default(),
        hold_inserts: crate::store::batch::Inserter::start(
            store.col(crate::store::names::SEAT_HOLDS),
            256,
        ),
        cfg: cfg.clone(),
        ns: ns.clone(),
        client,
        js,
        store,
        qr_keys: crate::tickets::qr_keys::load_if_needed(&cfg)?.map(Arc::new),
        signer: Arc::new(signer),
        trust: Arc::new(trust),
        metrics: crate::app::metrics::Metrics::new(ns.root()),
    };
    let metrics_addr = start_metrics(&ctx, &mut tasks, &stopped).await?;
    start_workers(&ctx, &wire, &mut tasks, &stopped).await?;
    info!(namespace = %ns.root(), workers = ?cfg.workers, "workers started");
    Ok(Running {
        stop,
        tasks,
        ctx,
        metrics_addr,
    })
}

/// Connects to MongoDB and ensures its indexes (and, given FerretDB's PostgreSQL, the
/// GIN indexes on its tables).
async fn open_store(cfg: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(&cfg.mongodb_uri, &cfg.mongodb_db, cfg.mongodb_max_pool)
        .await
        .map_err(|e| anyhow::anyhow!("connecting to MongoDB at {}: {e}", cfg.mongodb_uri))?;
    store
        .ensure_indexes()
        .await
        .map_err(|e| anyhow::anyhow!("ensuring indexes: {e}"))?;
    if let Some(pg) = &cfg.pg_url {
        let plan = crate::store::indexes::all(false);
        match crate::store::pg_indexes::ensure(pg, &cfg.mongodb_db, &plan).await {
            Ok(n) => tracing::info!(created = n, "GIN indexes on FerretDB's PostgreSQL tables"),
            // The system works without them, only slower: said loudly, not fatal.
            Err(e) => {
                tracing::warn!(error = %e, "GIN indexes not ensured; filtered reads and updates scan whole tables")
            }
        }
    }
    Ok(store)
}

/// The KV buckets ensured after the store: leases, card vault, gate tickets, idempotency
/// keys and token revocations.
struct Buckets {
    leases: kv::Store,
    vault: kv::Store,
    gate: kv::Store,
    revocations: kv::Store,
}

impl Buckets {
    async fn ensure(
        js: &jetstream::Context,
        ns: &Namespace,
        wire: &WireConfig,
    ) -> anyhow::Result<Self> {
        let leases = setup::ensure_leases(js, ns, wire)
            .await
            .map_err(|e| anyhow::anyhow!("ensuring leases bucket: {e}"))?;
        let vault = setup::ensure_card_vault(js, ns, wire)
            .await
            .map_err(|e| anyhow::anyhow!("ensuring card vault: {e}"))?;
        let gate = setup::ensure_gate_tickets(js, ns, wire)
            .await
            .map_err(|e| anyhow::anyhow!("ensuring gate-tickets bucket: {e}"))?;
        setup::ensure_idempotency_keys(js, ns, wire)
            .await
            .map_err(|e| anyhow::anyhow!("ensuring idempotency-keys bucket: {e}"))?;
        let revocations = setup::ensure_token_revocations(js, ns, wire)
            .await
            .map_err(|e| anyhow::anyhow!("ensuring token-revocations bucket: {e}"))?;
        Ok(Buckets {
            leases,
            vault,
            gate,
            revocations,
        })
    }
}

/// Serves `GET /metrics` and polls the consumers' state, unless metrics are off.
async fn start_metrics(
    ctx: &Ctx,
    tasks: &mut JoinSet<()>,
    stopped: &watch::Receiver<bool>,
) -> anyhow::Result<Option<SocketAddr>> {
    let cfg = &ctx.cfg;
    Ok(match cfg.metrics_listen()? {
        Some(addr) => {
            let (bound, server) =
                crate::app::metrics::serve(addr, ctx.metrics.clone(), stopped.clone()).await?;
            tasks.spawn(server);
            let every = Duration::from_millis(cfg.metrics_poll_ms.max(100));
            tasks.spawn(crate::app::metrics::poll(
                ctx.metrics.clone(),
                every,
                stopped.clone(),
            ));
            info!(addr = %bound, "workers' metrics at /metrics");
            Some(bound)
        }
        None => None,
    })
}

/// Starts the configured workers: a command loop per area, then the others.
async fn start_workers(
    ctx: &Ctx,
    wire: &WireConfig,
    tasks: &mut JoinSet<()>,
    stopped: &watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let (cfg, ns) = (&ctx.cfg, &ctx.ns);
    for worker in Worker::ALL {
        let Some(area) = worker.area() else { continue };
        if cfg.runs(worker) {
            let name = worker.name();
            let consumer =
                setup::ensure_command_consumer(&ctx.js, ns, area, wire, cfg.concurrency as i64)
                    .await
                    .map_err(|e| anyhow::anyhow!("ensuring consumer {name}: {e}"))?;
            ctx.metrics.watch(&consumer);
            tasks.spawn(consumer::each(
                ctx.clone(),
                consumer,
                commands::spec(ctx, name),
                stopped.clone(),
                commands::decode,
                commands::handle,
            ));
        }
    }
    if cfg.runs(Worker::Expiry) {
        crate::holds::expiry::start(ctx, tasks, stopped.clone()).await?;
    }
    if cfg.runs(Worker::Projections) {
        crate::projections::start(ctx, tasks, stopped.clone()).await?;
    }
    if cfg.runs(Worker::Notifications) {
        crate::notifications::start(ctx, tasks, stopped.clone()).await?;
    }
    if cfg.runs(Worker::Analytics) {
        crate::analytics::start(ctx, tasks, stopped.clone()).await?;
    }
    if cfg.runs(Worker::Queries) {
        // NOTE: reads get their own connection pool, so a projection catching up on a
        // backlog of writes never starves `/readyz` or the API's reads.
        let mut reads = ctx.clone();
        reads.store = Store::connect(
            &cfg.mongodb_uri,
            &cfg.mongodb_db,
            cfg.mongodb_max_pool.max(16),
        )
        .await
        .map_err(|e| anyhow::anyhow!("connecting the queries' MongoDB pool: {e}"))?;
        crate::queries::start(&reads, tasks, stopped.clone()).await?;
    }
    if cfg.runs(Worker::Tickets) {
        crate::tickets::start(ctx, tasks, stopped.clone()).await?;
    }
    Ok(())
}

/// The workers' signing key and the registry of trusted signers; the workers' own key
/// must be in it, or every command they fan out would be refused.
fn load_keys(cfg: &Config) -> anyhow::Result<(CommandSigner, Trust)> {
    let spec = cfg.command_signing_key.as_ref().ok_or_else(|| {
        anyhow::anyhow!("TICKETING_COMMAND_SIGNING_KEY is not set: the workers sign the commands they fan out and every event (scripts/up.sh makes development keys under .data/dev/keys)")
    })?;
    let signer = CommandSigner::parse(spec.expose_secret())
        .map_err(|e| anyhow::anyhow!("TICKETING_COMMAND_SIGNING_KEY: {e}"))?;
    let path = cfg.command_signers.as_ref().ok_or_else(|| {
        anyhow::anyhow!("TICKETING_COMMAND_SIGNERS is not set: the workers apply only commands signed by a key in that registry")
    })?;
    let trust = Trust::load(path).map_err(|e| anyhow::anyhow!("TICKETING_COMMAND_SIGNERS: {e}"))?;
    match trust.entry(signer.kid()) {
        Some(e) if e.public_key == signer.public_key() => {}
        Some(_) => anyhow::bail!(
            "the signers registry {} has another public key for the workers' key {}",
            path.display(),
            signer.kid()
        ),
        None => anyhow::bail!(
            "the workers' key {} is not in the signers registry {}",
            signer.kid(),
            path.display()
        ),
    }
    info!(
        signers = trust.len(),
        kid = signer.kid(),
        "command signers loaded"
    );
    Ok((signer, trust))
}
