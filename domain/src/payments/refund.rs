//! Refunds (`refunds`) and the refund policy.
//!
//! The rule, in order:
//! 1. the organizer cancelled the event: 100 % (`event_cancelled`);
//! 2. the event has started: no refund, the cancellation is refused;
//! 3. at least `daysBeforeCancellation` days (counted exactly, 24 h each) before the
//!    start: 100 % (`full_refund_window`);
//! 4. later than that: the policy's `refundPercentage` (`late_cancellation`).
//!
//! The amount is that percentage of what was paid, rounded down to the minor unit, and never
//! more than what is left after earlier refunds, so the refunds of a payment can never add up
//! to more than was paid.

use bson::oid::ObjectId;
use bson::{DateTime, Document};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::catalog::event::CancellationPolicy;
use crate::shared::money::Money;
use crate::DomainError;

pub const POLICY_EVENT_CANCELLED: &str = "event_cancelled";
pub const POLICY_FULL_REFUND_WINDOW: &str = "full_refund_window";
pub const POLICY_LATE_CANCELLATION: &str = "late_cancellation";

string_enum! {
    pub enum RefundStatus {
        Pending => "pending",
        Processed => "processed",
        Failed => "failed",
        /// Taken back after it was processed (a chargeback reversal, an admin's correction).
        Reversed => "reversed",
    }
}

impl RefundStatus {
    /// `pending -> processed | failed`, `processed -> reversed`. A failed refund is retried
    /// as a new refund, not revived.
    pub fn can_become(self, next: RefundStatus) -> bool {
        use RefundStatus::*;
        matches!(
            (self, next),
            (Pending, Processed) | (Pending, Failed) | (Processed, Reversed)
        )
    }
}

string_enum! {
    pub enum RefundReason {
        UserRequested => "user_requested",
        EventCancelled => "event_cancelled",
        DuplicateCharge => "duplicate_charge",
        SystemError => "system_error",
    }
}

/// A whole percentage from 0 to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u8")]
pub struct Percentage(u8);

impl Percentage {
    pub const ZERO: Percentage = Percentage(0);
    pub const FULL: Percentage = Percentage(100);

    pub fn new(p: u32) -> Result<Self, DomainError> {
        if p > 100 {
            return Err(DomainError::invalid("refundPercentage", "must be 0 to 100"));
        }
        Ok(Percentage(p as u8))
    }

    pub fn get(self) -> u8 {
        self.0
    }

    /// `p %` of `amount`, rounded down to the minor unit (towards zero).
    pub fn of(self, amount: Money) -> Money {
        let minor = i128::from(amount.minor()) * i128::from(self.0) / 100;
        // |minor| <= |amount.minor()|, so it fits.
        Money::from_minor(minor as i64, amount.currency())
    }
}

impl TryFrom<u32> for Percentage {
    type Error = DomainError;
    fn try_from(p: u32) -> Result<Self, Self::Error> {
        Percentage::new(p)
    }
}

impl From<Percentage> for u8 {
    fn from(p: Percentage) -> u8 {
        p.0
    }
}

/// The `refunds` collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refund {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub payment_id: ObjectId,
    pub booking_id: ObjectId,
    pub user_id: ObjectId,
    /// What the payment charged.
    pub original_amount: Money,
    pub refund_amount: Money,
    pub refund_percentage: Percentage,
    pub reason: RefundReason,
    /// Which rule applied (`event_cancelled`, `full_refund_window`, `late_cancellation`).
    pub refund_policy: String,
    pub status: RefundStatus,
    pub failure_reason: Option<String>,
    pub refund_transaction_id: Option<String>,
    pub gateway_response: Option<Document>,
    pub requested_by: Option<ObjectId>,
    pub approved_by: Option<ObjectId>,
    pub processing_notes: Option<String>,
    /// The cancel command (its idempotency key).
    pub command_id: String,
    pub created_at: DateTime,
    pub processed_at: Option<DateTime>,
    pub updated_at: DateTime,
}

