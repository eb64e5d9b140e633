//! Start-up and the command loop shared by every command worker: pull from the area's
//! durable consumer, bound the handlers in flight, answer once, keep the result, ack; and
//! dead-letter what exhausts its deliveries.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind};
use async_nats::HeaderMap;
use chrono::Utc;
use futures::StreamExt;
use secrecy::ExposeSecret;
use streams::codes::{ErrorCode, Reply};
use streams::commands::{Command, CommandEnvelope};
use streams::events::DomainEvent;
use streams::headers;
use streams::locks::SeatLocks;
use streams::proof::{CommandSigner, Refusal, Trust};
use streams::replies::{respond, Results, StoredResult};
use streams::setup::{self, WireConfig};
use streams::Namespace;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::{error, info, warn, Instrument};

use crate::app::config::Config;
use crate::app::context::{Ctx, HandlerError};
use crate::app::worker::Worker;
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

pub fn wire_config(cfg: &Config) -> WireConfig {
    WireConfig {
        replicas: cfg.stream_replicas,
        max_deliver: cfg.max_deliver,
        ..WireConfig::default()
    }
}

/// Connects, ensures streams, buckets and indexes, and starts the configured workers.
pub async fn run(cfg: Config) -> anyhow::Result<Running> {
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

    let leases_kv = setup::ensure_leases(&js, &ns, &wire)
        .await
        .map_err(|e| anyhow::anyhow!("ensuring leases bucket: {e}"))?;
    let vault = setup::ensure_card_vault(&js, &ns, &wire)
        .await
        .map_err(|e| anyhow::anyhow!("ensuring card vault: {e}"))?;
    let gate = setup::ensure_gate_tickets(&js, &ns, &wire)
        .await
        .map_err(|e| anyhow::anyhow!("ensuring gate-tickets bucket: {e}"))?;
    setup::ensure_idempotency_keys(&js, &ns, &wire)
        .await
        .map_err(|e| anyhow::anyhow!("ensuring idempotency-keys bucket: {e}"))?;
    let revocations = setup::ensure_token_revocations(&js, &ns, &wire)
        .await
        .map_err(|e| anyhow::anyhow!("ensuring token-revocations bucket: {e}"))?;
    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    // Far enough back for every hold that may still be active or booked.
    let lookback = cfg.hold_ttl() + Duration::from_secs(45 * 60);
    let live = streams::live::Live::start(&js, &ns, lookback, &mut tasks, stopped.clone())
        .await
        .map_err(|e| anyhow::anyhow!("loading the live views: {e}"))?;
    let ctx = Ctx {
        live,
        gateway: Arc::new(crate::payments::gateway::Simulated::new(store.clone())),
        vault,
        revocations,
        gate,
        locks: SeatLocks::new(js.clone(), locks_kv, ns.seat_locks_bucket()),
        leases: SeatLocks::new(js.clone(), leases_kv, ns.leases_bucket()),
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
    let metrics_addr = match cfg.metrics_listen()? {
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
    };
    for worker in Worker::ALL {
        let Some(area) = worker.area() else { continue };
        if cfg.runs(worker) {
            let name = worker.name();
            let consumer =
                setup::ensure_command_consumer(&ctx.js, &ns, area, &wire, cfg.concurrency as i64)
                    .await
                    .map_err(|e| anyhow::anyhow!("ensuring consumer {name}: {e}"))?;
            ctx.metrics.watch(&consumer);
            tasks.spawn(command_loop(ctx.clone(), consumer, name, stopped.clone()));
        }
    }
    if cfg.runs(Worker::Expiry) {
        crate::holds::expiry::start(&ctx, &mut tasks, stopped.clone()).await?;
    }
    if cfg.runs(Worker::Projections) {
        crate::projections::start(&ctx, &mut tasks, stopped.clone()).await?;
    }
    if cfg.runs(Worker::Notifications) {
        crate::notifications::start(&ctx, &mut tasks, stopped.clone()).await?;
    }
    if cfg.runs(Worker::Analytics) {
        crate::analytics::start(&ctx, &mut tasks, stopped.clone()).await?;
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
        crate::queries::start(&reads, &mut tasks, stopped.clone()).await?;
    }
    if cfg.runs(Worker::Tickets) {
        crate::tickets::start(&ctx, &mut tasks, stopped.clone()).await?;
    }
    info!(namespace = %ns.root(), workers = ?cfg.workers, "workers started");
    Ok(Running {
        stop,
        tasks,
        ctx,
        metrics_addr,
    })
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

async fn command_loop(
    ctx: Ctx,
    consumer: jetstream::consumer::PullConsumer,
    name: &'static str,
    mut stopped: watch::Receiver<bool>,
) {
    let sem = Arc::new(Semaphore::new(ctx.cfg.concurrency));
    let mut inflight = JoinSet::new();
    'outer: loop {
        let mut messages = match consumer
            .stream()
            .max_messages_per_batch(100)
            .heartbeat(Duration::from_secs(5))
            .messages()
            .await
        {
            Ok(m) => m,
            Err(e) => {
                warn!(worker = name, error = %e, "cannot pull; retrying");
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
            match msg {
                Some(Ok(msg)) => {
                    let ctx = ctx.clone();
                    inflight.spawn(async move {
                        let consumer = ctx.metrics.received(&msg);
                        let started = Instant::now();
                        handle_message(&ctx, msg).await;
                        ctx.metrics.handled(&consumer, started.elapsed());
                        drop(permit);
                    });
                }
                Some(Err(e)) => {
                    warn!(worker = name, error = %e, "pull error; re-subscribing");
                    continue 'outer;
                }
                None => continue 'outer,
            }
            while inflight.try_join_next().is_some() {}
        }
    }
    // Drain: handlers in flight finish and ack before the process stops.
    while inflight.join_next().await.is_some() {}
    info!(worker = name, "stopped");
}

fn header<'a>(h: Option<&'a HeaderMap>, name: &str) -> Option<&'a str> {
    h?.get(name).map(|v| v.as_str())
}

