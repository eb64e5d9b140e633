//! Reading what was mailed, through Mailpit's HTTP API (`TICKETING_MAILPIT_API`). Tests
//! share one Mailpit, so every read filters by recipient.

use std::time::Duration;

use serde_json::Value;

use crate::mailpit_api;

/// Summaries (`ID`, `Subject`, `To`...) of the messages sent to `address`.
pub async fn messages_to(address: &str) -> Vec<Value> {
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{}/api/v1/search", mailpit_api()))
        .query(&[
            ("query", format!("to:\"{address}\"")),
            ("limit", "200".into()),
        ])
        .send()
        .await
        .expect("mailpit answers");
    let v: Value = r.json().await.expect("mailpit json");
    v["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        // The search is fuzzy; keep exact recipients only.
        .filter(|m| {
            m["To"]
                .as_array()
                .is_some_and(|to| to.iter().any(|t| t["Address"].as_str() == Some(address)))
        })
        .collect()
}

/// One whole message (`Text`, `HTML`, `Subject`, `To`...).
pub async fn message(id: &str) -> Value {
    reqwest::get(format!("{}/api/v1/message/{id}", mailpit_api()))
        .await
        .expect("mailpit answers")
        .json()
        .await
        .expect("mailpit json")
}

/// Waits up to `timeout` for a message to `address` whose subject contains `subject`,
/// and returns it whole.
pub async fn wait_for(address: &str, subject: &str, timeout: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let found = messages_to(address)
            .await
            .into_iter()
            .find(|m| m["Subject"].as_str().is_some_and(|s| s.contains(subject)));
        if let Some(m) = found {
            return Some(message(m["ID"].as_str().expect("message id")).await);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How many messages to `address` have `subject` in their subject.
pub async fn count(address: &str, subject: &str) -> usize {
    messages_to(address)
        .await
        .iter()
        .filter(|m| m["Subject"].as_str().is_some_and(|s| s.contains(subject)))
        .count()
}

/// The value after `label` on its line of a message's text (a token).
pub fn field(text: &str, label: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .map(|v| v.trim().to_string())
}
