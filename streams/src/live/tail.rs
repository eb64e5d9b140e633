//! Follows one JetStream stream from a start position, in order, applying every message to
//! an in-memory view, and says how far it got: the stream sequence applied so far.
//!
//! [`Tail::sync`] is the read barrier behind read-your-writes: it asks the server for the
//! stream's last sequence (one `STREAM.INFO`, no write) and waits until the view has
//! applied it. Every write answered before the call is in the stream by then, so a view
//! read after `sync` reflects it, whichever process made the write.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{push, DeliverPolicy, ReplayPolicy};
use async_nats::jetstream::{self, Message};
use futures::StreamExt;
use tokio::sync::{oneshot, watch};
use tracing::{info, warn};

/// Why a view could not answer now.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("stream {stream}: {source}")]
    Nats {
        stream: String,
        source: async_nats::Error,
    },
    #[error("the {0} view did not catch up in time")]
    Lagging(String),
}

#[derive(Clone)]
pub struct Tail {
    inner: Arc<Inner>,
}

struct Inner {
    js: jetstream::Context,
    stream: String,
    applied: watch::Sender<u64>,
    /// Concurrent `sync` calls share one `STREAM.INFO` request: the callers waiting when a
    /// request is sent all get its answer (never one sent before they arrived).
    asking: std::sync::Mutex<Asking>,
}

#[derive(Default)]
struct Asking {
    in_flight: bool,
    waiting: Vec<oneshot::Sender<Result<u64, String>>>,
}

/// How long a read waits for its view to catch up before answering 503.
pub const SYNC_WAIT: Duration = Duration::from_secs(3);

impl Tail {
    /// Starts following `stream` from `start`, handing each message (with its stream
    /// sequence) to `apply`. The task runs until `stopped` changes; it re-creates its
    /// consumer after a gap or a lost connection, from the next unapplied sequence.
    pub fn start<F>(
        js: jetstream::Context,
        stream: String,
        start: DeliverPolicy,
        mut apply: F,
        mut stopped: watch::Receiver<bool>,
    ) -> (Tail, tokio::task::JoinHandle<()>)
    where
        F: FnMut(u64, &Message) + Send + 'static,
    {
        let (applied, _) = watch::channel(0u64);
        let tail = Tail {
            inner: Arc::new(Inner {
                js,
                stream,
                applied,
                asking: Default::default(),
            }),
        };
        let t = tail.clone();
        let task = tokio::spawn(async move {
            let mut policy = start;
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    r = t.follow(policy, &mut apply) => {
                        if let Err(e) = r {
                            warn!(stream = %t.inner.stream, error = %e, "view lost its stream; resuming");
                        }
                    }
                }
                policy = DeliverPolicy::ByStartSequence {
                    start_sequence: t.applied() + 1,
                };
                tokio::select! {
                    _ = stopped.changed() => break,
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
            }
            info!(stream = %t.inner.stream, "view stopped");
        });
        (tail, task)
    }

    async fn follow<F>(&self, policy: DeliverPolicy, apply: &mut F) -> Result<(), async_nats::Error>
    where
        F: FnMut(u64, &Message),
    {
        let stream = self.inner.js.get_stream(&self.inner.stream).await?;
        let last_before = stream.cached_info().state.last_sequence;
        let consumer = stream
            .create_consumer(push::OrderedConfig {
                deliver_subject: self.inner.js.client().new_inbox(),
                // The server wants a filter with "last per subject"; `>` is every subject.
                filter_subject: if matches!(policy, DeliverPolicy::LastPerSubject) {
                    ">".to_string()
                } else {
                    String::new()
                },
                deliver_policy: policy,
                replay_policy: ReplayPolicy::Instant,
                ..Default::default()
            })
            .await?;
        // Nothing to replay: the view is current as of the stream's last sequence (which may
        // be a message already removed, such as an expired lock's marker).
        if consumer.cached_info().num_pending == 0 {
            self.advance(last_before);
        }
        let mut messages = consumer.messages().await?;
        while let Some(m) = messages.next().await {
            let m = m?;
            let info = m.info()?;
            let (seq, pending) = (info.stream_sequence, info.pending);
            apply(seq, &m);
            self.advance(if pending == 0 {
                seq.max(last_before)
            } else {
                seq
            });
        }
        Ok(())
    }

    fn advance(&self, seq: u64) {
        self.inner.applied.send_if_modified(|v| {
            if seq > *v {
                *v = seq;
                true
            } else {
                false
            }
        });
    }

    /// The last stream sequence applied to the view.
    pub fn applied(&self) -> u64 {
        *self.inner.applied.borrow()
    }

    /// Waits until the view has applied `seq` (a revision this process just wrote, say).
    pub async fn wait_for(&self, seq: u64, limit: Duration) -> Result<(), ViewError> {
        let mut rx = self.inner.applied.subscribe();
        let reached = tokio::time::timeout(limit, rx.wait_for(|v| *v >= seq))
            .await
            .is_ok_and(|r| r.is_ok());
        if reached {
            Ok(())
        } else {
            Err(ViewError::Lagging(self.inner.stream.clone()))
        }
    }

    /// The read barrier: waits until every message in the stream when this was called is
    /// applied.
    pub async fn sync(&self) -> Result<(), ViewError> {
        let (tx, rx) = oneshot::channel();
        let lead = {
            let mut a = self.inner.asking.lock().expect("not poisoned");
            a.waiting.push(tx);
            !std::mem::replace(&mut a.in_flight, true)
        };
        if lead {
            let me = self.clone();
            tokio::spawn(async move { me.ask_for_waiters().await });
        }
        let target = match rx.await {
            Ok(Ok(seq)) => seq,
            Ok(Err(e)) => return Err(self.nats(e.into())),
            Err(_) => return Err(ViewError::Lagging(self.inner.stream.clone())),
        };
        self.wait_for(target, SYNC_WAIT).await
    }

    /// Sends `STREAM.INFO` for whoever is waiting, until nobody is.
    async fn ask_for_waiters(&self) {
        loop {
            let batch = {
                let mut a = self.inner.asking.lock().expect("not poisoned");
                if a.waiting.is_empty() {
                    a.in_flight = false;
                    return;
                }
                std::mem::take(&mut a.waiting)
            };
            let last = self.last_sequence().await.map_err(|e| e.to_string());
            for w in batch {
                let _ = w.send(last.clone());
            }
        }
    }

    async fn last_sequence(&self) -> Result<u64, async_nats::Error> {
        // `get_stream` is one STREAM.INFO request; its answer is the cached info.
        let s = self.inner.js.get_stream(&self.inner.stream).await?;
        Ok(s.cached_info().state.last_sequence)
    }

    fn nats(&self, source: async_nats::Error) -> ViewError {
        ViewError::Nats {
            stream: self.inner.stream.clone(),
            source,
        }
    }
}
