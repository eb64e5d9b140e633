//! End-to-end tests against the real nats-server and MongoDB-wire server: one test
//! binary, each test with its own stack from `e2e::spawn_app()`.

mod accounts;
mod analytics;
mod auth;
mod bad_input;
mod events;
mod holds;
mod idempotency;
mod live;
mod metrics;
mod money;
mod notifications;
mod openapi;
mod quickstart;
mod race;
mod redelivery;
mod revocations;
mod sessions;
mod store;
mod tickets;
