//! Bookings and their seats (`bookings`, `booking_seats`): the stored documents, their
//! status machines, and the price rule: total = sum of the seats' prices, and
//! final price = total - discount with 0 <= discount <= total, all in one currency.

use bson::oid::ObjectId;
use bson::DateTime;
use serde::{Deserialize, Serialize};

use super::reference::BookingReference;
use crate::payments::payment::PaymentStatus;
use crate::shared::money::{Currency, Money};
use crate::DomainError;

string_enum! {
    /// Where a booking is in its life.
    pub enum BookingStatus {
        /// Created from a hold, waiting for payment (expires after 30 minutes).
        Pending => "pending",
        /// Paid: seats booked, tickets issued.
        Confirmed => "confirmed",
        /// The event took place.
        Completed => "completed",
        /// Cancelled by its owner or an admin, expired unpaid, or its payment failed.
        Cancelled => "cancelled",
    }
}

impl BookingStatus {
    /// `pending -> confirmed | cancelled`, `confirmed -> completed | cancelled`; completed
    /// and cancelled bookings never change again.
    pub fn can_become(self, next: BookingStatus) -> bool {
        use BookingStatus::*;
        matches!(
            (self, next),
            (Pending, Confirmed)
                | (Pending, Cancelled)
                | (Confirmed, Completed)
                | (Confirmed, Cancelled)
        )
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, BookingStatus::Completed | BookingStatus::Cancelled)
    }

    /// Whether the booking's seats are taken while it is in this status.
    pub fn takes_seats(self) -> bool {
        !matches!(self, BookingStatus::Cancelled)
    }
}

/// The `bookings` collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Booking {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub user_id: ObjectId,
    pub event_id: ObjectId,
    pub seat_ids: Vec<ObjectId>,
    pub quantity: i32,
    /// Sum of the seats' prices at booking time.
    pub total_price: Money,
    /// Zero when no discount applies (kept, not omitted, so sums aggregate).
    pub discount: Money,
    /// `totalPrice - discount`: what the payment charges.
    pub final_price: Money,
    pub currency: Currency,
    pub status: BookingStatus,
    pub booking_reference: BookingReference,
    pub payment_id: Option<ObjectId>,
    /// Denormalized from the payment for quick reads.
    pub payment_status: Option<PaymentStatus>,
    pub notes: Option<String>,
    pub cancellation_reason: Option<String>,
    /// Optimistic-locking counter, `$inc`ed on every change.
    pub version: i64,
    /// The hold the booking was made from.
    pub hold_id: ObjectId,
    /// The command that created the booking (its idempotency key).
    pub command_id: String,
    pub created_at: DateTime,
    pub confirmed_at: Option<DateTime>,
    pub completed_at: Option<DateTime>,
    pub cancelled_at: Option<DateTime>,
    /// Set while pending: the booking is cancelled if unpaid by then.
    pub expires_at: Option<DateTime>,
    pub updated_at: DateTime,
}

impl Booking {
    /// A pending booking whose payment window has closed.
    pub fn is_expired(&self, now: DateTime) -> bool {
        self.status == BookingStatus::Pending && self.expires_at.is_some_and(|at| at <= now)
    }
}

string_enum! {
    /// Status of one seat within a booking.
    pub enum BookingSeatStatus {
        Confirmed => "confirmed",
        Cancelled => "cancelled",
    }
}

impl BookingSeatStatus {
    /// Only `confirmed -> cancelled`.
    pub fn can_become(self, next: BookingSeatStatus) -> bool {
        self == BookingSeatStatus::Confirmed && next == BookingSeatStatus::Cancelled
    }
}

/// The `booking_seats` collection: one seat of a booking, with its price when booked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BookingSeat {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub booking_id: ObjectId,
    pub seat_id: ObjectId,
    pub price_at_booking: Money,
    pub status: BookingSeatStatus,
    pub created_at: DateTime,
    pub cancelled_at: Option<DateTime>,
}

/// The total of a booking: the sum of its seats' prices. Fails on no seats, a negative
/// price, mixed currencies or overflow.
pub fn booking_total(prices: &[Money]) -> Result<Money, DomainError> {
    let first = prices
        .first()
        .ok_or_else(|| DomainError::invalid("seatIds", "a booking needs at least one seat"))?;
    if prices.iter().any(|p| p.minor() < 0) {
        return Err(DomainError::invalid("price", "must not be negative"));
    }
    if prices.iter().any(|p| p.currency() != first.currency()) {
        return Err(DomainError::invalid(
            "currency",
            "all seats of a booking must share one currency",
        ));
    }
    Money::sum(first.currency(), prices)
        .ok_or_else(|| DomainError::invalid("totalPrice", "out of range"))
}

/// `total - discount`, where the discount is in the total's currency and 0 <= discount <= total.
pub fn final_price(total: Money, discount: Money) -> Result<Money, DomainError> {
    if discount.currency() != total.currency() {
        return Err(DomainError::invalid(
            "discount",
            "must be in the booking's currency",
        ));
    }
    if discount.minor() < 0 || discount.minor() > total.minor() {
        return Err(DomainError::invalid(
            "discount",
            "must be between zero and the total price",
        ));
    }
    Ok(Money::from_minor(
        total.minor() - discount.minor(),
        total.currency(),
    ))
}

/// The three amounts a booking stores, consistent by construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookingAmounts {
    total: Money,
    discount: Money,
    final_price: Money,
}

impl BookingAmounts {
    /// Amounts for seats at `prices`, less `discount` (none means zero).
    pub fn new(prices: &[Money], discount: Option<Money>) -> Result<Self, DomainError> {
        let total = booking_total(prices)?;
        let discount = discount.unwrap_or(Money::zero(total.currency()));
        let final_price = final_price(total, discount)?;
        Ok(BookingAmounts {
            total,
            discount,
            final_price,
        })
    }

