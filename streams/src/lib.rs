//! The wire between the gateway and the workers: subject and bucket names, stream,
//! consumer and KV definitions, the command and event envelopes, publish with
//! `Nats-Msg-Id` dedup, reply routing, and the error-code table every layer shares.
//!
//! Subjects, stream names and bucket names are spelled only in [`names`]; everything else
//! calls it.

pub mod catalogue;
pub mod codes;
pub mod commands;
pub mod connect;
pub mod errors_doc;
pub mod events;
pub mod headers;
pub mod idempotency;
pub mod live;
pub mod locks;
pub mod names;
pub mod proof;
pub mod publish;
pub mod queries;
pub mod replies;
pub mod revocations;
pub mod setup;

pub use codes::{ErrorCode, Reply};
pub use names::Namespace;

/// Errors of the wire layer.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("nats: {0}")]
    Nats(String),
    #[error("encoding: {0}")]
    Encoding(#[from] serde_json::Error),
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
}

impl WireError {
    pub fn nats(e: impl std::fmt::Display) -> Self {
        WireError::Nats(e.to_string())
    }
}
