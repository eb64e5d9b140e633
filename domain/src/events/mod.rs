//! Domain events as one enum, one struct per event: what the EVENTS stream records.
//!
//! [`DomainEvent`] is the payload of an EVENTS message; the envelope (id, time, command,
//! actor, request context, audit snapshots) stays in `streams::events`. The table in this
//! module is the single source of each event's kind (the subject's tail, `hold.created`),
//! its audit action (`hold_created`) and its entity type; each struct names its entity id
//! and the show (`eventId`) it belongs to (see [`Facts`]). A consumer `match`es on the enum,
//! so a new event is a compile error wherever it must be handled.
//!
//! Wire format (see `wire`): adjacently tagged, `{"type": "hold.created", "data": {..}}`,
//! beside the envelope keys derived from the payload (`action`, `entityType`, `entityId`,
//! `eventId`), exactly as the workers published it before this enum existed. Ids in
//! `data` are 24-hex strings, times RFC 3339 strings, money minor units.
//!
//! NOTE: times are `chrono::DateTime<Utc>`, not `bson::DateTime`: the wire carries RFC 3339
//! strings, which chrono's serde reads and writes as is, while `bson::DateTime` would need a
//! helper on every field (its serde form in JSON is `{"$date": ..}`). Entities embedded
//! whole (`SeatHold`, `TicketScan`) keep their own `bson` encoding, as published today.

mod accounts;
mod bookings;
mod catalog;
mod holds;
mod legacy;
mod tickets;
mod wire;

#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use bson::oid::ObjectId;

pub use accounts::{
    CommandRefused, UserLoggedOut, UserPasswordReset, UserRegistered, UserSuspended, UserVerified,
};
pub use bookings::{
    BookingConfirmed, BookingCreated, BookingEnded, CancellationReason, PaymentAttempt,
    PaymentFailed, RefundProcessed,
};
pub use catalog::{EventCreated, EventStatusChanged};
pub use holds::{HoldConverted, HoldCreated, HoldEnded};
pub use tickets::{TicketDownloaded, TicketScanRefused, TicketScanned, TicketsIssued};
pub use wire::{oid_hex, oid_hex_opt, oid_hex_vec};

/// What each event struct says of itself: its entity's id and the show it belongs to, and
/// the `data` keys that hold them (events published before those keys were written get
/// them from the envelope's `entityId` and `eventId`, see `wire`).
pub trait Facts {
    /// The `data` key of the entity id (`holdId`, `bookingId`...).
    const ENTITY_KEY: &'static str;
    /// The `data` key of the show's id, for events that belong to one.
    const SHOW_KEY: Option<&'static str>;
    fn entity_id(&self) -> ObjectId;
    fn show_id(&self) -> Option<ObjectId>;
}

/// Implements [`Facts`] from the names of the fields that hold the ids.
macro_rules! facts {
    ($ty:ty, $ekey:literal => $efield:ident) => {
        impl $crate::events::Facts for $ty {
            const ENTITY_KEY: &'static str = $ekey;
            const SHOW_KEY: Option<&'static str> = None;
            fn entity_id(&self) -> bson::oid::ObjectId {
                self.$efield
            }
            fn show_id(&self) -> Option<bson::oid::ObjectId> {
                None
            }
        }
    };
    ($ty:ty, $ekey:literal => $efield:ident, show $skey:literal => $sfield:ident) => {
        impl $crate::events::Facts for $ty {
            const ENTITY_KEY: &'static str = $ekey;
            const SHOW_KEY: Option<&'static str> = Some($skey);
            fn entity_id(&self) -> bson::oid::ObjectId {
                self.$efield
            }
            fn show_id(&self) -> Option<bson::oid::ObjectId> {
                Some(self.$sfield)
            }
        }
    };
    ($ty:ty, $ekey:literal => $efield:ident, maybe show $skey:literal => $sfield:ident) => {
        impl $crate::events::Facts for $ty {
            const ENTITY_KEY: &'static str = $ekey;
            const SHOW_KEY: Option<&'static str> = Some($skey);
            fn entity_id(&self) -> bson::oid::ObjectId {
                self.$efield
            }
            fn show_id(&self) -> Option<bson::oid::ObjectId> {
                self.$sfield
            }
        }
    };
}
pub(crate) use facts;