async fn handle_message(ctx: &Ctx, msg: jetstream::Message) {
    let delivered = msg.info().map(|i| i.delivered).unwrap_or(1);
    let inbox = header(msg.headers.as_ref(), headers::REPLY_TO).map(str::to_string);
    let request_id = header(msg.headers.as_ref(), headers::REQUEST_ID)
        .unwrap_or("-")
        .to_string();
    let env: CommandEnvelope = match serde_json::from_slice(&msg.payload) {
        Ok(e) => e,
        Err(e) => {
            let reason = format!("undecodable command: {e}");
            finish_failed(ctx, &msg, inbox.as_deref(), &reason, delivered).await;
            return;
        }
    };
    let span = tracing::info_span!("command", id = %env.id, kind = ?env.command.route(), request_id = %request_id, delivered);
    // Before anything else, the results bucket included: an unproven sender learns
    // nothing, not even another command's stored answer.
    let stored_at = msg
        .info()
        .ok()
        .and_then(|i| {
            chrono::DateTime::from_timestamp(i.published.unix_timestamp(), i.published.nanosecond())
        })
        .unwrap_or_else(Utc::now);
    let system = match ctx.trust.check_command(
        msg.headers.as_ref(),
        &msg.payload,
        msg.subject.as_str(),
        &env,
        stored_at,
    ) {
        Ok(signer) => signer.system.clone(),
        Err(refusal) => {
            refuse(ctx, &msg, inbox.as_deref(), &env, &refusal, delivered)
                .instrument(span)
                .await;
            return;
        }
    };
    let issuer_id = env.issuer.as_ref().map(|i| i.user_id.to_hex());
    let fingerprint = streams::commands::fingerprint_of(&env);
    async {
        // Applied before (a redelivery, or the same id from another publisher): answer
        // with the first result, but only to the same system for the same issuer and
        // the same request.
        match ctx.results.get(&env.id).await {
            Ok(Some(stored)) => {
                let same = stored.issuer_id == issuer_id
                    && stored.system.as_deref().is_none_or(|s| s == system)
                    && stored.fingerprint.as_deref().is_none_or(|f| f == fingerprint);
                let reply = if same {
                    stored.reply
                } else {
                    warn!(system = %system, "command id already used by another sender or for another command");
                    Reply::error(
                        ErrorCode::IdempotencyKeyReused,
                        "this command id was already used for another command; choose a new id",
                    )
                };
                if let Some(inbox) = &inbox {
                    let _ = respond(&ctx.client, inbox, &reply).await;
                }
                ctx.metrics.replayed(&env);
                ack(&msg).await;
                return;
            }
            Ok(None) => {}
            Err(e) => warn!(error = %e, "results bucket unreadable; applying idempotently"),
        }
        // Nobody waits for the answer any more: recorded as not applied, so the
        // caller's `GET /v1/commands/{id}` says so, and the work is not done. Only on a
        // first delivery: a redelivered command may have made its effects before the
        // process that took it died (locks taken, event published), so it is finished
        // (idempotently), never recorded as "not applied".
        let outcome = if delivered == 1 && streams::headers::past_deadline(msg.headers.as_ref()) {
            Ok(Reply::error(
                ErrorCode::RequestExpired,
                "the request waited past its deadline and was not applied; nothing changed (send it again with a new Idempotency-Key)",
            ))
        } else {
            dispatch(ctx, &env).await
        };
        match outcome {
            Ok(reply) => {
                if let Some(inbox) = &inbox {
                    if let Err(e) = respond(&ctx.client, inbox, &reply).await {
                        warn!(error = %e, "reply not sent; the result stays readable");
                    }
                }
                let stored = StoredResult {
                    issuer_id: issuer_id.clone(),
                    system: Some(system.clone()),
                    fingerprint: Some(fingerprint.clone()),
                    reply,
                    completed_at: Utc::now(),
                };
                if let Err(e) = ctx.results.put(&env.id, &stored).await {
                    // The effect is durable; without the result a redelivery re-derives it.
                    warn!(error = %e, "result not kept; nak for another pass");
                    let _ = msg
                        .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                        .await;
                    return;
                }
                ctx.metrics.answered(&env, &stored.reply);
                ack(&msg).await;
            }
            Err(HandlerError::Transient(e)) if delivered < ctx.cfg.max_deliver => {
                warn!(error = %e, "transient failure; will be redelivered");
                // No explicit delay: the consumer's backoff list spaces the deliveries.
                let _ = msg.ack_with(AckKind::Nak(None)).await;
            }
            Err(e) => {
                let reason = e.to_string();
                error!(error = %reason, "command failed for good");
                finish_failed(ctx, &msg, inbox.as_deref(), &reason, delivered).await;
            }
        }
    }
    .instrument(span)
    .await
}

