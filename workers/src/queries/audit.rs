//! The queries worker's audit log read: admins' paged, filtered view of the audit trail.

use bson::{doc, Document};
use streams::codes::Reply;
use streams::queries::AuditFilter;

use crate::app::context::Ctx;
use crate::store::{api_json, names, paged, StoreError};

pub(super) async fn audit_logs(ctx: &Ctx, f: &AuditFilter) -> Result<Reply, StoreError> {
    let mut filter = Document::new();
    if let Some(u) = f.user_id {
        filter.insert("userId", u);
    }
    if let Some(e) = f.entity_id {
        filter.insert("entityId", e);
    }
    if let Some(a) = &f.action {
        filter.insert("action", a);
    }
    if let Some(s) = &f.status {
        filter.insert("status", s);
    }
    let mut when = Document::new();
    if let Some(from) = f.from {
        when.insert("$gte", bson::DateTime::from_chrono(from));
    }
    if let Some(to) = f.to {
        when.insert("$lt", bson::DateTime::from_chrono(to));
    }
    if !when.is_empty() {
        filter.insert("timestamp", when);
    }
    let col = ctx.store.col(names::AUDIT_LOGS);
    let body = paged(
        &col,
        filter,
        doc! {"timestamp": -1, "_id": -1},
        f.page,
        f.limit,
        api_json,
    )
    .await?;
    Ok(Reply::ok(200, body))
}
