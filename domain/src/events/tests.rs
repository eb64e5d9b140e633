//! Every kind as the workers publish it today (built from reading each producer), read
//! into its variant, written back and read again; the table's consistency; the envelope
//! embedding (`#[serde(flatten)]`) the next phase relies on.

use std::collections::HashSet;

use bson::oid::ObjectId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::*;
use crate::entities::booking::BookingStatus;
use crate::entities::payment::PaymentStatus;
use crate::entities::ticket_scan::{ScanLocation, ScanStatus, TicketScan};
use crate::event::EventStatus;
use crate::hold::{HoldStatus, SeatHold};
use crate::money::{Currency, Money};
use crate::user::Role;

/// The envelope as proposed for `streams::events`: its own fields, and the payload
/// flattened beside them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    id: String,
    occurred_at: DateTime<Utc>,
    command_id: String,
    actor: Option<Value>,
    #[serde(default)]
    context: Value,
    before: Option<Value>,
    after: Option<Value>,
    #[serde(flatten)]
    event: DomainEvent,
}

/// Today's `streams::events::DomainEvent`, as a reader built before this enum sees an
/// event (to show that it still reads what the enum writes).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct TodaysReader {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    occurred_at: DateTime<Utc>,
    command_id: String,
    action: String,
    entity_type: String,
    entity_id: ObjectId,
    event_id: Option<ObjectId>,
    before: Option<Value>,
    after: Option<Value>,
    #[serde(default)]
    data: Value,
}

fn oid(n: u8) -> ObjectId {
    ObjectId::parse_str(format!("65f0a0a0a0a0a0a0a0a0a0{n:02x}")).unwrap()
}

fn at(ms: i64) -> bson::DateTime {
    bson::DateTime::from_millis(ms)
}

/// `bson::DateTime` as `store::api_json` writes it.
fn api_time(t: bson::DateTime) -> String {
    t.try_to_rfc3339_string().unwrap()
}

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

const NOW_MS: i64 = 1_796_205_600_123;
const NOW: &str = "2026-12-02T10:00:00.123Z";

/// An EVENTS message as `Ctx::emit` (or a direct construction) writes it today.
struct Today {
    kind: &'static str,
    action: &'static str,
    entity_type: &'static str,
    entity_id: ObjectId,
    event_id: Option<ObjectId>,
    before: Option<Value>,
    after: Option<Value>,
    data: Value,
}

impl Today {
    fn json(&self) -> Value {
        json!({
            "id": format!("cmd-1:{}", self.kind),
            "type": self.kind,
            "occurredAt": NOW,
            "commandId": "cmd-1",
            "actor": {"userId": {"$oid": oid(1).to_hex()}, "role": "user"},
            "context": {"requestId": "req-1", "ipAddress": "127.0.0.1", "userAgent": "curl/8"},
            "action": self.action,
            "entityType": self.entity_type,
            // bson's ObjectId through serde_json, as the envelope writes it today.
            "entityId": {"$oid": self.entity_id.to_hex()},
            "eventId": self.event_id.map(|e| json!({"$oid": e.to_hex()})),
            "before": self.before,
            "after": self.after,
            "data": self.data,
        })
    }
}

fn seat_hold() -> SeatHold {
    SeatHold {
        id: oid(10),
        user_id: oid(1),
        event_id: oid(2),
        seat_ids: vec![oid(20), oid(21)],
        quantity: 2,
        total_price: Money::from_minor(9998, Currency::USD),
        status: HoldStatus::Active,
        created_at: at(NOW_MS),
        expires_at: at(NOW_MS + 600_000),
        converted_to_booking_id: None,
        command_id: "cmd-1".into(),
        updated_at: at(NOW_MS),
    }
}

