//! Bookings: the booking and its seats, references and ticket numbers, the price rule, and
//! the decisions of creating, cancelling, expiring and refunding a booking.

pub mod booking;
pub mod decide;
pub mod reference;

pub use booking::{Booking, BookingAmounts, BookingSeat, BookingSeatStatus, BookingStatus};
pub use reference::{BookingReference, TicketNumber};