/// The one table: variant (its struct) => kind, audit action, entity type.
macro_rules! domain_events {
    ($(
        $(#[$doc:meta])*
        $variant:ident($ty:ty) => $kind:literal, $action:literal, $entity:literal;
    )+) => {
        /// A domain event: what changed, with its facts. See the module header.
        #[derive(Debug, Clone, PartialEq)]
        pub enum DomainEvent {
            $($(#[$doc])* $variant($ty),)+
        }

        /// The kind of a domain event, without its facts.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EventKind {
            $($variant,)+
        }

        impl EventKind {
            /// Every kind, in table order.
            pub const ALL: &'static [EventKind] = &[$(EventKind::$variant),+];

            /// `<entity>.<verb>`, such as `hold.created`: the `type` on the wire and the
            /// subject's tail.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(EventKind::$variant => $kind,)+
                }
            }

            /// The audit log's action, such as `hold_created`.
            pub fn action(self) -> &'static str {
                match self {
                    $(EventKind::$variant => $action,)+
                }
            }

            /// The audit log's entity type, such as `hold`.
            pub fn entity_type(self) -> &'static str {
                match self {
                    $(EventKind::$variant => $entity,)+
                }
            }

            /// The `data` keys of the entity id and of the show id.
            fn keys(self) -> (&'static str, Option<&'static str>) {
                match self {
                    $(EventKind::$variant => (<$ty as Facts>::ENTITY_KEY, <$ty as Facts>::SHOW_KEY),)+
                }
            }
        }

        impl FromStr for EventKind {
            type Err = UnknownKind;
            fn from_str(s: &str) -> Result<Self, UnknownKind> {
                match s {
                    $($kind => Ok(EventKind::$variant),)+
                    _ => Err(UnknownKind(s.to_string())),
                }
            }
        }

        impl DomainEvent {
            pub fn event_kind(&self) -> EventKind {
                match self {
                    $(DomainEvent::$variant(_) => EventKind::$variant,)+
                }
            }

            pub fn entity_id(&self) -> ObjectId {
                match self {
                    $(DomainEvent::$variant(e) => Facts::entity_id(e),)+
                }
            }

            /// The show (`events` document) the change belongs to, when there is one.
            pub fn show_id(&self) -> Option<ObjectId> {
                match self {
                    $(DomainEvent::$variant(e) => Facts::show_id(e),)+
                }
            }

            /// The facts as the `data` object of the wire.
            fn to_data(&self) -> Result<serde_json::Value, serde_json::Error> {
                match self {
                    $(DomainEvent::$variant(e) => serde_json::to_value(e),)+
                }
            }

            /// The event of `kind` whose facts are `data`.
            fn from_data(kind: EventKind, data: serde_json::Value) -> Result<Self, serde_json::Error> {
                match kind {
                    $(EventKind::$variant => serde_json::from_value::<$ty>(data).map(DomainEvent::$variant),)+
                }
            }
        }
    };
}