fn scan(id: ObjectId, status: ScanStatus, ticket: Option<ObjectId>) -> TicketScan {
    TicketScan {
        id,
        ticket_id: ticket,
        qr_code_id: ticket.map(|_| oid(41)),
        scan_status: status,
        scanned_at: at(NOW_MS),
        scanned_by_device_id: "dev-1".into(),
        scanned_by_user_id: oid(5),
        scan_location: Some(ScanLocation {
            gate: Some("A".into()),
            ..Default::default()
        }),
        ip_address: Some("127.0.0.1".into()),
        user_agent: None,
        failure_reason: (status != ScanStatus::Success).then(|| "already_scanned".into()),
        failure_details: (status == ScanStatus::AlreadyScanned)
            .then(|| bson::doc! {"scanId": oid(43), "scannedAt": at(NOW_MS - 1000), "gate": "B"}),
        command_id: Some("cmd-1".into()),
        created_at: at(NOW_MS),
    }
}

fn usd(minor: i64) -> Money {
    Money::from_minor(minor, Currency::USD)
}

/// Each kind as its producer publishes it, with the variant it must read as.
fn samples() -> Vec<(Today, DomainEvent)> {
    let hold = seat_hold();
    let expires = api_time(hold.expires_at);
    let booking_expires = api_time(at(NOW_MS + 900_000));
    let seat_hexes = json!([oid(20).to_hex(), oid(21).to_hex()]);
    let seats = vec![oid(20), oid(21)];
    let (user, show, hold_id, booking, payment, refund, ticket) =
        (oid(1), oid(2), oid(10), oid(11), oid(12), oid(13), oid(40));
    let scan_ok = scan(oid(42), ScanStatus::Success, Some(ticket));
    let scan_refused = scan(oid(44), ScanStatus::AlreadyScanned, Some(ticket));
    let hold_ended = |kind, action, status| Today {
        kind,
        action,
        entity_type: "hold",
        entity_id: hold_id,
        event_id: Some(show),
        before: Some(json!({"status": "active"})),
        after: Some(json!({"status": status})),
        data: json!({"seatIds": seat_hexes, "userId": user.to_hex()}),
    };
    let ended = HoldEnded {
        hold_id,
        event_id: show,
        seat_ids: seats.clone(),
        user_id: Some(user),
    };
    vec![
        // holds::emit_created
        (
            Today {
                kind: "hold.created",
                action: "hold_created",
                entity_type: "hold",
                entity_id: hold_id,
                event_id: Some(show),
                before: None,
                after: Some(
                    json!({"id": hold_id.to_hex(), "status": "active", "expiresAt": expires}),
                ),
                data: json!({
                    "seatIds": seat_hexes, "expiresAt": expires, "userId": user.to_hex(),
                    "hold": serde_json::to_value(&hold).unwrap(),
                }),
            },
            DomainEvent::HoldCreated(HoldCreated {
                hold_id,
                event_id: show,
                user_id: user,
                seat_ids: seats.clone(),
                expires_at: utc(&expires),
                hold: hold.clone(),
            }),
        ),
        // holds::release
        (
            hold_ended("hold.released", "hold_released", "released"),
            DomainEvent::HoldReleased(ended.clone()),
        ),
        (
            hold_ended("hold.expired", "hold_expired", "expired"),
            DomainEvent::HoldExpired(ended),
        ),
        // bookings::finish_create
        (
            Today {
                kind: "hold.converted",
                action: "hold_converted",
                entity_type: "hold",
                entity_id: hold_id,
                event_id: Some(show),
                before: Some(json!({"status": "active"})),
                after: Some(
                    json!({"status": "converted_to_booking", "convertedToBookingId": booking.to_hex()}),
                ),
                data: json!({}),
            },
            DomainEvent::HoldConverted(HoldConverted {
                hold_id,
                event_id: show,
                booking_id: None,
            }),
        ),
        (
            Today {
                kind: "booking.created",
                action: "booking_created",
                entity_type: "booking",
                entity_id: booking,
                event_id: Some(show),
                before: Some(Value::Null),
                after: Some(
                    json!({"id": booking.to_hex(), "status": "pending", "expiresAt": booking_expires}),
                ),
                data: json!({"expiresAt": booking_expires, "seatIds": seat_hexes, "userId": user.to_hex()}),
            },
            DomainEvent::BookingCreated(BookingCreated {
                booking_id: booking,
                event_id: show,
                user_id: user,
                seat_ids: seats.clone(),
                expires_at: utc(&booking_expires),
            }),
        ),
        // bookings::confirm
        (
            Today {
                kind: "booking.confirmed",
                action: "booking_confirmed",
                entity_type: "booking",
                entity_id: booking,
                event_id: Some(show),
                before: Some(json!({"status": "pending"})),
                after: Some(json!({"status": "confirmed", "paymentId": payment.to_hex()})),
                data: json!({
                    "userId": user.to_hex(), "seatIds": seat_hexes,
                    "finalPrice": {"amountMinor": 9998, "currency": "USD", "amount": "99.98"},
                }),
            },
            DomainEvent::BookingConfirmed(BookingConfirmed {
                booking_id: booking,
                event_id: show,
                user_id: user,
                seat_ids: seats.clone(),
                final_price: usd(9998),
                payment_id: None,
            }),
        ),
        // bookings::refund_and_cancel (cancel_unpaid writes refundMinor 0, no refundId)
        (
            Today {
                kind: "booking.cancelled",
                action: "booking_cancelled",
                entity_type: "booking",
                entity_id: booking,
                event_id: Some(show),
                before: Some(json!({"status": "confirmed"})),
                after: Some(
                    json!({"status": "cancelled", "cancellationReason": "user_requested", "paymentStatus": "partially_refunded"}),
                ),
                data: json!({
                    "userId": user.to_hex(), "refundMinor": 4999, "refundId": refund.to_hex(),
                    "seatIds": seat_hexes,
                }),
            },
            DomainEvent::BookingCancelled(BookingEnded {
                booking_id: booking,
                event_id: show,
                user_id: Some(user),
                seat_ids: seats.clone(),
                refund_minor: 4999,
                refund_id: Some(refund),
                currency: None,
                reason: None,
                previous_status: None,
                payment_status: None,
            }),
        ),
        // bookings::cancel_unpaid, by expiry
        (
            Today {
                kind: "booking.expired",
                action: "booking_expired",
                entity_type: "booking",
                entity_id: booking,
                event_id: Some(show),
                before: Some(json!({"status": "pending"})),
                after: Some(json!({"status": "cancelled", "cancellationReason": "expired"})),
                data: json!({"userId": user.to_hex(), "refundMinor": 0, "seatIds": seat_hexes}),
            },
            DomainEvent::BookingExpired(BookingEnded {
                booking_id: booking,
                event_id: show,
                user_id: Some(user),
                seat_ids: seats.clone(),
                refund_minor: 0,
                refund_id: None,
                currency: None,
                reason: None,
                previous_status: None,
                payment_status: None,
            }),
        ),
        // bookings::refund_and_cancel
        (
            Today {
                kind: "refund.processed",
                action: "refund_completed",
                entity_type: "refund",
                entity_id: refund,
                event_id: Some(show),
                before: None,
                after: Some(json!({
                    "id": refund.to_hex(), "status": "processed",
                    "refundAmount": {"amountMinor": 4999, "currency": "USD", "amount": "49.99"},
                })),
                data: json!({"bookingId": booking.to_hex(), "refundMinor": 4999, "paymentStatus": "partially_refunded"}),
            },
            DomainEvent::RefundProcessed(RefundProcessed {
                refund_id: refund,
                event_id: show,
                booking_id: booking,
                refund_minor: 4999,
                payment_status: PaymentStatus::PartiallyRefunded,
                currency: None,
            }),
        ),
        // payments::pay (its `emit` adds amountMinor)
        (
            Today {
                kind: "payment.initiated",
                action: "payment_initiated",
                entity_type: "payment",
                entity_id: payment,
                event_id: Some(show),
                before: None,
                after: Some(json!({"status": "pending", "attemptCount": 0, "transactionId": null})),
                data: json!({"bookingId": booking.to_hex(), "attemptNumber": 1, "amountMinor": 9998}),
            },
            DomainEvent::PaymentInitiated(PaymentAttempt {
                payment_id: payment,
                event_id: show,
                booking_id: booking,
                attempt_number: 1,
                amount_minor: Some(9998),
                currency: None,
            }),
        ),
        // payments::finish
        (
            Today {
                kind: "payment.failed",
                action: "payment_failed",
                entity_type: "payment",
                entity_id: payment,
                event_id: Some(show),
                before: Some(json!({"status": "pending"})),
                after: Some(
                    json!({"status": "failed", "attemptCount": 1, "transactionId": "txn-1"}),
                ),
                data: json!({
                    "bookingId": booking.to_hex(), "failureReason": "card_declined", "attemptNumber": 2,
                    "failedAttempts": 2, "maxFailedAttempts": 3, "amountMinor": null,
                }),
            },
            DomainEvent::PaymentFailed(PaymentFailed {
                payment_id: payment,
                event_id: show,
                booking_id: booking,
                failure_reason: "card_declined".into(),
                attempt_number: 2,
                failed_attempts: 2,
                max_failed_attempts: 3,
                amount_minor: None,
                currency: None,
            }),
        ),
        (
            Today {
                kind: "payment.completed",
                action: "payment_completed",
                entity_type: "payment",
                entity_id: payment,
                event_id: Some(show),
                before: Some(json!({"status": "pending"})),
                after: Some(
                    json!({"status": "completed", "attemptCount": 1, "transactionId": "txn-2"}),
                ),
                data: json!({"bookingId": booking.to_hex(), "attemptNumber": 1, "amountMinor": 9998}),
            },
            DomainEvent::PaymentCompleted(PaymentAttempt {
                payment_id: payment,
                event_id: show,
                booking_id: booking,
                attempt_number: 1,
                amount_minor: Some(9998),
                currency: None,
            }),
        ),
        // ticketing::emit_issued (a direct construction; actor and context empty)
        (
            Today {
                kind: "ticket.issued",
                action: "tickets_issued",
                entity_type: "booking",
                entity_id: booking,
                event_id: Some(show),
                before: None,
                after: Some(json!({"ticketIds": [ticket.to_hex()], "ticketNumbers": ["TKT-1"]})),
                data: json!({"bookingId": booking.to_hex(), "userId": user.to_hex(), "count": 2}),
            },
            DomainEvent::TicketsIssued(TicketsIssued {
                booking_id: booking,
                event_id: show,
                user_id: Some(user),
                count: 2,
            }),
        ),
        // ticketing::record_download
        (
            Today {
                kind: "ticket.downloaded",
                action: "ticket_downloaded",
                entity_type: "ticket",
                entity_id: ticket,
                event_id: Some(show),
                before: None,
                after: Some(json!({"downloadCount": 3})),
                data: json!({"ticketNumber": "TKT-1"}),
            },
            DomainEvent::TicketDownloaded(TicketDownloaded {
                ticket_id: ticket,
                event_id: Some(show),
                ticket_number: "TKT-1".into(),
            }),
        ),
        // scans::first_scan
        (
            Today {
                kind: "ticket.scanned",
                action: "ticket_scanned",
                entity_type: "ticket",
                entity_id: ticket,
                event_id: Some(show),
                before: Some(json!({"status": "active"})),
                after: Some(json!({"status": "scanned", "gate": "A"})),
                data: json!({
                    "scanId": oid(42).to_hex(), "deviceId": "dev-1", "gate": "A",
                    "ticketNumber": "TKT-1", "scan": serde_json::to_value(&scan_ok).unwrap(),
                }),
            },
            DomainEvent::TicketScanned(TicketScanned {
                ticket_id: ticket,
                event_id: Some(show),
                scan_id: oid(42),
                device_id: "dev-1".into(),
                gate: Some("A".into()),
                ticket_number: Some("TKT-1".into()),
                scan: scan_ok,
            }),
        ),
        // scans::Scan::refuse (here: a second scan of the same ticket)
        (
            Today {
                kind: "ticket.scan_refused",
                action: "ticket_scan_refused",
                entity_type: "ticket_scan",
                entity_id: oid(44),
                event_id: Some(show),
                before: None,
                after: Some(json!({"scanStatus": "already_scanned"})),
                data: json!({
                    "failureReason": "already_scanned", "ticketId": ticket.to_hex(),
                    "deviceId": "dev-1", "gate": null,
                    "scan": serde_json::to_value(&scan_refused).unwrap(),
                }),
            },
            DomainEvent::TicketScanRefused(TicketScanRefused {
                scan_id: oid(44),
                event_id: Some(show),
                failure_reason: "already_scanned".into(),
                ticket_id: Some(ticket),
                device_id: "dev-1".into(),
                gate: None,
                scan: scan_refused,
            }),
        ),
        // catalog::create_event
        (
            Today {
                kind: "event.created",
                action: "event_created",
                entity_type: "event",
                entity_id: show,
                event_id: Some(show),
                before: None,
                after: Some(json!({"id": show.to_hex(), "status": "draft"})),
                data: json!({"seats": 120}),
            },
            DomainEvent::EventCreated(EventCreated {
                event_id: show,
                seats: 120,
            }),
        ),
        // catalog::publish_event
        (
            Today {
                kind: "event.published",
                action: "event_published",
                entity_type: "event",
                entity_id: show,
                event_id: Some(show),
                before: Some(json!({"status": "draft"})),
                after: Some(json!({"status": "published"})),
                data: json!({}),
            },
            DomainEvent::EventPublished(EventStatusChanged {
                event_id: show,
                previous_status: None,
            }),
        ),
        // catalog::cancel_event
        (
            Today {
                kind: "event.cancelled",
                action: "event_cancelled",
                entity_type: "event",
                entity_id: show,
                event_id: Some(show),
                before: Some(json!({"status": "published"})),
                after: Some(json!({"status": "cancelled"})),
                data: json!({}),
            },
            DomainEvent::EventCancelled(EventStatusChanged {
                event_id: show,
                previous_status: None,
            }),
        ),
        // accounts::register (`at` is chrono's `Utc::now()`, nanoseconds and all)
        (
            Today {
                kind: "user.registered",
                action: "user_registered",
                entity_type: "user",
                entity_id: user,
                event_id: None,
                before: None,
                after: Some(json!({"id": user.to_hex(), "role": "user"})),
                data: json!({"role": "user", "at": "2026-12-02T10:00:00.123456789Z"}),
            },
            DomainEvent::UserRegistered(UserRegistered {
                user_id: user,
                role: Role::User,
                at: utc("2026-12-02T10:00:00.123456789Z"),
            }),
        ),
        // accounts::logout
        (
            Today {
                kind: "user.logged_out",
                action: "user_logged_out",
                entity_type: "user",
                entity_id: user,
                event_id: None,
                before: None,
                after: None,
                data: json!({"tokensRevokedBefore": "2026-12-02T09:59:59Z"}),
            },
            DomainEvent::UserLoggedOut(UserLoggedOut {
                user_id: user,
                tokens_revoked_before: utc("2026-12-02T09:59:59Z"),
            }),
        ),
        // accounts::suspend
        (
            Today {
                kind: "user.suspended",
                action: "user_suspended",
                entity_type: "user",
                entity_id: user,
                event_id: None,
                before: Some(json!({"status": "active"})),
                after: Some(json!({"status": "suspended"})),
                data: json!({"tokensRevokedBefore": "2026-12-02T09:59:59.5Z"}),
            },
            DomainEvent::UserSuspended(UserSuspended {
                user_id: user,
                tokens_revoked_before: utc("2026-12-02T09:59:59.5Z"),
            }),
        ),
        // account_tokens::verify
        (
            Today {
                kind: "user.verified",
                action: "user_verified",
                entity_type: "user",
                entity_id: user,
                event_id: None,
                before: Some(json!({"isVerified": false})),
                after: Some(json!({"isVerified": true})),
                data: json!({}),
            },
            DomainEvent::UserVerified(UserVerified { user_id: user }),
        ),
        // account_tokens::reset_password
        (
            Today {
                kind: "user.password_reset",
                action: "user_password_reset",
                entity_type: "user",
                entity_id: user,
                event_id: None,
                before: None,
                after: None,
                data: json!({}),
            },
            DomainEvent::UserPasswordReset(UserPasswordReset { user_id: user }),
        ),
        // runtime::refuse (a direct construction)
        (
            Today {
                kind: "command.refused",
                action: "command_refused",
                entity_type: "command",
                entity_id: oid(50),
                event_id: None,
                before: None,
                after: None,
                data: json!({
                    "failureReason": "unauthorized: no signature", "statusCode": 401,
                    "code": "unauthorized", "command": "holds.create",
                    "subject": "t1.cmd.holds.create", "signer": null,
                }),
            },
            DomainEvent::CommandRefused(CommandRefused {
                refusal_id: oid(50),
                failure_reason: "unauthorized: no signature".into(),
                status_code: 401,
                code: "unauthorized".into(),
                command: "holds.create".into(),
                subject: "t1.cmd.holds.create".into(),
                signer: None,
            }),
        ),
    ]
}

