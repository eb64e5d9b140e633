//! What every worker shares: configuration, the context of connections and names, the
//! process's start-up and command loop, and its metrics.

pub(crate) mod commands;
pub(crate) mod config;
pub(crate) mod consumer;
pub(crate) mod context;
pub(crate) mod metrics;
pub(crate) mod runtime;
pub(crate) mod worker;
