//! Prometheus metrics of the workers: per durable consumer (backlog, redeliveries,
//! handler latency, dead letters), per command type (applied, refused), seat locks taken
//! and released, and expiry commands sent; served at `GET /metrics` on
//! `TICKETING_WORKERS_METRICS_ADDR` (see docs/metrics.md for every series).
//!
//! NOTE: each [`Metrics`] owns its recorder instead of installing the process-wide one
//! of the `metrics` facade (as the gateway does): the e2e harness runs many workers
//! stacks, and gateways, in one process, and each stack's counters must be its own. So
//! the workers never call the `counter!` macros; they register on their own recorder.
//!
//! Consumers are labelled by their durable name without the namespace root (`holds`,
//! `proj-audit`), so the label set is the same in every namespace; the NATS consumer is
//! `<namespace>-<label>`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use metrics::{Key, KeyName, Label, Level, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use streams::codes::{ErrorCode, Reply};
use streams::commands::CommandEnvelope;
use tokio::sync::watch;
use tracing::warn;

pub(crate) const CONSUMER_PENDING: &str = "workers_consumer_pending";
pub(crate) const CONSUMER_ACK_PENDING: &str = "workers_consumer_ack_pending";
pub(crate) const REDELIVERED: &str = "workers_messages_redelivered_total";
pub(crate) const HANDLER_DURATION: &str = "workers_handler_duration_seconds";
pub(crate) const DEAD_LETTERED: &str = "workers_dead_lettered_total";
pub(crate) const COMMANDS_APPLIED: &str = "workers_commands_applied_total";
pub(crate) const COMMANDS_REFUSED: &str = "workers_commands_refused_total";
pub(crate) const COMMANDS_REPLAYED: &str = "workers_commands_replayed_total";
pub(crate) const LOCKS_TAKEN: &str = "workers_seat_locks_taken_total";
pub(crate) const LOCKS_RELEASED: &str = "workers_seat_locks_released_total";
pub(crate) const EXPIRY_COMMANDS: &str = "workers_expiry_commands_total";

const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static META: Metadata<'static> = Metadata::new("workers", Level::INFO, Some(module_path!()));

/// Why a command was refused: its sender was not proven (signature, key, grant), or the
/// handler answered with a business error (seats taken, hold expired...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    Sender,
    Business,
}

impl Refused {
    fn as_str(self) -> &'static str {
        match self {
            Refused::Sender => "sender",
            Refused::Business => "business",
        }
    }
}

/// One workers stack's metrics; cheap to clone (shared).
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// `<namespace root>-`, cut from durable names to make the consumer label.
    prefix: String,
    consumers: Mutex<Vec<(String, PullConsumer)>>,
}

