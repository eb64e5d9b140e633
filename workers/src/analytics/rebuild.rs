//! The analytics rebuild (`RebuildAnalytics`, admin): drop the facts and the metrics,
//! replay EVENTS from the start with an ordered consumer, and recompute every show.

use std::collections::BTreeSet;
use std::time::Duration;

use async_nats::jetstream::consumer::{self as js_consumer};
use bson::doc;
use futures::StreamExt;
use serde_json::json;
use streams::codes::{ErrorCode, Reply};
use streams::commands::CommandEnvelope;
use streams::events::EventEnvelope;
use tracing::info;

use super::facts::record;
use super::{recompute, FACTS};
use crate::app::context::{Ctx, HandlerError};
use crate::store::names;

/// `RebuildAnalytics` (admins): drop everything and replay EVENTS from the start.
pub(crate) async fn rebuild(ctx: &Ctx, env: &CommandEnvelope) -> Result<Reply, HandlerError> {
    if !env.issuer.as_ref().is_some_and(|i| i.role.is_admin()) {
        return Ok(Reply::error(ErrorCode::Forbidden, "admins only"));
    }
    let mut stream = ctx
        .js
        .get_stream(ctx.ns.events_stream())
        .await
        .map_err(|e| HandlerError::Transient(e.to_string()))?;
    let last = stream
        .info()
        .await
        .map_err(|e| HandlerError::Transient(e.to_string()))?
        .state
        .last_sequence;
    ctx.store.col(FACTS).delete_many(doc! {}).await?;
    ctx.store.col(names::ANALYTICS).delete_many(doc! {}).await?;
    let mut replayed = 0u64;
    let mut touched = BTreeSet::new();
    if last > 0 {
        let ordered = stream
            .create_consumer(js_consumer::pull::OrderedConfig {
                filter_subject: ctx.ns.all_events(),
                deliver_policy: js_consumer::DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .map_err(|e| HandlerError::Transient(e.to_string()))?;
        let mut messages = ordered
            .messages()
            .await
            .map_err(|e| HandlerError::Transient(e.to_string()))?;
        loop {
            let next = tokio::time::timeout(Duration::from_secs(10), messages.next()).await;
            let m = match next {
                Ok(Some(Ok(m))) => m,
                Ok(Some(Err(e))) => return Err(HandlerError::Transient(e.to_string())),
                Ok(None) | Err(_) => {
                    return Err(HandlerError::Transient("replay of EVENTS stalled".into()))
                }
            };
            let seq = m.info().map(|i| i.stream_sequence).unwrap_or(last);
            match serde_json::from_slice::<EventEnvelope>(&m.payload) {
                Ok(ev) => {
                    if let Some(event_id) = record(ctx, &ev).await? {
                        touched.insert(event_id);
                    }
                }
                // The live consumer dead-letters it; the rebuild goes on without it.
                Err(e) => {
                    tracing::warn!(seq, error = %e, "undecodable event skipped by the rebuild")
                }
            }
            replayed += 1;
            if seq >= last {
                break;
            }
        }
    }
    for event_id in &touched {
        recompute(ctx, *event_id).await?;
    }
    info!(replayed, events = touched.len(), "analytics rebuilt");
    Ok(Reply::ok(
        200,
        json!({"rebuilt": true, "replayedEvents": replayed, "shows": touched.len()}),
    ))
}