/// A command whose sender is not proven: answered with the refusal's code, recorded as
/// a failed `command.refused` event (the audit log keeps the claimed issuer), dead-lettered
/// with the reason and terminated. No result is kept under its id, so a forged command
/// cannot answer for a real one.
async fn refuse(
    ctx: &Ctx,
    msg: &jetstream::Message,
    inbox: Option<&str>,
    env: &CommandEnvelope,
    refusal: &Refusal,
    delivered: i64,
) {
    let code = refusal.code();
    ctx.metrics.refused(env, code);
    let reason = refusal.to_string();
    let (area, verb) = env.command.route();
    let signer = header(msg.headers.as_ref(), headers::SIGNER).map(str::to_string);
    warn!(
        code = code.as_str(),
        reason = %reason,
        signer = signer.as_deref().unwrap_or("-"),
        claimed_issuer = ?env.issuer,
        "command refused: its sender is not proven"
    );
    let now = Utc::now();
    // The stream sequence makes each refused message its own event: a second forgery
    // under the same id is audited too, not dropped as a duplicate.
    let seq = msg.info().map(|i| i.stream_sequence).unwrap_or_default();
    let ev = DomainEvent {
        id: format!("{}:command.refused:{seq}", env.id),
        kind: "command.refused".into(),
        occurred_at: now,
        command_id: env.id.clone(),
        actor: env.issuer.clone(),
        context: env.context.clone(),
        action: "command_refused".into(),
        entity_type: "command".into(),
        entity_id: domain::ids::derive_object_id("command", &env.id, now.timestamp()),
        event_id: None,
        before: None,
        after: None,
        data: serde_json::json!({
            "failureReason": format!("{}: {reason}", code.as_str()),
            "statusCode": code.status(),
            "code": code.as_str(),
            "command": format!("{}.{verb}", area.as_str()),
            "subject": msg.subject.as_str(),
            "signer": signer,
        }),
    };
    if let Err(e) = streams::publish::publish_event(&ctx.js, &ctx.ns, &ctx.signer, &ev).await {
        // Terminated anyway: the dead letter and the log line still record it.
        error!(error = %e, "refusal event not published");
    }
    // Stored before the answer: a sender told "refused" finds it in DEADLETTERS.
    dead_letter(ctx, msg, &format!("{}: {reason}", code.as_str()), delivered).await;
    if let Some(inbox) = inbox {
        let _ = respond(&ctx.client, inbox, &Reply::error(code, reason.clone())).await;
    }
    let _ = msg.ack_with(AckKind::Term).await;
}

