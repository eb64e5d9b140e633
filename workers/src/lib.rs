//! The workers of the ticketing platform, in one binary: one module per worker, the
//! MongoDB store, and the runtime that feeds commands to them.
//!
//! Each worker consumes its durable JetStream consumer (shared by every replica), applies
//! a command once (ids derived from the command id, inserts keyed by them, seat locks in
//! NATS KV), publishes domain events, answers the caller's inbox and keeps the result.

pub mod analytics;
pub mod app;
pub mod bookings;
pub mod events;
pub mod holds;
pub mod notifications;
pub mod payments;
pub mod projections;
pub mod queries;
pub mod store;
pub mod tickets;
pub mod users;

pub use app::config::Config;
pub use app::runtime::{run, Running};
