//! Payments (`payments`): the stored document with its retry and refund bookkeeping, the
//! status machine, and the rule that names a payment's status from how much was refunded.

use bson::oid::ObjectId;
use bson::{DateTime, Document};
use serde::{Deserialize, Serialize};

use super::card::CardBrand;
use crate::shared::money::{Currency, Money};
use crate::DomainError;

string_enum! {
    /// Where a payment is in its life. Retries of a transient failure keep it `pending`
    /// (with `attemptCount` and `nextRetryAt`); only the last answer moves it on.
    pub enum PaymentStatus {
        Pending => "pending",
        Completed => "completed",
        Failed => "failed",
        Refunded => "refunded",
        PartiallyRefunded => "partially_refunded",
    }
}

impl PaymentStatus {
    /// `pending -> completed | failed`; a completed payment can be refunded in part or in
    /// full; a partial refund can be followed by more, up to a full one. `failed` and
    /// `refunded` are final.
    pub fn can_become(self, next: PaymentStatus) -> bool {
        use PaymentStatus::*;
        matches!(
            (self, next),
            (Pending, Completed)
                | (Pending, Failed)
                | (Completed, Refunded)
                | (Completed, PartiallyRefunded)
                | (PartiallyRefunded, PartiallyRefunded)
                | (PartiallyRefunded, Refunded)
        )
    }

    /// Whether the customer was charged (whatever was refunded since).
    pub fn was_charged(self) -> bool {
        matches!(
            self,
            PaymentStatus::Completed | PaymentStatus::Refunded | PaymentStatus::PartiallyRefunded
        )
    }

    /// The status of a charged payment of `paid` after `refunded` in total was returned:
    /// nothing -> completed, all -> refunded, some -> partially refunded. Fails when the
    /// currencies differ or the refunds are negative or exceed the payment.
    pub fn after_refunds(paid: Money, refunded: Money) -> Result<PaymentStatus, DomainError> {
        if paid.currency() != refunded.currency() {
            return Err(DomainError::invalid(
                "refundedAmount",
                "must be in the payment's currency",
            ));
        }
        if refunded.minor() < 0 || refunded.minor() > paid.minor() {
            return Err(DomainError::invalid(
                "refundedAmount",
                "must be between zero and the amount paid",
            ));
        }
        Ok(match refunded.minor() {
            0 => PaymentStatus::Completed,
            r if r == paid.minor() => PaymentStatus::Refunded,
            _ => PaymentStatus::PartiallyRefunded,
        })
    }
}

string_enum! {
    /// How the customer pays.
    pub enum PaymentMethod {
        Card => "card",
        CreditCard => "credit_card",
        DebitCard => "debit_card",
        Paypal => "paypal",
        Stripe => "stripe",
        Mock => "mock",
    }
}

impl PaymentMethod {
    /// Methods that need a card number in the request.
    pub fn takes_card(self) -> bool {
        matches!(
            self,
            PaymentMethod::Card | PaymentMethod::CreditCard | PaymentMethod::DebitCard
        )
    }
}

/// Default `maxAttempts` of a payment.
pub const DEFAULT_MAX_ATTEMPTS: i32 = 3;

/// The `payments` collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub booking_id: ObjectId,
    pub user_id: ObjectId,
    pub event_id: ObjectId,
    pub amount: Money,
    /// The amount's currency, repeated at the top level for queries.
    pub currency: Currency,
    pub payment_method: PaymentMethod,
    /// The gateway's id for the charge, once it answered.
    pub transaction_id: Option<String>,
    pub status: PaymentStatus,
    pub failure_reason: Option<String>,
    pub failure_code: Option<String>,
    /// The gateway's last answer, as it sent it.
    pub gateway_response: Option<Document>,
    pub gateway_name: String,
    pub card_last4: Option<String>,
    pub card_brand: Option<CardBrand>,
    /// Attempts made so far (1 after the first call to the gateway).
    pub attempt_count: i32,
    pub max_attempts: i32,
    /// When the next attempt is due, while a transient failure is being retried.
    pub next_retry_at: Option<DateTime>,
    /// Sum of processed refunds; never more than `amount`.
    pub refunded_amount: Money,
    pub refund_transaction_id: Option<String>,
    /// The pay command (its idempotency key).
    pub command_id: String,
    pub created_at: DateTime,
    pub processed_at: Option<DateTime>,
    pub refunded_at: Option<DateTime>,
    pub updated_at: DateTime,
}

