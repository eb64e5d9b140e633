//! Booking, payment and refund events.
//!
//! NOTE: amounts whose currency `data` did not carry (`refundMinor`, `amountMinor`) stay
//! minor units as published, with an optional `currency` beside them (written from now on;
//! absent in older events, where a consumer takes it from the booking, the payment, or
//! `after.refundAmount`, see `DomainEvent::fill_from_snapshots`). `money()` pairs them.

use bson::oid::ObjectId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{facts, oid_hex, oid_hex_opt, oid_hex_vec};
use crate::entities::booking::BookingStatus;
use crate::entities::payment::PaymentStatus;
use crate::money::{Currency, Money};

/// `booking.created`: a pending booking holds the seats until `expires_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BookingCreated {
    /// Before this enum: only the envelope's `entityId`.
    #[serde(with = "oid_hex")]
    pub booking_id: ObjectId,
    /// Before this enum: only the envelope's `eventId`.
    #[serde(with = "oid_hex")]
    pub event_id: ObjectId,
    #[serde(with = "oid_hex")]
    pub user_id: ObjectId,
    #[serde(with = "oid_hex_vec")]
    pub seat_ids: Vec<ObjectId>,
    pub expires_at: DateTime<Utc>,
}
facts!(BookingCreated, "bookingId" => booking_id, show "eventId" => event_id);

/// `booking.confirmed`: paid; the seats are sold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BookingConfirmed {
    /// Before this enum: only the envelope's `entityId`.
    #[serde(with = "oid_hex")]
    pub booking_id: ObjectId,
    /// Before this enum: only the envelope's `eventId`.
    #[serde(with = "oid_hex")]
    pub event_id: ObjectId,
    #[serde(with = "oid_hex")]
    pub user_id: ObjectId,
    #[serde(with = "oid_hex_vec")]
    pub seat_ids: Vec<ObjectId>,
    pub final_price: Money,
    /// The payment that paid it. Before this enum: only `after.paymentId`.
    #[serde(default, with = "oid_hex_opt")]
    pub payment_id: Option<ObjectId>,
}
facts!(BookingConfirmed, "bookingId" => booking_id, show "eventId" => event_id);

/// Why a booking was cancelled (`cancellationReason` of the booking).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancellationReason {
    PaymentFailed,
    Expired,
    UserRequested,
    EventCancelled,
}

impl CancellationReason {
    pub const ALL: &'static [CancellationReason] = &[
        CancellationReason::PaymentFailed,
        CancellationReason::Expired,
        CancellationReason::UserRequested,
        CancellationReason::EventCancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CancellationReason::PaymentFailed => "payment_failed",
            CancellationReason::Expired => "expired",
            CancellationReason::UserRequested => "user_requested",
            CancellationReason::EventCancelled => "event_cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|r| r.as_str() == s)
    }
}

/// `booking.cancelled` and `booking.expired`: the seats go back on sale; a paid booking
/// was refunded `refund_minor` (0 for an unpaid one) by refund `refund_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BookingEnded {
    /// Before this enum: only the envelope's `entityId`.
    #[serde(with = "oid_hex")]
    pub booking_id: ObjectId,
    /// Before this enum: only the envelope's `eventId`.
    #[serde(with = "oid_hex")]
    pub event_id: ObjectId,
    #[serde(default, with = "oid_hex_opt")]
    pub user_id: Option<ObjectId>,
    #[serde(with = "oid_hex_vec")]
    pub seat_ids: Vec<ObjectId>,
    pub refund_minor: i64,
    /// Only when a refund was paid.
    #[serde(default, with = "oid_hex_opt", skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<ObjectId>,
    /// The refund's currency. Not in older events (see the module header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<Currency>,
    /// Before this enum: only `after.cancellationReason`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<CancellationReason>,
    /// The status it was cancelled from (was it paid?). Before this enum: only
    /// `before.status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_status: Option<BookingStatus>,
    /// The payment's status after the refund. Before this enum: only `after.paymentStatus`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_status: Option<PaymentStatus>,
}
facts!(BookingEnded, "bookingId" => booking_id, show "eventId" => event_id);

impl BookingEnded {
    /// Whether the booking had been paid (confirmed or completed) when it ended.
    pub fn was_paid(&self) -> Option<bool> {
        self.previous_status
            .map(|s| matches!(s, BookingStatus::Confirmed | BookingStatus::Completed))
    }

    pub fn refund(&self) -> Option<Money> {
        self.currency
            .map(|c| Money::from_minor(self.refund_minor, c))
    }
}

/// `refund.processed` (audit action `refund_completed`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundProcessed {
    /// Before this enum: only the envelope's `entityId`.
    #[serde(with = "oid_hex")]
    pub refund_id: ObjectId,
    /// Before this enum: only the envelope's `eventId`.
    #[serde(with = "oid_hex")]
    pub event_id: ObjectId,
    #[serde(with = "oid_hex")]
    pub booking_id: ObjectId,
    pub refund_minor: i64,
    /// The payment's status after the refund.
    pub payment_status: PaymentStatus,
    /// Before this enum: only `after.refundAmount.currency`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<Currency>,
}
facts!(RefundProcessed, "refundId" => refund_id, show "eventId" => event_id);

impl RefundProcessed {
    pub fn amount(&self) -> Option<Money> {
        self.currency
            .map(|c| Money::from_minor(self.refund_minor, c))
    }
}

/// `payment.initiated` and `payment.completed`: attempt `attempt_number` of paying a
/// booking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentAttempt {
    /// Before this enum: only the envelope's `entityId`.
    #[serde(with = "oid_hex")]
    pub payment_id: ObjectId,
    /// Before this enum: only the envelope's `eventId`.
    #[serde(with = "oid_hex")]
    pub event_id: ObjectId,
    #[serde(with = "oid_hex")]
    pub booking_id: ObjectId,
    pub attempt_number: u32,
    /// `null` when the stored payment had no amount.
    pub amount_minor: Option<i64>,
    /// Not in older events (see the module header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<Currency>,
}
facts!(PaymentAttempt, "paymentId" => payment_id, show "eventId" => event_id);

/// `payment.failed`: the gateway declined attempt `attempt_number`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentFailed {
    /// Before this enum: only the envelope's `entityId`.
    #[serde(with = "oid_hex")]
    pub payment_id: ObjectId,
    /// Before this enum: only the envelope's `eventId`.
    #[serde(with = "oid_hex")]
    pub event_id: ObjectId,
    #[serde(with = "oid_hex")]
    pub booking_id: ObjectId,
    /// The gateway's failure code, such as `card_declined`.
    pub failure_reason: String,
    pub attempt_number: u32,
    pub failed_attempts: u32,
    pub max_failed_attempts: u32,
    pub amount_minor: Option<i64>,
    /// Not in older events (see the module header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<Currency>,
}
facts!(PaymentFailed, "paymentId" => payment_id, show "eventId" => event_id);

impl PaymentAttempt {
    pub fn amount(&self) -> Option<Money> {
        Some(Money::from_minor(self.amount_minor?, self.currency?))
    }
}

impl PaymentFailed {
    pub fn amount(&self) -> Option<Money> {
        Some(Money::from_minor(self.amount_minor?, self.currency?))
    }
}
