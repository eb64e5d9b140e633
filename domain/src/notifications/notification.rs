//! Notifications (`notifications`): what to tell a user, by which medium, when, and how
//! often sending was tried.

use bson::oid::ObjectId;
use bson::{DateTime, Document};
use serde::{Deserialize, Serialize};

string_enum! {
    /// What the notification is about. The first ten come from the data model; the last
    /// three cover messages the workflows also send (a failed payment's reason, account
    /// e-mails).
    pub enum NotificationType {
        BookingConfirmation => "booking_confirmation",
        BookingReminder => "booking_reminder",
        BookingCancellation => "booking_cancellation",
        PaymentConfirmation => "payment_confirmation",
        RefundProcessed => "refund_processed",
        TicketAvailable => "ticket_available",
        EventReminder => "event_reminder",
        EventCancelled => "event_cancelled",
        TicketTransferRequest => "ticket_transfer_request",
        TicketTransferred => "ticket_transferred",
        PaymentFailed => "payment_failed",
        AccountVerification => "account_verification",
        PasswordReset => "password_reset",
    }
}

string_enum! {
    pub enum Medium {
        Email => "email",
        Sms => "sms",
        PushNotification => "push_notification",
    }
}

string_enum! {
    pub enum NotificationStatus {
        /// Waiting to be sent (first try or a retry).
        Pending => "pending",
        /// Handed to a sender: never picked again, so a notification goes out at most once.
        Sending => "sending",
        Sent => "sent",
        /// Gave up after `maxAttempts`.
        Failed => "failed",
        Read => "read",
    }
}

impl NotificationStatus {
    /// `pending -> sending -> sent | pending (retry) | failed`, `sent -> read`.
    pub fn can_become(self, next: NotificationStatus) -> bool {
        use NotificationStatus::*;
        matches!(
            (self, next),
            (Pending, Sent)
                | (Pending, Failed)
                | (Pending, Sending)
                | (Sending, Sent)
                | (Sending, Pending)
                | (Sending, Failed)
                | (Sent, Read)
        )
    }
}

/// Default `maxAttempts` of a notification.
pub const DEFAULT_MAX_ATTEMPTS: i32 = 3;

/// The `notifications` collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub user_id: ObjectId,
    pub event_id: Option<ObjectId>,
    pub booking_id: Option<ObjectId>,
    #[serde(rename = "type")]
    pub kind: NotificationType,
    pub medium: Medium,
    pub status: NotificationStatus,
    pub subject: Option<String>,
    pub message: Option<String>,
    /// Template variables.
    #[serde(default)]
    pub message_data: Document,
    pub email_address: Option<String>,
    pub email_opened_at: Option<DateTime>,
    #[serde(default)]
    pub clicked_link: bool,
    pub phone_number: Option<String>,
    pub device_token: Option<String>,
    #[serde(default)]
    pub attempt_count: i32,
    pub max_attempts: i32,
    pub last_attempt_at: Option<DateTime>,
    pub next_retry_at: Option<DateTime>,
    pub failure_reason: Option<String>,
    /// Not to be sent before this time (reminders).
    pub scheduled_for: Option<DateTime>,
    pub sent_at: Option<DateTime>,
    pub read_at: Option<DateTime>,
    /// The command or domain event that caused it (its idempotency key).
    pub command_id: Option<String>,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

/// Whether a pending notification with these times may be sent at `now`: its scheduled
/// time and its next retry (if any) have passed.
pub fn due(
    scheduled_for: Option<DateTime>,
    next_retry_at: Option<DateTime>,
    now: DateTime,
) -> bool {
    scheduled_for.is_none_or(|t| t <= now) && next_retry_at.is_none_or(|t| t <= now)
}

impl Notification {
    /// A pending notification whose scheduled time and retry time (if any) have come.
    pub fn is_due(&self, now: DateTime) -> bool {
        self.status == NotificationStatus::Pending
            && due(self.scheduled_for, self.next_retry_at, now)
    }

    /// Whether another send may be tried after a failure.
    pub fn can_retry(&self) -> bool {
        self.status == NotificationStatus::Pending && self.attempt_count < self.max_attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use NotificationStatus::*;

    fn sample(now: DateTime) -> Notification {
        Notification {
            id: ObjectId::new(),
            user_id: ObjectId::new(),
            event_id: None,
            booking_id: Some(ObjectId::new()),
            kind: NotificationType::BookingConfirmation,
            medium: Medium::Email,
            status: Pending,
            subject: Some("Your tickets".into()),
            message: None,
            message_data: bson::doc! { "bookingReference": "BK-1" },
            email_address: Some("ana@example.com".into()),
            email_opened_at: None,
            clicked_link: false,
            phone_number: None,
            device_token: None,
            attempt_count: 0,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            last_attempt_at: None,
            next_retry_at: None,
            failure_reason: None,
            scheduled_for: None,
            sent_at: None,
            read_at: None,
            command_id: None,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn a_notification_is_sent_or_given_up_once() {
        assert!(Pending.can_become(Sent) && Pending.can_become(Failed) && Sent.can_become(Read));
        assert!(!Failed.can_become(Sent) && !Read.can_become(Sent) && !Sent.can_become(Pending));
    }

    #[test]
    fn a_notification_is_due_once_its_times_have_come() {
        let now = DateTime::from_millis(1_700_000_000_000);
        let later = DateTime::from_millis(1_700_000_060_000);
        let mut n = sample(now);
        assert!(n.is_due(now) && n.can_retry());
        n.scheduled_for = Some(later);
        assert!(!n.is_due(now) && n.is_due(later));
        n.scheduled_for = None;
        n.next_retry_at = Some(later);
        assert!(!n.is_due(now));
        n.attempt_count = 3;
        assert!(!n.can_retry());
        n.status = Sent;
        assert!(!n.is_due(later));
    }

    #[test]
    fn the_type_is_stored_as_type() {
        let n = sample(DateTime::from_millis(1_700_000_000_000));
        let doc = bson::to_document(&n).unwrap();
        assert_eq!(doc.get_str("type").unwrap(), "booking_confirmation");
        assert_eq!(doc.get_str("medium").unwrap(), "email");
        assert_eq!(bson::from_document::<Notification>(doc).unwrap(), n);
    }
}
