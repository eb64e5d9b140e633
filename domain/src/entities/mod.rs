//! Entities of the later workflows (bookings, payments, refunds, tickets, QR codes, scans,
//! notifications, analytics), as stored, and the pure rules those workflows need: booking
//! amounts, refund policy, references and ticket numbers, retry back-off and the simulated
//! card gateway.
//!
//! Every status is a closed enum stored as its lower-case text; each has `as_str`, `parse`
//! and, where the status changes over time, a `can_become(next)` state machine that the
//! workers check before they write.

/// A closed set of values stored as fixed text: serde uses the text, and the enum gets
/// `ALL`, `as_str`, `parse` and `Display`.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        $vis enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored text.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The value whose stored text is `s` exactly.
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub mod analytics;
pub mod booking;
pub mod card;
pub mod notification;
pub mod payment;
pub mod qr_code;
pub mod reference;
pub mod refund;
pub mod retry;
pub mod ticket;
pub mod ticket_scan;

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
