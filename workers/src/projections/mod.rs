//! Projections over the EVENTS stream, each a durable pull consumer:
//!
//! - `audit`: one `audit_logs` entry per domain event, `_id` derived from the event id,
//!   so a redelivered event inserts nothing twice;
//! - `counters`: `events.availableSeats`, recomputed from the seats of every event a batch
//!   touched. NOTE: a recount, not a `$inc`: on FerretDB an `$inc` is a read-modify-write
//!   and concurrent increments lose updates, and a recount is idempotent under
//!   redelivery. The recount runs after the seat writes it follows (events are published
//!   after the effect), so once the system is quiet the counter is exact.
//!
//! The `counters` consumer is also the one writer of the seat, hold and scan documents
//! (`seats`, `holds`, `scans`), each batch applied in stream order.

mod audit;
mod holds;
mod scans;
mod seats;

use std::time::Duration;

use futures::future::BoxFuture;
use futures::StreamExt;
use streams::events::EventEnvelope;
use streams::setup;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::warn;

use self::audit::apply_audit;
use self::seats::apply_counters;
use crate::app::consumer::{self, Delivery, Spec};
use crate::app::context::{Ctx, HandlerError};
use crate::app::runtime::wire_config;

/// Messages per batch: one recount per touched event per batch.
const BATCH: usize = 500;
/// Pause after a short batch: projections trail by up to this much, and in return a storm's
/// events are applied in large batches.
const PACE: Duration = Duration::from_millis(250);

pub(crate) async fn start(
    ctx: &Ctx,
    tasks: &mut JoinSet<()>,
    stopped: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let wire = wire_config(&ctx.cfg);
    let audit =
        setup::ensure_projection_consumer(&ctx.js, &ctx.ns, "audit", ctx.ns.all_events(), &wire)
            .await
            .map_err(|e| anyhow::anyhow!("ensuring audit projection: {e}"))?;
    let counters =
        setup::ensure_projection_consumer(&ctx.js, &ctx.ns, "counters", ctx.ns.all_events(), &wire)
            .await
            .map_err(|e| anyhow::anyhow!("ensuring counters projection: {e}"))?;
    ctx.metrics.watch(&audit);
    ctx.metrics.watch(&counters);
    let spec = |name| Spec {
        pace: Some(PACE),
        ..Spec::new(name, BATCH)
    };
    tasks.spawn(consumer::batches(
        ctx.clone(),
        audit,
        spec("audit"),
        stopped.clone(),
        consumer::json::<EventEnvelope>,
        |ctx, batch| {
            let (ctx, events) = (ctx.clone(), items(batch));
            async move { apply_audit(&ctx, &events).await.map_err(HandlerError::from) }
        },
    ));
    tasks.spawn(consumer::batches(
        ctx.clone(),
        counters,
        spec("counters"),
        stopped,
        consumer::json::<EventEnvelope>,
        |ctx, batch| {
            let (ctx, events) = (ctx.clone(), items(batch));
            async move { apply_counters(&ctx, &events).await }
        },
    ));
    Ok(())
}

/// The decoded events of a batch.
pub(crate) fn items<T: Clone>(batch: &[Delivery<T>]) -> Vec<T> {
    batch.iter().map(|d| d.item.clone()).collect()
}

/// Retries one write in place (a short backoff, a few times), so a passing failure does
/// not send the whole batch back to be applied again from its start.
async fn persist<T, F, Fut>(mut write: F) -> Result<T, mongodb::error::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, mongodb::error::Error>>,
{
    let mut delay = Duration::from_millis(50);
    let mut tries = 0;
    loop {
        match write().await {
            Ok(v) => return Ok(v),
            Err(e) if tries < 5 => {
                tries += 1;
                warn!(error = %e, tries, "projection write failed; retrying it");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Runs the writes, 16 at a time (the connection pool is shared with the other workers
/// of the process), and fails with the first failure once all have run.
/// (Boxed: a generic future here trips the compiler's `Send` inference in the spawned
/// projection loop.)
async fn bounded(writes: Vec<BoxFuture<'_, Result<(), HandlerError>>>) -> Result<(), HandlerError> {
    let results: Vec<_> = futures::stream::iter(writes)
        .buffer_unordered(16)
        .collect()
        .await;
    results.into_iter().collect()
}
