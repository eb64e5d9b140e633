//! The success bodies, typed: what the workers answer (`workers::queries`, the command
//! handlers), field by field. Each type also decodes (refusing unknown fields), so the
//! end-to-end test `openapi::every_main_resource_matches_its_documented_schema` reads
//! real answers into them: a field the document lacks, or one it names that the answer
//! does not carry in that type, fails there.
//!
//! Times are RFC 3339 strings in UTC; ids are 24 hex digits; amounts are [`Money`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// An amount: integer minor units, the currency, and the same as a decimal string.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Money {
    #[schema(example = 4999)]
    pub amount_minor: i64,
    #[schema(example = "EUR")]
    pub currency: String,
    #[schema(example = "49.99")]
    pub amount: String,
}

/// One page of a list.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub page: u32,
    pub limit: u32,
    /// Items matching, over every page.
    pub total: u64,
}

/// A user, without secrets.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub phone: Option<String>,
    pub address: Option<Address>,
    pub is_verified: bool,
    pub last_login_at: Option<DateTime<Utc>>,
    pub login_count: i64,
    /// `user`, `staff` or `admin`.
    pub role: String,
    /// `active`, `suspended` or `deleted`.
    pub status: String,
    pub preferences: Preferences,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Address {
    pub street: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zip_code: Option<String>,
    pub country: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Preferences {
    pub email_notifications: bool,
    pub sms_notifications: bool,
    pub marketing_emails: bool,
    pub newsletter: bool,
}

/// An event.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Event {
    pub id: String,
    pub name: String,
    pub description: String,
    /// The event's start: its day at `eventTime`, written as UTC.
    pub event_date: DateTime<Utc>,
    /// `HH:MM`, local to the venue.
    pub event_time: String,
    pub venue: String,
    pub city: String,
    pub country: String,
    #[schema(inline, value_type = super::params::Category)]
    pub category: String,
    pub total_capacity: i64,
    pub available_seats: i64,
    pub image_url: Option<String>,
    pub pricing: Pricing,
    pub sections: Vec<Section>,
    /// `draft`, `published`, `cancelled` or `completed`.
    pub status: String,
    pub visibility: String,
    pub cancellation_policy: CancellationPolicy,
    pub created_by: String,
    pub published_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Only in the answer to `POST /v1/events/{id}/cancel`.
    pub cancellation: Option<CancellationCounts>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Pricing {
    pub min_price: Money,
    pub max_price: Money,
    pub currency: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Section {
    pub name: String,
    pub price: Money,
    pub rows: String,
    pub seats_per_row: u32,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CancellationPolicy {
    pub days_before_cancellation: u32,
    pub refund_percentage: u32,
}

/// A cancelled event's undoing. The cancellation's answer counts the bookings and holds
/// it undoes and says where to follow it (`location`); `GET /v1/events/{id}` then says
/// how many bookings are still to refund (`bookingsLeft`) until `status` is `done`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CancellationCounts {
    /// Bookings being refunded (the cancellation's answer).
    pub bookings: Option<u64>,
    /// Holds released (the cancellation's answer).
    pub holds: Option<u64>,
    /// `processing` while refunds run, then `done`.
    #[schema(example = "processing")]
    pub status: String,
    /// The event: `/v1/events/{id}` (the cancellation's answer).
    pub location: Option<String>,
    /// Bookings still to refund (`GET /v1/events/{id}`).
    pub bookings_left: Option<u64>,
}

/// A seat of the seat map.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Seat {
    pub id: String,
    pub event_id: String,
    pub row: String,
    pub number: i32,
    pub section: String,
    pub price: Money,
    #[schema(inline, value_type = super::params::SeatStatus)]
    pub status: String,
}

/// An event's seats, in row and number order.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeatList {
    pub total: u64,
    pub items: Vec<Seat>,
}

/// A hold of seats.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Hold {
    pub id: String,
    pub user_id: String,
    pub event_id: String,
    pub seat_ids: Vec<String>,
    pub quantity: i32,
    pub total_price: Money,
    /// `active`, `released`, `expired` or `converted_to_booking`.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub converted_to_booking_id: Option<String>,
    pub updated_at: DateTime<Utc>,
    /// Each seat's row, number, section and price: in the answer to the creation.
    pub seats: Option<Vec<HoldSeat>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HoldSeat {
    pub id: String,
    pub row: Option<String>,
    pub number: Option<i32>,
    pub section: Option<String>,
    pub price: Option<Money>,
}

