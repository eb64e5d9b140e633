//! Reads: the gateway asks the queries worker by core request-reply (a queue group, so
//! every replica shares the load) and gets a [`Reply`] back. The gateway holds no MongoDB
//! connection; this enum is everything it may read.

use std::time::Duration;

use domain::ObjectId;
use serde::{Deserialize, Serialize};

use crate::codes::{ErrorCode, Reply};
use crate::commands::Issuer;
use crate::names::Namespace;
use crate::proof::CommandSigner;
use crate::WireError;

/// A query and who asks it (ownership is checked by the worker against `issuer`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryRequest {
    pub issuer: Option<Issuer>,
    #[serde(flatten)]
    pub query: Query,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    content = "params",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum Query {
    /// Internal, for login only: `{userId, email, passwordHash, role, status}` or 404.
    /// Never forwarded to a client as is.
    Credentials { email: String },
    /// The issuer's own account (`GET /v1/me`).
    Me,
    /// Published events (admins also see drafts when `includeDrafts`), filtered and paged:
    /// `{items, page, limit, total}`.
    ListEvents(EventFilter),
    /// One event; drafts only for admins, otherwise 404 `event_not_found`.
    GetEvent { event_id: ObjectId },
    /// Seats of one event, filtered by section and status: `{items, total}`.
    EventSeats {
        event_id: ObjectId,
        section: Option<String>,
        status: Option<String>,
    },
    /// One hold, for its owner (or an admin); otherwise 404 `hold_not_found`.
    GetHold { hold_id: ObjectId },
    /// One booking, for its owner (or an admin); otherwise 404 `booking_not_found`.
    GetBooking { booking_id: ObjectId },
    /// The issuer's bookings, newest first: `{items, page, limit, total}`.
    MyBookings { page: u32, limit: u32 },
    /// One payment, for its payer (or an admin).
    GetPayment { payment_id: ObjectId },
    /// One refund, for its receiver (or an admin).
    GetRefund { refund_id: ObjectId },
    /// Audit entries (admins): `{items, page, limit, total}`, newest first.
    AuditLogs(AuditFilter),
    /// Readiness: pings MongoDB; 200 `{mongodb: "ok"}` or 503.
    Ping,
    /// The tickets of one booking, for its owner (or an admin): `{items, total}`;
    /// otherwise 404 `booking_not_found`.
    BookingTickets { booking_id: ObjectId },
    /// One ticket, for its owner (or an admin); otherwise 404 `ticket_not_found`.
    GetTicket { ticket_id: ObjectId },
    /// A ticket's QR code as a PNG, for its owner (or an admin):
    /// The PNG itself, as a binary answer ([`Answer::Binary`], `image/png`); otherwise 404
    /// `ticket_not_found`.
    TicketQrPng { ticket_id: ObjectId },
    /// The QR verification keys (staff): `{keys: [{kid, alg, publicKey}]}`.
    ScanKeys,
    /// An event's signed revocation list (staff): the tickets revoked after version
    /// `since` and the list's version now, as `domain::revocation::SignedRevocations`;
    /// 400 `invalid_since` when `since` is newer than the list, 404 `event_not_found`.
    EventRevocations { event_id: ObjectId, since: u64 },
    /// The issuer's notifications, newest first: `{items, page, limit, total}`.
    MyNotifications { page: u32, limit: u32 },
    /// An event's analytics (admins): `{eventId, period, items: [{periodStart, periodEnd,
    /// metrics}]}`; `period` is hourly, daily, weekly or monthly (default daily).
    EventAnalytics {
        event_id: ObjectId,
        period: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct EventFilter {
    pub city: Option<String>,
    pub category: Option<String>,
    /// Inclusive lower bound on the event date: an RFC 3339 time, or `YYYY-MM-DD` (that
    /// day's start in UTC).
    pub from: Option<String>,
    /// Inclusive upper bound on the event date: an RFC 3339 time, or `YYYY-MM-DD` (that
    /// day's end in UTC).
    pub to: Option<String>,
    /// Case-insensitive text searched in name, description, venue and city.
    pub q: Option<String>,
    /// 1-based page number.
    pub page: u32,
    /// Page size, 1 to 100.
    pub limit: u32,
    #[serde(default)]
    pub include_drafts: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AuditFilter {
    pub user_id: Option<ObjectId>,
    pub entity_id: Option<ObjectId>,
    pub action: Option<String>,
    pub status: Option<String>,
    /// Inclusive lower bound on the entry's timestamp.
    #[serde(default)]
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// Exclusive upper bound on the entry's timestamp.
    #[serde(default)]
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    pub page: u32,
    pub limit: u32,
}

impl Query {
    /// The last token of the query's subject, `<root>.qry.<name>`.
    pub fn name(&self) -> &'static str {
        match self {
            Query::Credentials { .. } => "credentials",
            Query::Me => "me",
            Query::ListEvents(_) => "list_events",
            Query::GetEvent { .. } => "get_event",
            Query::EventSeats { .. } => "event_seats",
            Query::GetHold { .. } => "get_hold",
            Query::AuditLogs(_) => "audit_logs",
            Query::GetBooking { .. } => "get_booking",
            Query::MyBookings { .. } => "my_bookings",
            Query::GetPayment { .. } => "get_payment",
            Query::GetRefund { .. } => "get_refund",
            Query::Ping => "ping",
            Query::BookingTickets { .. } => "booking_tickets",
            Query::GetTicket { .. } => "get_ticket",
            Query::TicketQrPng { .. } => "ticket_qr_png",
            Query::ScanKeys => "scan_keys",
            Query::EventRevocations { .. } => "event_revocations",
            Query::MyNotifications { .. } => "my_notifications",
            Query::EventAnalytics { .. } => "event_analytics",
        }
    }
}

/// A reply whose body is kept as the JSON text the worker sent, for answers a gateway
/// forwards as they are (a 5,000-seat map is 700 KB: decoding and encoding it again
/// would cost the gateway more than the worker spent making it).
#[derive(Debug, Clone, PartialEq)]
pub struct RawReply {
    pub status: u16,
    /// JSON text.
    pub body: bytes::Bytes,
}

impl From<Reply> for RawReply {
    fn from(r: Reply) -> Self {
        RawReply {
            status: r.status,
            body: serde_json::to_vec(&r.body).unwrap_or_default().into(),
        }
    }
}

impl RawReply {
    /// The reply in `payload` (`{"status", "body"}`), its body sliced out without a copy.
    pub fn decode(payload: &bytes::Bytes) -> Result<RawReply, WireError> {
        #[derive(Deserialize)]
        struct Envelope<'a> {
            status: u16,
            #[serde(borrow)]
            body: &'a serde_json::value::RawValue,
        }
        let e: Envelope = serde_json::from_slice(payload)?;
        Ok(RawReply {
            status: e.status,
            body: payload.slice_ref(e.body.get().as_bytes()),
        })
    }

    /// Encodes `{"status", "body"}` around a body that is already JSON text.
    pub fn encode(status: u16, body: &[u8]) -> bytes::Bytes {
        let head = format!("{{\"status\":{status},\"body\":");
        let mut out = Vec::with_capacity(head.len() + body.len() + 1);
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(body);
        out.push(b'}');
        out.into()
    }
}

/// A query's answer as the worker sent it: a JSON [`Reply`], or a binary body (media type
/// in the `Ticketing-Content-Type` header, bytes as the payload) that the gateway sends
/// on as it is, never base64 inside JSON.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Reply(Reply),
    Binary {
        content_type: String,
        body: bytes::Bytes,
    },
}

