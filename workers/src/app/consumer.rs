//! The one way a worker consumes a durable JetStream consumer. It owns what every loop
//! must get right the same way:
//!
//! - pulling, and pulling again after a lost connection;
//! - decoding (a message that does not decode is given up, never acked silently);
//! - progress acks while a long handler runs, so a short ack wait still brings a
//!   crashed process's messages back soon;
//! - settling each message from its [`Outcome`]: ack; nak with a delay; or, on a
//!   permanent failure or the last allowed delivery, a copy in DEADLETTERS with the reason
//!   and the delivery count, then `Term`;
//! - the consumer's metrics (received, handled, dead-lettered) and a drain on stop.
//!
//! Two shapes: [`each`] hands messages one by one to a handler, up to `concurrency` at
//! once, as they arrive (commands, per-event side effects); [`batches`] hands a whole
//! fetched batch to a handler that applies it in one go (projections that coalesce
//! writes), and settles the batch from its one result.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::{AckKind, Message};
use futures::future::BoxFuture;
use futures::StreamExt;
use serde::de::DeserializeOwned;
use streams::{headers, setup};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use crate::app::context::{Ctx, HandlerError};

/// One decoded message.
pub(crate) struct Delivery<T> {
    pub msg: Message,
    pub item: T,
    /// 1 on the first delivery.
    pub delivered: i64,
    /// The message's sequence in its stream.
    pub stream_sequence: u64,
}

/// What became of one message.
pub(crate) enum Outcome {
    /// Applied, or nothing to do: acked.
    Done,
    /// Worth another delivery: nak'd with `delay` (None: the consumer's back-off list),
    /// unless this was the last allowed delivery, which gives up.
    Retry {
        delay: Option<Duration>,
        reason: String,
    },
    /// Will fail the same way every time: dead-lettered with `reason`, then terminated;
    /// `then` runs between the two (a command answers its caller there, so whoever is
    /// told "failed" finds the dead letter).
    GiveUp {
        reason: String,
        then: Option<BoxFuture<'static, ()>>,
    },
}

impl Outcome {
    pub(crate) fn give_up(reason: impl Into<String>) -> Self {
        Outcome::GiveUp {
            reason: reason.into(),
            then: None,
        }
    }

    /// The outcome of a handler's result, transient failures retried after `delay`.
    pub(crate) fn of(result: Result<(), HandlerError>, delay: Option<Duration>) -> Self {
        match result {
            Ok(()) => Outcome::Done,
            Err(HandlerError::Transient(reason)) => Outcome::Retry { delay, reason },
            Err(HandlerError::Permanent(reason)) => Outcome::give_up(reason),
        }
    }
}

/// How a consumer is run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec {
    /// The name in logs.
    pub name: &'static str,
    /// [`each`]: handlers in flight at once. [`batches`]: messages per batch.
    pub size: usize,
    /// [`each`]: messages asked for per pull request. More than `size` keeps a sequential
    /// handler fed without a round trip per message; those waiting count against the
    /// consumer's ack wait.
    pub pull: usize,
    /// Deliveries after which a retry gives up (the consumer's `max_deliver`); None: never
    /// (a projection must not lose an event, so it retries until the store is back).
    pub give_up_after: Option<i64>,
    /// [`batches`]: pause after a short batch, so the next one gathers more.
    pub pace: Option<Duration>,
    /// Wait for the server to confirm each ack (commands: a redelivery after a lost ack
    /// finds the result, but costs a round trip; projections ack without waiting).
    pub confirm_acks: bool,
}

impl Spec {
    pub(crate) fn new(name: &'static str, size: usize) -> Self {
        Spec {
            name,
            size: size.max(1),
            pull: size.clamp(1, 100),
            give_up_after: None,
            pace: None,
            confirm_acks: false,
        }
    }
}

/// Decodes a message's JSON payload.
pub(crate) fn json<T: DeserializeOwned>(msg: &Message) -> Result<T, String> {
    serde_json::from_slice(&msg.payload).map_err(|e| format!("undecodable message: {e}"))
}

