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
//!
//! Where it lives: `messages` (which event makes which notification) with `vars` (their
//! template variables), [`templates`], [`dispatch`] with [`senders`], and `inbox` (the
//! user's list and marking read).

pub(crate) mod dispatch;
mod inbox;
mod messages;
pub(crate) mod senders;
pub(crate) mod templates;
mod vars;

use std::time::Duration;

use domain::entities::notification::{Notification, NotificationStatus, NotificationType};
use domain::ids::derive_object_id;
use domain::notifications::decide;
use domain::user::User;
use domain::{DateTime, ObjectId};
use serde_json::{json, Value};
use streams::events::EventEnvelope;
use streams::setup;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::info;

pub(crate) use self::inbox::{mark_read, mine};
pub(crate) use self::messages::on_event;
use crate::app::consumer::{self, Outcome, Spec};
use crate::app::context::{Ctx, HandlerError};
use crate::app::runtime::wire_config;
use crate::store::repo::Repo;

/// A `sending` notification older than this is given up as `failed` (outcome unknown).
pub(crate) const STALE_SENDING: Duration = Duration::from_secs(600);

pub(crate) async fn start(
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
pub(crate) struct NewNotification {
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

/// Inserts a notification (pending) for the user unless one with its key exists. True
/// when this call created it.
pub(crate) async fn create(ctx: &Ctx, n: NewNotification) -> Result<bool, HandlerError> {
    let Some(user) = Repo::<User>::new(&ctx.store).get(n.user_id).await? else {
        return Err(HandlerError::Permanent(format!("no user {}", n.user_id)));
    };
    let medium = decide::medium_for(n.kind, Some(&user.preferences), user.phone.as_deref());
    // Derived from the key, the medium and the cause's time: a redelivery derives it again.
    let id = derive_object_id(
        "notification",
        &format!("{}:{}", n.key, medium.as_str()),
        n.at,
    );
    let mut data = n.data;
    if data.get("name").is_none() {
        data["name"] = json!(user.name);
    }
    let rendered = templates::render(n.kind.as_str(), &data);
    let secret = decide::is_secret(n.kind);
    let now = ctx.now_stored();
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
        email_address: Some(user.email.as_str().to_string()),
        email_opened_at: None,
        clicked_link: false,
        phone_number: user.phone.clone(),
        // No device registry yet: push notifications go to the configured sender.
        device_token: None,
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
    let created = Repo::<Notification>::new(&ctx.store)
        .insert_once(&note)
        .await?;
    if created {
        // No token or address in logs: the type and id only.
        info!(notification = %id, kind = n.kind.as_str(), "notification created");
    }
    Ok(created)
}