/// What to refund and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefundDecision {
    /// The percentage of the payment the rule grants.
    pub percentage: Percentage,
    /// What to refund now: the granted share, less earlier refunds, rounded down.
    pub amount: Money,
    /// Which rule applied, stored as `refunds.refundPolicy`.
    pub policy_applied: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RefundError {
    #[error("the event has already started; its tickets can no longer be cancelled")]
    EventStarted,
    #[error(transparent)]
    Invalid(#[from] DomainError),
}

/// Decides the refund of a booking paid `paid`, of which `already_refunded` was returned,
/// cancelled at `now` for an event starting at `event_start` (see the module docs).
pub fn refund_for(
    paid: Money,
    already_refunded: Money,
    policy: CancellationPolicy,
    now: chrono::DateTime<Utc>,
    event_start: chrono::DateTime<Utc>,
    event_cancelled: bool,
) -> Result<RefundDecision, RefundError> {
    if paid.currency() != already_refunded.currency() {
        return Err(
            DomainError::invalid("refundAmount", "must be in the payment's currency").into(),
        );
    }
    if paid.minor() < 0 || already_refunded.minor() < 0 || already_refunded.minor() > paid.minor() {
        return Err(DomainError::invalid(
            "refundAmount",
            "refunds must be between zero and the amount paid",
        )
        .into());
    }
    let policy = policy.check()?;
    let (percentage, policy_applied) = if event_cancelled {
        (Percentage::FULL, POLICY_EVENT_CANCELLED)
    } else if now >= event_start {
        return Err(RefundError::EventStarted);
    } else if event_start - now
        >= chrono::Duration::days(i64::from(policy.days_before_cancellation))
    {
        (Percentage::FULL, POLICY_FULL_REFUND_WINDOW)
    } else {
        (
            Percentage::new(policy.refund_percentage)?,
            POLICY_LATE_CANCELLATION,
        )
    };
    let granted = percentage.of(paid).minor();
    let left = paid.minor() - already_refunded.minor();
    let amount = Money::from_minor(granted.min(left), paid.currency());
    Ok(RefundDecision {
        percentage,
        amount,
        policy_applied,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::money::Currency;
    use chrono::{Duration, TimeZone};
    use proptest::prelude::*;

    fn usd(minor: i64) -> Money {
        Money::from_minor(minor, Currency::USD)
    }

    fn start() -> chrono::DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 3, 14, 19, 30, 0).unwrap()
    }

    fn policy(days: u32, pct: u32) -> CancellationPolicy {
        CancellationPolicy {
            days_before_cancellation: days,
            refund_percentage: pct,
        }
    }

    #[test]
    fn cancelling_early_enough_refunds_everything() {
        let now = start() - Duration::days(14);
        let d = refund_for(usd(10_000), usd(0), policy(14, 50), now, start(), false).unwrap();
        assert_eq!(
            (d.percentage.get(), d.amount, d.policy_applied),
            (100, usd(10_000), "full_refund_window")
        );
    }

    #[test]
    fn cancelling_inside_the_window_refunds_the_policy_share_rounded_down() {
        let now = start() - Duration::days(14) + Duration::seconds(1);
        let d = refund_for(usd(999), usd(0), policy(14, 50), now, start(), false).unwrap();
        assert_eq!(
            (d.percentage.get(), d.amount, d.policy_applied),
            (50, usd(499), "late_cancellation")
        );
        let d = refund_for(usd(999), usd(0), policy(14, 0), now, start(), false).unwrap();
        assert_eq!(d.amount, usd(0));
    }

    #[test]
    fn after_the_start_a_cancellation_is_refused_unless_the_event_was_cancelled() {
        let now = start();
        assert_eq!(
            refund_for(usd(100), usd(0), policy(14, 50), now, start(), false),
            Err(RefundError::EventStarted)
        );
        let d = refund_for(
            usd(100),
            usd(0),
            policy(14, 0),
            now + Duration::days(1),
            start(),
            true,
        )
        .unwrap();
        assert_eq!(
            (d.percentage, d.amount, d.policy_applied),
            (Percentage::FULL, usd(100), "event_cancelled")
        );
    }

    #[test]
    fn earlier_refunds_are_deducted_and_bad_amounts_refused() {
        let now = start() - Duration::days(30);
        let d = refund_for(usd(1000), usd(300), policy(14, 50), now, start(), false).unwrap();
        assert_eq!(d.amount, usd(700));
        let d = refund_for(usd(1000), usd(1000), policy(14, 50), now, start(), true).unwrap();
        assert_eq!(d.amount, usd(0));
        assert!(refund_for(usd(1000), usd(1001), policy(14, 50), now, start(), false).is_err());
        assert!(refund_for(usd(-1), usd(0), policy(14, 50), now, start(), false).is_err());
        let eur = Currency::parse("EUR").unwrap();
        assert!(refund_for(
            usd(1000),
            Money::from_minor(0, eur),
            policy(14, 50),
            now,
            start(),
            false
        )
        .is_err());
        assert!(refund_for(usd(1000), usd(0), policy(14, 101), now, start(), false).is_err());
    }

    #[test]
    fn percentages_are_0_to_100_and_stored_as_numbers() {
        assert!(Percentage::new(101).is_err());
        assert_eq!(
            serde_json::to_value(Percentage::new(50).unwrap()).unwrap(),
            serde_json::json!(50)
        );
        assert!(serde_json::from_value::<Percentage>(serde_json::json!(101)).is_err());
        let b = bson::to_bson(&Percentage::FULL).unwrap();
        assert_eq!(bson::from_bson::<Percentage>(b).unwrap(), Percentage::FULL);
    }

    #[test]
    fn a_refund_moves_on_once() {
        use RefundStatus::*;
        assert!(
            Pending.can_become(Processed)
                && Pending.can_become(Failed)
                && Processed.can_become(Reversed)
        );
        assert!(!Failed.can_become(Processed) && !Reversed.can_become(Processed));
    }

    proptest! {
        #[test]
        fn the_refunds_of_a_payment_never_add_up_to_more_than_was_paid(
            paid in 0i64..10_000_000,
            steps in proptest::collection::vec((0u32..=100, 0u32..30, -5i64..40, any::<bool>()), 0..12),
        ) {
            let mut refunded = 0i64;
            for (pct, days, days_left, cancelled) in steps {
                let now = start() - Duration::days(days_left);
                match refund_for(usd(paid), usd(refunded), policy(days, pct), now, start(), cancelled) {
                    Ok(d) => {
                        prop_assert!(d.amount.minor() >= 0);
                        prop_assert!(d.amount.minor() <= d.percentage.of(usd(paid)).minor());
                        refunded += d.amount.minor();
                    }
                    Err(e) => prop_assert!(e == RefundError::EventStarted && !cancelled && days_left <= 0),
                }
                prop_assert!(refunded <= paid);
            }
        }

        #[test]
        fn a_first_refund_is_the_share_rounded_down(paid in 0i64..10_000_000, pct in 0u32..=100) {
            let now = start() - Duration::hours(1);
            let d = refund_for(usd(paid), usd(0), policy(1, pct), now, start(), false).unwrap();
            prop_assert_eq!(d.amount.minor(), paid * i64::from(pct) / 100);
            prop_assert!(d.amount.minor() * 100 <= paid * i64::from(pct));
            prop_assert!((d.amount.minor() + 1) * 100 > paid * i64::from(pct));
        }
    }
}
