//! Every kind as the workers publish it today (see `samples`), read into its variant,
//! written back and read again; the table's consistency; the envelope embedding
//! (`#[serde(flatten)]`) the next phase relies on.

mod samples;

use std::collections::HashSet;

use bson::oid::ObjectId;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::*;
use crate::entities::booking::BookingStatus;
use crate::entities::payment::PaymentStatus;
use crate::event::EventStatus;
use samples::*;

#[test]
fn every_kind_has_a_sample() {
    let covered: HashSet<EventKind> = samples().iter().map(|(_, e)| e.event_kind()).collect();
    let all: HashSet<EventKind> = EventKind::ALL.iter().copied().collect();
    assert_eq!(covered, all);
}

#[test]
fn todays_events_read_into_their_variants_with_the_envelopes_facts() {
    for (today, want) in samples() {
        let env: Envelope =
            serde_json::from_value(today.json()).unwrap_or_else(|e| panic!("{}: {e}", today.kind));
        assert_eq!(env.event, want, "{}", today.kind);
        let ev = &env.event;
        assert_eq!(ev.kind(), today.kind);
        assert_eq!(ev.action(), today.action, "{}", today.kind);
        assert_eq!(ev.entity_type(), today.entity_type, "{}", today.kind);
        assert_eq!(ev.entity_id(), today.entity_id, "{}", today.kind);
        assert_eq!(ev.show_id(), today.event_id, "{}", today.kind);
        // `Some(null)` goes on the wire as `null` and reads as `None`, as today.
        let snapshot = |v: Option<Value>| v.unwrap_or(Value::Null);
        assert_eq!(
            snapshot(env.before),
            snapshot(today.before),
            "{}",
            today.kind
        );
        assert_eq!(snapshot(env.after), snapshot(today.after), "{}", today.kind);
        assert_eq!(env.occurred_at, utc(NOW));
    }
}

#[test]
fn an_event_written_back_reads_the_same_in_an_envelope_and_alone() {
    for (today, want) in samples() {
        let env: Envelope = serde_json::from_value(today.json()).unwrap();
        let written = serde_json::to_value(&env).unwrap();
        let again: Envelope = serde_json::from_value(written.clone())
            .unwrap_or_else(|e| panic!("{}: {e}\n{written}", today.kind));
        assert_eq!(again, env, "{}", today.kind);

        // The payload alone: `data` now carries the ids the envelope used to.
        let alone = json!({"type": written["type"], "data": written["data"]});
        let ev: DomainEvent = serde_json::from_value(alone).unwrap();
        assert_eq!(ev, want, "{}", today.kind);
        let (entity_key, show_key) = ev.event_kind().keys();
        assert_eq!(written["data"][entity_key], json!(ev.entity_id().to_hex()));
        if let Some(k) = show_key {
            assert_eq!(written["data"][k], json!(ev.show_id().map(|s| s.to_hex())));
        }
    }
}

#[test]
fn a_reader_built_before_the_enum_reads_what_it_writes() {
    for (today, want) in samples() {
        let env: Envelope = serde_json::from_value(today.json()).unwrap();
        let written = serde_json::to_value(&env).unwrap();
        let old: TodaysReader = serde_json::from_value(written.clone()).unwrap();
        assert_eq!(old.kind, today.kind);
        assert_eq!(old.action, today.action);
        assert_eq!(old.entity_type, today.entity_type);
        assert_eq!(old.entity_id, today.entity_id);
        assert_eq!(old.event_id, today.event_id);
        // Every key of today's `data` is still there with its value, except fields that
        // were `null` and are now left out.
        for (k, v) in today.data.as_object().unwrap() {
            if !v.is_null() {
                assert!(
                    same(&old.data[k], v),
                    "{}.{k}: {} vs {v}",
                    today.kind,
                    old.data[k]
                );
            }
        }
        assert_eq!(written["entityId"], today.json()["entityId"]);
        let _ = want;
    }
}

/// Equal, or the same instant written with other digits (`.5Z` and `.500Z`).
fn same(a: &Value, b: &Value) -> bool {
    let instant = |v: &Value| v.as_str().and_then(|s| s.parse::<DateTime<Utc>>().ok());
    a == b || matches!((instant(a), instant(b)), (Some(x), Some(y)) if x == y)
}

#[test]
fn the_table_is_one_to_one() {
    let kinds: HashSet<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
    let actions: HashSet<&str> = EventKind::ALL.iter().map(|k| k.action()).collect();
    assert_eq!(kinds.len(), EventKind::ALL.len(), "kinds are unique");
    assert_eq!(actions.len(), EventKind::ALL.len(), "actions are unique");
    for k in EventKind::ALL {
        assert_eq!(k.as_str().parse::<EventKind>(), Ok(*k));
        let (entity, verb) = k.subject_parts();
        assert!(
            !entity.is_empty() && !verb.is_empty() && !verb.contains('.'),
            "{k}"
        );
        assert!(
            k.as_str()
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_'),
            "{k} is a valid subject token pair"
        );
    }
}

#[test]
fn an_unknown_kind_is_an_error_not_a_default() {
    assert_eq!(
        "hold.teleported".parse::<EventKind>(),
        Err(UnknownKind("hold.teleported".into()))
    );
    let e = serde_json::from_value::<DomainEvent>(json!({"type": "hold.teleported", "data": {}}))
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("unknown domain event kind `hold.teleported`"),
        "{e}"
    );
    let mut env = samples().remove(0).0.json();
    env["type"] = json!("seat.painted");
    assert!(serde_json::from_value::<Envelope>(env).is_err());
}

