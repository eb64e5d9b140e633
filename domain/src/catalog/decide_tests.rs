//! Publishing and cancelling events.

use super::*;
use crate::shared::fixtures::{admin, at, event, user_actor};

#[test]
fn only_admins_manage_events() {
    assert_eq!(
        require_admin(None),
        Err(Refusal::Unauthorized("sign in first"))
    );
    assert_eq!(
        require_admin(Some(user_actor())),
        Err(Refusal::Forbidden("only admins manage events"))
    );
}

#[test]
fn a_draft_is_published_once() {
    let mut e = event(0);
    e.status = EventStatus::Draft;
    let PublishDecision::Publish(p) = decide_publish(Some(admin()), Some(&e), at(1)) else {
        panic!()
    };
    assert_eq!(
        (p.status, p.published_at),
        (EventStatus::Published, Some(at(1)))
    );
    assert_eq!(
        decide_publish(Some(admin()), Some(&p), at(2)),
        PublishDecision::AlreadyPublished
    );
    e.status = EventStatus::Cancelled;
    assert_eq!(
        decide_publish(Some(admin()), Some(&e), at(1)),
        PublishDecision::Refuse(Refusal::EventNotDraft(EventStatus::Cancelled))
    );
    assert_eq!(
        decide_publish(Some(admin()), None, at(1)),
        PublishDecision::Refuse(Refusal::EventNotFound)
    );
}

#[test]
fn a_completed_event_cannot_be_cancelled_and_a_cancelled_one_fans_out_again() {
    let mut e = event(0);
    let CancelEventDecision::Cancel(Some(c)) = decide_cancel_event(Some(admin()), Some(&e), at(1))
    else {
        panic!()
    };
    assert_eq!(
        (c.status, c.cancelled_at),
        (EventStatus::Cancelled, Some(at(1)))
    );
    assert_eq!(
        decide_cancel_event(Some(admin()), Some(&c), at(2)),
        CancelEventDecision::Cancel(None)
    );
    e.status = EventStatus::Completed;
    assert_eq!(
        decide_cancel_event(Some(admin()), Some(&e), at(1)),
        CancelEventDecision::Refuse(Refusal::EventNotCancellable)
    );
    assert!(
        EventStatus::Draft.can_become(EventStatus::Cancelled)
            && !EventStatus::Cancelled.can_become(EventStatus::Published)
    );
}
