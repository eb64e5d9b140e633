//! The entities of the later workflows under their paths of before the workflow folders
//! (`domain::entities::Booking`, `domain::entities::payment::PaymentStatus`, ...): each
//! module and type here is a re-export of its home in `bookings`, `payments`, `tickets`,
//! `notifications` or `analytics`.
//!
//! Every status is a closed enum stored as its lower-case text; each has `as_str`, `parse`
//! and, where the status changes over time, a `can_become(next)` state machine. The
//! workflows' `decide` functions check `can_become` before they return a decision that
//! changes a status; the workers apply those decisions.

pub use crate::analytics::metric as analytics;
pub use crate::bookings::{booking, reference};
pub use crate::notifications::notification;
pub use crate::payments::{card, payment, refund, retry};
pub use crate::tickets::{qr_code, ticket, ticket_scan};

pub use analytics::{Analytics, Metric, MetricValue, Period};
pub use booking::{Booking, BookingAmounts, BookingSeat, BookingSeatStatus, BookingStatus};
pub use card::{CardBrand, CardNumber, CardOutcome};
pub use notification::{Medium, Notification, NotificationStatus, NotificationType};
pub use payment::{Payment, PaymentMethod, PaymentStatus};
pub use qr_code::{ErrorCorrectionLevel, QrCode};
pub use reference::{BookingReference, TicketNumber};
pub use refund::{Percentage, Refund, RefundDecision, RefundError, RefundReason, RefundStatus};
pub use retry::RetryPolicy;
pub use ticket::{SeatInfo, Ticket, TicketStatus};
pub use ticket_scan::{ScanLocation, ScanStatus, TicketScan};

#[cfg(test)]
mod tests {
    use super::*;

    /// Each value's text parses back to it and is what serde writes.
    fn round_trips<T>(all: &[T], as_str: fn(T) -> &'static str, parse: fn(&str) -> Option<T>)
    where
        T: Copy + PartialEq + std::fmt::Debug + serde::Serialize + serde::de::DeserializeOwned,
    {
        for v in all {
            let text = as_str(*v);
            assert_eq!(parse(text), Some(*v), "{text}");
            assert_eq!(serde_json::to_value(v).unwrap(), serde_json::json!(text));
            assert_eq!(
                serde_json::from_value::<T>(serde_json::json!(text)).unwrap(),
                *v
            );
        }
        assert_eq!(parse("no-such-value"), None);
    }

    #[test]
    fn every_status_and_kind_round_trips_as_its_stored_text() {
        round_trips(
            BookingStatus::ALL,
            BookingStatus::as_str,
            BookingStatus::parse,
        );
        round_trips(
            BookingSeatStatus::ALL,
            BookingSeatStatus::as_str,
            BookingSeatStatus::parse,
        );
        round_trips(
            PaymentStatus::ALL,
            PaymentStatus::as_str,
            PaymentStatus::parse,
        );
        round_trips(
            PaymentMethod::ALL,
            PaymentMethod::as_str,
            PaymentMethod::parse,
        );
        round_trips(RefundStatus::ALL, RefundStatus::as_str, RefundStatus::parse);
        round_trips(RefundReason::ALL, RefundReason::as_str, RefundReason::parse);
        round_trips(TicketStatus::ALL, TicketStatus::as_str, TicketStatus::parse);
        round_trips(ScanStatus::ALL, ScanStatus::as_str, ScanStatus::parse);
        round_trips(
            ErrorCorrectionLevel::ALL,
            ErrorCorrectionLevel::as_str,
            ErrorCorrectionLevel::parse,
        );
        round_trips(
            NotificationType::ALL,
            NotificationType::as_str,
            NotificationType::parse,
        );
        round_trips(Medium::ALL, Medium::as_str, Medium::parse);
        round_trips(
            NotificationStatus::ALL,
            NotificationStatus::as_str,
            NotificationStatus::parse,
        );
        round_trips(Metric::ALL, Metric::as_str, Metric::parse);
        round_trips(Period::ALL, Period::as_str, Period::parse);
        round_trips(CardBrand::ALL, CardBrand::as_str, CardBrand::parse);
    }

    #[test]
    fn no_status_may_stay_where_it_is_except_a_further_partial_refund() {
        assert!(BookingStatus::ALL.iter().all(|s| !s.can_become(*s)));
        assert!(BookingSeatStatus::ALL.iter().all(|s| !s.can_become(*s)));
        assert!(RefundStatus::ALL.iter().all(|s| !s.can_become(*s)));
        assert!(TicketStatus::ALL.iter().all(|s| !s.can_become(*s)));
        assert!(NotificationStatus::ALL.iter().all(|s| !s.can_become(*s)));
        for s in PaymentStatus::ALL {
            assert_eq!(
                s.can_become(*s),
                *s == PaymentStatus::PartiallyRefunded,
                "{s}"
            );
        }
    }
}
