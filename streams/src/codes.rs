//! The one table of public error codes: each code's HTTP status lives here and nowhere
//! else. Workers reply with these codes over NATS; the gateway forwards them unchanged.

use domain::Refusal;
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
    /// 401: the token was issued before a password reset, a logout or a suspension.
    TokenRevoked,
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
    BookingNotPayable,
    BookingExpired,
    PaymentInProgress,
    AlreadyPaid,
    BookingNotCancellable,
    EventStarted,
    EventNotCancellable,
    /// 409: a request with this `Idempotency-Key` is still being applied.
    IdempotencyKeyInFlight,
    /// 422: the `Idempotency-Key` was used before with another route or body.
    IdempotencyKeyReused,
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
            Unauthorized | InvalidToken | TokenExpired | TokenRevoked | InvalidCredentials => 401,
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
            | IdempotencyKeyInFlight
            | BookingNotPayable
            | BookingExpired
            | PaymentInProgress
            | AlreadyPaid
            | BookingNotCancellable
            | EventStarted
            | EventNotCancellable => 409,
            IdempotencyKeyReused => 422,
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

    /// Every code, in the table's order (a test checks none is missing).
    pub const ALL: [ErrorCode; 52] = {
        use ErrorCode::*;
        [
            InvalidJson,
            ValidationFailed,
            InvalidId,
            InvalidSince,
            Unauthorized,
            InvalidToken,
            TokenExpired,
            TokenRevoked,
            InvalidCredentials,
            Forbidden,
            EmailNotVerified,
            InvalidOrExpiredToken,
            NotificationNotFound,
            NotFound,
            EventNotFound,
            SeatNotFound,
            HoldNotFound,
            CommandNotFound,
            BookingNotFound,
            PaymentNotFound,
            RefundNotFound,
            TicketNotFound,
            CardDeclined,
            InsufficientFunds,
            ProcessingError,
            CardTokenExpired,
            EmailTaken,
            SeatsUnavailable,
            HoldNotActive,
            EventNotOnSale,
            EventNotDraft,
            BookingNotPayable,
            BookingExpired,
            PaymentInProgress,
            AlreadyPaid,
            BookingNotCancellable,
            EventStarted,
            EventNotCancellable,
            IdempotencyKeyInFlight,
            IdempotencyKeyReused,
            MethodNotAllowed,
            CommandUnsigned,
            CommandSignatureInvalid,
            CommandSignerUnknown,
            CommandExpired,
            CommandNotGranted,
            PayloadTooLarge,
            UnsupportedMediaType,
            Internal,
            Unavailable,
            RequestExpired,
            Overloaded,
        ]
    };

    /// What the code means, for people: the table in `docs/errors.md` is made from it.
    pub fn meaning(self) -> &'static str {
        use ErrorCode::*;
        match self {
            InvalidJson => "The body is not JSON, or could not be read.",
            ValidationFailed => {
                "A field, query parameter or header breaks a rule; the message names it."
            }
            InvalidId => "An id in the path, the query or the body is not 24 hex digits.",
            InvalidSince => "A revocation list's `since` is not a whole version this list has reached: download the whole list again.",
            Unauthorized => "No bearer token was sent where one is needed.",
            InvalidToken => {
                "The bearer token is malformed, forged, revoked, or its account is gone."
            }
            TokenExpired => "The bearer token has expired: sign in again.",
            TokenRevoked => "The bearer token was issued before a logout, a password reset or a suspension of its account: sign in again.",
            InvalidCredentials => "Unknown e-mail or wrong password (the same answer for both).",
            Forbidden => {
                "Signed in, but not allowed: admins or staff only, or the account is suspended."
            }
            EmailNotVerified => {
                "Paying needs a verified e-mail address (`TICKETING_REQUIRE_VERIFIED_TO_PAY`)."
            }
            InvalidOrExpiredToken => {
                "A verification or password-reset token that is unknown, used or expired."
            }
            NotificationNotFound => "No such notification, or it is another user's.",
            NotFound => "No such resource (an unknown route, or an account that is gone).",
            EventNotFound => "No such event, or a draft seen by a non-admin.",
            SeatNotFound => "A seat id that is not a seat of this event.",
            HoldNotFound => "No such hold, or it is another user's.",
            CommandNotFound => "No such command result, or it is another user's.",
            BookingNotFound => "No such booking, or it is another user's.",
            PaymentNotFound => "No such payment, or it is another user's.",
            RefundNotFound => "No such refund, or it is another user's.",
            TicketNotFound => "No such ticket, or it is another user's.",
            CardDeclined => "The payment gateway declined the card; the booking is cancelled.",
            InsufficientFunds => "The card has insufficient funds; the booking is cancelled.",
            ProcessingError => {
                "The payment gateway failed after retries; the booking is cancelled."
            }
            CardTokenExpired => "The stored card token expired before the charge.",
            EmailTaken => "An account with this e-mail exists.",
            SeatsUnavailable => "Some seats are held or booked already; `details` names them.",
            HoldNotActive => "The hold expired, was released, or is booked already.",
            EventNotOnSale => "The event is not published (draft, cancelled or over).",
            EventNotDraft => "Only a draft event can be published.",
            IdempotencyKeyReused => "This `Idempotency-Key` (or command id) was used before with another route or body: choose a new key for a new request.",
            IdempotencyKeyInFlight => "A request with this `Idempotency-Key` is still being applied: retry after `Retry-After`, or read its result at `Location`.",
            BookingNotPayable => "The booking is not pending payment.",
            BookingExpired => "The booking's time to pay ran out.",
            PaymentInProgress => "A payment of this booking is being processed.",
            AlreadyPaid => "The booking is paid already.",
            BookingNotCancellable => "The booking is cancelled or refunded already.",
            EventStarted => "The event has started (or is past its cancellation deadline).",
            EventNotCancellable => "The event is cancelled or over already.",
            MethodNotAllowed => "The route exists, but not with this method (see `Allow`).",
            CommandUnsigned => {
                "A command over NATS without `Ticketing-Signer` / `Ticketing-Signature`."
            }
            CommandSignatureInvalid => "A command over NATS whose signature does not verify.",
            CommandSignerUnknown => "A command over NATS signed by a key no registry entry has.",
            CommandExpired => {
                "A command over NATS signed too long before it was stored, or by a retired key."
            }
            CommandNotGranted => "A command over NATS outside its signer's grant.",
            PayloadTooLarge => "The body is over the limit (`TICKETING_MAX_BODY_BYTES`).",
            UnsupportedMediaType => "The body is not sent as `Content-Type: application/json`.",
            Internal => "An unexpected failure; nothing about it is shown (it is logged).",
            Unavailable => {
                "NATS or the database did not answer in time; try again (`Retry-After`)."
            }
            RequestExpired => {
                "The command reached a worker after its caller's deadline and was not applied."
            }
            Overloaded => {
                "Too many requests at once; nothing was applied; try again (`Retry-After`)."
            }
        }
    }

    /// The code a domain refusal is answered with: the one of the name
    /// [`Refusal::code`] gives (its exhaustive match is the table; a test checks every
    /// refusal names a code).
    pub fn of(refusal: &Refusal) -> ErrorCode {
        let name = refusal.code();
        ErrorCode::ALL
            .into_iter()
            .find(|c| c.as_str() == name)
            .unwrap_or(ErrorCode::Internal)
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
            TokenRevoked => "token_revoked",
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
            IdempotencyKeyInFlight => "idempotency_key_in_flight",
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

    /// The answer to a refused command: its code and message, and for refusals about
    /// seats the seats' ids as `details.seatIds`.
    pub fn refused(refusal: &Refusal) -> Self {
        let code = ErrorCode::of(refusal);
        match refusal {
            Refusal::SeatNotFound { seat_ids } | Refusal::SeatsUnavailable { seat_ids } => {
                let ids: Vec<String> = seat_ids.iter().map(|s| s.to_hex()).collect();
                Reply::error_with(code, refusal.to_string(), json!({ "seatIds": ids }))
            }
            _ => Reply::error(code, refusal.to_string()),
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

    #[test]
    fn each_refusal_is_answered_with_the_code_the_domain_names() {
        use domain::event::EventStatus;
        let seat = domain::ObjectId::new();
        let declined = |code: &str| Refusal::Declined {
            code: code.into(),
            message: "no".into(),
        };
        let all = [
            Refusal::Unauthorized("u"),
            Refusal::Forbidden("f"),
            Refusal::EmailNotVerified,
            Refusal::Invalid("i".into()),
            Refusal::InvalidOrExpiredToken,
            Refusal::AccountNotFound,
            Refusal::EventNotFound,
            Refusal::SeatNotFound {
                seat_ids: vec![seat],
            },
            Refusal::HoldNotFound,
            Refusal::BookingNotFound,
            Refusal::TicketNotFound,
            Refusal::NotificationNotFound,
            declined("insufficient_funds"),
            declined("processing_error"),
            declined("card_token_expired"),
            declined("do_not_honor"),
            Refusal::SeatsUnavailable {
                seat_ids: vec![seat],
            },
            Refusal::HoldNotActive("the hold is expired".into()),
            Refusal::EventNotOnSale("over"),
            Refusal::EventNotDraft(EventStatus::Published),
            Refusal::EventNotCancellable,
            Refusal::BookingNotPayable("b"),
            Refusal::BookingExpired,
            Refusal::PaymentInProgress,
            Refusal::AlreadyPaid,
            Refusal::BookingNotCancellable("c"),
            Refusal::EventStarted,
        ];
        for r in &all {
            let reply = Reply::refused(r);
            assert_eq!(reply.code(), Some(r.code()), "{r:?}");
            assert_eq!(reply.status, ErrorCode::of(r).status());
            assert_eq!(reply.body["error"]["message"], r.to_string());
        }
        let taken = Reply::refused(&Refusal::SeatsUnavailable {
            seat_ids: vec![seat],
        });
        assert_eq!(taken.status, 409);
        assert_eq!(taken.body["error"]["details"]["seatIds"][0], seat.to_hex());
        assert_eq!(Reply::refused(&declined("x")).status, 402);
    }
}
