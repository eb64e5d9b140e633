//! Header names of ours (the NATS ones come from `async_nats::header`).

/// The gateway's reply inbox. On a message consumed from JetStream, `reply` is the
/// server's ack subject, so the caller's inbox travels here instead.
pub const REPLY_TO: &str = "Ticketing-Reply-To";
/// Request id, carried from the HTTP edge to every worker log line.
pub const REQUEST_ID: &str = "Ticketing-Request-Id";
/// Why a message was dead-lettered.
pub const DEADLETTER_REASON: &str = "Ticketing-Deadletter-Reason";
/// How many deliveries a dead-lettered message had.
pub const DEADLETTER_DELIVERIES: &str = "Ticketing-Deadletter-Deliveries";
