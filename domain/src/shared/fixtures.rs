//! Test fixtures: one plausible value of each entity at a fixed instant, for the decide
//! tests of every workflow. Test-only.

use bson::oid::ObjectId;
use bson::DateTime;

use crate::accounts::user::{Email, Preferences, Role, User, UserStatus};
use crate::bookings::booking::{Booking, BookingSeat, BookingSeatStatus, BookingStatus};
use crate::bookings::reference::booking_reference;
use crate::catalog::event::{CancellationPolicy, Category, Event, EventStatus, Pricing};
use crate::holds::hold::{HoldStatus, SeatHold};
use crate::notifications::notification::{
    Medium, Notification, NotificationStatus, NotificationType, DEFAULT_MAX_ATTEMPTS as N_MAX,
};
use crate::payments::payment::{Payment, PaymentMethod, PaymentStatus, DEFAULT_MAX_ATTEMPTS};
use crate::shared::actor::Actor;
use crate::shared::clock::{Clock, FixedClock};
use crate::shared::money::{Currency, Money};
use crate::tickets::decide::{new_qr_code, new_ticket, TicketEvent};
use crate::tickets::qr_code::{ErrorCorrectionLevel, QrCode};
use crate::tickets::ticket::{SeatInfo, Ticket};

/// 2023-11-14T22:13:20Z.
pub(crate) const T0: i64 = 1_700_000_000_000;

pub(crate) fn clock() -> FixedClock {
    FixedClock::at_millis(T0)
}

pub(crate) fn now() -> DateTime {
    clock().now_stored()
}

pub(crate) fn at(offset_ms: i64) -> DateTime {
    DateTime::from_millis(T0 + offset_ms)
}

pub(crate) fn usd(minor: i64) -> Money {
    Money::from_minor(minor, Currency::USD)
}

pub(crate) fn user_actor() -> Actor {
    Actor::new(ObjectId::new(), Role::User)
}

pub(crate) fn admin() -> Actor {
    Actor::new(ObjectId::new(), Role::Admin)
}

pub(crate) fn staff() -> Actor {
    Actor::new(ObjectId::new(), Role::Staff)
}

/// An active hold of two seats by `owner`, expiring 10 minutes after T0.
pub(crate) fn hold(owner: ObjectId) -> SeatHold {
    SeatHold {
        id: ObjectId::new(),
        user_id: owner,
        event_id: ObjectId::new(),
        seat_ids: vec![ObjectId::new(), ObjectId::new()],
        quantity: 2,
        total_price: usd(3000),
        status: HoldStatus::Active,
        created_at: now(),
        expires_at: at(600_000),
        converted_to_booking_id: None,
        command_id: "hold-cmd".into(),
        updated_at: now(),
    }
}

/// A pending booking of two seats by `owner`, expiring 30 minutes after T0.
pub(crate) fn booking(owner: ObjectId) -> Booking {
    Booking {
        id: ObjectId::new(),
        user_id: owner,
        event_id: ObjectId::new(),
        seat_ids: vec![ObjectId::new(), ObjectId::new()],
        quantity: 2,
        total_price: usd(3000),
        discount: usd(0),
        final_price: usd(3000),
        currency: Currency::USD,
        status: BookingStatus::Pending,
        booking_reference: booking_reference(T0, 7),
        payment_id: None,
        payment_status: None,
        notes: None,
        cancellation_reason: None,
        version: 0,
        hold_id: ObjectId::new(),
        command_id: "book-cmd".into(),
        created_at: now(),
        confirmed_at: None,
        completed_at: None,
        cancelled_at: None,
        expires_at: Some(at(1_800_000)),
        updated_at: now(),
    }
}

pub(crate) fn booking_seats(b: &Booking) -> Vec<BookingSeat> {
    b.seat_ids
        .iter()
        .map(|s| BookingSeat {
            id: ObjectId::new(),
            booking_id: b.id,
            seat_id: *s,
            price_at_booking: usd(1500),
            status: BookingSeatStatus::Confirmed,
            created_at: now(),
            cancelled_at: None,
        })
        .collect()
}

