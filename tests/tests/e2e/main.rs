//! End-to-end tests against the real nats-server and MongoDB-wire server: one test
//! binary, each test with its own stack from `e2e::spawn_app()`.

mod accounts;
mod analytics;
mod auth;
mod bad_input;
mod events;
mod holds;
mod live;
mod money;
mod notifications;
mod race;
mod redelivery;
mod revocations;
mod store;
mod tickets;