#[test]
fn every_kind_has_a_sample() {
    let covered: HashSet<EventKind> = samples().iter().map(|(_, e)| e.event_kind()).collect();
    let all: HashSet<EventKind> = EventKind::ALL.iter().copied().collect();
    assert_eq!(covered, all);
}

#[test]
fn todays_events_read_into_their_variants_with_the_envelopes_facts() {
    for (today, want) in samples() {
        let env: Envelope =
            serde_json::from_value(today.json()).unwrap_or_else(|e| panic!("{}: {e}", today.kind));
        assert_eq!(env.event, want, "{}", today.kind);
        let ev = &env.event;
        assert_eq!(ev.kind(), today.kind);
        assert_eq!(ev.action(), today.action, "{}", today.kind);
        assert_eq!(ev.entity_type(), today.entity_type, "{}", today.kind);
        assert_eq!(ev.entity_id(), today.entity_id, "{}", today.kind);
        assert_eq!(ev.show_id(), today.event_id, "{}", today.kind);
        // `Some(null)` goes on the wire as `null` and reads as `None`, as today.
        let snapshot = |v: Option<Value>| v.unwrap_or(Value::Null);
        assert_eq!(
            snapshot(env.before),
            snapshot(today.before),
            "{}",
            today.kind
        );
        assert_eq!(snapshot(env.after), snapshot(today.after), "{}", today.kind);
        assert_eq!(env.occurred_at, utc(NOW));
    }
}

