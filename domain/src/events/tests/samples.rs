//! Each kind as the workers publish it today, built from reading each producer (the
//! comment above each sample names it), with the variant it must read as.

use bson::oid::ObjectId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::entities::payment::PaymentStatus;
use crate::entities::ticket_scan::{ScanLocation, ScanStatus, TicketScan};
use crate::events::*;
use crate::hold::{HoldStatus, SeatHold};
use crate::money::{Currency, Money};
use crate::user::Role;

/// The envelope as proposed for `streams::events`: its own fields, and the payload
/// flattened beside them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Envelope {
    pub(super) id: String,
    pub(super) occurred_at: DateTime<Utc>,
    pub(super) command_id: String,
    pub(super) actor: Option<Value>,
    #[serde(default)]
    pub(super) context: Value,
    pub(super) before: Option<Value>,
    pub(super) after: Option<Value>,
    #[serde(flatten)]
    pub(super) event: DomainEvent,
}

/// Today's `streams::events::DomainEvent`, as a reader built before this enum sees an
/// event (to show that it still reads what the enum writes).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub(super) struct TodaysReader {
    pub(super) id: String,
    #[serde(rename = "type")]
    pub(super) kind: String,
    pub(super) occurred_at: DateTime<Utc>,
    pub(super) command_id: String,
    pub(super) action: String,
    pub(super) entity_type: String,
    pub(super) entity_id: ObjectId,
    pub(super) event_id: Option<ObjectId>,
    pub(super) before: Option<Value>,
    pub(super) after: Option<Value>,
    #[serde(default)]
    pub(super) data: Value,
}

pub(super) fn oid(n: u8) -> ObjectId {
    ObjectId::parse_str(format!("65f0a0a0a0a0a0a0a0a0a0{n:02x}")).unwrap()
}

pub(super) fn at(ms: i64) -> bson::DateTime {
    bson::DateTime::from_millis(ms)
}

/// `bson::DateTime` as `store::api_json` writes it.
pub(super) fn api_time(t: bson::DateTime) -> String {
    t.try_to_rfc3339_string().unwrap()
}

pub(super) fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

pub(super) const NOW_MS: i64 = 1_796_205_600_123;
pub(super) const NOW: &str = "2026-12-02T10:00:00.123Z";

/// An EVENTS message as `Ctx::emit` (or a direct construction) writes it today.
pub(super) struct Today {
    pub(super) kind: &'static str,
    pub(super) action: &'static str,
    pub(super) entity_type: &'static str,
    pub(super) entity_id: ObjectId,
    pub(super) event_id: Option<ObjectId>,
    pub(super) before: Option<Value>,
    pub(super) after: Option<Value>,
    pub(super) data: Value,
}

impl Today {
    pub(super) fn json(&self) -> Value {
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

pub(super) fn seat_hold() -> SeatHold {
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

pub(super) fn scan(id: ObjectId, status: ScanStatus, ticket: Option<ObjectId>) -> TicketScan {
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

pub(super) fn usd(minor: i64) -> Money {
    Money::from_minor(minor, Currency::USD)
}

/// Each kind as its producer publishes it, with the variant it must read as.
pub(super) fn samples() -> Vec<(Today, DomainEvent)> {
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
        // payments::refunds::refund_and_cancel (cancel_unpaid writes refundMinor 0, no refundId)
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
        // payments::refunds::refund_and_cancel
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
