//! The gateway: a slim axum HTTP API in front of NATS.
//!
//! It authenticates, validates and documents; every state change becomes a command on
//! JetStream answered by a worker through a reply inbox, and every read a query to the
//! queries worker. It holds no MongoDB connection and keeps no state: any number of
//! gateway processes can run side by side.
//!
//! `main.rs` parses [`Config`], sets up tracing and runs an [`Application`]; tests build
//! the [`Application`] directly, or drive [`routes::router`] with an in-memory
//! [`bus::Bus`].

pub mod auth;
pub mod bus;
pub mod commands;
pub mod config;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod openapi;
pub mod passwords;
pub mod routes;
pub mod startup;
pub mod state;

#[cfg(test)]
mod tests;

pub use config::Config;
pub use error::ApiError;
pub use startup::Application;
pub use state::AppState;