/// A pending first attempt at paying `b`.
pub(crate) fn payment(b: &Booking) -> Payment {
    Payment {
        id: ObjectId::new(),
        booking_id: b.id,
        user_id: b.user_id,
        event_id: b.event_id,
        amount: b.final_price,
        currency: Currency::USD,
        payment_method: PaymentMethod::Card,
        transaction_id: None,
        status: PaymentStatus::Pending,
        failure_reason: None,
        failure_code: None,
        gateway_response: None,
        gateway_name: "simulated".into(),
        card_last4: Some("4242".into()),
        card_brand: None,
        attempt_count: 0,
        max_attempts: DEFAULT_MAX_ATTEMPTS,
        next_retry_at: None,
        refunded_amount: usd(0),
        refund_transaction_id: None,
        command_id: "pay-cmd".into(),
        created_at: now(),
        processed_at: None,
        refunded_at: None,
        updated_at: now(),
    }
}

/// A published event starting `starts_in_ms` after T0, policy 14 days / 50 %.
pub(crate) fn event(starts_in_ms: i64) -> Event {
    Event {
        id: ObjectId::new(),
        name: "Concert".into(),
        description: "A concert".into(),
        event_date: at(starts_in_ms),
        event_time: "19:30".into(),
        venue: "Hall".into(),
        city: "Lisbon".into(),
        country: "PT".into(),
        category: Category::Concert,
        total_capacity: 100,
        available_seats: 100,
        image_url: None,
        pricing: Pricing {
            min_price: usd(1500),
            max_price: usd(1500),
            currency: Currency::USD,
        },
        sections: Vec::new(),
        status: EventStatus::Published,
        visibility: "public".into(),
        cancellation_policy: CancellationPolicy {
            days_before_cancellation: 14,
            refund_percentage: 50,
        },
        created_by: ObjectId::new(),
        published_at: Some(now()),
        cancelled_at: None,
        created_at: now(),
        updated_at: now(),
    }
}

/// The active first ticket of a confirmed `b`, and its valid QR code.
pub(crate) fn ticket(b: &Booking) -> (Ticket, QrCode) {
    let seat = SeatInfo {
        row: "A".into(),
        number: 1,
        section: "Standard".into(),
        price: usd(1500),
    };
    let ev = TicketEvent {
        name: "Concert",
        date: at(86_400_000),
        time: "19:30",
    };
    let t = new_ticket(b, &ev, (b.seat_ids[0], seat), 0, "T1.k.p.s".into(), now()).unwrap();
    let q = new_qr_code(&t, 5, ErrorCorrectionLevel::M, now());
    (t, q)
}

/// A pending e-mail notification for `user`.
pub(crate) fn notification(user: ObjectId) -> Notification {
    Notification {
        id: ObjectId::new(),
        user_id: user,
        event_id: None,
        booking_id: None,
        kind: NotificationType::BookingConfirmation,
        medium: Medium::Email,
        status: NotificationStatus::Pending,
        subject: Some("Your tickets".into()),
        message: None,
        message_data: bson::Document::new(),
        email_address: Some("ana@example.com".into()),
        email_opened_at: None,
        clicked_link: false,
        phone_number: None,
        device_token: None,
        attempt_count: 0,
        max_attempts: N_MAX,
        last_attempt_at: None,
        next_retry_at: None,
        failure_reason: None,
        scheduled_for: None,
        sent_at: None,
        read_at: None,
        command_id: None,
        created_at: now(),
        updated_at: now(),
    }
}

/// An active, unverified user.
pub(crate) fn user() -> User {
    User {
        id: ObjectId::new(),
        email: Email::parse("ana@example.com").unwrap(),
        password_hash: "$argon2id$v=19$x".into(),
        name: "Ana".into(),
        phone: None,
        address: None,
        is_verified: false,
        verification_token: None,
        reset_password_token: None,
        reset_password_expiry: None,
        last_login_at: None,
        login_count: 0,
        role: Role::User,
        status: UserStatus::Active,
        preferences: Preferences::default(),
        created_at: now(),
        updated_at: now(),
    }
}
