//! Why a decision refuses a command: one closed enum for every workflow, so a worker
//! maps a refusal to its public error code with one exhaustive match.
//!
//! Domain does not depend on `streams`; [`Refusal::code`] gives the snake_case name of
//! the `streams::codes::ErrorCode` each refusal stands for (the variant of the same name),
//! and its `Display` is the message the workers send today.
//!
//! | refusal | `ErrorCode` |
//! |---|---|
//! | `Unauthorized` | `Unauthorized` (401) |
//! | `Forbidden` | `Forbidden` (403) |
//! | `EmailNotVerified` | `EmailNotVerified` (403) |
//! | `Invalid` | `ValidationFailed` (400) |
//! | `InvalidOrExpiredToken` | `InvalidOrExpiredToken` (400) |
//! | `AccountNotFound` | `NotFound` (404) |
//! | `EventNotFound`, `SeatNotFound`, `HoldNotFound`, `BookingNotFound`, `TicketNotFound`, `NotificationNotFound` | the code of the same name (404) |
//! | `Declined` | `CardDeclined`, `InsufficientFunds`, `ProcessingError` or `CardTokenExpired` by its failure code (402) |
//! | `SeatsUnavailable`, `HoldNotActive`, `EventNotOnSale`, `EventNotDraft`, `EventNotCancellable`, `BookingNotPayable`, `BookingExpired`, `PaymentInProgress`, `AlreadyPaid`, `BookingNotCancellable`, `EventStarted` | the code of the same name (409) |

use bson::oid::ObjectId;
use thiserror::Error;

use crate::catalog::event::EventStatus;

/// A refused command. Worker-side, each variant is answered with the `ErrorCode` of
/// [`Refusal::code`] and the message of its `Display`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Refusal {
    /// No issuer on the command.
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("verify your e-mail address before paying")]
    EmailNotVerified,
    /// A field of the command is not acceptable.
    #[error("{0}")]
    Invalid(String),
    #[error("the token is unknown, used or expired")]
    InvalidOrExpiredToken,
    #[error("no such account")]
    AccountNotFound,
    #[error("no such event")]
    EventNotFound,
    /// Seats that are not seats of the event.
    #[error("some seats are not seats of this event")]
    SeatNotFound { seat_ids: Vec<ObjectId> },
    /// Also another user's hold, so ids do not leak.
    #[error("no such hold")]
    HoldNotFound,
    /// Also another user's booking.
    #[error("no such booking")]
    BookingNotFound,
    #[error("no such ticket")]
    TicketNotFound,
    #[error("no such notification")]
    NotificationNotFound,
    /// The gateway said no (or the card left the vault before the charge); `code` is the
    /// stored `failureCode`.
    #[error("{message}")]
    Declined { code: String, message: String },
    #[error("some of these seats are taken")]
    SeatsUnavailable { seat_ids: Vec<ObjectId> },
    /// The hold is not active any more; the text says what it is instead.
    #[error("{0}")]
    HoldNotActive(String),
    #[error("{0}")]
    EventNotOnSale(&'static str),
    #[error("a {} event cannot be published", .0.as_str())]
    EventNotDraft(EventStatus),
    #[error("a completed event cannot be cancelled")]
    EventNotCancellable,
    #[error("{0}")]
    BookingNotPayable(&'static str),
    #[error("the booking's payment window has closed")]
    BookingExpired,
    #[error("a payment for this booking is in progress")]
    PaymentInProgress,
    #[error("the booking is paid")]
    AlreadyPaid,
    #[error("{0}")]
    BookingNotCancellable(&'static str),
    #[error("the event has started; its bookings can no longer be cancelled")]
    EventStarted,
}

impl Refusal {
    /// The snake_case name of the `streams::codes::ErrorCode` this refusal is answered
    /// with (as that enum serializes).
    pub fn code(&self) -> &'static str {
        use Refusal::*;
        match self {
            Unauthorized(_) => "unauthorized",
            Forbidden(_) => "forbidden",
            EmailNotVerified => "email_not_verified",
            Invalid(_) => "validation_failed",
            InvalidOrExpiredToken => "invalid_or_expired_token",
            AccountNotFound => "not_found",
            EventNotFound => "event_not_found",
            SeatNotFound { .. } => "seat_not_found",
            HoldNotFound => "hold_not_found",
            BookingNotFound => "booking_not_found",
            TicketNotFound => "ticket_not_found",
            NotificationNotFound => "notification_not_found",
            Declined { code, .. } => match code.as_str() {
                "insufficient_funds" => "insufficient_funds",
                "processing_error" => "processing_error",
                "card_token_expired" => "card_token_expired",
                _ => "card_declined",
            },
            SeatsUnavailable { .. } => "seats_unavailable",
            HoldNotActive(_) => "hold_not_active",
            EventNotOnSale(_) => "event_not_on_sale",
            EventNotDraft(_) => "event_not_draft",
            EventNotCancellable => "event_not_cancellable",
            BookingNotPayable(_) => "booking_not_payable",
            BookingExpired => "booking_expired",
            PaymentInProgress => "payment_in_progress",
            AlreadyPaid => "already_paid",
            BookingNotCancellable(_) => "booking_not_cancellable",
            EventStarted => "event_started",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_names_its_error_code_and_message() {
        assert_eq!(Refusal::HoldNotFound.code(), "hold_not_found");
        assert_eq!(Refusal::AccountNotFound.code(), "not_found");
        assert_eq!(Refusal::Invalid("x".into()).code(), "validation_failed");
        let d = |code: &str| Refusal::Declined {
            code: code.into(),
            message: "m".into(),
        };
        assert_eq!(d("insufficient_funds").code(), "insufficient_funds");
        assert_eq!(d("card_token_expired").code(), "card_token_expired");
        assert_eq!(d("do_not_honor").code(), "card_declined");
        assert_eq!(
            Refusal::EventNotDraft(EventStatus::Cancelled).to_string(),
            "a cancelled event cannot be published"
        );
    }
}