/// A booking.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Booking {
    pub id: String,
    pub user_id: String,
    pub event_id: String,
    pub seat_ids: Vec<String>,
    pub quantity: i32,
    pub total_price: Money,
    pub discount: Money,
    pub final_price: Money,
    pub currency: String,
    /// `pending`, `confirmed`, `cancelled`, `refunded`, `completed` or `expired`.
    pub status: String,
    /// Short code for people, such as `BK-7F3A9C`.
    pub booking_reference: String,
    pub payment_id: Option<String>,
    pub payment_status: Option<String>,
    pub notes: Option<String>,
    pub cancellation_reason: Option<String>,
    pub version: i64,
    pub hold_id: String,
    pub created_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// The booked seats: in `GET /v1/bookings/{id}`.
    pub seats: Option<Vec<BookingSeat>>,
    /// Of a paid booking: `issuing` until its tickets exist, then `issued`.
    pub tickets_status: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BookingSeat {
    pub id: String,
    pub booking_id: String,
    pub seat_id: String,
    pub price_at_booking: Money,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

/// A payment; of the card, only its brand is kept.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Payment {
    pub id: String,
    pub booking_id: String,
    pub user_id: String,
    pub event_id: String,
    pub amount: Money,
    pub currency: String,
    pub payment_method: String,
    pub transaction_id: Option<String>,
    /// `pending`, `processing`, `completed`, `failed`, `refunded` or `partially_refunded`.
    pub status: String,
    pub failure_reason: Option<String>,
    pub failure_code: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub gateway_response: Option<Value>,
    pub gateway_name: String,
    /// The card's last four digits.
    pub card_last4: Option<String>,
    pub card_brand: Option<String>,
    pub attempt_count: i32,
    pub max_attempts: i32,
    pub next_retry_at: Option<DateTime<Utc>>,
    pub refunded_amount: Money,
    pub refund_transaction_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub processed_at: Option<DateTime<Utc>>,
    pub refunded_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// The answer to a payment: the payment and the booking it confirmed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentAnswer {
    pub payment: Payment,
    pub booking: Booking,
    /// Where the booking's tickets appear.
    pub tickets: Option<TicketsProgress>,
}

/// How far the tickets of a paid booking are.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TicketsProgress {
    /// `issuing` or `issued`.
    pub status: String,
    /// How many tickets the booking will have.
    pub expected: u64,
    /// `/v1/bookings/{id}/tickets`.
    pub location: String,
}

/// A refund.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Refund {
    pub id: String,
    pub payment_id: String,
    pub booking_id: String,
    pub user_id: String,
    pub original_amount: Money,
    pub refund_amount: Money,
    pub refund_percentage: u32,
    pub reason: String,
    pub refund_policy: String,
    pub status: String,
    pub failure_reason: Option<String>,
    pub refund_transaction_id: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub gateway_response: Option<Value>,
    pub requested_by: Option<String>,
    pub approved_by: Option<String>,
    pub processing_notes: Option<String>,
    pub created_at: DateTime<Utc>,
    pub processed_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// The answer to a booking's cancellation: the booking, and its refund (null when it was
/// not paid).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelAnswer {
    pub booking: Booking,
    pub refund: Option<Refund>,
}

/// A ticket.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ticket {
    pub id: String,
    pub booking_id: String,
    pub user_id: String,
    pub event_id: String,
    pub seat_id: String,
    pub qr_code_id: String,
    /// The text of the QR code, signed (see `GET /v1/scan-keys`).
    pub qr_string: String,
    pub ticket_number: String,
    pub status: String,
    pub event_name: String,
    pub event_date: DateTime<Utc>,
    pub event_time: String,
    pub seat_info: SeatInfo,
    pub is_scanned: bool,
    pub scanned_at: Option<DateTime<Utc>>,
    pub scanned_by_user_id: Option<String>,
    pub scan_location: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub downloaded_at: Option<DateTime<Utc>>,
    pub download_count: i64,
    pub issued_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeatInfo {
    pub row: String,
    pub number: i32,
    pub section: String,
    pub price: Money,
}

/// A booking's tickets.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BookingTickets {
    pub booking_id: String,
    /// `issuing` until every ticket exists, then `issued`.
    pub status: Option<String>,
    /// How many tickets the booking will have.
    pub expected: Option<u64>,
    pub total: u64,
    pub items: Vec<Ticket>,
}

/// The keys QR codes are signed with, for gates that check them offline.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanKeys {
    pub keys: Vec<ScanKey>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScanKey {
    pub kid: String,
    /// Always `Ed25519`.
    pub alg: String,
    /// 32 bytes, base64.
    pub public_key: String,
}

