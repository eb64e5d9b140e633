//! The command path shared by every command worker: prove the sender, answer a command
//! applied before with its first result, apply it once, answer the caller's inbox, keep
//! the result. The area's durable consumer feeds it through [`consumer::each`].

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use chrono::Utc;
use domain::events::CommandRefused;
use futures::FutureExt;
use streams::codes::{ErrorCode, Reply};
use streams::commands::{Command, CommandEnvelope};
use streams::events::{DomainEvent, EventEnvelope};
use streams::headers;
use streams::proof::Refusal;
use streams::replies::{respond, StoredResult};
use tracing::{error, warn, Instrument};

use crate::app::consumer::{Delivery, Outcome, Spec};
use crate::app::context::{Ctx, HandlerError};

/// How a command consumer is run: `concurrency` handlers at once, acks confirmed, and a
/// transient failure given up (and answered) on the consumer's last delivery.
pub(crate) fn spec(ctx: &Ctx, name: &'static str) -> Spec {
    Spec {
        give_up_after: Some(ctx.cfg.max_deliver),
        confirm_acks: true,
        ..Spec::new(name, ctx.cfg.concurrency)
    }
}

/// A command message: its envelope, or why it does not decode (answered to the caller):
/// `invalid_json` when it is not JSON at all, `validation_failed` when a field is of the
/// wrong shape or a value no newtype accepts.
pub(crate) type Decoded = Result<CommandEnvelope, (ErrorCode, String)>;

pub(crate) fn decode(msg: &async_nats::jetstream::Message) -> Result<Decoded, String> {
    Ok(
        serde_json::from_slice::<CommandEnvelope>(&msg.payload).map_err(|e| {
            let code = match e.classify() {
                serde_json::error::Category::Data => ErrorCode::ValidationFailed,
                _ => ErrorCode::InvalidJson,
            };
            (code, format!("undecodable command: {e}"))
        }),
    )
}

fn header<'a>(h: Option<&'a HeaderMap>, name: &str) -> Option<&'a str> {
    h?.get(name).map(|v| v.as_str())
}

/// The answer sent to the caller once the message has been dead-lettered.
fn answer_later(
    ctx: &Ctx,
    inbox: Option<String>,
    reply: Reply,
) -> Option<futures::future::BoxFuture<'static, ()>> {
    let client = ctx.client.clone();
    inbox.map(|inbox| {
        async move {
            let _ = respond(&client, &inbox, &reply).await;
        }
        .boxed()
    })
}

fn failed(ctx: &Ctx, inbox: Option<String>, reason: String) -> Outcome {
    Outcome::GiveUp {
        reason,
        then: answer_later(
            ctx,
            inbox,
            Reply::error(
                ErrorCode::Internal,
                "the command could not be applied; operators have been told",
            ),
        ),
    }
}

/// A command that does not decode (not JSON, a field of the wrong shape, a value no
/// newtype accepts, such as a payment method or an e-mail) is the sender's mistake:
/// answered 400 with the decoder's reason, and kept in DEADLETTERS with it so an
/// operator can see what a publisher sends.
fn undecodable(ctx: &Ctx, inbox: Option<String>, code: ErrorCode, reason: String) -> Outcome {
    let answer = Reply::error(code, reason.clone());
    Outcome::GiveUp {
        reason,
        then: answer_later(ctx, inbox, answer),
    }
}

/// Handles one command message.
pub(crate) async fn handle(ctx: Ctx, d: Arc<Delivery<Decoded>>) -> Outcome {
    let msg = &d.msg;
    let inbox = header(msg.headers.as_ref(), headers::REPLY_TO).map(str::to_string);
    let env = match &d.item {
        Ok(env) => env,
        Err((code, reason)) => return undecodable(&ctx, inbox, *code, reason.clone()),
    };
    let request_id = header(msg.headers.as_ref(), headers::REQUEST_ID).unwrap_or("-");
    let span = tracing::info_span!("command", id = %env.id, kind = ?env.command.route(), request_id = %request_id, delivered = d.delivered);
    // Before anything else, the results bucket included: an unproven sender learns
    // nothing, not even another command's stored answer.
    let stored_at = msg
        .info()
        .ok()
        .and_then(|i| {
            chrono::DateTime::from_timestamp(i.published.unix_timestamp(), i.published.nanosecond())
        })
        .unwrap_or_else(Utc::now);
    match ctx.trust.check_command(
        msg.headers.as_ref(),
        &msg.payload,
        msg.subject.as_str(),
        env,
        stored_at,
    ) {
        Ok(signer) => {
            let system = signer.system.clone();
            apply(&ctx, &d, env, inbox, system).instrument(span).await
        }
        Err(refusal) => {
            refuse(&ctx, &d, env, inbox, &refusal)
                .instrument(span)
                .await
        }
    }
}