#[test]
fn an_event_written_back_reads_the_same_in_an_envelope_and_alone() {
    for (today, want) in samples() {
        let env: Envelope = serde_json::from_value(today.json()).unwrap();
        let written = serde_json::to_value(&env).unwrap();
        let again: Envelope = serde_json::from_value(written.clone())
            .unwrap_or_else(|e| panic!("{}: {e}\n{written}", today.kind));
        assert_eq!(again, env, "{}", today.kind);

        // The payload alone: `data` now carries the ids the envelope used to.
        let alone = json!({"type": written["type"], "data": written["data"]});
        let ev: DomainEvent = serde_json::from_value(alone).unwrap();
        assert_eq!(ev, want, "{}", today.kind);
        let (entity_key, show_key) = ev.event_kind().keys();
        assert_eq!(written["data"][entity_key], json!(ev.entity_id().to_hex()));
        if let Some(k) = show_key {
            assert_eq!(written["data"][k], json!(ev.show_id().map(|s| s.to_hex())));
        }
    }
}

#[test]
fn a_reader_built_before_the_enum_reads_what_it_writes() {
    for (today, want) in samples() {
        let env: Envelope = serde_json::from_value(today.json()).unwrap();
        let written = serde_json::to_value(&env).unwrap();
        let old: TodaysReader = serde_json::from_value(written.clone()).unwrap();
        assert_eq!(old.kind, today.kind);
        assert_eq!(old.action, today.action);
        assert_eq!(old.entity_type, today.entity_type);
        assert_eq!(old.entity_id, today.entity_id);
        assert_eq!(old.event_id, today.event_id);
        // Every key of today's `data` is still there with its value, except fields that
        // were `null` and are now left out.
        for (k, v) in today.data.as_object().unwrap() {
            if !v.is_null() {
                assert!(
                    same(&old.data[k], v),
                    "{}.{k}: {} vs {v}",
                    today.kind,
                    old.data[k]
                );
            }
        }
        assert_eq!(written["entityId"], today.json()["entityId"]);
        let _ = want;
    }
}

