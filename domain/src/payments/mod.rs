//! Payments with their refunds: the payment and its status machine, card numbers and the
//! simulated gateway, the refund policy, retry back-off, and the decisions of paying and
//! refunding.

pub mod card;
pub mod decide;
pub mod payment;
pub mod refund;
pub mod refund_decide;
pub mod retry;

pub use card::{CardBrand, CardNumber, CardOutcome};
pub use payment::{Payment, PaymentMethod, PaymentStatus};
pub use refund::{Percentage, Refund, RefundDecision, RefundError, RefundReason, RefundStatus};
pub use retry::RetryPolicy;
