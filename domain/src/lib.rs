//! Pure types and rules of the ticketing platform.
//!
//! Folders follow the workflows: `accounts`, `catalog` (events, seats), `holds`,
//! `bookings`, `payments` (with refunds and retries), `tickets` (with scans, QR codes, QR
//! signing and revocation lists), `notifications`, `analytics`, and `shared` (ids, money,
//! errors, audit, the clock). Each workflow folder has a `decide` module: pure functions
//! that take the current state as domain values, the command's input and `now` (from a
//! [`Clock`]) and return a decision the workers then apply (writes and events). A refused
//! decision carries a [`Refusal`] that names the worker's public error code.
//!
//! Entities mirror the collections of `shared/er-diagram.md` (field names in camelCase as
//! stored). Money is `rust_decimal` here and integer minor units on the wire and in the
//! database. Nothing in this crate does I/O or needs a runtime.
//!
//! NOTE: ids and timestamps use the `bson` crate's `ObjectId` and `DateTime`: `bson` is a
//! pure data-format crate (no I/O), and sharing its types saves a mapping layer per entity.
//!
//! NOTE: the flat paths of before the workflow folders (`domain::hold`, `domain::event`,
//! `domain::qr`, `domain::entities::Booking`, ...) stay as re-exports, so the other crates
//! did not have to change with the move.

#![warn(unreachable_pub)]

#[macro_use]
pub mod shared;

pub mod accounts;
pub mod analytics;
pub mod bookings;
pub mod catalog;
pub mod entities;
/// Domain events: what happened, on the EVENTS stream (not the catalog's shows: those are
/// `catalog::event`).
pub mod events;
pub mod holds;
pub mod notifications;
pub mod payments;
pub mod tickets;

// The paths of before the workflow folders.
pub use accounts::user;
pub use catalog::{event, seat};
pub use holds::hold;
pub use shared::{audit, clock, error, ids, money, refusal};
pub use tickets::{qr, revocation};

pub use bson::oid::ObjectId;
pub use bson::DateTime;
pub use error::DomainError;
pub use money::{Currency, Money};
pub use refusal::Refusal;
pub use shared::actor::Actor;
pub use shared::clock::{Clock, FixedClock, SystemClock};