async fn apply(
    ctx: &Ctx,
    d: &Delivery<Decoded>,
    env: &CommandEnvelope,
    inbox: Option<String>,
    system: String,
) -> Outcome {
    let issuer_id = env.issuer.as_ref().map(|i| i.user_id.to_hex());
    let fingerprint = streams::commands::fingerprint_of(env);
    if answered_before(
        ctx,
        env,
        inbox.as_deref(),
        &system,
        &issuer_id,
        &fingerprint,
    )
    .await
    {
        return Outcome::Done;
    }
    // Nobody waits for the answer any more: recorded as not applied, so the caller's
    // `GET /v1/commands/{id}` says so, and the work is not done. Only on a first
    // delivery: a redelivered command may have made its effects before the process that
    // took it died (locks taken, event published), so it is finished (idempotently),
    // never recorded as "not applied".
    let outcome = if d.delivered == 1 && headers::past_deadline(d.msg.headers.as_ref()) {
        Ok(Reply::error(
            ErrorCode::RequestExpired,
            "the request waited past its deadline and was not applied; nothing changed (send it again with a new Idempotency-Key)",
        ))
    } else {
        dispatch(ctx, env).await
    };
    let reply = match outcome {
        Ok(reply) => reply,
        Err(HandlerError::Transient(e)) if d.delivered < ctx.cfg.max_deliver => {
            // No explicit delay: the consumer's backoff list spaces the deliveries.
            return Outcome::Retry {
                delay: None,
                reason: format!("transient failure: {e}"),
            };
        }
        Err(e) => {
            let reason = e.to_string();
            error!(error = %reason, "command failed for good");
            return failed(ctx, inbox, reason);
        }
    };
    if let Some(inbox) = &inbox {
        if let Err(e) = respond(&ctx.client, inbox, &reply).await {
            warn!(error = %e, "reply not sent; the result stays readable");
        }
    }
    let stored = StoredResult {
        issuer_id,
        system: Some(system),
        fingerprint: Some(fingerprint),
        reply,
        completed_at: ctx.now(),
    };
    if let Err(e) = ctx.results.put(&env.id, &stored).await {
        // The effect is durable; without the result a redelivery re-derives it.
        return Outcome::Retry {
            delay: Some(Duration::from_secs(1)),
            reason: format!("result not kept: {e}"),
        };
    }
    ctx.metrics.answered(env, &stored.reply);
    Outcome::Done
}

/// Applied before (a redelivery, or the same id from another publisher): answers with
/// the first result, but only to the same system for the same issuer and the same
/// request. False when there is none (or the results bucket is unreadable).
async fn answered_before(
    ctx: &Ctx,
    env: &CommandEnvelope,
    inbox: Option<&str>,
    system: &str,
    issuer_id: &Option<String>,
    fingerprint: &str,
) -> bool {
    match ctx.results.get(&env.id).await {
        Ok(Some(stored)) => {
            let same = stored.issuer_id == *issuer_id
                && stored.system.as_deref().is_none_or(|s| s == system)
                && stored
                    .fingerprint
                    .as_deref()
                    .is_none_or(|f| f == fingerprint);
            let reply = if same {
                stored.reply
            } else {
                warn!(system = %system, "command id already used by another sender or for another command");
                Reply::error(
                    ErrorCode::IdempotencyKeyReused,
                    "this command id was already used for another command; choose a new id",
                )
            };
            if let Some(inbox) = inbox {
                let _ = respond(&ctx.client, inbox, &reply).await;
            }
            ctx.metrics.replayed(env);
            true
        }
        Ok(None) => false,
        Err(e) => {
            warn!(error = %e, "results bucket unreadable; applying idempotently");
            false
        }
    }
}

/// A command whose sender is not proven: answered with the refusal's code, recorded as
/// a failed `command.refused` event (the audit log keeps the claimed issuer), dead-lettered
/// with the reason and terminated. No result is kept under its id, so a forged command
/// cannot answer for a real one.
async fn refuse(
    ctx: &Ctx,
    d: &Delivery<Decoded>,
    env: &CommandEnvelope,
    inbox: Option<String>,
    refusal: &Refusal,
) -> Outcome {
    let msg = &d.msg;
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
    let now = ctx.now();
    // The stream sequence makes each refused message its own event: a second forgery
    // under the same id is audited too, not dropped as a duplicate.
    let ev = EventEnvelope {
        id: format!("{}:command.refused:{}", env.id, d.stream_sequence),
        occurred_at: now,
        command_id: env.id.clone(),
        actor: env.issuer.clone(),
        context: env.context.clone(),
        before: None,
        after: None,
        event: DomainEvent::CommandRefused(CommandRefused {
            refusal_id: domain::ids::derive_object_id("command", &env.id, now.timestamp()),
            failure_reason: format!("{}: {reason}", code.as_str()),
            status_code: code.status(),
            code: code.as_str().to_string(),
            command: format!("{}.{verb}", area.as_str()),
            subject: msg.subject.to_string(),
            signer,
        }),
    };
    if let Err(e) = streams::publish::publish_event(&ctx.js, &ctx.ns, &ctx.signer, &ev).await {
        // Terminated anyway: the dead letter and the log line still record it.
        error!(error = %e, "refusal event not published");
    }
    // The dead letter is stored before the answer: a sender told "refused" finds it in
    // DEADLETTERS.
    Outcome::GiveUp {
        reason: format!("{}: {reason}", code.as_str()),
        then: answer_later(ctx, inbox, Reply::error(code, reason)),
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
