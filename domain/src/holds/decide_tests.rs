//! Every transition of a hold, allowed and refused, on a fixed clock.

use std::collections::HashMap;

use chrono::Duration;

use super::*;
use crate::shared::clock::Clock;
use crate::shared::fixtures::{admin, at, clock, now, usd, user_actor};

fn facts(seats: &[ObjectId]) -> HoldFacts {
    HoldFacts {
        existing: None,
        sale_status: Some(EventStatus::Published),
        event_date: Some(at(86_400_000)),
        seat_prices: seats.iter().map(|s| (*s, usd(1500))).collect(),
        taken: Vec::new(),
    }
}

fn cmd(seats: &[ObjectId]) -> CreateHold<'_> {
    CreateHold {
        hold_id: ObjectId::new(),
        command_id: "cmd-1",
        event_id: ObjectId::new(),
        seat_ids: seats,
        max_seats: 10,
        ttl_ms: 600_000,
    }
}

fn refused(d: Result<HoldDecision, DomainError>) -> Refusal {
    match d.unwrap() {
        HoldDecision::Refuse(r) => r,
        other => panic!("not refused: {other:?}"),
    }
}

#[test]
fn a_hold_on_free_seats_of_a_published_event_is_created_active_until_its_ttl() {
    let seats = [ObjectId::new(), ObjectId::new()];
    let c = clock();
    let me = user_actor();
    let HoldDecision::Create(h) =
        decide_create(Some(me), &facts(&seats), &cmd(&seats), c.now_stored()).unwrap()
    else {
        panic!("not created");
    };
    assert_eq!(h.status, HoldStatus::Active);
    assert_eq!(h.user_id, me.user_id);
    assert_eq!(h.total_price, usd(3000));
    assert_eq!(h.quantity, 2);
    assert_eq!(h.expires_at, at(600_000));
    assert_eq!(h.command_id, "cmd-1");
}

#[test]
fn a_redelivered_hold_is_answered_with_the_recorded_one() {
    let seats = [ObjectId::new()];
    let mut f = facts(&seats);
    let existing = crate::shared::fixtures::hold(ObjectId::new());
    f.existing = Some(existing.clone());
    // Even with the event closed meanwhile: nothing is taken again.
    f.sale_status = Some(EventStatus::Cancelled);
    assert_eq!(
        decide_create(Some(user_actor()), &f, &cmd(&seats), now()).unwrap(),
        HoldDecision::Replay(existing)
    );
}

#[test]
fn hold_requests_are_refused_in_the_workers_order() {
    let seats = [ObjectId::new()];
    let f = facts(&seats);
    assert_eq!(
        refused(decide_create(None, &f, &cmd(&seats), now())),
        Refusal::Unauthorized("sign in to hold seats")
    );
    assert_eq!(
        refused(decide_create(Some(user_actor()), &f, &cmd(&[]), now())).code(),
        "validation_failed"
    );
    let twice = [seats[0], seats[0]];
    assert_eq!(
        refused(decide_create(Some(user_actor()), &f, &cmd(&twice), now())).code(),
        "validation_failed"
    );
    let mut g = f.clone();
    g.sale_status = None;
    assert_eq!(
        refused(decide_create(Some(user_actor()), &g, &cmd(&seats), now())),
        Refusal::EventNotFound
    );
    for s in [
        EventStatus::Draft,
        EventStatus::Cancelled,
        EventStatus::Completed,
    ] {
        g.sale_status = Some(s);
        assert_eq!(
            refused(decide_create(Some(user_actor()), &g, &cmd(&seats), now())),
            Refusal::EventNotOnSale("the event is not on sale")
        );
    }
    let other = ObjectId::new();
    assert_eq!(
        refused(decide_create(
            Some(user_actor()),
            &f,
            &cmd(&[seats[0], other]),
            now()
        )),
        Refusal::SeatNotFound {
            seat_ids: vec![other]
        }
    );
    let mut t = f.clone();
    t.taken = vec![seats[0]];
    assert_eq!(
        refused(decide_create(Some(user_actor()), &t, &cmd(&seats), now())),
        Refusal::SeatsUnavailable {
            seat_ids: vec![seats[0]]
        }
    );
}

#[test]
fn an_event_is_on_sale_up_to_its_start_and_not_a_millisecond_after() {
    let seats = [ObjectId::new()];
    let mut f = facts(&seats);
    let c = clock();
    f.event_date = Some(c.now_stored());
    assert!(matches!(
        decide_create(Some(user_actor()), &f, &cmd(&seats), c.now_stored()).unwrap(),
        HoldDecision::Create(_)
    ));
    c.advance(Duration::milliseconds(1));
    assert_eq!(
        refused(decide_create(
            Some(user_actor()),
            &f,
            &cmd(&seats),
            c.now_stored()
        )),
        Refusal::EventNotOnSale("the event is over")
    );
}