/// Equal, or the same instant written with other digits (`.5Z` and `.500Z`).
fn same(a: &Value, b: &Value) -> bool {
    let instant = |v: &Value| v.as_str().and_then(|s| s.parse::<DateTime<Utc>>().ok());
    a == b || matches!((instant(a), instant(b)), (Some(x), Some(y)) if x == y)
}

#[test]
fn the_table_is_one_to_one() {
    let kinds: HashSet<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
    let actions: HashSet<&str> = EventKind::ALL.iter().map(|k| k.action()).collect();
    assert_eq!(kinds.len(), EventKind::ALL.len(), "kinds are unique");
    assert_eq!(actions.len(), EventKind::ALL.len(), "actions are unique");
    for k in EventKind::ALL {
        assert_eq!(k.as_str().parse::<EventKind>(), Ok(*k));
        let (entity, verb) = k.subject_parts();
        assert!(
            !entity.is_empty() && !verb.is_empty() && !verb.contains('.'),
            "{k}"
        );
        assert!(
            k.as_str()
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_'),
            "{k} is a valid subject token pair"
        );
    }
}

#[test]
fn an_unknown_kind_is_an_error_not_a_default() {
    assert_eq!(
        "hold.teleported".parse::<EventKind>(),
        Err(UnknownKind("hold.teleported".into()))
    );
    let e = serde_json::from_value::<DomainEvent>(json!({"type": "hold.teleported", "data": {}}))
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("unknown domain event kind `hold.teleported`"),
        "{e}"
    );
    let mut env = samples().remove(0).0.json();
    env["type"] = json!("seat.painted");
    assert!(serde_json::from_value::<Envelope>(env).is_err());
}

