//! The workers of the ticketing platform, in one binary: one module per worker, the
//! MongoDB store, and the runtime that feeds commands to them.
//!
//! Each worker consumes its durable JetStream consumer (shared by every replica), applies
//! a command once (ids derived from the command id, inserts keyed by them, seat locks in
//! NATS KV), publishes domain events, answers the caller's inbox and keeps the result.

//!
//! The crate's public face is small: [`run`] (or [`run_with_clock`]) with its [`Config`],
//! the [`Running`] handle (whose context the end-to-end tests drive), and two functions
//! the tests and benches call directly. Everything else is `pub(crate)` at most, and `unreachable_pub` keeps it
//! so: a `pub` that nothing outside can reach is a warning.
#![warn(unreachable_pub)]

mod analytics;
mod app;
mod bookings;
mod events;
mod holds;
mod notifications;
mod payments;
mod projections;
mod queries;
mod store;
mod tickets;
mod users;

pub use app::config::Config;
pub use app::context::{Ctx, HandlerError};
pub use app::runtime::{run, run_with_clock, Running};
/// Issues a confirmed booking's tickets (what `booking.confirmed` triggers).
pub use tickets::issue as issue_tickets;
/// A QR string as a PNG image.
pub use tickets::qr_image::png as qr_png;