impl Payment {
    /// What can still be refunded: `amount - refundedAmount` (zero if not charged).
    pub fn refundable(&self) -> Money {
        if !self.status.was_charged() {
            return Money::zero(self.amount.currency());
        }
        let left = (self.amount.minor() - self.refunded_amount.minor()).max(0);
        Money::from_minor(left, self.amount.currency())
    }

    /// Whether another attempt is allowed after a transient failure.
    pub fn can_retry(&self) -> bool {
        self.status == PaymentStatus::Pending && self.attempt_count < self.max_attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use PaymentStatus::*;

    fn usd(minor: i64) -> Money {
        Money::from_minor(minor, Currency::USD)
    }

    #[test]
    fn a_payment_is_charged_once_and_refunds_only_move_forward() {
        assert!(Pending.can_become(Completed) && Pending.can_become(Failed));
        assert!(!Failed.can_become(Completed) && !Completed.can_become(Pending));
        assert!(!Refunded.can_become(PartiallyRefunded) && !Refunded.can_become(Completed));
        assert!(!Pending.can_become(Refunded));
        assert!(Completed.was_charged() && !Failed.was_charged() && !Pending.was_charged());
    }

    #[test]
    fn the_status_follows_the_refunded_amount() {
        assert_eq!(
            PaymentStatus::after_refunds(usd(1000), usd(0)).unwrap(),
            Completed
        );
        assert_eq!(
            PaymentStatus::after_refunds(usd(1000), usd(1)).unwrap(),
            PartiallyRefunded
        );
        assert_eq!(
            PaymentStatus::after_refunds(usd(1000), usd(1000)).unwrap(),
            Refunded
        );
        assert!(PaymentStatus::after_refunds(usd(1000), usd(1001)).is_err());
        assert!(PaymentStatus::after_refunds(usd(1000), usd(-1)).is_err());
    }

    #[test]
    fn a_payment_round_trips_through_bson_and_knows_what_is_left_to_refund() {
        let now = DateTime::from_millis(1_700_000_000_000);
        let mut p = Payment {
            id: ObjectId::new(),
            booking_id: ObjectId::new(),
            user_id: ObjectId::new(),
            event_id: ObjectId::new(),
            amount: usd(5000),
            currency: Currency::USD,
            payment_method: PaymentMethod::Card,
            transaction_id: Some("sim_123".into()),
            status: Completed,
            failure_reason: None,
            failure_code: None,
            gateway_response: Some(bson::doc! { "approved": true }),
            gateway_name: "simulated".into(),
            card_last4: Some("4242".into()),
            card_brand: Some(CardBrand::Visa),
            attempt_count: 1,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            next_retry_at: None,
            refunded_amount: usd(1500),
            refund_transaction_id: None,
            command_id: "pay-1".into(),
            created_at: now,
            processed_at: Some(now),
            refunded_at: None,
            updated_at: now,
        };
        let doc = bson::to_document(&p).unwrap();
        assert_eq!(doc.get_str("cardBrand").unwrap(), "Visa");
        assert_eq!(doc.get_str("status").unwrap(), "completed");
        assert_eq!(bson::from_document::<Payment>(doc).unwrap(), p);
        assert_eq!(p.refundable(), usd(3500));
        assert!(!p.can_retry());
        p.status = Pending;
        assert!(p.can_retry());
        p.attempt_count = 3;
        assert!(!p.can_retry());
    }

    proptest! {
        #[test]
        fn a_payment_completes_at_most_once(path in proptest::collection::vec(0usize..5, 0..12)) {
            let mut s = Pending;
            let mut completions = 0;
            for i in path {
                let next = PaymentStatus::ALL[i];
                if s.can_become(next) {
                    if next == Completed { completions += 1; }
                    prop_assert_ne!(next, Pending);
                    s = next;
                }
            }
            prop_assert!(completions <= 1);
        }
    }
}
