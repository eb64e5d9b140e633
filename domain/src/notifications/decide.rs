//! The decisions of the notifications worker (`workers/src/notifications/mod.rs`,
//! `workers/src/notifications/dispatch.rs`): which medium a new notification goes by,
//! claiming a due one for sending, what a send's outcome does (sent, retried with the
//! [`RetryPolicy`] back-off, failed), giving up stale claims and withdrawn reminders, and
//! marking one read.
//!
//! Status changes follow [`NotificationStatus::can_become`]:
//! `pending -> sending -> sent | pending (retry) | failed`, `pending -> failed`
//! (withdrawn), `sent -> read`.

use bson::DateTime;

use super::notification::{Medium, Notification, NotificationStatus, NotificationType};
use crate::accounts::user::Preferences;
use crate::payments::retry::RetryPolicy;
use crate::shared::actor::Actor;
use crate::Refusal;

/// Types whose `messageData` holds a one-time token: always by e-mail (they prove the
/// address), never shown by the API, and the token dropped once the send is finished.
pub const SECRET_TYPES: &[NotificationType] = &[
    NotificationType::AccountVerification,
    NotificationType::PasswordReset,
];

pub fn is_secret(kind: NotificationType) -> bool {
    SECRET_TYPES.contains(&kind)
}

/// The medium of a new notification for a user with `prefs` (`None`: no preferences
/// stored, the defaults apply) and `phone` (applied by `notifications::create`): e-mail
/// if wanted, else SMS if wanted and there is a phone, else push.
pub fn medium_for(
    kind: NotificationType,
    prefs: Option<&Preferences>,
    phone: Option<&str>,
) -> Medium {
    if is_secret(kind) {
        return Medium::Email;
    }
    let defaults = Preferences::default();
    let prefs = prefs.unwrap_or(&defaults);
    if prefs.email_notifications {
        Medium::Email
    } else if prefs.sms_notifications && phone.is_some_and(|p| !p.is_empty()) {
        Medium::Sms
    } else {
        Medium::PushNotification
    }
}

fn moved(n: &Notification, next: NotificationStatus, now: DateTime) -> Option<Notification> {
    n.status.can_become(next).then(|| Notification {
        status: next,
        updated_at: now,
        ..n.clone()
    })
}

/// Decides the claim in `dispatch.rs::send_one`: a due pending notification becomes
/// `sending` with one more attempt; `None` when it is not due (or not pending).
pub fn claim(n: &Notification, now: DateTime) -> Option<Notification> {
    if !n.is_due(now) {
        return None;
    }
    let mut c = moved(n, NotificationStatus::Sending, now)?;
    c.attempt_count += 1;
    c.last_attempt_at = Some(now);
    Some(c)
}

/// How a send went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    Sent,
    /// A passing fault (retried while attempts are left).
    Transient(String),
    Permanent(String),
}

/// The notification after a send, and whether it is finished (not to be retried; its
/// one-time token, if any, is then dropped).
#[derive(Debug, Clone, PartialEq)]
pub struct SendDecision {
    pub notification: Notification,
    pub finished: bool,
    pub drop_token: bool,
}

/// The back-off of a notification: its own `maxAttempts` (at least 1), the configured
/// base and cap (`TICKETING_NOTIFY_RETRY_BASE_MS`, `..._CAP_MS`).
pub fn retry_policy(n: &Notification, base_ms: u64, cap_ms: u64) -> RetryPolicy {
    RetryPolicy {
        max_attempts: n.max_attempts.max(1) as u32,
        base_ms,
        cap_ms,
    }
}

