//! The command envelope and every command's payload.

use chrono::{DateTime, Utc};
use domain::entities::card::CardBrand;
use domain::entities::payment::PaymentMethod;
use domain::event::{CancellationPolicy, Category, SectionSpec};
use domain::user::{Email, Role};
use domain::{Currency, ObjectId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::names::Area;

/// Who sent a command. `None` for anonymous requests (register).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Issuer {
    #[schemars(with = "crate::catalogue::Oid")]
    pub user_id: ObjectId,
    pub role: Role,
}

impl Issuer {
    /// The issuer as the domain's decisions take it.
    pub fn actor(&self) -> domain::Actor {
        domain::Actor::new(self.user_id, self.role)
    }
}

/// The HTTP request a command came from, for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestContext {
    pub request_id: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    /// The `Idempotency-Key` request's fingerprint (SHA-256 of its method, path and
    /// canonical body, hex), set by the gateway: the workers compare it, not the
    /// command, when the same id comes again (a retried HTTP request rebuilds its
    /// command, and some commands carry fresh salts or tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

/// Every command travels in this envelope. `id` is also the `Nats-Msg-Id`, so JetStream
/// drops a duplicate inside the window, and it keys the worker's idempotency records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommandEnvelope {
    pub id: String,
    pub issuer: Option<Issuer>,
    pub issued_at: DateTime<Utc>,
    #[serde(default)]
    pub context: RequestContext,
    #[serde(flatten)]
    pub command: Command,
}

