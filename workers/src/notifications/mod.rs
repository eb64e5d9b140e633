//! The notifications worker: turns domain events into `notifications` documents and a
//! dispatcher sends the due ones through the pluggable [`senders`].
//!
//! - Creation is a projection over EVENTS (durable consumer `notifications`). A
//!   notification's `_id` derives from the domain event id, its type and its medium, so a
//!   redelivered event inserts nothing twice (the unique `_id` refuses it).
//! - Sending is asynchronous by construction: a booking never waits for a mail relay.
//!   The dispatcher claims a due notification (`pending -> sending`) under the document's
//!   lease and only then calls the sender, so two dispatchers never send one notification
//!   and a redelivery never re-sends it: at most once. A failure worth retrying puts it
//!   back to `pending` with `nextRetryAt` (exponential back-off with jitter) until
//!   `maxAttempts`, then `failed`.
//! - NOTE: a process that dies between the claim and the sender's answer leaves the
//!   notification `sending`; after [`STALE_SENDING`] it is marked `failed` ("outcome
//!   unknown") rather than sent again, the price of at-most-once.

pub mod dispatch;
pub mod senders;
pub mod templates;

use std::time::Duration;

use bson::{doc, Bson, Document};
use domain::entities::notification::{Medium, Notification, NotificationStatus, NotificationType};
use domain::events::{
    BookingConfirmed, BookingEnded, EventStatusChanged, PaymentAttempt, RefundProcessed,
};
use domain::ids::derive_object_id;
use domain::{DateTime, ObjectId};
use futures::TryStreamExt;
use serde_json::{json, Value};
use streams::codes::{ErrorCode, Reply};
use streams::commands::{CommandEnvelope, NotificationRef};
use streams::events::{DomainEvent, EventEnvelope};
use streams::setup;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::info;

use crate::app::consumer::{self, Outcome, Spec};
use crate::app::context::{Ctx, HandlerError};
use crate::app::runtime::wire_config;
use crate::store::{api_json, bson_to_json, is_duplicate_key, names, to_doc};

/// A `sending` notification older than this is given up as `failed` (outcome unknown).
pub const STALE_SENDING: Duration = Duration::from_secs(600);

/// Types whose `messageData` holds a secret (a one-time token): never shown by the API
/// and dropped from the document once sent.
pub const SECRET_TYPES: &[&str] = &["account_verification", "password_reset"];

pub async fn start(
    ctx: &Ctx,
    tasks: &mut JoinSet<()>,
    stopped: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let wire = wire_config(&ctx.cfg);
    let consumer = setup::ensure_projection_consumer(
        &ctx.js,
        &ctx.ns,
        "notifications",
        ctx.ns.all_events(),
        &wire,
    )
    .await
    .map_err(|e| anyhow::anyhow!("ensuring notifications consumer: {e}"))?;
    let senders = std::sync::Arc::new(senders::Senders::from_config(&ctx.cfg)?);
    ctx.metrics.watch(&consumer);
    // NOTE: one event at a time, in stream order: a booking's cancellation withdraws
    // the notifications its confirmation made, so the two must not race.
    tasks.spawn(consumer::each(
        ctx.clone(),
        consumer,
        Spec {
            pull: 100,
            ..Spec::new("notifications", 1)
        },
        stopped.clone(),
        consumer::json::<EventEnvelope>,
        |ctx, d| async move {
            Outcome::of(on_event(&ctx, &d.item).await, Some(Duration::from_secs(1)))
        },
    ));
    tasks.spawn(dispatch::run(ctx.clone(), senders, stopped));
    Ok(())
}

/// What one notification is made from.
pub struct NewNotification {
    /// Idempotency key: the domain event (or command) id it comes from, plus the type.
    pub key: String,
    pub user_id: ObjectId,
    pub event_id: Option<ObjectId>,
    pub booking_id: Option<ObjectId>,
    pub kind: NotificationType,
    pub data: Value,
    pub scheduled_for: Option<DateTime>,
    /// When its cause happened (unix seconds): the time part of the derived `_id`.
    pub at: i64,
}

