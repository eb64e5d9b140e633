//! Reply routing: workers answer on the inbox carried in the command's header and keep
//! the result in the `command-results` bucket; the gateway waits on one shared inbox
//! subscription and, when its wait times out, points the client at `GET /v1/commands/{id}`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_nats::jetstream::kv;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::codes::Reply;
use crate::WireError;

/// A command's result as kept in the results bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredResult {
    /// Only this user may read it back (`None`: an anonymous command).
    pub issuer_id: Option<String>,
    /// The system whose key signed the command: another system reusing the id gets
    /// `idempotency_key_reused`, not this answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// [`crate::commands::fingerprint_of`] the command that made it: the same id with
    /// another fingerprint is `idempotency_key_reused` (absent on results kept before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    pub reply: Reply,
    pub completed_at: DateTime<Utc>,
}

/// Whether `inbox` may receive a worker's answer: a plain inbox subject of a client
/// (`_INBOX.<user>.<token>...`), never a wildcard nor anything else the workers could
/// write to (a KV key, the JetStream API): the header is the sender's to choose.
pub fn is_reply_inbox(inbox: &str) -> bool {
    inbox.len() <= 256
        && inbox.starts_with("_INBOX.")
        && inbox.split('.').count() >= 3
        && inbox.split('.').all(|t| {
            !t.is_empty()
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

#[derive(Clone)]
pub struct Results {
    kv: kv::Store,
}

impl Results {
    pub fn new(kv: kv::Store) -> Self {
        Results { kv }
    }

    pub async fn get(&self, command_id: &str) -> Result<Option<StoredResult>, WireError> {
        // Ids that are not valid keys cannot have a result.
        if command_id.is_empty()
            || !command_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_=".contains(c))
        {
            return Ok(None);
        }
        match self.kv.get(command_id).await.map_err(WireError::nats)? {
            Some(b) => Ok(Some(serde_json::from_slice(&b)?)),
            None => Ok(None),
        }
    }

    pub async fn put(&self, command_id: &str, result: &StoredResult) -> Result<(), WireError> {
        self.kv
            .put(command_id, serde_json::to_vec(result)?.into())
            .await
            .map_err(WireError::nats)?;
        Ok(())
    }
}

/// Sends a worker's reply to the caller's inbox (fire and forget: the result is also kept).
/// A subject that is not a client's inbox ([`is_reply_inbox`]) gets nothing.
pub async fn respond(
    client: &async_nats::Client,
    inbox: &str,
    reply: &Reply,
) -> Result<(), WireError> {
    if !is_reply_inbox(inbox) {
        return Err(WireError::Nats(format!(
            "not answering on {inbox:?}: replies go to _INBOX.<user>.<token> subjects only"
        )));
    }
    client
        .publish(inbox.to_string(), serde_json::to_vec(reply)?.into())
        .await
        .map_err(WireError::nats)
}

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Reply>>>>;

/// One inbox subscription per gateway process, demultiplexed by the last subject token.
#[derive(Clone)]
pub struct ReplyRouter {
    prefix: String,
    pending: Pending,
}

/// A registered wait; dropping it forgets the entry.
pub struct PendingReply {
    pub inbox: String,
    key: String,
    rx: Option<oneshot::Receiver<Reply>>,
    pending: Pending,
}

impl ReplyRouter {
    pub async fn start(client: async_nats::Client) -> Result<Self, WireError> {
        let prefix = client.new_inbox();
        let mut sub = client
            .subscribe(format!("{prefix}.*"))
            .await
            .map_err(WireError::nats)?;
        let pending: Pending = Arc::default();
        let p = pending.clone();
        tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                let key = msg
                    .subject
                    .rsplit('.')
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let Ok(reply) = serde_json::from_slice::<Reply>(&msg.payload) else {
                    tracing::warn!(subject = %msg.subject, "undecodable reply dropped");
                    continue;
                };
                let tx = p.lock().ok().and_then(|mut m| m.remove(&key));
                if let Some(tx) = tx {
                    let _ = tx.send(reply);
                }
            }
        });
        Ok(ReplyRouter { prefix, pending })
    }

    pub fn register(&self) -> PendingReply {
        let key = uuid::Uuid::new_v4().simple().to_string();
        let (tx, rx) = oneshot::channel();
        if let Ok(mut m) = self.pending.lock() {
            m.insert(key.clone(), tx);
        }
        PendingReply {
            inbox: format!("{}.{key}", self.prefix),
            key,
            rx: Some(rx),
            pending: self.pending.clone(),
        }
    }
}

impl PendingReply {
    /// Waits for the reply up to `timeout`; `None` when it did not come in time.
    pub async fn wait(mut self, timeout: std::time::Duration) -> Option<Reply> {
        let rx = self.rx.take()?;
        tokio::time::timeout(timeout, rx).await.ok()?.ok()
    }
}

impl Drop for PendingReply {
    fn drop(&mut self) {
        if let Ok(mut m) = self.pending.lock() {
            m.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod inbox_tests {
    use super::is_reply_inbox;

    #[test]
    fn only_plain_client_inboxes_receive_answers() {
        assert!(is_reply_inbox("_INBOX.gateway.abc123.4f"));
        assert!(is_reply_inbox("_INBOX.boxoffice.reply-1"));
        for bad in [
            "$KV.seat-locks.e.s",
            "$JS.API.STREAM.DELETE.EVENTS",
            "ticketing.evt.hold.created",
            "_INBOX.>",
            "_INBOX.gateway.*",
            "_INBOX.gateway",
            "_INBOX..x",
            "_INBOX.a.b c",
        ] {
            assert!(!is_reply_inbox(bad), "{bad}");
        }
    }
}