impl Answer {
    /// Reads an answer from its message's headers and payload.
    pub fn decode(
        headers: Option<&async_nats::HeaderMap>,
        payload: bytes::Bytes,
    ) -> Result<Answer, WireError> {
        let content_type = headers
            .and_then(|h| h.get(crate::headers::CONTENT_TYPE))
            .map(|v| v.as_str().to_string());
        Ok(match content_type {
            Some(content_type) => Answer::Binary {
                content_type,
                body: payload,
            },
            None => Answer::Reply(serde_json::from_slice(&payload)?),
        })
    }

    /// The headers a worker sends a binary answer with.
    pub fn binary_headers(content_type: &str) -> async_nats::HeaderMap {
        let mut h = async_nats::HeaderMap::new();
        h.insert(crate::headers::CONTENT_TYPE, content_type);
        h
    }
}

/// Asks a query whose answer may be binary ([`Answer`]).
pub async fn ask_answer(
    client: &async_nats::Client,
    ns: &Namespace,
    signer: &CommandSigner,
    req: &QueryRequest,
    timeout: Duration,
) -> Result<Answer, WireError> {
    match ask_message(client, ns, signer, req, timeout).await? {
        Ok(msg) => Answer::decode(msg.headers.as_ref(), msg.payload),
        Err(reply) => Ok(Answer::Reply(reply)),
    }
}

/// Asks a query and waits up to `timeout` for the worker's answer. No answer in time, or
/// no queries worker at all, is a 503 `unavailable` reply (not an error).
pub async fn ask(
    client: &async_nats::Client,
    ns: &Namespace,
    signer: &CommandSigner,
    req: &QueryRequest,
    timeout: Duration,
) -> Result<Reply, WireError> {
    match ask_payload(client, ns, signer, req, timeout).await? {
        Ok(payload) => Ok(serde_json::from_slice(&payload)?),
        Err(reply) => Ok(reply),
    }
}