domain_events! {
    /// A user held seats (`holds::create`).
    HoldCreated(HoldCreated) => "hold.created", "hold_created", "hold";
    /// The owner let a hold go (`holds::release`, reason released).
    HoldReleased(HoldEnded) => "hold.released", "hold_released", "hold";
    /// A hold ran out (`holds::release`, reason expired).
    HoldExpired(HoldEnded) => "hold.expired", "hold_expired", "hold";
    /// A hold became a booking (`bookings::finish_create`).
    HoldConverted(HoldConverted) => "hold.converted", "hold_converted", "hold";
    /// A pending booking was made from a hold (`bookings::finish_create`).
    BookingCreated(BookingCreated) => "booking.created", "booking_created", "booking";
    /// A paid booking's seats are sold (`bookings::confirm`).
    BookingConfirmed(BookingConfirmed) => "booking.confirmed", "booking_confirmed", "booking";
    /// A booking was cancelled (`bookings::cancel_unpaid`, `payments::refunds::refund_and_cancel`).
    BookingCancelled(BookingEnded) => "booking.cancelled", "booking_cancelled", "booking";
    /// A pending booking ran out unpaid (`bookings::cancel_unpaid`, by expiry).
    BookingExpired(BookingEnded) => "booking.expired", "booking_expired", "booking";
    /// A cancelled booking's refund was paid out (`payments::refunds::refund_and_cancel`).
    RefundProcessed(RefundProcessed) => "refund.processed", "refund_completed", "refund";
    /// A payment attempt started (`payments::pay`).
    PaymentInitiated(PaymentAttempt) => "payment.initiated", "payment_initiated", "payment";
    /// A payment attempt was declined (`payments::finish`).
    PaymentFailed(PaymentFailed) => "payment.failed", "payment_failed", "payment";
    /// A payment attempt was charged (`payments::finish`).
    PaymentCompleted(PaymentAttempt) => "payment.completed", "payment_completed", "payment";
    /// A confirmed booking's tickets exist (`ticketing::emit_issued`).
    TicketsIssued(TicketsIssued) => "ticket.issued", "tickets_issued", "booking";
    /// The owner downloaded a ticket's QR image (`ticketing::record_download`).
    TicketDownloaded(TicketDownloaded) => "ticket.downloaded", "ticket_downloaded", "ticket";
    /// A ticket's first scan at a gate (`scans::first_scan`).
    TicketScanned(TicketScanned) => "ticket.scanned", "ticket_scanned", "ticket";
    /// A scan that was not let in (`scans::Scan::refuse`).
    TicketScanRefused(TicketScanRefused) => "ticket.scan_refused", "ticket_scan_refused", "ticket_scan";
    /// A show was created, as a draft (`catalog::create_event`).
    EventCreated(EventCreated) => "event.created", "event_created", "event";
    /// A show went on sale (`catalog::publish_event`).
    EventPublished(EventStatusChanged) => "event.published", "event_published", "event";
    /// A show was cancelled (`catalog::cancel_event`).
    EventCancelled(EventStatusChanged) => "event.cancelled", "event_cancelled", "event";
    /// An account was created (`accounts::register`).
    UserRegistered(UserRegistered) => "user.registered", "user_registered", "user";
    /// A user signed out everywhere (`accounts::logout`).
    UserLoggedOut(UserLoggedOut) => "user.logged_out", "user_logged_out", "user";
    /// An admin suspended an account (`accounts::suspend`).
    UserSuspended(UserSuspended) => "user.suspended", "user_suspended", "user";
    /// A user proved their e-mail (`account_tokens::verify`).
    UserVerified(UserVerified) => "user.verified", "user_verified", "user";
    /// A user set a new password with a reset token (`account_tokens::reset_password`).
    UserPasswordReset(UserPasswordReset) => "user.password_reset", "user_password_reset", "user";
    /// A command whose sender was not proven (`runtime::refuse`).
    CommandRefused(CommandRefused) => "command.refused", "command_refused", "command";
}

impl EventKind {
    /// The kind's entity and verb: the two last tokens of its subject.
    pub fn subject_parts(self) -> (&'static str, &'static str) {
        let s = self.as_str();
        s.split_once('.').unwrap_or((s, ""))
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `type` no variant has: the consumer dead-letters the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown domain event kind `{0}`")]
pub struct UnknownKind(pub String);

impl DomainEvent {
    /// `hold.created`: the `type` on the wire and the subject's tail.
    pub fn kind(&self) -> &'static str {
        self.event_kind().as_str()
    }

    /// The audit action, such as `hold_created`.
    pub fn action(&self) -> &'static str {
        self.event_kind().action()
    }

    pub fn entity_type(&self) -> &'static str {
        self.event_kind().entity_type()
    }

    /// Why the change is a failure in the audit log (today read from `data.failureReason`).
    pub fn failure_reason(&self) -> Option<&str> {
        match self {
            DomainEvent::PaymentFailed(e) => Some(&e.failure_reason),
            DomainEvent::TicketScanRefused(e) => Some(&e.failure_reason),
            DomainEvent::CommandRefused(e) => Some(&e.failure_reason),
            DomainEvent::HoldCreated(_)
            | DomainEvent::HoldReleased(_)
            | DomainEvent::HoldExpired(_)
            | DomainEvent::HoldConverted(_)
            | DomainEvent::BookingCreated(_)
            | DomainEvent::BookingConfirmed(_)
            | DomainEvent::BookingCancelled(_)
            | DomainEvent::BookingExpired(_)
            | DomainEvent::RefundProcessed(_)
            | DomainEvent::PaymentInitiated(_)
            | DomainEvent::PaymentCompleted(_)
            | DomainEvent::TicketsIssued(_)
            | DomainEvent::TicketDownloaded(_)
            | DomainEvent::TicketScanned(_)
            | DomainEvent::EventCreated(_)
            | DomainEvent::EventPublished(_)
            | DomainEvent::EventCancelled(_)
            | DomainEvent::UserRegistered(_)
            | DomainEvent::UserLoggedOut(_)
            | DomainEvent::UserSuspended(_)
            | DomainEvent::UserVerified(_)
            | DomainEvent::UserPasswordReset(_) => None,
        }
    }

    /// The HTTP status the audit log records (today read from `data.statusCode`).
    pub fn status_code(&self) -> Option<u16> {
        match self {
            DomainEvent::CommandRefused(e) => Some(e.status_code),
            _ => None,
        }
    }
}