#[test]
fn seats_of_mixed_currencies_are_an_inconsistency_not_a_refusal() {
    let seats = [ObjectId::new(), ObjectId::new()];
    let mut f = facts(&seats);
    let eur = crate::Currency::parse("EUR").unwrap();
    f.seat_prices.insert(seats[1], Money::from_minor(1, eur));
    assert!(decide_create(Some(user_actor()), &f, &cmd(&seats), now()).is_err());
    let _: HashMap<ObjectId, Money> = f.seat_prices;
}

#[test]
fn lost_locks_or_a_closed_sale_refuse_after_the_lock_creates() {
    let s = ObjectId::new();
    assert_eq!(after_locks(vec![], true), Ok(()));
    assert_eq!(
        after_locks(vec![s], true),
        Err(Refusal::SeatsUnavailable { seat_ids: vec![s] })
    );
    assert_eq!(
        after_locks(vec![], false),
        Err(Refusal::EventNotOnSale("the event is not on sale"))
    );
}

#[test]
fn the_owner_releases_an_active_hold_and_a_second_release_is_answered_the_same() {
    let me = user_actor();
    let mut h = crate::shared::fixtures::hold(me.user_id);
    let d = decide_release(Some(me), Some(&h), ReleaseReason::Released, now());
    assert_eq!(
        d,
        ReleaseDecision::Release {
            new_status: HoldStatus::Released,
            event_id: h.event_id,
            seat_ids: h.seat_ids.clone(),
            owner: me.user_id,
        }
    );
    h.status = HoldStatus::Released;
    assert_eq!(
        decide_release(Some(me), Some(&h), ReleaseReason::Released, now()),
        ReleaseDecision::AlreadyReleased
    );
}

#[test]
fn an_ended_hold_cannot_be_released_by_its_owner() {
    let me = user_actor();
    let mut h = crate::shared::fixtures::hold(me.user_id);
    for (s, text) in [
        (HoldStatus::Expired, "the hold is expired"),
        (
            HoldStatus::ConvertedToBooking,
            "the hold is converted_to_booking",
        ),
    ] {
        h.status = s;
        assert_eq!(
            decide_release(Some(me), Some(&h), ReleaseReason::Released, now()),
            ReleaseDecision::Refuse(Refusal::HoldNotActive(text.into()))
        );
    }
}

#[test]
fn another_users_hold_reads_as_missing_but_an_admin_may_release_it() {
    let h = crate::shared::fixtures::hold(ObjectId::new());
    assert_eq!(
        decide_release(Some(user_actor()), Some(&h), ReleaseReason::Released, now()),
        ReleaseDecision::Refuse(Refusal::HoldNotFound)
    );
    assert_eq!(
        decide_release(Some(user_actor()), None, ReleaseReason::Released, now()),
        ReleaseDecision::Refuse(Refusal::HoldNotFound)
    );
    // Only the expiry worker (no issuer) or an admin expires holds.
    assert_eq!(
        decide_release(
            Some(user_actor()),
            Some(&h),
            ReleaseReason::Expired,
            at(600_000)
        ),
        ReleaseDecision::Refuse(Refusal::HoldNotFound)
    );
    assert_eq!(
        decide_release(None, Some(&h), ReleaseReason::Released, now()),
        ReleaseDecision::Refuse(Refusal::HoldNotFound)
    );
    assert!(matches!(
        decide_release(Some(admin()), Some(&h), ReleaseReason::Released, now()),
        ReleaseDecision::Release {
            new_status: HoldStatus::Released,
            ..
        }
    ));
}

#[test]
fn a_hold_expires_at_its_deadline_not_before() {
    let h = crate::shared::fixtures::hold(ObjectId::new());
    let c = clock();
    c.advance(Duration::milliseconds(599_999));
    assert_eq!(
        decide_release(None, Some(&h), ReleaseReason::Expired, c.now_stored()),
        ReleaseDecision::NotYetExpired
    );
    c.advance(Duration::milliseconds(1));
    assert!(matches!(
        decide_release(None, Some(&h), ReleaseReason::Expired, c.now_stored()),
        ReleaseDecision::Release {
            new_status: HoldStatus::Expired,
            ..
        }
    ));
}

#[test]
fn an_expiry_of_an_ended_hold_changes_nothing() {
    let mut h = crate::shared::fixtures::hold(ObjectId::new());
    for s in [
        HoldStatus::Released,
        HoldStatus::Expired,
        HoldStatus::ConvertedToBooking,
    ] {
        h.status = s;
        assert_eq!(
            decide_release(None, Some(&h), ReleaseReason::Expired, at(10_000_000)),
            ReleaseDecision::AlreadyEnded(s)
        );
    }
}