/// [`ask`], with the answer's body left as the worker's JSON text.
pub async fn ask_raw(
    client: &async_nats::Client,
    ns: &Namespace,
    signer: &CommandSigner,
    req: &QueryRequest,
    timeout: Duration,
) -> Result<RawReply, WireError> {
    match ask_payload(client, ns, signer, req, timeout).await? {
        Ok(payload) => RawReply::decode(&payload),
        Err(reply) => Ok(reply.into()),
    }
}

/// The worker's answer as sent, or the reply that stands for no answer.
async fn ask_payload(
    client: &async_nats::Client,
    ns: &Namespace,
    signer: &CommandSigner,
    req: &QueryRequest,
    timeout: Duration,
) -> Result<Result<bytes::Bytes, Reply>, WireError> {
    Ok(ask_message(client, ns, signer, req, timeout)
        .await?
        .map(|m| m.payload))
}

/// The worker's answer message, or the reply that stands for no answer.
async fn ask_message(
    client: &async_nats::Client,
    ns: &Namespace,
    signer: &CommandSigner,
    req: &QueryRequest,
    timeout: Duration,
) -> Result<Result<async_nats::Message, Reply>, WireError> {
    let payload = serde_json::to_vec(req)?;
    // The deadline travels with the query: a worker that gets to it after we gave up
    // skips it instead of loading the database for nobody.
    let mut h = async_nats::HeaderMap::new();
    h.insert(
        crate::headers::DEADLINE,
        crate::headers::deadline_in(timeout).as_str(),
    );
    // Signed like a command: the queries worker answers only a trusted key, so the
    // issuer (whose bookings, tickets...) is vouched for, not claimed.
    signer.sign_into(&mut h, &payload);
    let fut = client.request_with_headers(ns.query(req.query.name()), h, payload.into());
    let late = || {
        Reply::error(
            ErrorCode::Unavailable,
            "the query service did not answer in time",
        )
    };
    match tokio::time::timeout(timeout, fut).await {
        Err(_) => Ok(Err(late())),
        Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => Ok(Err(
            Reply::error(ErrorCode::Unavailable, "no query service is running"),
        )),
        Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::TimedOut => Ok(Err(late())),
        Ok(Err(e)) => Err(WireError::nats(e)),
        Ok(Ok(msg)) => Ok(Ok(msg)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raw_reply_keeps_the_body_text_as_sent() {
        let body = br#"{"total":1,"items":[{"id":"x","price":"25.00"}]}"#;
        let wire = RawReply::encode(200, body);
        let raw = RawReply::decode(&wire).unwrap();
        assert_eq!(raw.status, 200);
        assert_eq!(&raw.body[..], &body[..]);
        // And it is an ordinary reply to anyone who decodes it whole.
        let r: Reply = serde_json::from_slice(&wire).unwrap();
        assert_eq!(r.body["items"][0]["price"], "25.00");
        let err = RawReply::from(Reply::error(ErrorCode::Unavailable, "x"));
        assert_eq!(err.status, 503);
        assert!(std::str::from_utf8(&err.body)
            .unwrap()
            .contains("unavailable"));
    }

    #[test]
    fn a_binary_answer_is_its_bytes_and_anything_else_a_reply() {
        let png = bytes::Bytes::from_static(&[0x89, b'P', b'N', b'G']);
        let h = Answer::binary_headers("image/png");
        assert_eq!(
            Answer::decode(Some(&h), png.clone()).unwrap(),
            Answer::Binary {
                content_type: "image/png".into(),
                body: png,
            }
        );
        let wire = serde_json::to_vec(&Reply::error(ErrorCode::TicketNotFound, "x")).unwrap();
        match Answer::decode(None, wire.into()).unwrap() {
            Answer::Reply(r) => assert_eq!(r.code(), Some("ticket_not_found")),
            other => panic!("{other:?}"),
        }
        assert!(Answer::decode(None, bytes::Bytes::from_static(b"\x89PNG")).is_err());
    }

    #[test]
    fn a_query_request_round_trips_with_type_and_params() {
        let r = QueryRequest {
            issuer: None,
            query: Query::GetHold {
                hold_id: ObjectId::new(),
            },
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["type"], "get_hold");
        assert!(v["params"]["holdId"].is_string() || v["params"]["holdId"].is_object());
        assert_eq!(serde_json::from_value::<QueryRequest>(v).unwrap(), r);
        let ping = QueryRequest {
            issuer: None,
            query: Query::Ping,
        };
        assert_eq!(
            serde_json::from_value::<QueryRequest>(serde_json::to_value(&ping).unwrap()).unwrap(),
            ping
        );
    }
}
