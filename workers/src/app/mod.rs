//! What every worker shares: configuration, the context of connections and names, the
//! process's start-up and command loop, and its metrics.

pub mod commands;
pub mod config;
pub mod consumer;
pub mod context;
pub mod metrics;
pub mod runtime;
pub mod worker;
