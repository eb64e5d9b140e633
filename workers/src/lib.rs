//! The workers of the ticketing platform, in one binary: one module per worker, the
//! MongoDB store, and the runtime that feeds commands to them.
//!
//! Each worker consumes its durable JetStream consumer (shared by every replica), applies
//! a command once (ids derived from the command id, inserts keyed by them, seat locks in
//! NATS KV), publishes domain events, answers the caller's inbox and keeps the result.

pub mod accounts;
pub mod bookings;
pub mod catalog;
pub mod config;
pub mod context;
pub mod expiry;
pub mod holds;
pub mod leases;
pub mod payments;
pub mod projections;
pub mod queries;
pub mod runtime;
pub mod seatmap;
pub mod seatops;
pub mod store;
pub mod tickets_hook;

pub use config::Config;
pub use runtime::{run, Running};