impl Metrics {
    pub fn new(namespace_root: &str) -> Self {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(HANDLER_DURATION.to_string()), BUCKETS)
            .unwrap_or_else(|e| {
                // Only an empty bucket list is refused; ours is not empty.
                warn!(error = %e, "handler latency buckets refused; latency is a summary");
                PrometheusBuilder::new()
            });
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        describe(&recorder);
        Metrics {
            inner: Arc::new(Inner {
                recorder,
                handle,
                prefix: format!("{namespace_root}-"),
                consumers: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The Prometheus text exposition of this stack's metrics.
    pub fn render(&self) -> String {
        self.inner.handle.render()
    }

    /// The consumer label of a durable name (`ticketing-holds` → `holds`).
    pub fn consumer_label(&self, durable: &str) -> String {
        durable
            .strip_prefix(&self.inner.prefix)
            .unwrap_or(durable)
            .to_string()
    }

    /// Polls this durable consumer's backlog (see [`poll`]).
    pub fn watch(&self, consumer: &PullConsumer) {
        let label = self.consumer_label(&consumer.cached_info().name);
        // Present from the start, before the first poll.
        self.gauge(CONSUMER_PENDING, &[("consumer", label.clone())])
            .set(consumer.cached_info().num_pending as f64);
        self.gauge(CONSUMER_ACK_PENDING, &[("consumer", label.clone())])
            .set(consumer.cached_info().num_ack_pending as f64);
        let mut list = self.inner.consumers.lock().expect("metrics lock");
        list.push((label, consumer.clone()));
    }

    /// A message taken from a durable consumer: counted as redelivered if it was
    /// delivered before. Returns the consumer label for [`Metrics::handled`].
    pub fn received(&self, msg: &async_nats::jetstream::Message) -> String {
        match msg.info() {
            Ok(info) => {
                let label = self.consumer_label(info.consumer);
                if info.delivered > 1 {
                    self.counter(REDELIVERED, &[("consumer", label.clone())])
                        .increment(1);
                }
                label
            }
            Err(_) => "unknown".to_string(),
        }
    }

    /// The messages of a batch taken from `consumer` (event consumers): see `received`.
    pub fn received_batch(&self, msgs: &[async_nats::jetstream::Message]) {
        for m in msgs {
            self.received(m);
        }
    }

    /// The time one handler (a command, or a batch of events) took.
    pub fn handled(&self, consumer: &str, took: Duration) {
        self.histogram(HANDLER_DURATION, &[("consumer", consumer.to_string())])
            .record(took.as_secs_f64());
    }

    /// A message given up on: copied to DEADLETTERS and terminated (commands), or
    /// terminated (events, which have no dead-letter stream).
    pub fn dead_lettered(&self, msg: &async_nats::jetstream::Message) {
        let label = match msg.info() {
            Ok(i) => self.consumer_label(i.consumer),
            Err(_) => "unknown".to_string(),
        };
        self.counter(DEAD_LETTERED, &[("consumer", label)])
            .increment(1);
    }

    /// A command's first answer, kept in the results bucket: applied if it succeeded,
    /// a business refusal (with its error code) if not.
    pub fn answered(&self, env: &CommandEnvelope, reply: &Reply) {
        let command = command_label(env);
        if reply.status < 400 {
            self.counter(COMMANDS_APPLIED, &[("command", command)])
                .increment(1);
        } else {
            let code = reply.body["error"]["code"]
                .as_str()
                .unwrap_or("unknown")
                .to_string();
            self.refused_with(command, code, Refused::Business);
        }
    }

    /// A command whose sender is not proven.
    pub fn refused(&self, env: &CommandEnvelope, code: ErrorCode) {
        self.refused_with(
            command_label(env),
            code.as_str().to_string(),
            Refused::Sender,
        );
    }

    /// A command answered from its stored result (a redelivery, or the same id again).
    pub fn replayed(&self, env: &CommandEnvelope) {
        self.counter(COMMANDS_REPLAYED, &[("command", command_label(env))])
            .increment(1);
    }

    fn refused_with(&self, command: String, code: String, kind: Refused) {
        self.counter(
            COMMANDS_REFUSED,
            &[
                ("command", command),
                ("code", code),
                ("kind", kind.as_str().to_string()),
            ],
        )
        .increment(1);
    }

    /// Seat locks newly taken for a hold (not those a redelivery found already ours).
    pub fn locks_taken(&self, n: usize) {
        if n > 0 {
            self.counter(LOCKS_TAKEN, &[]).increment(n as u64);
        }
    }

    /// Seat locks deleted by their owner: `reason` is `rollback` (a hold that could not
    /// take all its seats), `release` (a hold released or expired, a booking cancelled
    /// or expired).
    pub fn locks_released(&self, reason: &'static str, n: usize) {
        if n > 0 {
            self.counter(LOCKS_RELEASED, &[("reason", reason.to_string())])
                .increment(n as u64);
        }
    }

    /// An expiry command the expiry worker published (`entity` hold or booking).
    pub fn expiry_command(&self, entity: &'static str, published: bool) {
        let outcome = if published { "published" } else { "failed" };
        self.counter(
            EXPIRY_COMMANDS,
            &[
                ("entity", entity.to_string()),
                ("outcome", outcome.to_string()),
            ],
        )
        .increment(1);
    }

    fn key(name: &'static str, labels: &[(&'static str, String)]) -> Key {
        let labels: Vec<Label> = labels
            .iter()
            .map(|(k, v)| Label::new(*k, v.clone()))
            .collect();
        Key::from_parts(name, labels)
    }

    fn counter(&self, name: &'static str, labels: &[(&'static str, String)]) -> metrics::Counter {
        self.inner
            .recorder
            .register_counter(&Self::key(name, labels), &META)
    }

    fn gauge(&self, name: &'static str, labels: &[(&'static str, String)]) -> metrics::Gauge {
        self.inner
            .recorder
            .register_gauge(&Self::key(name, labels), &META)
    }

    fn histogram(
        &self,
        name: &'static str,
        labels: &[(&'static str, String)],
    ) -> metrics::Histogram {
        self.inner
            .recorder
            .register_histogram(&Self::key(name, labels), &META)
    }
}

/// `<area>.<verb>`, as in the command catalogue (`holds.create`).
fn command_label(env: &CommandEnvelope) -> String {
    let (area, verb) = env.command.route();
    format!("{}.{verb}", area.as_str())
}

fn describe(r: &PrometheusRecorder) {
    let d = |name: &'static str, unit: Option<Unit>, help: &'static str| {
        (
            KeyName::from_const_str(name),
            unit,
            SharedString::const_str(help),
        )
    };
    for (name, unit, help) in [
        d(CONSUMER_PENDING, Some(Unit::Count), "Messages of the stream not yet delivered to this durable consumer (num_pending, polled)."),
        d(CONSUMER_ACK_PENDING, Some(Unit::Count), "Messages delivered to this durable consumer and not yet acknowledged (num_ack_pending, polled)."),
        d(REDELIVERED, Some(Unit::Count), "Messages received with a delivery count above 1."),
        d(HANDLER_DURATION, Some(Unit::Seconds), "Time to handle one command, or one batch of events, up to its ack, nak or term."),
        d(DEAD_LETTERED, Some(Unit::Count), "Messages given up on: commands copied to DEADLETTERS and terminated; events terminated."),
        d(COMMANDS_APPLIED, Some(Unit::Count), "Commands applied and answered with success (first answer only)."),
        d(COMMANDS_REFUSED, Some(Unit::Count), "Commands refused: kind=sender (not proven: signature, key, grant), kind=business (answered with an error code)."),
        d(COMMANDS_REPLAYED, Some(Unit::Count), "Commands answered from their stored result (redelivery or same id again)."),
        d(LOCKS_TAKEN, Some(Unit::Count), "Seat locks newly taken for holds."),
        d(LOCKS_RELEASED, Some(Unit::Count), "Seat locks deleted by their owner (reason=rollback or release)."),
        d(EXPIRY_COMMANDS, Some(Unit::Count), "Expiry commands published by the expiry worker."),
    ] {
        match name.as_str() {
            HANDLER_DURATION => r.describe_histogram(name, unit, help),
            CONSUMER_PENDING | CONSUMER_ACK_PENDING => r.describe_gauge(name, unit, help),
            _ => r.describe_counter(name, unit, help),
        }
    }
}

/// Polls `num_pending` and `num_ack_pending` of every watched consumer each `every`,
/// until `stopped` changes. A failed poll keeps the last value and is logged.
pub(crate) async fn poll(metrics: Metrics, every: Duration, mut stopped: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            _ = tick.tick() => {}
        }
        let consumers = metrics
            .inner
            .consumers
            .lock()
            .expect("metrics lock")
            .clone();
        for (label, consumer) in consumers {
            match consumer.get_info().await {
                Ok(info) => {
                    metrics
                        .gauge(CONSUMER_PENDING, &[("consumer", label.clone())])
                        .set(info.num_pending as f64);
                    metrics
                        .gauge(CONSUMER_ACK_PENDING, &[("consumer", label)])
                        .set(info.num_ack_pending as f64);
                }
                Err(e) => {
                    warn!(consumer = %label, error = %e, "consumer info not read; metrics keep the last backlog")
                }
            }
        }
    }
}

