//! The one table of public error codes: each code's HTTP status lives here and nowhere
//! else. Workers reply with these codes over NATS; the gateway forwards them unchanged.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    // 400
    InvalidJson,
    ValidationFailed,
    InvalidId,
    /// 400: a revocation list version (`since`) that is not a version, or is newer
    /// than the list: download the whole list again (`since=0`).
    InvalidSince,
    // 401 / 403
    Unauthorized,
    InvalidToken,
    TokenExpired,
    InvalidCredentials,
    Forbidden,
    /// 403: the payer's e-mail is not verified (`TICKETING_REQUIRE_VERIFIED_TO_PAY`).
    EmailNotVerified,
    /// 400: a verification or reset token that is unknown, used or expired.
    InvalidOrExpiredToken,
    /// 404
    NotificationNotFound,
    // 404
    NotFound,
    EventNotFound,
    SeatNotFound,
    HoldNotFound,
    CommandNotFound,
    BookingNotFound,
    PaymentNotFound,
    RefundNotFound,
    TicketNotFound,
    // 402: the payment gateway said no
    CardDeclined,
    InsufficientFunds,
    ProcessingError,
    CardTokenExpired,
    // 409
    EmailTaken,
    SeatsUnavailable,
    HoldNotActive,
    EventNotOnSale,
    EventNotDraft,
    IdempotencyKeyReused,
    BookingNotPayable,
    BookingExpired,
    PaymentInProgress,
    AlreadyPaid,
    BookingNotCancellable,
    EventStarted,
    EventNotCancellable,
    // 405
    MethodNotAllowed,
    // Commands over NATS whose sender is not proven (never from the gateway's own
    // commands): 401 when the proof is missing or wrong, 403 when it is outside a grant.
    /// No `Ticketing-Signer` / `Ticketing-Signature` headers.
    CommandUnsigned,
    /// The signature does not verify over the message body.
    CommandSignatureInvalid,
    /// No trusted key has the signer's key id.
    CommandSignerUnknown,
    /// Signed too long before it was stored, or stored after its key was retired.
    CommandExpired,
    /// The signer's grant does not cover the command or the role it claims.
    CommandNotGranted,
    // 413 / 415
    PayloadTooLarge,
    UnsupportedMediaType,
    // 5xx
    Internal,
    Unavailable,
    /// The command reached a worker after its caller's deadline and was not applied.
    RequestExpired,
    /// Too much work is queued in front of a worker or the gateway; sent with
    /// `Retry-After`, nothing was applied.
    Overloaded,
}

impl ErrorCode {
    pub fn status(self) -> u16 {
        use ErrorCode::*;
        match self {
            InvalidJson | ValidationFailed | InvalidId | InvalidSince => 400,
            Unauthorized | InvalidToken | TokenExpired | InvalidCredentials => 401,
            Forbidden | EmailNotVerified => 403,
            InvalidOrExpiredToken => 400,
            NotificationNotFound => 404,
            NotFound | EventNotFound | SeatNotFound | HoldNotFound | CommandNotFound
            | BookingNotFound | PaymentNotFound | RefundNotFound | TicketNotFound => 404,
            CardDeclined | InsufficientFunds | ProcessingError | CardTokenExpired => 402,
            EmailTaken
            | SeatsUnavailable
            | HoldNotActive
            | EventNotOnSale
            | EventNotDraft
            | IdempotencyKeyReused
            | BookingNotPayable
            | BookingExpired
            | PaymentInProgress
            | AlreadyPaid
            | BookingNotCancellable
            | EventStarted
            | EventNotCancellable => 409,
            MethodNotAllowed => 405,
            CommandUnsigned | CommandSignatureInvalid | CommandSignerUnknown | CommandExpired => {
                401
            }
            CommandNotGranted => 403,
            PayloadTooLarge => 413,
            UnsupportedMediaType => 415,
            Internal => 500,
            Unavailable | RequestExpired | Overloaded => 503,
        }
    }

    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            InvalidJson => "invalid_json",
            ValidationFailed => "validation_failed",
            InvalidId => "invalid_id",
            InvalidSince => "invalid_since",
            Unauthorized => "unauthorized",
            InvalidToken => "invalid_token",
            TokenExpired => "token_expired",
            InvalidCredentials => "invalid_credentials",
            Forbidden => "forbidden",
            EmailNotVerified => "email_not_verified",
            InvalidOrExpiredToken => "invalid_or_expired_token",
            NotificationNotFound => "notification_not_found",
            NotFound => "not_found",
            EventNotFound => "event_not_found",
            SeatNotFound => "seat_not_found",
            HoldNotFound => "hold_not_found",
            CommandNotFound => "command_not_found",
            BookingNotFound => "booking_not_found",
            PaymentNotFound => "payment_not_found",
            RefundNotFound => "refund_not_found",
            TicketNotFound => "ticket_not_found",
            CardDeclined => "card_declined",
            InsufficientFunds => "insufficient_funds",
            ProcessingError => "processing_error",
            CardTokenExpired => "card_token_expired",
            EmailTaken => "email_taken",
            SeatsUnavailable => "seats_unavailable",
            HoldNotActive => "hold_not_active",
            EventNotOnSale => "event_not_on_sale",
            EventNotDraft => "event_not_draft",
            IdempotencyKeyReused => "idempotency_key_reused",
            BookingNotPayable => "booking_not_payable",
            BookingExpired => "booking_expired",
            PaymentInProgress => "payment_in_progress",
            AlreadyPaid => "already_paid",
            BookingNotCancellable => "booking_not_cancellable",
            EventStarted => "event_started",
            EventNotCancellable => "event_not_cancellable",
            MethodNotAllowed => "method_not_allowed",
            CommandUnsigned => "command_unsigned",
            CommandSignatureInvalid => "command_signature_invalid",
            CommandSignerUnknown => "command_signer_unknown",
            CommandExpired => "command_expired",
            CommandNotGranted => "command_not_granted",
            PayloadTooLarge => "payload_too_large",
            UnsupportedMediaType => "unsupported_media_type",
            Internal => "internal",
            Unavailable => "unavailable",
            RequestExpired => "request_expired",
            Overloaded => "overloaded",
        }
    }
}

/// What a worker answers: an HTTP-shaped status and a JSON body. Errors have the body
/// `{"error": {"code", "message", "details"?}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Reply {
    /// The HTTP status the gateway answers with (201 created, 409 conflict...).
    pub status: u16,
    /// The resource as the HTTP API returns it, or `{"error": {"code", "message",
    /// "details"?}}`.
    pub body: Value,
}

impl Reply {
    pub fn ok(status: u16, body: Value) -> Self {
        Reply { status, body }
    }

    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Reply {
            status: code.status(),
            body: json!({"error": {"code": code.as_str(), "message": message.into()}}),
        }
    }

    pub fn error_with(code: ErrorCode, message: impl Into<String>, details: Value) -> Self {
        Reply {
            status: code.status(),
            body: json!({"error": {"code": code.as_str(), "message": message.into(), "details": details}}),
        }
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The error code of an error reply.
    pub fn code(&self) -> Option<&str> {
        self.body.get("error")?.get("code")?.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_their_wire_names() {
        for c in [
            ErrorCode::SeatsUnavailable,
            ErrorCode::InvalidJson,
            ErrorCode::TokenExpired,
        ] {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
        assert_eq!(Reply::error(ErrorCode::SeatsUnavailable, "x").status, 409);
        assert_eq!(
            Reply::error(ErrorCode::HoldNotFound, "x").code(),
            Some("hold_not_found")
        );
    }
}