    pub fn total(&self) -> Money {
        self.total
    }

    pub fn discount(&self) -> Money {
        self.discount
    }

    pub fn final_price(&self) -> Money {
        self.final_price
    }

    pub fn currency(&self) -> Currency {
        self.total.currency()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use BookingStatus::*;

    fn usd(minor: i64) -> Money {
        Money::from_minor(minor, Currency::USD)
    }

    #[test]
    fn a_booking_is_paid_or_cancelled_and_a_cancelled_one_stays_cancelled() {
        assert!(Pending.can_become(Confirmed) && Pending.can_become(Cancelled));
        assert!(Confirmed.can_become(Completed) && Confirmed.can_become(Cancelled));
        assert!(!Pending.can_become(Completed));
        assert!(Cancelled.is_terminal() && Completed.is_terminal());
        for next in BookingStatus::ALL {
            assert!(!Cancelled.can_become(*next) && !Completed.can_become(*next));
        }
        assert!(!Cancelled.takes_seats() && Pending.takes_seats());
        assert!(BookingSeatStatus::Confirmed.can_become(BookingSeatStatus::Cancelled));
        assert!(!BookingSeatStatus::Cancelled.can_become(BookingSeatStatus::Confirmed));
    }

    #[test]
    fn totals_need_seats_of_one_currency_and_no_negative_prices() {
        let eur = Currency::parse("EUR").unwrap();
        assert_eq!(booking_total(&[usd(1000), usd(550)]).unwrap(), usd(1550));
        assert!(booking_total(&[]).is_err());
        assert!(booking_total(&[usd(1), Money::from_minor(1, eur)]).is_err());
        assert!(booking_total(&[usd(1), usd(-1)]).is_err());
        assert!(booking_total(&[usd(i64::MAX), usd(1)]).is_err());
    }

    #[test]
    fn a_discount_cannot_exceed_the_total_or_be_negative() {
        assert_eq!(final_price(usd(1000), usd(250)).unwrap(), usd(750));
        assert_eq!(final_price(usd(1000), usd(1000)).unwrap(), usd(0));
        assert!(final_price(usd(1000), usd(1001)).is_err());
        assert!(final_price(usd(1000), usd(-1)).is_err());
        let eur = Currency::parse("EUR").unwrap();
        assert!(final_price(usd(1000), Money::from_minor(1, eur)).is_err());
        let a = BookingAmounts::new(&[usd(700), usd(300)], None).unwrap();
        assert_eq!(
            (a.total(), a.discount(), a.final_price()),
            (usd(1000), usd(0), usd(1000))
        );
    }

    #[test]
    fn a_pending_booking_expires_at_its_deadline() {
        let now = DateTime::from_millis(1_700_000_000_000);
        let mut b = sample();
        b.expires_at = Some(now);
        assert!(b.is_expired(now));
        assert!(!b.is_expired(DateTime::from_millis(now.timestamp_millis() - 1)));
        b.status = Confirmed;
        assert!(!b.is_expired(now));
    }

    #[test]
    fn a_booking_round_trips_through_bson() {
        let b = sample();
        let doc = bson::to_document(&b).unwrap();
        assert!(doc.contains_key("_id") && doc.contains_key("bookingReference"));
        assert_eq!(
            doc.get_document("finalPrice")
                .unwrap()
                .get_i64("amountMinor")
                .unwrap(),
            1000
        );
        assert_eq!(bson::from_document::<Booking>(doc).unwrap(), b);
    }

    fn sample() -> Booking {
        let now = DateTime::from_millis(1_700_000_000_000);
        Booking {
            id: ObjectId::new(),
            user_id: ObjectId::new(),
            event_id: ObjectId::new(),
            seat_ids: vec![ObjectId::new()],
            quantity: 1,
            total_price: usd(1000),
            discount: usd(0),
            final_price: usd(1000),
            currency: Currency::USD,
            status: Pending,
            booking_reference: super::super::reference::booking_reference(1_700_000_000_000, 1),
            payment_id: None,
            payment_status: Some(PaymentStatus::Pending),
            notes: None,
            cancellation_reason: None,
            version: 0,
            hold_id: ObjectId::new(),
            command_id: "cmd-1".into(),
            created_at: now,
            confirmed_at: None,
            completed_at: None,
            cancelled_at: None,
            expires_at: Some(now),
            updated_at: now,
        }
    }

    proptest! {
        #[test]
        fn the_total_is_the_sum_and_final_plus_discount_is_the_total(
            prices in proptest::collection::vec(0i64..100_000_000, 1..50),
            discount_share in 0u32..=100,
        ) {
            let ms: Vec<Money> = prices.iter().map(|p| usd(*p)).collect();
            let total = booking_total(&ms).unwrap();
            prop_assert_eq!(total.minor(), prices.iter().sum::<i64>());
            let discount = usd(total.minor() * i64::from(discount_share) / 100);
            let a = BookingAmounts::new(&ms, Some(discount)).unwrap();
            prop_assert_eq!(a.final_price().minor() + a.discount().minor(), a.total().minor());
            prop_assert!(a.final_price().minor() >= 0);
        }

        #[test]
        fn a_booking_leaves_pending_once_and_never_returns(path in proptest::collection::vec(0usize..4, 0..10)) {
            let mut s = Pending;
            let mut confirmed = 0;
            for i in path {
                let next = BookingStatus::ALL[i];
                if s.can_become(next) {
                    prop_assert_ne!(next, Pending);
                    if next == Confirmed { confirmed += 1; }
                    s = next;
                }
            }
            prop_assert!(confirmed <= 1);
        }
    }
}
