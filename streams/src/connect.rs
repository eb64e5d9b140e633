//! One way to connect to NATS for every process of ours: a name, the identity's user and
//! password (nats-server refuses anonymous clients), and inboxes under `_INBOX.<user>`,
//! the only inbox subjects that identity may subscribe to, so no client reads another's
//! replies.

use crate::WireError;

/// The inbox prefix of an identity: `_INBOX.<user>`.
pub fn inbox_prefix(user: &str) -> String {
    format!("_INBOX.{user}")
}

/// Connects to `urls` (comma-separated) as `user` when one is given.
pub async fn connect(
    urls: &str,
    name: &str,
    user: Option<&str>,
    password: Option<&str>,
) -> Result<async_nats::Client, WireError> {
    let servers: Vec<&str> = urls
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let mut opts = async_nats::ConnectOptions::new().name(name);
    if let Some(user) = user.filter(|u| !u.is_empty()) {
        opts = opts
            .user_and_password(user.to_string(), password.unwrap_or_default().to_string())
            .custom_inbox_prefix(inbox_prefix(user));
    }
    opts.connect(servers).await.map_err(|e| {
        WireError::Nats(format!(
            "connecting to NATS at {urls} as {}: {e}",
            user.unwrap_or("anonymous")
        ))
    })
}