#[test]
fn missing_or_mistyped_facts_are_errors() {
    // No seat ids.
    let e = serde_json::from_value::<DomainEvent>(json!({
        "type": "hold.released", "entityId": oid(10).to_hex(), "eventId": oid(2).to_hex(), "data": {},
    }))
    .unwrap_err();
    assert!(e.to_string().contains("hold.released"), "{e}");
    // An id that is not 24 hex digits.
    assert!(serde_json::from_value::<DomainEvent>(json!({
        "type": "user.verified", "data": {"userId": "not-an-id"},
    }))
    .is_err());
    // `data` that is not an object.
    assert!(serde_json::from_value::<DomainEvent>(json!({
        "type": "user.verified", "entityId": oid(1).to_hex(), "data": [1],
    }))
    .is_err());
    // A user event with no id anywhere.
    assert!(serde_json::from_value::<DomainEvent>(json!({"type": "user.verified"})).is_err());
}

#[test]
fn older_events_get_the_facts_they_kept_in_their_snapshots() {
    let by_kind = |kind: &str| -> Envelope {
        let (today, _) = samples().into_iter().find(|(t, _)| t.kind == kind).unwrap();
        let mut env: Envelope = serde_json::from_value(today.json()).unwrap();
        env.event
            .fill_from_snapshots(env.before.as_ref(), env.after.as_ref());
        env
    };
    let DomainEvent::HoldConverted(e) = by_kind("hold.converted").event else {
        unreachable!()
    };
    assert_eq!(e.booking_id, Some(oid(11)));
    let DomainEvent::BookingConfirmed(e) = by_kind("booking.confirmed").event else {
        unreachable!()
    };
    assert_eq!(e.payment_id, Some(oid(12)));
    let DomainEvent::BookingCancelled(e) = by_kind("booking.cancelled").event else {
        unreachable!()
    };
    assert_eq!(e.reason, Some(CancellationReason::UserRequested));
    assert_eq!(e.previous_status, Some(BookingStatus::Confirmed));
    assert_eq!(e.was_paid(), Some(true));
    assert_eq!(e.payment_status, Some(PaymentStatus::PartiallyRefunded));
    let DomainEvent::BookingExpired(e) = by_kind("booking.expired").event else {
        unreachable!()
    };
    assert_eq!(e.reason, Some(CancellationReason::Expired));
    assert_eq!(e.was_paid(), Some(false));
    let DomainEvent::RefundProcessed(e) = by_kind("refund.processed").event else {
        unreachable!()
    };
    assert_eq!(e.amount(), Some(usd(4999)));
    let DomainEvent::EventCancelled(e) = by_kind("event.cancelled").event else {
        unreachable!()
    };
    assert_eq!(e.previous_status, Some(EventStatus::Published));

    // A fact the event carries is kept.
    let mut ev = DomainEvent::HoldConverted(HoldConverted {
        hold_id: oid(10),
        event_id: oid(2),
        booking_id: Some(oid(99)),
    });
    ev.fill_from_snapshots(
        None,
        Some(&json!({"convertedToBookingId": oid(11).to_hex()})),
    );
    let DomainEvent::HoldConverted(e) = ev else {
        unreachable!()
    };
    assert_eq!(e.booking_id, Some(oid(99)));
}

#[test]
fn the_audit_facts_come_from_the_variant() {
    for (today, _) in samples() {
        let env: Envelope = serde_json::from_value(today.json()).unwrap();
        assert_eq!(
            env.event.failure_reason(),
            today.data.get("failureReason").and_then(Value::as_str),
            "{}",
            today.kind
        );
        assert_eq!(
            env.event.status_code().map(i64::from),
            today.data.get("statusCode").and_then(Value::as_i64),
            "{}",
            today.kind
        );
    }
}

#[test]
fn cancellation_reasons_round_trip_as_their_text() {
    for r in CancellationReason::ALL {
        assert_eq!(CancellationReason::parse(r.as_str()), Some(*r));
        assert_eq!(serde_json::to_value(r).unwrap(), json!(r.as_str()));
    }
    assert_eq!(CancellationReason::parse("booking_cancelled"), None);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any hold event, with any ids and times, reads back as itself.
        #[test]
        fn hold_events_round_trip(
            ids in proptest::collection::vec(any::<[u8; 12]>(), 3..8),
            ms in 0i64..4_000_000_000_000,
            released in any::<bool>(),
        ) {
            let id = |i: usize| ObjectId::from_bytes(ids[i]);
            let seats: Vec<ObjectId> = (2..ids.len()).map(id).collect();
            let mut hold = seat_hold();
            hold.id = id(0);
            hold.event_id = id(1);
            hold.seat_ids = seats.clone();
            hold.expires_at = at(ms);
            let created = DomainEvent::HoldCreated(HoldCreated {
                hold_id: id(0),
                event_id: id(1),
                user_id: hold.user_id,
                seat_ids: seats.clone(),
                expires_at: hold.expires_at.to_chrono(),
                hold,
            });
            let ended = HoldEnded { hold_id: id(0), event_id: id(1), seat_ids: seats, user_id: None };
            let ended = if released { DomainEvent::HoldReleased(ended) } else { DomainEvent::HoldExpired(ended) };
            for ev in [created, ended] {
                let back: DomainEvent = serde_json::from_value(serde_json::to_value(&ev).unwrap()).unwrap();
                prop_assert_eq!(back, ev);
            }
        }
    }
}
