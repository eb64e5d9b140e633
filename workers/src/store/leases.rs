//! Document write leases: serialize the writers of one MongoDB document.
//!
//! NOTE: FerretDB v1 applies an update by reading the document, changing it in memory and
//! writing it back whole, so two concurrent updates of *different* fields of one document
//! lose one of them (seen: the seat-count projector's `$set availableSeats` put back the
//! `published` status an event cancellation had just written). A document with more than
//! one writer is therefore written under a lease: a KV key created with a TTL (so a
//! crashed holder's lease runs out) and deleted by its holder.

use std::future::Future;
use std::time::Duration;

use domain::ObjectId;
use streams::locks::Acquired;

use crate::app::context::{Ctx, HandlerError};

/// How long a lease lives if its holder dies.
const LEASE_TTL: Duration = Duration::from_secs(5);
/// How long to wait for a lease before giving up (the caller retries later).
const WAIT: Duration = Duration::from_secs(10);

/// Runs `f` while holding the lease on `<collection>.<id>`.
pub(crate) async fn with_lease<T, F, Fut>(
    ctx: &Ctx,
    collection: &str,
    id: ObjectId,
    f: F,
) -> Result<T, HandlerError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, HandlerError>>,
{
    let key = format!("{collection}.{}", id.to_hex());
    let holder = uuid_like();
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut pause = Duration::from_millis(2);
    loop {
        match ctx.leases.acquire(&key, &holder, LEASE_TTL).await? {
            Acquired::Taken(_) | Acquired::AlreadyOurs(_) => break,
            Acquired::HeldByOther if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Acquired::HeldByOther => {
                return Err(HandlerError::Transient(format!("lease {key} busy")))
            }
        }
    }
    let out = f().await;
    if let Err(e) = ctx.leases.release(&key, &holder).await {
        tracing::warn!(error = %e, key, "lease not released; it runs out by itself");
    }
    out
}

fn uuid_like() -> String {
    use rand::Rng;
    format!("{:032x}", rand::thread_rng().gen::<u128>())
}