/// Binds `addr` (port 0: any free port) and returns the bound address and the server,
/// which answers `GET /metrics` until `stopped` changes.
pub(crate) async fn serve(
    addr: SocketAddr,
    metrics: Metrics,
    mut stopped: watch::Receiver<bool>,
) -> anyhow::Result<(SocketAddr, impl Future<Output = ()>)> {
    use axum::http::header::CONTENT_TYPE;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        anyhow::anyhow!("binding the workers' metrics endpoint on {addr}: {e} (set TICKETING_WORKERS_METRICS_ADDR to another address, or to off)")
    })?;
    let bound = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let body = metrics.render();
            async move { ([(CONTENT_TYPE, "text/plain; version=0.0.4")], body) }
        }),
    );
    let server = async move {
        let shutdown = async move {
            let _ = stopped.changed().await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            warn!(error = %e, "workers' metrics endpoint stopped");
        }
    };
    Ok((bound, server))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_stack_counts_on_its_own() {
        let a = Metrics::new("ns-a");
        let b = Metrics::new("ns-b");
        a.locks_taken(3);
        a.locks_released("release", 2);
        a.locks_released("release", 0);
        a.handled("holds", Duration::from_millis(3));
        let text = a.render();
        assert!(text.contains("workers_seat_locks_taken_total 3"), "{text}");
        assert!(
            text.contains("workers_seat_locks_released_total{reason=\"release\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("workers_handler_duration_seconds_count{consumer=\"holds\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "workers_handler_duration_seconds_bucket{consumer=\"holds\",le=\"0.005\"} 1"
            ),
            "{text}"
        );
        assert!(!b.render().contains("workers_seat_locks_taken_total 3"));
    }

    #[test]
    fn consumer_labels_drop_the_namespace_root() {
        let m = Metrics::new("t1234");
        assert_eq!(m.consumer_label("t1234-holds"), "holds");
        assert_eq!(m.consumer_label("t1234-proj-audit"), "proj-audit");
        assert_eq!(m.consumer_label("other-holds"), "other-holds");
    }
}