/// A notification (one-time tokens are never shown).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Notification {
    pub id: String,
    pub user_id: String,
    pub event_id: Option<String>,
    pub booking_id: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    pub medium: String,
    pub status: String,
    pub subject: Option<String>,
    pub message: Option<String>,
    #[schema(value_type = Object)]
    pub message_data: Value,
    pub email_address: Option<String>,
    pub email_opened_at: Option<DateTime<Utc>>,
    pub clicked_link: bool,
    pub phone_number: Option<String>,
    pub device_token: Option<String>,
    pub attempt_count: i32,
    pub max_attempts: i32,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub next_retry_at: Option<DateTime<Utc>>,
    pub failure_reason: Option<String>,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub sent_at: Option<DateTime<Utc>>,
    pub read_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An entry of the audit trail.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditLog {
    pub id: String,
    pub user_id: Option<String>,
    pub action: String,
    pub entity_type: String,
    pub entity_id: Option<String>,
    pub changes: AuditChanges,
    #[schema(inline, value_type = super::params::AuditStatus)]
    pub status: String,
    pub failure_reason: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub status_code: Option<i32>,
    pub response_time: Option<i64>,
    pub timestamp: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditChanges {
    #[schema(value_type = Option<Object>)]
    pub before: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub after: Option<Value>,
}

/// `{"status": "ok"}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
}

/// What the gateway reaches: each `ok`, `down`, or `unknown` when it could not be asked.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Readiness {
    pub nats: String,
    pub mongodb: String,
}

/// A gate's verdict on a scanned QR code.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScanAnswer {
    /// `success` (admit), or why not: `already_scanned`, `invalid`, `cancelled`,
    /// `expired`, `wrong_event`...
    pub status: String,
    /// A stable reason code when not admitted.
    pub reason: Option<String>,
    /// For people.
    pub message: Option<String>,
    /// The ticket as the gate sees it, when the code named one.
    #[schema(value_type = Option<Object>)]
    pub ticket: Option<Value>,
    /// The first scan (`scanId`, `scannedAt`, `gate`, `deviceId`) of a ticket scanned
    /// already.
    #[schema(value_type = Option<Object>)]
    pub first_scan: Option<Value>,
    pub scan_id: String,
}

/// An e-mail address verified.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Verified {
    /// Always true.
    pub verified: bool,
    pub user: User,
}

/// `{"status": "accepted"}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Accepted {
    #[schema(example = "accepted")]
    pub status: String,
}

/// `{"passwordReset": true}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasswordReset {
    pub password_reset: bool,
    /// Every token of the account issued before this instant is void.
    pub tokens_revoked_before: Option<DateTime<Utc>>,
}

/// A logout: `{tokensRevokedBefore}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoggedOut {
    /// Every token of the caller issued before this instant is void.
    pub tokens_revoked_before: DateTime<Utc>,
}

/// A suspension: the account and when its tokens stopped working.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Suspended {
    pub id: String,
    /// Always `suspended`.
    #[schema(example = "suspended")]
    pub status: String,
    pub tokens_revoked_before: DateTime<Utc>,
}

/// An event's sales metrics per period.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Analytics {
    pub event_id: String,
    #[schema(inline, value_type = super::params::Period)]
    pub period: String,
    pub items: Vec<AnalyticsBucket>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnalyticsBucket {
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    /// The nine metrics of the period (`totalRevenue`, `occupancy`, `refundRate`,
    /// `avgTicketPrice`...), as `docs/api.md` defines them.
    #[schema(value_type = Object)]
    pub metrics: Value,
}

/// The analytics rebuilt from the event log.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rebuilt {
    pub rebuilt: bool,
    pub replayed_events: u64,
    pub shows: u64,
}

/// A signed revocation list (`GET /v1/events/{id}/revocations`): `payload` is the
/// base64url JSON of `{eventId, since, version, issuedAt, entries}`, signed with the QR
/// signing key whose public half `/v1/scan-keys` gives (docs/gates.md).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedRevocations {
    /// Always `TRL1`.
    #[schema(example = "TRL1")]
    pub format: String,
    pub kid: String,
    /// Always `Ed25519`.
    #[schema(example = "Ed25519")]
    pub alg: String,
    /// base64url of the list's JSON.
    pub payload: String,
    /// base64url of the Ed25519 signature of `TRL1.<kid>.<payload>`.
    pub signature: String,
}