/// Decides the outcome half of `dispatch.rs::send_one` for a `sending` notification:
/// sent; a transient failure with attempts left goes back to `pending` with `nextRetryAt`
/// after the policy's delay (`random` is its jitter); anything else fails for good.
pub fn decide_send(
    n: &Notification,
    outcome: &SendOutcome,
    policy: RetryPolicy,
    random: u64,
    now: DateTime,
) -> Option<SendDecision> {
    // Only a claimed notification has an outcome (the state machine also lets `pending`
    // go straight to `sent`, which the dispatcher never does).
    if n.status != NotificationStatus::Sending {
        return None;
    }
    let attempts = n.attempt_count.max(0) as u32;
    let after = match outcome {
        SendOutcome::Sent => {
            let mut a = moved(n, NotificationStatus::Sent, now)?;
            a.sent_at = Some(now);
            a.failure_reason = None;
            a.next_retry_at = None;
            a
        }
        SendOutcome::Transient(e) if policy.delay_after(attempts, random).is_some() => {
            let delay = policy.delay_after(attempts, random).unwrap_or_default();
            let mut a = moved(n, NotificationStatus::Pending, now)?;
            a.next_retry_at = Some(DateTime::from_millis(now.timestamp_millis() + delay as i64));
            a.failure_reason = Some(e.clone());
            a
        }
        SendOutcome::Transient(e) | SendOutcome::Permanent(e) => fail(n, e, now)?,
    };
    let finished = after.status != NotificationStatus::Pending;
    Some(SendDecision {
        drop_token: finished && is_secret(n.kind),
        notification: after,
        finished,
    })
}

fn fail(n: &Notification, reason: &str, now: DateTime) -> Option<Notification> {
    let mut a = moved(n, NotificationStatus::Failed, now)?;
    a.failure_reason = Some(reason.to_string());
    a.next_retry_at = None;
    Some(a)
}

/// What a stale claim's outcome is recorded as (at most once: it is not retried).
pub const INTERRUPTED: &str = "the send was interrupted; its outcome is unknown";

/// Decides the stale sweep of `dispatch.rs::pass`: a `sending` notification whose last
/// attempt began before `stale_before` (or has no time) fails, outcome unknown.
pub fn give_up_stale(
    n: &Notification,
    stale_before: DateTime,
    now: DateTime,
) -> Option<Notification> {
    if n.status != NotificationStatus::Sending {
        return None;
    }
    let stale = n
        .last_attempt_at
        .is_none_or(|t| t.timestamp_millis() < stale_before.timestamp_millis());
    if !stale {
        return None;
    }
    let mut a = moved(n, NotificationStatus::Failed, now)?;
    a.failure_reason = Some(INTERRUPTED.to_string());
    Some(a)
}

/// Applied by `workers/src/notifications/messages.rs::withdraw`: a still-pending notification (a reminder of a cancelled
/// booking or event) fails with `reason`; any other is left alone.
pub fn withdraw(n: &Notification, reason: &str, now: DateTime) -> Option<Notification> {
    if n.status != NotificationStatus::Pending {
        return None;
    }
    fail(n, reason, now)
}

#[derive(Debug, Clone, PartialEq)]
// NOTE: a decision lives for one command and is matched at once; boxing its entity
// would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum ReadDecision {
    /// Write this (`readAt` set; `sent -> read`, other statuses kept).
    Mark(Notification),
    /// Read before: answer with it as it is.
    AlreadyRead,
    Refuse(Refusal),
}

/// Applied by `workers/src/notifications/inbox.rs::mark_read`. Another user's notification is 404.
pub fn decide_mark_read(
    issuer: Option<Actor>,
    n: Option<&Notification>,
    now: DateTime,
) -> ReadDecision {
    let Some(issuer) = issuer else {
        return ReadDecision::Refuse(Refusal::Unauthorized("sign in first"));
    };
    let Some(n) = n.filter(|n| n.user_id == issuer.user_id) else {
        return ReadDecision::Refuse(Refusal::NotificationNotFound);
    };
    if n.read_at.is_some() {
        return ReadDecision::AlreadyRead;
    }
    let mut a = moved(n, NotificationStatus::Read, now).unwrap_or_else(|| Notification {
        updated_at: now,
        ..n.clone()
    });
    a.read_at = Some(now);
    ReadDecision::Mark(a)
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