async fn ack(msg: &jetstream::Message) {
    if let Err(e) = msg.double_ack().await {
        warn!(error = %e, "ack not confirmed; a redelivery will find the result");
    }
}

/// Dead-letters the message with its reason, tells the caller, and terminates it.
async fn finish_failed(
    ctx: &Ctx,
    msg: &jetstream::Message,
    inbox: Option<&str>,
    reason: &str,
    delivered: i64,
) {
    dead_letter(ctx, msg, reason, delivered).await;
    if let Some(inbox) = inbox {
        let _ = respond(
            &ctx.client,
            inbox,
            &Reply::error(
                ErrorCode::Internal,
                "the command could not be applied; operators have been told",
            ),
        )
        .await;
    }
    let _ = msg.ack_with(AckKind::Term).await;
}

/// Copies the message to DEADLETTERS with its reason and delivery count.
async fn dead_letter(ctx: &Ctx, msg: &jetstream::Message, reason: &str, delivered: i64) {
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

async fn dispatch(ctx: &Ctx, env: &CommandEnvelope) -> Result<Reply, HandlerError> {
    match &env.command {
        Command::RegisterUser(c) => crate::users::register(ctx, env, c, false).await,
        Command::EnsureAdmin(c) => crate::users::register(ctx, env, c, true).await,
        Command::CreateEvent(c) => crate::events::create_event(ctx, env, c).await,
        Command::PublishEvent(c) => crate::events::publish_event(ctx, env, c).await,
        Command::CreateHold(c) => crate::holds::create(ctx, env, c).await,
        Command::ReleaseHold(c) => crate::holds::release(ctx, env, c).await,
        Command::CancelEvent(c) => crate::events::cancel_event(ctx, env, c).await,
        Command::CreateBooking(c) => crate::bookings::create(ctx, env, c).await,
        Command::CancelBooking(c) => crate::bookings::cancel(ctx, env, c).await,
        Command::ExpireBooking(c) => crate::bookings::expire(ctx, env, c).await,
        Command::PayBooking(c) => crate::payments::pay(ctx, env, c).await,
        Command::ScanTicket(c) => crate::tickets::scans::scan(ctx, env, c).await,
        Command::RecordTicketDownload(c) => crate::tickets::record_download(ctx, env, c).await,
        Command::VerifyEmail(c) => crate::users::tokens::verify_email(ctx, env, c).await,
        Command::RequestPasswordReset(c) => {
            crate::users::tokens::request_password_reset(ctx, env, c).await
        }
        Command::ConfirmPasswordReset(c) => {
            crate::users::tokens::confirm_password_reset(ctx, env, c).await
        }
        Command::RecordLogin => crate::users::tokens::record_login(ctx, env).await,
        Command::MarkNotificationRead(c) => crate::notifications::mark_read(ctx, env, c).await,
        Command::RebuildAnalytics => crate::analytics::rebuild(ctx, env).await,
        Command::Logout => crate::users::logout(ctx, env).await,
        Command::SuspendUser(c) => crate::users::suspend(ctx, env, c).await,
    }
}