#[test]
fn missing_or_mistyped_facts_are_errors() {
    // No seat ids.
    let e = serde_json::from_value::<DomainEvent>(json!({
        "type": "hold.released", "entityId": oid(10).to_hex(), "eventId": oid(2).to_hex(), "data": {},
    }))
    .unwrap_err();
    assert!(e.to_string().contains("hold.released"), "{e}");
    // An id that is not 24 hex digits.
    assert!(serde_json::from_value::<DomainEvent>(json!({
        "type": "user.verified", "data": {"userId": "not-an-id"},
    }))
    .is_err());
    // `data` that is not an object.
    assert!(serde_json::from_value::<DomainEvent>(json!({
        "type": "user.verified", "entityId": oid(1).to_hex(), "data": [1],
    }))
    .is_err());
    // A user event with no id anywhere.
    assert!(serde_json::from_value::<DomainEvent>(json!({"type": "user.verified"})).is_err());
}

#[test]
fn older_events_get_the_facts_they_kept_in_their_snapshots() {
    let by_kind = |kind: &str| -> Envelope {
        let (today, _) = samples().into_iter().find(|(t, _)| t.kind == kind).unwrap();
        let mut env: Envelope = serde_json::from_value(today.json()).unwrap();
        env.event
            .fill_from_snapshots(env.before.as_ref(), env.after.as_ref());
        env
    };
    let DomainEvent::HoldConverted(e) = by_kind("hold.converted").event else {
        unreachable!()
    };
    assert_eq!(e.booking_id, Some(oid(11)));
    let DomainEvent::BookingConfirmed(e) = by_kind("booking.confirmed").event else {
        unreachable!()
    };
    assert_eq!(e.payment_id, Some(oid(12)));
    let DomainEvent::BookingCancelled(e) = by_kind("booking.cancelled").event else {
        unreachable!()
    };
    assert_eq!(e.reason, Some(CancellationReason::UserRequested));
    assert_eq!(e.previous_status, Some(BookingStatus::Confirmed));
    assert_eq!(e.was_paid(), Some(true));
    assert_eq!(e.payment_status, Some(PaymentStatus::PartiallyRefunded));
    let DomainEvent::BookingExpired(e) = by_kind("booking.expired").event else {
        unreachable!()
    };
    assert_eq!(e.reason, Some(CancellationReason::Expired));
    assert_eq!(e.was_paid(), Some(false));
    let DomainEvent::RefundProcessed(e) = by_kind("refund.processed").event else {
        unreachable!()
    };
    assert_eq!(e.amount(), Some(usd(4999)));
    let DomainEvent::EventCancelled(e) = by_kind("event.cancelled").event else {
        unreachable!()
    };
    assert_eq!(e.previous_status, Some(EventStatus::Published));

    // A fact the event carries is kept.
    let mut ev = DomainEvent::HoldConverted(HoldConverted {
        hold_id: oid(10),
        event_id: oid(2),
        booking_id: Some(oid(99)),
    });
    ev.fill_from_snapshots(
        None,
        Some(&json!({"convertedToBookingId": oid(11).to_hex()})),
    );
    let DomainEvent::HoldConverted(e) = ev else {
        unreachable!()
    };
    assert_eq!(e.booking_id, Some(oid(99)));
}

