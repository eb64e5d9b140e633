//! Publishing with `Nats-Msg-Id`, so JetStream drops a duplicate inside its window.

use async_nats::jetstream;
use async_nats::HeaderMap;

use crate::commands::CommandEnvelope;
use crate::events::EventEnvelope;
use crate::headers;
use crate::names::Namespace;
use crate::proof::CommandSigner;
use crate::WireError;

/// What JetStream said of a published command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    pub sequence: u64,
    /// True when the id was seen inside the duplicate window: the first one's result is
    /// (or will be) in the results bucket.
    pub duplicate: bool,
}

/// Publishes a command durably (awaits the stream's ack), signed by `signer` (workers
/// apply only what a key they trust signed). `reply_to`, when given, is the inbox the
/// worker answers on; `request_id` is carried for tracing.
pub async fn publish_command(
    js: &jetstream::Context,
    ns: &Namespace,
    signer: &CommandSigner,
    env: &CommandEnvelope,
    reply_to: Option<&str>,
    request_id: Option<&str>,
) -> Result<Published, WireError> {
    publish_command_until(js, ns, signer, env, reply_to, request_id, None).await
}

/// [`publish_command`] with the caller's deadline (see [`headers::DEADLINE`]).
pub async fn publish_command_until(
    js: &jetstream::Context,
    ns: &Namespace,
    signer: &CommandSigner,
    env: &CommandEnvelope,
    reply_to: Option<&str>,
    request_id: Option<&str>,
    within: Option<std::time::Duration>,
) -> Result<Published, WireError> {
    let (area, verb) = env.command.route();
    let mut h = HeaderMap::new();
    if let Some(w) = within {
        h.insert(headers::DEADLINE, headers::deadline_in(w).as_str());
    }
    h.insert(async_nats::header::NATS_MESSAGE_ID, env.id.as_str());
    if let Some(r) = reply_to {
        h.insert(headers::REPLY_TO, r);
    }
    if let Some(r) = request_id {
        h.insert(headers::REQUEST_ID, r);
    }
    let payload = serde_json::to_vec(env)?;
    signer.sign_into(&mut h, &payload);
    let ack = js
        .publish_with_headers(ns.command(area, verb), h, payload.into())
        .await
        .map_err(WireError::nats)?
        .await
        .map_err(WireError::nats)?;
    Ok(Published {
        sequence: ack.sequence,
        duplicate: ack.duplicate,
    })
}

/// Publishes a domain event durably, deduplicated by its id, signed by the workers' key
/// (so a replay of EVENTS can tell what the workers wrote, see `proof`).
pub async fn publish_event(
    js: &jetstream::Context,
    ns: &Namespace,
    signer: &CommandSigner,
    ev: &EventEnvelope,
) -> Result<(), WireError> {
    let mut h = HeaderMap::new();
    h.insert(async_nats::header::NATS_MESSAGE_ID, ev.id.as_str());
    let (entity, verb) = ev.kind().subject_parts();
    let body = serde_json::to_vec(ev)?;
    signer.sign_into(&mut h, &body);
    js.publish_with_headers(ns.event(entity, verb), h, body.into())
        .await
        .map_err(WireError::nats)?
        .await
        .map_err(WireError::nats)?;
    Ok(())
}
