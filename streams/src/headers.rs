//! Header names of ours (the NATS ones come from `async_nats::header`).

/// The gateway's reply inbox. On a message consumed from JetStream, `reply` is the
/// server's ack subject, so the caller's inbox travels here instead.
pub const REPLY_TO: &str = "Ticketing-Reply-To";
/// Request id, carried from the HTTP edge to every worker log line.
pub const REQUEST_ID: &str = "Ticketing-Request-Id";
/// The id of the key that signed the message body (see `proof`).
pub const SIGNER: &str = "Ticketing-Signer";
/// The Ed25519 signature of the message body, base64.
pub const SIGNATURE: &str = "Ticketing-Signature";
/// Why a message was dead-lettered.
pub const DEADLETTER_REASON: &str = "Ticketing-Deadletter-Reason";
/// How many deliveries a dead-lettered message had.
pub const DEADLETTER_DELIVERIES: &str = "Ticketing-Deadletter-Deliveries";
/// When the caller stops waiting, in Unix milliseconds. A worker that picks the message
/// up later does not do the work: nobody waits for it, and work for callers that gave up
/// is what turns an overload into a cascade.
pub const DEADLINE: &str = "Ticketing-Deadline";
/// On a query's answer: the body is not a JSON `Reply` but this media type's bytes, sent
/// as they are (a ticket's QR image). Only successful answers are binary.
pub const CONTENT_TYPE: &str = "Ticketing-Content-Type";

/// The deadline `within` from now, as the header's value.
pub fn deadline_in(within: std::time::Duration) -> String {
    (chrono::Utc::now().timestamp_millis() + within.as_millis() as i64).to_string()
}

/// Whether a deadline header (if any) has passed.
pub fn past_deadline(h: Option<&async_nats::HeaderMap>) -> bool {
    h.and_then(|h| h.get(DEADLINE))
        .and_then(|v| v.as_str().parse::<i64>().ok())
        .is_some_and(|d| chrono::Utc::now().timestamp_millis() > d)
}