/// Runs `handle` on each message of `consumer` as it arrives, at most `spec.size` at
/// once, until `stopped` changes; then lets the handlers in flight finish and settle.
pub(crate) async fn each<T, D, H, F>(
    ctx: Ctx,
    consumer: PullConsumer,
    spec: Spec,
    mut stopped: watch::Receiver<bool>,
    decode: D,
    handle: H,
) where
    T: Send + Sync + 'static,
    D: Fn(&Message) -> Result<T, String> + Send + Sync + 'static,
    H: Fn(Ctx, Arc<Delivery<T>>) -> F + Send + Sync + 'static,
    F: Future<Output = Outcome> + Send + 'static,
{
    info!(consumer = spec.name, "consumer started");
    let (decode, handle) = (Arc::new(decode), Arc::new(handle));
    let sem = Arc::new(Semaphore::new(spec.size));
    let mut inflight = JoinSet::new();
    'outer: loop {
        let mut messages = match consumer
            .stream()
            .max_messages_per_batch(spec.pull)
            .heartbeat(Duration::from_secs(5))
            .messages()
            .await
        {
            Ok(m) => m,
            Err(e) => {
                warn!(consumer = spec.name, error = %e, "cannot pull; retrying");
                tokio::select! {
                    _ = stopped.changed() => break 'outer,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        loop {
            let permit = tokio::select! {
                _ = stopped.changed() => break 'outer,
                p = sem.clone().acquire_owned() => p.expect("semaphore never closed"),
            };
            let msg = tokio::select! {
                _ = stopped.changed() => break 'outer,
                m = messages.next() => m,
            };
            let msg = match msg {
                Some(Ok(msg)) => msg,
                Some(Err(e)) => {
                    warn!(consumer = spec.name, error = %e, "pull error; re-subscribing");
                    continue 'outer;
                }
                None => continue 'outer,
            };
            let (ctx, decode, handle) = (ctx.clone(), decode.clone(), handle.clone());
            inflight.spawn(async move {
                let label = ctx.metrics.received(&msg);
                let started = Instant::now();
                match delivery(msg, decode.as_ref()) {
                    Ok(d) => {
                        let d = Arc::new(d);
                        let outcome = handle(ctx.clone(), d.clone()).await;
                        settle(&ctx, &spec, &d.msg, outcome).await;
                    }
                    Err(e) => {
                        let (msg, reason) = *e;
                        settle(&ctx, &spec, &msg, Outcome::give_up(reason)).await
                    }
                }
                ctx.metrics.handled(&label, started.elapsed());
                drop(permit);
            });
            while inflight.try_join_next().is_some() {}
        }
    }
    while inflight.join_next().await.is_some() {}
    info!(consumer = spec.name, "consumer stopped");
}

/// Runs `apply` on each fetched batch of up to `spec.size` decoded messages (those that
/// do not decode are given up one by one), until `stopped` changes. The batch is settled
/// from the one result: all acked, or all retried (a batch apply must be idempotent).
pub(crate) async fn batches<T, D, H, F>(
    ctx: Ctx,
    consumer: PullConsumer,
    spec: Spec,
    mut stopped: watch::Receiver<bool>,
    decode: D,
    apply: H,
) where
    T: Send + Sync,
    D: Fn(&Message) -> Result<T, String>,
    H: Fn(&Ctx, &[Delivery<T>]) -> F,
    F: Future<Output = Result<(), HandlerError>>,
{
    info!(consumer = spec.name, "consumer started");
    let label = ctx.metrics.consumer_label(&consumer.cached_info().name);
    while let Some(msgs) = next_batch(&consumer, spec.size, spec.name, &mut stopped).await {
        if msgs.is_empty() {
            continue;
        }
        let caught_up = msgs.len() < spec.size;
        ctx.metrics.received_batch(&msgs);
        let started = Instant::now();
        let mut batch = Vec::with_capacity(msgs.len());
        for msg in msgs {
            match delivery(msg, &decode) {
                Ok(d) => batch.push(d),
                Err(e) => {
                    let (msg, reason) = *e;
                    settle(&ctx, &spec, &msg, Outcome::give_up(reason)).await
                }
            }
        }
        let result = with_progress(batch.iter().map(|d| &d.msg), apply(&ctx, &batch)).await;
        if let Err(e) = &result {
            warn!(consumer = spec.name, error = %e, "batch failed; it will be applied again");
        }
        let delay = Some(Duration::from_secs(1));
        for d in &batch {
            let outcome = match &result {
                Ok(()) => Outcome::Done,
                Err(HandlerError::Transient(e)) => Outcome::Retry {
                    delay,
                    reason: e.clone(),
                },
                Err(HandlerError::Permanent(e)) => Outcome::give_up(e.clone()),
            };
            settle(&ctx, &spec, &d.msg, outcome).await;
        }
        ctx.metrics.handled(&label, started.elapsed());
        if let (true, Some(pace)) = (caught_up, spec.pace) {
            tokio::select! {
                _ = stopped.changed() => break,
                _ = tokio::time::sleep(pace) => {}
            }
        }
    }
    info!(consumer = spec.name, "consumer stopped");
}

fn delivery<T>(
    msg: Message,
    decode: &dyn Fn(&Message) -> Result<T, String>,
) -> Result<Delivery<T>, Box<(Message, String)>> {
    let (delivered, stream_sequence) = msg
        .info()
        .map(|i| (i.delivered, i.stream_sequence))
        .unwrap_or((1, 0));
    match decode(&msg) {
        Ok(item) => Ok(Delivery {
            msg,
            item,
            delivered,
            stream_sequence,
        }),
        Err(reason) => Err(Box::new((msg, reason))),
    }
}

/// Acks, naks or gives up on `msg` as `outcome` says.
async fn settle(ctx: &Ctx, spec: &Spec, msg: &Message, outcome: Outcome) {
    let delivered = msg.info().map(|i| i.delivered).unwrap_or(1);
    let outcome = match outcome {
        Outcome::Retry { reason, .. } if spec.give_up_after.is_some_and(|n| delivered >= n) => {
            Outcome::give_up(format!("gave up after {delivered} deliveries: {reason}"))
        }
        o => o,
    };
    let acked = match outcome {
        Outcome::Done if spec.confirm_acks => msg.double_ack().await,
        Outcome::Done => msg.ack().await,
        Outcome::Retry { delay, reason } => {
            warn!(consumer = spec.name, delivered, error = %reason, "will be redelivered");
            msg.ack_with(AckKind::Nak(delay)).await
        }
        Outcome::GiveUp { reason, then } => {
            error!(consumer = spec.name, delivered, reason = %reason, "given up: dead-lettered");
            dead_letter(ctx, msg, &reason, delivered).await;
            if let Some(then) = then {
                then.await;
            }
            msg.ack_with(AckKind::Term).await
        }
    };
    if let Err(e) = acked {
        warn!(consumer = spec.name, error = %e, "ack not confirmed; a redelivery is harmless");
    }
}

/// Copies the message to DEADLETTERS with its reason and delivery count.
pub(crate) async fn dead_letter(ctx: &Ctx, msg: &Message, reason: &str, delivered: i64) {
    ctx.metrics.dead_lettered(msg);
    let mut h = msg.headers.clone().unwrap_or_default();
    h.insert(headers::DEADLETTER_REASON, reason);
    h.insert(
        headers::DEADLETTER_DELIVERIES,
        delivered.to_string().as_str(),
    );
    let subject = ctx.ns.deadletter_for(msg.subject.as_str());
    match ctx
        .js
        .publish_with_headers(subject, h, msg.payload.clone())
        .await
    {
        Ok(f) => {
            if let Err(e) = f.await {
                error!(error = %e, "dead letter not stored");
            }
        }
        Err(e) => error!(error = %e, "dead letter not published"),
    }
}

/// Runs `work` on a batch, telling the server every few seconds that the batch is in
/// progress: the consumer's ack wait stays short (a crashed process's batch comes back
/// soon) while a long batch is not redelivered under our feet.
async fn with_progress<'a, T>(
    msgs: impl Iterator<Item = &'a Message> + Clone,
    work: impl Future<Output = T>,
) -> T {
    let mut work = std::pin::pin!(work);
    let mut tick = tokio::time::interval(setup::PROJECTION_PROGRESS);
    tick.tick().await;
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = tick.tick() => {
                for m in msgs.clone() {
                    let _ = m.ack_with(AckKind::Progress).await;
                }
            }
        }
    }
}

/// The next batch of up to `max` messages of a pull consumer, waiting at most a second
/// for them; `None` once `stopped` changes. Fetch errors are logged and retried.
async fn next_batch(
    consumer: &PullConsumer,
    max: usize,
    name: &str,
    stopped: &mut watch::Receiver<bool>,
) -> Option<Vec<Message>> {
    loop {
        let batch = tokio::select! {
            _ = stopped.changed() => return None,
            b = consumer.fetch().max_messages(max).expires(Duration::from_secs(1)).messages() => b,
        };
        let mut batch = match batch {
            Ok(b) => b,
            Err(e) => {
                warn!(consumer = name, error = %e, "fetch failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let mut msgs = Vec::new();
        while let Some(m) = batch.next().await {
            match m {
                Ok(m) => msgs.push(m),
                Err(e) => warn!(consumer = name, error = %e, "batch message error"),
            }
        }
        return Some(msgs);
    }
}
