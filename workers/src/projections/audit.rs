//! The audit projection: one `audit_logs` entry per domain event, `_id` derived from the
//! event id, so a redelivered event inserts nothing twice.

use bson::Document;
use domain::audit::{AuditLog, AuditStatus, Changes};
use domain::ids::derive_object_id;
use domain::DateTime;
use streams::events::EventEnvelope;

use crate::app::context::Ctx;
use crate::store::{is_duplicate_key, names};

/// The audit entry of a domain event.
pub(crate) fn audit_entry(ev: &EventEnvelope) -> AuditLog {
    let when = DateTime::from_millis(ev.occurred_at.timestamp_millis());
    let to_doc = |v: &Option<serde_json::Value>| v.as_ref().and_then(|v| bson::to_document(v).ok());
    let failure = ev.event.failure_reason().map(str::to_string);
    AuditLog {
        id: derive_object_id("audit", &ev.id, ev.occurred_at.timestamp()),
        user_id: ev.actor.as_ref().map(|a| a.user_id),
        action: ev.event.action().to_string(),
        entity_type: ev.event.entity_type().to_string(),
        entity_id: Some(ev.entity_id()),
        changes: Changes {
            before: to_doc(&ev.before),
            after: to_doc(&ev.after),
        },
        status: if failure.is_some() {
            AuditStatus::Failure
        } else {
            AuditStatus::Success
        },
        failure_reason: failure,
        ip_address: ev.context.ip_address.clone(),
        user_agent: ev.context.user_agent.clone(),
        request_id: ev.context.request_id.clone(),
        status_code: ev.event.status_code().map(i32::from),
        response_time: None,
        command_id: Some(ev.command_id.clone()),
        timestamp: when,
        created_at: DateTime::now(),
    }
}

pub(super) async fn apply_audit(
    ctx: &Ctx,
    events: &[EventEnvelope],
) -> Result<(), mongodb::error::Error> {
    let docs: Vec<Document> = events
        .iter()
        .filter_map(|e| bson::to_document(&audit_entry(e)).ok())
        .collect();
    if docs.is_empty() {
        return Ok(());
    }
    match ctx
        .store
        .col(names::AUDIT_LOGS)
        .insert_many(docs)
        .ordered(false)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_duplicate_key(&e) => Ok(()),
        Err(e) => Err(e),
    }
}