#[test]
fn the_audit_facts_come_from_the_variant() {
    for (today, _) in samples() {
        let env: Envelope = serde_json::from_value(today.json()).unwrap();
        assert_eq!(
            env.event.failure_reason(),
            today.data.get("failureReason").and_then(Value::as_str),
            "{}",
            today.kind
        );
        assert_eq!(
            env.event.status_code().map(i64::from),
            today.data.get("statusCode").and_then(Value::as_i64),
            "{}",
            today.kind
        );
    }
}

#[test]
fn cancellation_reasons_round_trip_as_their_text() {
    for r in CancellationReason::ALL {
        assert_eq!(CancellationReason::parse(r.as_str()), Some(*r));
        assert_eq!(serde_json::to_value(r).unwrap(), json!(r.as_str()));
    }
    assert_eq!(CancellationReason::parse("booking_cancelled"), None);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any hold event, with any ids and times, reads back as itself.
        #[test]
        fn hold_events_round_trip(
            ids in proptest::collection::vec(any::<[u8; 12]>(), 3..8),
            ms in 0i64..4_000_000_000_000,
            released in any::<bool>(),
        ) {
            let id = |i: usize| ObjectId::from_bytes(ids[i]);
            let seats: Vec<ObjectId> = (2..ids.len()).map(id).collect();
            let mut hold = seat_hold();
            hold.id = id(0);
            hold.event_id = id(1);
            hold.seat_ids = seats.clone();
            hold.expires_at = at(ms);
            let created = DomainEvent::HoldCreated(HoldCreated {
                hold_id: id(0),
                event_id: id(1),
                user_id: hold.user_id,
                seat_ids: seats.clone(),
                expires_at: hold.expires_at.to_chrono(),
                hold,
            });
            let ended = HoldEnded { hold_id: id(0), event_id: id(1), seat_ids: seats, user_id: None };
            let ended = if released { DomainEvent::HoldReleased(ended) } else { DomainEvent::HoldExpired(ended) };
            for ev in [created, ended] {
                let back: DomainEvent = serde_json::from_value(serde_json::to_value(&ev).unwrap()).unwrap();
                prop_assert_eq!(back, ev);
            }
        }
    }
}
