//! The workers of the ticketing platform, in one binary: one module per worker, the
//! MongoDB store, and the runtime that feeds commands to them.
//!
//! Each worker consumes its durable JetStream consumer (shared by every replica), applies
//! a command once (ids derived from the command id, inserts keyed by them, seat locks in
//! NATS KV), publishes domain events, answers the caller's inbox and keeps the result.

pub mod account_tokens;
pub mod accounts;
pub mod analytics;
pub mod bookings;
pub mod catalog;
pub mod config;
pub mod context;
pub mod expiry;
pub mod gate;
pub mod holds;
pub mod leases;
pub mod metrics;
pub mod notifications;
pub mod payments;
pub mod projections;
pub mod qrimage;
pub mod qrkeys;
pub mod queries;
pub mod revocations;
pub mod runtime;
pub mod scans;
pub mod seatmap;
pub mod seatops;
pub mod store;
pub mod ticket_queries;
pub mod ticketing;
pub mod tickets_hook;

pub use config::Config;
pub use runtime::{run, Running};
