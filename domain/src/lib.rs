//! Pure types and rules of the ticketing platform.
//!
//! Entities mirror the collections of `shared/er-diagram.md` (field names in camelCase as
//! stored). Money is `rust_decimal` here and integer minor units on the wire and in the
//! database. Nothing in this crate does I/O or needs a runtime.
//!
//! NOTE: ids and timestamps use the `bson` crate's `ObjectId` and `DateTime`: `bson` is a
//! pure data-format crate (no I/O), and sharing its types saves a mapping layer per entity.

pub mod audit;
pub mod entities;
pub mod error;
pub mod event;
pub mod events;
pub mod hold;
pub mod ids;
pub mod money;
pub mod qr;
pub mod revocation;
pub mod seat;
pub mod user;

pub use bson::oid::ObjectId;
pub use bson::DateTime;
pub use error::DomainError;
pub use money::{Currency, Money};