fn medium_for(user: &Document) -> Medium {
    let prefs = user.get_document("preferences").ok();
    let flag = |k: &str, default: bool| prefs.and_then(|p| p.get_bool(k).ok()).unwrap_or(default);
    let has_phone = user.get_str("phone").is_ok_and(|p| !p.is_empty());
    if flag("emailNotifications", true) {
        Medium::Email
    } else if flag("smsNotifications", false) && has_phone {
        Medium::Sms
    } else {
        Medium::PushNotification
    }
}

/// Inserts a notification (pending) for the user unless one with its key exists. True
/// when this call created it.
pub async fn create(ctx: &Ctx, n: NewNotification) -> Result<bool, HandlerError> {
    let users = ctx.store.col(names::USERS);
    let Some(user) = users.find_one(doc! {"_id": n.user_id}).await? else {
        return Err(HandlerError::Permanent(format!("no user {}", n.user_id)));
    };
    let medium = if SECRET_TYPES.contains(&n.kind.as_str()) {
        // Account e-mails prove the address: always by e-mail.
        Medium::Email
    } else {
        medium_for(&user)
    };
    // Derived from the key, the medium and the cause's time: a redelivery derives it again.
    let id = derive_object_id(
        "notification",
        &format!("{}:{}", n.key, medium.as_str()),
        n.at,
    );
    let mut data = n.data;
    if data.get("name").is_none() {
        data["name"] = json!(user.get_str("name").unwrap_or_default());
    }
    let rendered = templates::render(n.kind.as_str(), &data);
    let secret = SECRET_TYPES.contains(&n.kind.as_str());
    let now = DateTime::now();
    let message_data = bson::to_document(&data)
        .map_err(|e| HandlerError::Permanent(format!("messageData: {e}")))?;
    let note = Notification {
        id,
        user_id: n.user_id,
        event_id: n.event_id,
        booking_id: n.booking_id,
        kind: n.kind,
        medium,
        status: NotificationStatus::Pending,
        subject: Some(rendered.subject),
        message: (!secret).then_some(rendered.text),
        message_data,
        email_address: user.get_str("email").ok().map(str::to_string),
        email_opened_at: None,
        clicked_link: false,
        phone_number: user.get_str("phone").ok().map(str::to_string),
        device_token: user.get_str("deviceToken").ok().map(str::to_string),
        attempt_count: 0,
        max_attempts: ctx.cfg.notify_max_attempts.max(1) as i32,
        last_attempt_at: None,
        next_retry_at: None,
        failure_reason: None,
        scheduled_for: n.scheduled_for,
        sent_at: None,
        read_at: None,
        command_id: Some(n.key),
        created_at: now,
        updated_at: now,
    };
    match ctx
        .store
        .col(names::NOTIFICATIONS)
        .insert_one(to_doc(&note)?)
        .await
    {
        Ok(_) => {
            // No token or address in logs: the type and id only.
            info!(notification = %id, kind = n.kind.as_str(), "notification created");
            Ok(true)
        }
        Err(e) if is_duplicate_key(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn money_text(d: Option<&Document>) -> String {
    d.map(|m| {
        format!(
            "{} {}",
            m.get_str("amount").unwrap_or_default(),
            m.get_str("currency").unwrap_or_default()
        )
    })
    .unwrap_or_default()
}

fn minor_text(minor: i64, currency: &str) -> String {
    let cur = domain::Currency::parse(currency).unwrap_or(domain::Currency::USD);
    domain::Money::from_minor(minor, cur).to_string()
}

/// Template variables about the show.
async fn event_vars(
    ctx: &Ctx,
    event_id: Option<ObjectId>,
) -> Result<(Value, Option<Document>), HandlerError> {
    let Some(event_id) = event_id else {
        return Ok((json!({}), None));
    };
    let ev = ctx
        .store
        .col(names::EVENTS)
        .find_one(doc! {"_id": event_id})
        .await?;
    let Some(e) = ev else {
        return Ok((json!({}), None));
    };
    let date = e
        .get_datetime("eventDate")
        .ok()
        .map(|d| d.to_chrono().format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    Ok((
        json!({
            "eventName": e.get_str("name").unwrap_or_default(),
            "eventDate": date,
            "eventTime": e.get_str("eventTime").unwrap_or_default(),
            "venue": e.get_str("venue").unwrap_or_default(),
            "city": e.get_str("city").unwrap_or_default(),
        }),
        Some(e),
    ))
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

/// The booking's template variables: reference, total, seats, and tickets when issued.
async fn booking_vars(ctx: &Ctx, booking: &Document) -> Result<Value, HandlerError> {
    let booking_id = booking.get_object_id("_id").unwrap_or_default();
    let seat_docs: Vec<Document> = ctx
        .store
        .col(names::BOOKING_SEATS)
        .find(doc! {"bookingId": booking_id})
        .await?
        .try_collect()
        .await?;
    let mut seats = Vec::new();
    let mut labels = std::collections::HashMap::new();
    for bs in &seat_docs {
        let seat_id = bs.get_object_id("seatId").unwrap_or_default();
        let seat = ctx
            .store
            .col(names::SEATS)
            .find_one(doc! {"_id": seat_id})
            .await?
            .unwrap_or_default();
        let label = format!(
            "{}{}",
            seat.get_str("row").unwrap_or_default(),
            seat.get("number")
                .map(|n| bson_to_json(n).to_string())
                .unwrap_or_default()
        );
        labels.insert(seat_id, label.clone());
        seats.push(json!({
            "label": label,
            "section": seat.get_str("section").unwrap_or_default(),
            "price": money_text(bs.get_document("priceAtBooking").ok()),
        }));
    }
    let tickets: Vec<Value> = ctx
        .store
        .col(names::TICKETS)
        .find(doc! {"bookingId": booking_id})
        .await?
        .try_collect::<Vec<Document>>()
        .await?
        .iter()
        .map(|t| {
            let seat = t
                .get_object_id("seatId")
                .ok()
                .and_then(|s| labels.get(&s).cloned())
                .unwrap_or_default();
            json!({"ticketNumber": t.get_str("ticketNumber").unwrap_or_default(), "seat": seat})
        })
        .collect();
    Ok(json!({
        "bookingId": booking_id.to_hex(),
        "bookingReference": booking.get_str("bookingReference").unwrap_or_default(),
        "total": money_text(booking.get_document("finalPrice").ok()),
        "seats": seats,
        "tickets": tickets,
    }))
}

async fn find(ctx: &Ctx, col: &str, id: ObjectId) -> Result<Option<Document>, HandlerError> {
    Ok(ctx.store.col(col).find_one(doc! {"_id": id}).await?)
}

/// The booking's reference for a message (empty when there is no booking).
async fn booking_reference(
    ctx: &Ctx,
    booking_id: Option<ObjectId>,
) -> Result<String, HandlerError> {
    let Some(b) = booking_id else {
        return Ok(String::new());
    };
    Ok(find(ctx, names::BOOKINGS, b)
        .await?
        .and_then(|b| b.get_str("bookingReference").ok().map(str::to_string))
        .unwrap_or_default())
}

/// Turns one domain event into its notifications (none for most events).
pub async fn on_event(ctx: &Ctx, ev: &EventEnvelope) -> Result<(), HandlerError> {
    match &ev.event {
        DomainEvent::BookingConfirmed(e) => booking_confirmed(ctx, ev, e).await,
        DomainEvent::PaymentCompleted(e) => payment_completed(ctx, ev, e).await,
        DomainEvent::BookingCancelled(e) => booking_cancelled(ctx, ev, e).await,
        DomainEvent::RefundProcessed(e) => refund_processed(ctx, ev, e).await,
        DomainEvent::EventCancelled(e) => event_cancelled(ctx, ev, e).await,
        // No message: an expired booking was never paid, and the rest tell nobody.
        DomainEvent::HoldCreated(_)
        | DomainEvent::HoldReleased(_)
        | DomainEvent::HoldExpired(_)
        | DomainEvent::HoldConverted(_)
        | DomainEvent::BookingCreated(_)
        | DomainEvent::BookingExpired(_)
        | DomainEvent::PaymentInitiated(_)
        | DomainEvent::PaymentFailed(_)
        | DomainEvent::TicketsIssued(_)
        | DomainEvent::TicketDownloaded(_)
        | DomainEvent::TicketScanned(_)
        | DomainEvent::TicketScanRefused(_)
        | DomainEvent::EventCreated(_)
        | DomainEvent::EventPublished(_)
        | DomainEvent::UserRegistered(_)
        | DomainEvent::UserLoggedOut(_)
        | DomainEvent::UserSuspended(_)
        | DomainEvent::UserVerified(_)
        | DomainEvent::UserPasswordReset(_)
        | DomainEvent::CommandRefused(_) => Ok(()),
    }
}

/// The booking confirmation, and the reminder `reminderBefore` ahead of the show.
async fn booking_confirmed(
    ctx: &Ctx,
    ev: &EventEnvelope,
    e: &BookingConfirmed,
) -> Result<(), HandlerError> {
    let Some(booking) = find(ctx, names::BOOKINGS, e.booking_id).await? else {
        return Err(HandlerError::Transient("booking not readable yet".into()));
    };
    let user_id = booking
        .get_object_id("userId")
        .map_err(|e| HandlerError::Permanent(e.to_string()))?;
    let (evars, event) = event_vars(ctx, Some(e.event_id)).await?;
    let data = merge(booking_vars(ctx, &booking).await?, evars);
    create(
        ctx,
        NewNotification {
            key: format!("{}:booking_confirmation", ev.id),
            user_id,
            event_id: Some(e.event_id),
            booking_id: Some(e.booking_id),
            kind: NotificationType::BookingConfirmation,
            data: data.clone(),
            scheduled_for: None,
            at: ev.occurred_at.timestamp(),
        },
    )
    .await?;
    // The reminder, `reminderBefore` ahead of the show (now if that has passed).
    let starts = event
        .as_ref()
        .and_then(|e| e.get_datetime("eventDate").ok().copied());
    if let Some(starts) = starts {
        let now = DateTime::now().timestamp_millis();
        if starts.timestamp_millis() > now {
            let at = (starts.timestamp_millis() - ctx.cfg.reminder_before_secs * 1000).max(now);
            create(
                ctx,
                NewNotification {
                    key: format!("{}:event_reminder", ev.id),
                    user_id,
                    event_id: Some(e.event_id),
                    booking_id: Some(e.booking_id),
                    kind: NotificationType::EventReminder,
                    data,
                    scheduled_for: Some(DateTime::from_millis(at)),
                    at: ev.occurred_at.timestamp(),
                },
            )
            .await?;
        }
    }
    Ok(())
}

async fn payment_completed(
    ctx: &Ctx,
    ev: &EventEnvelope,
    e: &PaymentAttempt,
) -> Result<(), HandlerError> {
    let Some(p) = find(ctx, names::PAYMENTS, e.payment_id).await? else {
        return Err(HandlerError::Transient("payment not readable yet".into()));
    };
    let booking_id = p.get_object_id("bookingId").ok();
    let reference = booking_reference(ctx, booking_id).await?;
    let (evars, _) = event_vars(ctx, Some(e.event_id)).await?;
    let data = merge(
        json!({
            "bookingReference": reference,
            "amount": money_text(p.get_document("amount").ok()),
            "cardLast4": p.get_str("cardLast4").unwrap_or_default(),
            "transactionId": p.get_str("transactionId").unwrap_or_default(),
        }),
        evars,
    );
    create(
        ctx,
        NewNotification {
            key: format!("{}:payment_confirmation", ev.id),
            user_id: p
                .get_object_id("userId")
                .map_err(|e| HandlerError::Permanent(e.to_string()))?,
            event_id: Some(e.event_id),
            booking_id,
            kind: NotificationType::PaymentConfirmation,
            data,
            scheduled_for: None,
            at: ev.occurred_at.timestamp(),
        },
    )
    .await?;
    Ok(())
}

/// The booking's reminder is withdrawn; the owner is told why it ended (an event's
/// cancellation has its own message).
async fn booking_cancelled(
    ctx: &Ctx,
    ev: &EventEnvelope,
    e: &BookingEnded,
) -> Result<(), HandlerError> {
    let Some(booking) = find(ctx, names::BOOKINGS, e.booking_id).await? else {
        return Err(HandlerError::Transient("booking not readable yet".into()));
    };
    withdraw(
        ctx,
        doc! {"bookingId": e.booking_id, "type": "event_reminder"},
        "the booking was cancelled",
    )
    .await?;
    let reason = e.reason.map_or("cancelled", |r| r.as_str()).to_string();
    // An event cancellation has its own message (event_cancelled).
    if reason == "event_cancelled" {
        return Ok(());
    }
    let kind = if reason == "payment_failed" {
        NotificationType::PaymentFailed
    } else {
        NotificationType::BookingCancellation
    };
    let currency = booking
        .get_document("finalPrice")
        .ok()
        .and_then(|m| m.get_str("currency").ok())
        .unwrap_or("USD")
        .to_string();
    let refund_minor = e.refund_minor;
    let (evars, _) = event_vars(ctx, Some(e.event_id)).await?;
    let data = merge(
        json!({
            "bookingReference": booking.get_str("bookingReference").unwrap_or_default(),
            "reason": reason,
            "refund": minor_text(refund_minor, &currency),
        }),
        evars,
    );
    create(
        ctx,
        NewNotification {
            key: format!("{}:{}", ev.id, kind.as_str()),
            user_id: booking
                .get_object_id("userId")
                .map_err(|e| HandlerError::Permanent(e.to_string()))?,
            event_id: Some(e.event_id),
            booking_id: Some(e.booking_id),
            kind,
            data,
            scheduled_for: None,
            at: ev.occurred_at.timestamp(),
        },
    )
    .await?;
    Ok(())
}

async fn refund_processed(
    ctx: &Ctx,
    ev: &EventEnvelope,
    e: &RefundProcessed,
) -> Result<(), HandlerError> {
    let Some(r) = find(ctx, names::REFUNDS, e.refund_id).await? else {
        return Err(HandlerError::Transient("refund not readable yet".into()));
    };
    let booking_id = r.get_object_id("bookingId").ok();
    let reference = booking_reference(ctx, booking_id).await?;
    let (evars, _) = event_vars(ctx, Some(e.event_id)).await?;
    let pct = r
        .get("refundPercentage")
        .map(bson_to_json)
        .unwrap_or(Value::Null);
    let data = merge(
        json!({
            "bookingReference": reference,
            "refundAmount": money_text(r.get_document("refundAmount").ok()),
            "originalAmount": money_text(r.get_document("originalAmount").ok()),
            "refundPercentage": match pct { Value::String(s) => s, v => v.to_string() },
        }),
        evars,
    );
    create(
        ctx,
        NewNotification {
            key: format!("{}:refund_processed", ev.id),
            user_id: r
                .get_object_id("userId")
                .map_err(|e| HandlerError::Permanent(e.to_string()))?,
            event_id: Some(e.event_id),
            booking_id,
            kind: NotificationType::RefundProcessed,
            data,
            scheduled_for: None,
            at: ev.occurred_at.timestamp(),
        },
    )
    .await?;
    Ok(())
}

/// Reminders withdrawn; everyone with a live booking, or one this cancellation ended, is
/// told.
async fn event_cancelled(
    ctx: &Ctx,
    ev: &EventEnvelope,
    e: &EventStatusChanged,
) -> Result<(), HandlerError> {
    let event_id = e.event_id;
    withdraw(
        ctx,
        doc! {"eventId": event_id, "type": "event_reminder"},
        "the event was cancelled",
    )
    .await?;
    // Everyone with a live booking, or one this cancellation ended.
    let bookings: Vec<Document> = ctx
        .store
        .col(names::BOOKINGS)
        .find(doc! {"eventId": event_id})
        .await?
        .try_collect()
        .await?;
    let mut users: Vec<ObjectId> = bookings
        .iter()
        .filter(|b| {
            matches!(b.get_str("status"), Ok("confirmed") | Ok("pending"))
                || b.get_str("cancellationReason") == Ok("event_cancelled")
        })
        .filter_map(|b| b.get_object_id("userId").ok())
        .collect();
    users.sort();
    users.dedup();
    let (evars, _) = event_vars(ctx, Some(event_id)).await?;
    for user_id in users {
        create(
            ctx,
            NewNotification {
                key: format!("{}:event_cancelled:{}", ev.id, user_id.to_hex()),
                user_id,
                event_id: Some(event_id),
                booking_id: None,
                kind: NotificationType::EventCancelled,
                data: evars.clone(),
                scheduled_for: None,
                at: ev.occurred_at.timestamp(),
            },
        )
        .await?;
    }
    Ok(())
}

/// Gives up the pending notifications matching `filter` (reminders of a cancelled
/// booking or event), each under its lease so a dispatcher's claim cannot interleave.
async fn withdraw(ctx: &Ctx, filter: Document, reason: &str) -> Result<(), HandlerError> {
    let col = ctx.store.col(names::NOTIFICATIONS);
    let mut f = filter;
    f.insert("status", "pending");
    let ids: Vec<ObjectId> = col
        .find(f)
        .projection(doc! {"_id": 1})
        .await?
        .try_collect::<Vec<Document>>()
        .await?
        .iter()
        .filter_map(|d| d.get_object_id("_id").ok())
        .collect();
    for id in ids {
        let col = col.clone();
        crate::store::leases::with_lease(ctx, names::NOTIFICATIONS, id, || async move {
            let cur = col.find_one(doc! {"_id": id}).await?;
            if cur.as_ref().and_then(|d| d.get_str("status").ok()) == Some("pending") {
                let now = DateTime::now();
                col.update_one(
                    doc! {"_id": id},
                    doc! {"$set": {"status": "failed", "failureReason": reason, "nextRetryAt": Bson::Null, "updatedAt": now}},
                )
                .await?;
            }
            Ok(())
        })
        .await?;
    }
    Ok(())
}

/// A notification as the API shows it: no one-time tokens.
pub fn public_json(d: &Document) -> Value {
    let mut v = api_json(d);
    if let Some(md) = v.get_mut("messageData").and_then(Value::as_object_mut) {
        md.remove("token");
    }
    if SECRET_TYPES.contains(&d.get_str("type").unwrap_or_default()) {
        if let Some(o) = v.as_object_mut() {
            o.remove("message");
        }
    }
    v
}

/// `GET /v1/me/notifications`: the issuer's, newest first.
pub async fn mine(
    ctx: &Ctx,
    user_id: ObjectId,
    page: u32,
    limit: u32,
) -> Result<Reply, crate::store::StoreError> {
    let col = ctx.store.col(names::NOTIFICATIONS);
    let body = crate::store::paged(
        &col,
        doc! {"userId": user_id},
        doc! {"createdAt": -1, "_id": -1},
        page,
        limit,
        public_json,
    )
    .await?;
    Ok(Reply::ok(200, body))
}

/// `POST /v1/me/notifications/{id}/read`: `sent -> read` (other states keep their status
/// and get `readAt`). Another user's notification is 404.
pub async fn mark_read(
    ctx: &Ctx,
    env: &CommandEnvelope,
    c: &NotificationRef,
) -> Result<Reply, HandlerError> {
    let Some(issuer) = env.issuer.clone() else {
        return Ok(Reply::error(ErrorCode::Unauthorized, "sign in first"));
    };
    let col = ctx.store.col(names::NOTIFICATIONS);
    let id = c.notification_id;
    crate::store::leases::with_lease(ctx, names::NOTIFICATIONS, id, || async move {
        let Some(mut d) = col.find_one(doc! {"_id": id}).await? else {
            return Ok(Reply::error(
                ErrorCode::NotificationNotFound,
                "no such notification",
            ));
        };
        if d.get_object_id("userId").ok() != Some(issuer.user_id) {
            return Ok(Reply::error(
                ErrorCode::NotificationNotFound,
                "no such notification",
            ));
        }
        if d.get_datetime("readAt").is_err() {
            let now = DateTime::now();
            let mut set = doc! {"readAt": now, "updatedAt": now};
            if d.get_str("status") == Ok("sent") {
                set.insert("status", "read");
            }
            col.update_one(doc! {"_id": id}, doc! {"$set": set.clone()})
                .await?;
            d.extend(set);
        }
        Ok(Reply::ok(200, public_json(&d)))
    })
    .await
}