impl CommandEnvelope {
    /// Who sent the command, as the domain's decisions take it.
    pub fn actor(&self) -> Option<domain::Actor> {
        self.issuer.as_ref().map(Issuer::actor)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", content = "payload", rename_all = "snake_case")]
pub enum Command {
    RegisterUser(RegisterUser),
    /// Creates the first admin from configuration if no user has that e-mail.
    EnsureAdmin(RegisterUser),
    CreateEvent(CreateEvent),
    PublishEvent(EventRef),
    CreateHold(CreateHold),
    ReleaseHold(ReleaseHold),
    /// Admin: cancels an event; its bookings are refunded by fanned-out commands.
    CancelEvent(EventRef),
    CreateBooking(CreateBooking),
    PayBooking(PayBooking),
    CancelBooking(CancelBooking),
    /// The expiry worker: a pending booking past `expiresAt`.
    ExpireBooking(BookingRef),
    /// Staff at a gate: one scan of a ticket's QR code.
    ScanTicket(ScanTicket),
    /// The owner downloaded a ticket's QR image (sent by the queries worker that served it).
    RecordTicketDownload(TicketRef),
    /// Anyone holding the e-mailed token: marks the account verified.
    VerifyEmail(OneTimeToken),
    /// Anyone: mails a reset token if the account exists (the answer never says).
    RequestPasswordReset(PasswordResetRequest),
    /// Anyone holding the e-mailed reset token: sets the new (already hashed) password.
    ConfirmPasswordReset(PasswordResetConfirm),
    /// The gateway after a successful sign-in (fire and forget): `lastLoginAt`, `loginCount`.
    RecordLogin,
    /// The owner read one of their notifications.
    MarkNotificationRead(NotificationRef),
    /// The signed-in user: ends every token of theirs issued before the command.
    Logout,
    /// Admin: suspends an account (it cannot sign in) and ends its tokens.
    SuspendUser(UserRef),
    /// Admin: drop the analytics and rebuild them by replaying EVENTS from the start.
    RebuildAnalytics,
}

impl Command {
    /// The area (and so the worker) and verb of the command's subject.
    pub fn route(&self) -> (Area, &'static str) {
        match self {
            Command::RegisterUser(_) => (Area::Users, "register"),
            Command::EnsureAdmin(_) => (Area::Users, "ensure-admin"),
            Command::CreateEvent(_) => (Area::Events, "create"),
            Command::PublishEvent(_) => (Area::Events, "publish"),
            Command::CreateHold(_) => (Area::Holds, "create"),
            Command::ReleaseHold(_) => (Area::Holds, "release"),
            Command::CancelEvent(_) => (Area::Events, "cancel"),
            Command::CreateBooking(_) => (Area::Bookings, "create"),
            Command::CancelBooking(_) => (Area::Bookings, "cancel"),
            Command::ExpireBooking(_) => (Area::Bookings, "expire"),
            Command::PayBooking(_) => (Area::Payments, "create"),
            Command::ScanTicket(_) => (Area::Scans, "scan"),
            Command::RecordTicketDownload(_) => (Area::Tickets, "record-download"),
            Command::VerifyEmail(_) => (Area::Users, "verify-email"),
            Command::RequestPasswordReset(_) => (Area::Users, "password-reset"),
            Command::ConfirmPasswordReset(_) => (Area::Users, "password-reset-confirm"),
            Command::RecordLogin => (Area::Users, "record-login"),
            Command::MarkNotificationRead(_) => (Area::Users, "notification-read"),
            Command::Logout => (Area::Users, "logout"),
            Command::SuspendUser(_) => (Area::Users, "suspend"),
            Command::RebuildAnalytics => (Area::Events, "rebuild-analytics"),
        }
    }
}

/// The password arrives already hashed (argon2id, at the gateway): plain passwords never
/// travel over NATS or reach a log. The e-mail is checked as the command decodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisterUser {
    pub email: Email,
    pub password_hash: String,
    pub name: String,
    pub phone: Option<String>,
}

/// The date and time stay text (`2030-05-01`, `19:30`): the catalog worker reads them
/// together as the event's start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateEvent {
    pub name: String,
    pub description: String,
    pub event_date: String,
    pub event_time: String,
    pub venue: String,
    pub city: String,
    pub country: String,
    pub category: Category,
    pub currency: Currency,
    pub image_url: Option<String>,
    pub sections: Vec<SectionSpec>,
    pub cancellation_policy: Option<CancellationPolicy>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventRef {
    #[schemars(with = "crate::catalogue::Oid")]
    pub event_id: ObjectId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateHold {
    #[schemars(with = "crate::catalogue::Oid")]
    pub event_id: ObjectId,
    #[schemars(with = "Vec<crate::catalogue::Oid>")]
    pub seat_ids: Vec<ObjectId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseReason {
    /// The owner let the hold go (`DELETE /v1/holds/{id}`).
    Released,
    /// Its time ran out (the expiry worker).
    Expired,
}

impl From<ReleaseReason> for domain::holds::decide::ReleaseReason {
    fn from(r: ReleaseReason) -> Self {
        match r {
            ReleaseReason::Released => Self::Released,
            ReleaseReason::Expired => Self::Expired,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseHold {
    #[schemars(with = "crate::catalogue::Oid")]
    pub hold_id: ObjectId,
    pub reason: ReleaseReason,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateBooking {
    #[schemars(with = "crate::catalogue::Oid")]
    pub hold_id: ObjectId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BookingRef {
    #[schemars(with = "crate::catalogue::Oid")]
    pub booking_id: ObjectId,
}

/// The card number never travels in a command (the COMMANDS stream keeps a week): the
/// gateway puts it in the `card-vault` KV bucket (short TTL) and sends the key. Method,
/// brand and currency are checked as the command decodes: an unknown one is refused,
/// never taken for a default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PayBooking {
    #[schemars(with = "crate::catalogue::Oid")]
    pub booking_id: ObjectId,
    /// The gateway sends only card methods (`card`, `credit_card`, `debit_card`): the
    /// simulated gateway handles cards only.
    pub method: PaymentMethod,
    pub card_token: String,
    pub card_last4: String,
    /// From the card number's prefix, at the gateway (`Unknown` when none matches).
    pub card_brand: CardBrand,
    /// Must be the booking's currency if given (upper case, as `Currency` parses).
    pub currency: Option<Currency>,
}

/// Why a booking is cancelled; decides the refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CancelCause {
    /// The owner (or an admin on their behalf): the event's cancellation policy applies.
    UserRequested,
    /// The organizer cancelled the event: full refund.
    EventCancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CancelBooking {
    #[schemars(with = "crate::catalogue::Oid")]
    pub booking_id: ObjectId,
    pub cause: CancelCause,
    pub note: Option<String>,
}

/// One scan at a gate. The QR string is checked by the scans worker, not the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScanTicket {
    pub qr_string: String,
    pub device_id: String,
    pub gate: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketRef {
    #[schemars(with = "crate::catalogue::Oid")]
    pub ticket_id: ObjectId,
}

/// A one-time token from an e-mail (verification); only its SHA-256 is ever stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OneTimeToken {
    pub token: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordResetRequest {
    pub email: Email,
}

/// The new password arrives hashed (argon2id, at the gateway), like a registration's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordResetConfirm {
    pub token: String,
    pub password_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserRef {
    #[schemars(with = "crate::catalogue::Oid")]
    pub user_id: ObjectId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationRef {
    #[schemars(with = "crate::catalogue::Oid")]
    pub notification_id: ObjectId,
}

/// A command id for an `Idempotency-Key`: scoped to the user, and reduced to characters a
/// KV key and a `Nats-Msg-Id` accept.
pub fn idempotent_command_id(scope: &str, key: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(scope.as_bytes());
    h.update([0u8]);
    h.update(key.as_bytes());
    format!("idem-{}", hex::encode(&h.finalize()[..16]))
}

/// What makes two commands with the same id the same request: the gateway's request
/// fingerprint when it set one, else a SHA-256 of the command (type and payload).
pub fn fingerprint_of(env: &CommandEnvelope) -> String {
    use sha2::{Digest, Sha256};
    if let Some(f) = &env.context.fingerprint {
        return f.clone();
    }
    let body = serde_json::to_vec(&env.command).unwrap_or_default();
    hex::encode(Sha256::digest(&body))
}

/// A fresh, time-sortable command id.
pub fn new_command_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_round_trips_with_type_and_payload() {
        let env = CommandEnvelope {
            id: new_command_id(),
            issuer: None,
            issued_at: Utc::now(),
            context: RequestContext::default(),
            command: Command::CreateHold(CreateHold {
                event_id: ObjectId::new(),
                seat_ids: vec![ObjectId::new()],
            }),
        };
        let v = serde_json::to_value(&env).unwrap();
        assert_eq!(v["type"], "create_hold");
        assert!(v["payload"]["seatIds"].is_array());
        assert_eq!(serde_json::from_value::<CommandEnvelope>(v).unwrap(), env);
    }

    #[test]
    fn a_pay_command_with_an_unknown_method_brand_or_currency_does_not_decode() {
        let good = serde_json::json!({
            "id": "c1", "issuer": null, "issuedAt": "2030-01-01T00:00:00Z",
            "type": "pay_booking",
            "payload": {"bookingId": ObjectId::new().to_hex(), "method": "card",
                        "cardToken": "card-x", "cardLast4": "4242", "cardBrand": "Visa",
                        "currency": "USD"}
        });
        let env: CommandEnvelope = serde_json::from_value(good.clone()).unwrap();
        let Command::PayBooking(p) = &env.command else {
            panic!("{env:?}")
        };
        assert_eq!(
            (p.method, p.card_brand, p.currency),
            (PaymentMethod::Card, CardBrand::Visa, Some(Currency::USD))
        );
        let out = serde_json::to_value(&env).unwrap();
        for field in ["method", "cardBrand", "currency"] {
            assert_eq!(out["payload"][field], good["payload"][field], "{field}");
        }
        for (field, bad, said) in [
            ("method", "bitcoin", "unknown variant `bitcoin`"),
            ("cardBrand", "Diners", "unknown variant `Diners`"),
            ("currency", "usd", "currency: must be"),
        ] {
            let mut v = good.clone();
            v["payload"][field] = serde_json::json!(bad);
            let err = serde_json::from_value::<CommandEnvelope>(v).unwrap_err();
            assert!(err.to_string().contains(said), "{field} = {bad}: {err}");
        }
    }

    #[test]
    fn an_email_in_a_command_is_checked_as_it_decodes() {
        let reset = |email: &str| {
            serde_json::from_value::<Command>(serde_json::json!({
                "type": "request_password_reset", "payload": {"email": email}
            }))
        };
        let Command::RequestPasswordReset(r) = reset("ana@example.com").unwrap() else {
            unreachable!()
        };
        assert_eq!(r.email.as_str(), "ana@example.com");
        assert!(reset("not-an-email").is_err());
    }

    #[test]
    fn idempotency_keys_are_scoped_to_the_user() {
        assert_eq!(
            idempotent_command_id("u1", "k"),
            idempotent_command_id("u1", "k")
        );
        assert_ne!(
            idempotent_command_id("u1", "k"),
            idempotent_command_id("u2", "k")
        );
    }
}
