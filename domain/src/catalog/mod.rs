//! The catalog: events (their status, pricing, cancellation policy and seat plan) and
//! their seats, and the decisions of the catalog commands (create, publish, cancel).

pub mod decide;
pub mod event;
pub mod seat;
