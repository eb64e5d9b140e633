//! The audit trail: one entry per state change, with who, what, before/after and context.

use bson::oid::ObjectId;
use bson::{DateTime, Document};
use serde::{Deserialize, Serialize};

/// The `audit_logs` collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditLog {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub user_id: Option<ObjectId>,
    pub action: String,
    pub entity_type: String,
    pub entity_id: Option<ObjectId>,
    pub changes: Changes,
    pub status: AuditStatus,
    pub failure_reason: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub status_code: Option<i32>,
    pub response_time: Option<i64>,
    /// The command that caused the change.
    pub command_id: Option<String>,
    pub timestamp: DateTime,
    pub created_at: DateTime,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Changes {
    pub before: Option<Document>,
    pub after: Option<Document>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditStatus {
    Success,
    Failure,
}
