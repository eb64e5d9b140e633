//! In-memory views fed by NATS, so the hot paths answer without waiting on MongoDB and
//! every read reflects every write answered before it (read-your-writes, any process):
//!
//! - [`locks::LockView`]: the `seat-locks` bucket (who holds each seat, each event's sale
//!   status): the seat map's statuses and the hold path's event check;
//! - [`holds::HoldView`]: recent holds, from EVENTS.
//!
//! Each follows its stream in order; `sync()` is the read barrier (see [`tail::Tail`]).

pub mod holds;
pub mod locks;
pub mod tail;

use std::time::Duration;

use crate::Namespace;
use async_nats::jetstream;
use tokio::sync::watch;
use tokio::task::JoinSet;

pub use tail::ViewError;

#[derive(Clone)]
pub struct Live {
    pub locks: locks::LockView,
    pub holds: holds::HoldView,
}

impl Live {
    /// Starts both views and waits until each has caught up with its stream (handlers
    /// that read them must not run on a half-loaded view); their tasks stop when `stopped` changes. `lookback` is how far
    /// back the holds view starts (longer than a hold and its booking can stay open).
    pub async fn start(
        js: &jetstream::Context,
        ns: &Namespace,
        lookback: Duration,
        tasks: &mut JoinSet<()>,
        stopped: watch::Receiver<bool>,
    ) -> Result<Live, ViewError> {
        let (locks, t1) =
            locks::LockView::start(js.clone(), &ns.seat_locks_bucket(), stopped.clone());
        let (holds, t2) = holds::HoldView::start(js.clone(), ns.events_stream(), lookback, stopped);
        tasks.spawn(async move {
            let _ = t1.await;
        });
        tasks.spawn(async move {
            let _ = t2.await;
        });
        let live = Live { locks, holds };
        live.locks.sync().await?;
        live.holds.sync().await?;
        Ok(live)
    }
}
