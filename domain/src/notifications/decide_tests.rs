//! Every transition of a notification, with the retry back-off's due times.

use bson::oid::ObjectId;
use chrono::Duration;

use super::*;
use crate::shared::clock::Clock;
use crate::shared::fixtures::{at, clock, notification, now, user_actor};

fn policy(n: &Notification) -> RetryPolicy {
    retry_policy(n, 1_000, 60_000)
}

#[test]
fn the_medium_follows_the_preferences_and_tokens_go_by_email() {
    let mut p = Preferences::default();
    assert_eq!(
        medium_for(NotificationType::BookingConfirmation, None, None),
        Medium::Email
    );
    p.email_notifications = false;
    p.sms_notifications = true;
    assert_eq!(
        medium_for(
            NotificationType::BookingConfirmation,
            Some(&p),
            Some("+351")
        ),
        Medium::Sms
    );
    assert_eq!(
        medium_for(NotificationType::BookingConfirmation, Some(&p), Some("")),
        Medium::PushNotification
    );
    assert_eq!(
        medium_for(NotificationType::PasswordReset, Some(&p), Some("+351")),
        Medium::Email
    );
}

#[test]
fn a_due_notification_is_claimed_once_and_a_scheduled_one_waits() {
    let mut n = notification(ObjectId::new());
    let c = claim(&n, now()).unwrap();
    assert_eq!(
        (c.status, c.attempt_count, c.last_attempt_at),
        (NotificationStatus::Sending, 1, Some(now()))
    );
    assert_eq!(claim(&c, now()), None);
    n.scheduled_for = Some(at(1));
    assert_eq!(claim(&n, now()), None);
    assert!(claim(&n, at(1)).is_some());
}

#[test]
fn a_sent_notification_is_finished() {
    let n = claim(&notification(ObjectId::new()), now()).unwrap();
    let d = decide_send(&n, &SendOutcome::Sent, policy(&n), 0, at(5)).unwrap();
    assert_eq!(
        (
            d.notification.status,
            d.notification.sent_at,
            d.finished,
            d.drop_token
        ),
        (NotificationStatus::Sent, Some(at(5)), true, false)
    );
}

#[test]
fn a_transient_failure_is_retried_after_the_back_off_until_max_attempts() {
    let c = clock();
    let mut n = claim(&notification(ObjectId::new()), c.now_stored()).unwrap();
    let d = decide_send(
        &n,
        &SendOutcome::Transient("smtp busy".into()),
        policy(&n),
        0,
        c.now_stored(),
    )
    .unwrap();
    // Attempt 1, base 1 s, equal jitter with random 0: half the ceiling.
    assert_eq!(d.notification.status, NotificationStatus::Pending);
    assert_eq!(d.notification.next_retry_at, Some(at(500)));
    assert!(!d.finished);
    assert!(!d.notification.is_due(at(499)) && d.notification.is_due(at(500)));
    c.advance(Duration::milliseconds(500));
    n = claim(&d.notification, c.now_stored()).unwrap();
    let d = decide_send(
        &n,
        &SendOutcome::Transient("busy".into()),
        policy(&n),
        1_000,
        c.now_stored(),
    )
    .unwrap();
    // Attempt 2: ceiling 2 s, delay in [1 s, 2 s]: 1000 + 1000 % 1001.
    assert_eq!(d.notification.next_retry_at, Some(at(500 + 2_000)));
    n = claim(&d.notification, at(2_500)).unwrap();
    assert_eq!(n.attempt_count, 3);
    let d = decide_send(
        &n,
        &SendOutcome::Transient("busy".into()),
        policy(&n),
        0,
        at(2_600),
    )
    .unwrap();
    assert_eq!(
        (
            d.notification.status,
            d.notification.next_retry_at,
            d.finished
        ),
        (NotificationStatus::Failed, None, true)
    );
}

#[test]
fn a_permanent_failure_fails_at_once_and_drops_a_token() {
    let mut n = notification(ObjectId::new());
    n.kind = NotificationType::AccountVerification;
    let n = claim(&n, now()).unwrap();
    let d = decide_send(
        &n,
        &SendOutcome::Permanent("no such mailbox".into()),
        policy(&n),
        0,
        now(),
    )
    .unwrap();
    assert_eq!(
        (
            d.notification.status,
            d.notification.failure_reason.as_deref(),
            d.drop_token
        ),
        (NotificationStatus::Failed, Some("no such mailbox"), true)
    );
    assert_eq!(
        decide_send(
            &notification(ObjectId::new()),
            &SendOutcome::Sent,
            policy(&n),
            0,
            now()
        ),
        None,
        "not claimed"
    );
}

#[test]
fn stale_claims_and_withdrawn_reminders_fail() {
    let n = claim(&notification(ObjectId::new()), at(0)).unwrap();
    assert_eq!(give_up_stale(&n, at(0), at(9)), None);
    let s = give_up_stale(&n, at(1), at(9)).unwrap();
    assert_eq!(
        (s.status, s.failure_reason.as_deref()),
        (NotificationStatus::Failed, Some(INTERRUPTED))
    );
    let w = withdraw(&notification(ObjectId::new()), "booking_cancelled", now()).unwrap();
    assert_eq!(w.status, NotificationStatus::Failed);
    assert_eq!(withdraw(&n, "x", now()), None);
}

#[test]
fn reading_a_sent_notification_marks_it_read_and_others_keep_their_status() {
    let me = user_actor();
    let mut n = notification(me.user_id);
    let ReadDecision::Mark(r) = decide_mark_read(Some(me), Some(&n), at(3)) else {
        panic!()
    };
    assert_eq!(
        (r.status, r.read_at),
        (NotificationStatus::Pending, Some(at(3)))
    );
    n.status = NotificationStatus::Sent;
    let ReadDecision::Mark(r) = decide_mark_read(Some(me), Some(&n), at(3)) else {
        panic!()
    };
    assert_eq!(r.status, NotificationStatus::Read);
    assert_eq!(
        decide_mark_read(Some(me), Some(&r), at(4)),
        ReadDecision::AlreadyRead
    );
    assert_eq!(
        decide_mark_read(Some(user_actor()), Some(&n), at(3)),
        ReadDecision::Refuse(Refusal::NotificationNotFound)
    );
    assert_eq!(
        decide_mark_read(None, Some(&n), at(3)),
        ReadDecision::Refuse(Refusal::Unauthorized("sign in first"))
    );
}
