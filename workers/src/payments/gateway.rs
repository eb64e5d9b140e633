//! The payment provider behind a trait, and the simulated provider used by default.
//!
//! The simulated provider follows DESIGN.md's test cards (`domain::entities::card`) and
//! keeps its own ledger (`payment_gateway_ledger`, keyed by the idempotency key), like a
//! real provider's idempotency keys: the same key answers the same result and charges
//! nothing twice. A real provider plugs in behind the same trait.

use bson::{doc, Document};
use domain::entities::card::{self, CardNumber, CardOutcome};
use domain::{DateTime, Money};
use futures::future::BoxFuture;
use sha2::{Digest, Sha256};

use crate::store::{is_duplicate_key, Store, StoreError};

pub(crate) const LEDGER: &str = "payment_gateway_ledger";

/// One answer of the provider (the domain's type: the charge decisions read it as is).
pub(crate) use domain::payments::decide::GatewayAnswer;

pub trait PaymentGateway: Send + Sync {
    fn name(&self) -> &'static str;
    /// Charges `amount` once per `idempotency_key`.
    fn charge<'a>(
        &'a self,
        idempotency_key: &'a str,
        card: &'a CardNumber,
        amount: Money,
        attempt: u32,
    ) -> BoxFuture<'a, Result<GatewayAnswer, StoreError>>;
    /// Refunds `amount` of an earlier charge once per `idempotency_key`.
    fn refund<'a>(
        &'a self,
        idempotency_key: &'a str,
        charge_transaction_id: &'a str,
        amount: Money,
    ) -> BoxFuture<'a, Result<GatewayAnswer, StoreError>>;
}

/// The simulated provider.
pub(crate) struct Simulated {
    store: Store,
}

impl Simulated {
    pub(crate) fn new(store: Store) -> Self {
        Simulated { store }
    }

    fn transaction_id(prefix: &str, key: &str) -> String {
        let h = Sha256::digest(key.as_bytes());
        format!("{prefix}_{}", hex::encode(&h[..12]))
    }

    /// Records the answer under the key, or returns the one recorded first.
    async fn record(&self, key: &str, entry: Document) -> Result<Document, StoreError> {
        let col = self.store.col(LEDGER);
        match col.insert_one(&entry).await {
            Ok(_) => Ok(entry),
            Err(e) if is_duplicate_key(&e) => {
                Ok(col.find_one(doc! {"_id": key}).await?.unwrap_or(entry))
            }
            Err(e) => Err(e.into()),
        }
    }
}

fn outcome_of(d: &Document) -> CardOutcome {
    let code = |c: &str| -> &'static str {
        match c {
            card::CARD_DECLINED => card::CARD_DECLINED,
            card::INSUFFICIENT_FUNDS => card::INSUFFICIENT_FUNDS,
            _ => card::PROCESSING_ERROR,
        }
    };
    match d.get_str("outcome").unwrap_or_default() {
        "approved" => CardOutcome::Approved,
        "declined" => CardOutcome::Declined {
            code: code(d.get_str("code").unwrap_or_default()),
        },
        _ => CardOutcome::Transient {
            code: code(d.get_str("code").unwrap_or_default()),
        },
    }
}

impl PaymentGateway for Simulated {
    fn name(&self) -> &'static str {
        "simulated"
    }

    fn charge<'a>(
        &'a self,
        key: &'a str,
        number: &'a CardNumber,
        amount: Money,
        attempt: u32,
    ) -> BoxFuture<'a, Result<GatewayAnswer, StoreError>> {
        Box::pin(async move {
            let outcome = card::simulate(number, attempt);
            let (kind, code) = match outcome {
                CardOutcome::Approved => ("approved", None),
                CardOutcome::Declined { code } => ("declined", Some(code)),
                CardOutcome::Transient { code } => ("transient", Some(code)),
            };
            let txn = Self::transaction_id("sim_ch", key);
            let entry = doc! {
                "_id": key, "type": "charge", "outcome": kind, "code": code, "transactionId": &txn,
                "amountMinor": amount.minor(), "currency": amount.currency().as_str(),
                "cardLast4": card::last4(number), "at": DateTime::now(),
            };
            let stored = self.record(key, entry).await?;
            Ok(GatewayAnswer {
                outcome: outcome_of(&stored),
                transaction_id: stored.get_str("transactionId").unwrap_or(&txn).to_string(),
                response: doc! {
                    "provider": "simulated", "outcome": stored.get_str("outcome").unwrap_or_default(),
                    "code": stored.get_str("code").ok(), "transactionId": stored.get_str("transactionId").ok(),
                },
            })
        })
    }

    fn refund<'a>(
        &'a self,
        key: &'a str,
        charge: &'a str,
        amount: Money,
    ) -> BoxFuture<'a, Result<GatewayAnswer, StoreError>> {
        Box::pin(async move {
            let txn = Self::transaction_id("sim_rf", key);
            let entry = doc! {
                "_id": key, "type": "refund", "outcome": "approved", "transactionId": &txn, "charge": charge,
                "amountMinor": amount.minor(), "currency": amount.currency().as_str(), "at": DateTime::now(),
            };
            let stored = self.record(key, entry).await?;
            Ok(GatewayAnswer {
                outcome: CardOutcome::Approved,
                transaction_id: stored.get_str("transactionId").unwrap_or(&txn).to_string(),
                response: doc! {"provider": "simulated", "outcome": "approved", "transactionId": stored.get_str("transactionId").ok()},
            })
        })
    }
}
