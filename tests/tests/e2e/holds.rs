use std::time::Duration;

use bson::doc;
use bson::oid::ObjectId;
use e2e::{spawn_app, spawn_app_with, wait_until, Options};
use serde_json::json;

#[tokio::test]
async fn a_user_holds_seats_reads_the_hold_and_lets_it_go() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 2, 5).await;
    let seats = app.seat_ids(&event).await;
    let (user_id, user) = app.new_user().await;

    let r = app
        .post(
            &format!("/v1/events/{event}/holds"),
            Some(&user),
            json!({"seatIds": [seats[0], seats[1]]}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["status"], "active");
    assert_eq!(r.body["userId"], user_id.as_str());
    assert_eq!(r.body["quantity"], 2);
    assert_eq!(r.body["totalPrice"]["amountMinor"], 5000);
    assert_eq!(r.body["totalPrice"]["amount"], "50.00");
    assert!(r.body["expiresAt"].as_str().is_some());
    let hold = r.body["id"].as_str().unwrap().to_string();

    let eid = ObjectId::parse_str(&event).unwrap();
    assert!(
        app.wait_seats(doc! {"eventId": eid, "status": "held"}, 2)
            .await,
        "the seat documents follow"
    );
    let held = app
        .get(&format!("/v1/events/{event}/seats?status=held"), None)
        .await;
    assert_eq!(held.body["total"], 2);
    let seat = app
        .find_one(
            "seats",
            doc! {"_id": ObjectId::parse_str(&seats[0]).unwrap()},
        )
        .await
        .unwrap();
    assert_eq!(seat.get_str("status").unwrap(), "held");
    assert_eq!(seat.get_object_id("heldBy").unwrap().to_hex(), user_id);
    assert_eq!(seat.get_i64("version").unwrap(), 1);

    assert_eq!(
        app.get(&format!("/v1/holds/{hold}"), Some(&user))
            .await
            .status,
        200
    );
    let (_, other) = app.new_user().await;
    let theirs = app.get(&format!("/v1/holds/{hold}"), Some(&other)).await;
    assert_eq!(
        (theirs.status, theirs.code()),
        (404, "hold_not_found"),
        "another user's hold does not leak"
    );
    let steal = app
        .call(
            "DELETE",
            &format!("/v1/holds/{hold}"),
            Some(&other),
            None,
            &[],
        )
        .await;
    assert_eq!(steal.status, 404);

    let d = app
        .call(
            "DELETE",
            &format!("/v1/holds/{hold}"),
            Some(&user),
            None,
            &[],
        )
        .await;
    assert_eq!(d.status, 204, "{d:?}");
    let after = app.get(&format!("/v1/holds/{hold}"), Some(&user)).await;
    assert_eq!(after.body["status"], "released");
    assert!(
        app.wait_seats(doc! {"eventId": eid, "status": "available"}, 10)
            .await
    );
    assert_eq!(
        app.get(&format!("/v1/events/{event}/seats?status=available"), None)
            .await
            .body["total"],
        10
    );
    // Released seats are for sale again.
    let again = app
        .post(
            &format!("/v1/events/{event}/holds"),
            Some(&other),
            json!({"seatIds": [seats[0]]}),
        )
        .await;
    assert_eq!(again.status, 201, "{again:?}");
    let counted = wait_until(Duration::from_secs(5), || async {
        let (c, real) = app.seat_counts(&event).await;
        c == real && real == 9
    })
    .await;
    assert!(
        counted,
        "availableSeats follows the seats: {:?}",
        app.seat_counts(&event).await
    );
    let audited = wait_until(Duration::from_secs(5), || async {
        app.count(
            "audit_logs",
            doc! {"entityId": ObjectId::parse_str(&hold).unwrap()},
        )
        .await
            == 2
    })
    .await;
    assert!(audited, "hold_created and hold_released are audited");
    app.shutdown().await;
}

#[tokio::test]
async fn a_seat_cannot_be_held_twice_and_a_refused_hold_takes_nothing() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 1, 6).await;
    let seats = app.seat_ids(&event).await;
    let (_, a) = app.new_user().await;
    let (_, b) = app.new_user().await;
    let first = app
        .post(
            &format!("/v1/events/{event}/holds"),
            Some(&a),
            json!({"seatIds": [seats[1], seats[2]]}),
        )
        .await;
    assert_eq!(first.status, 201);
    // b asks for a free seat and a taken one: all or none.
    let second = app
        .post(
            &format!("/v1/events/{event}/holds"),
            Some(&b),
            json!({"seatIds": [seats[0], seats[2]]}),
        )
        .await;
    assert_eq!(
        (second.status, second.code()),
        (409, "seats_unavailable"),
        "{second:?}"
    );
    assert_eq!(
        second.body["error"]["details"]["seatIds"],
        json!([seats[2]])
    );
    let free = app
        .post(
            &format!("/v1/events/{event}/holds"),
            Some(&b),
            json!({"seatIds": [seats[0]]}),
        )
        .await;
    assert_eq!(
        free.status, 201,
        "the refused hold gave seat 0 back: {free:?}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn the_same_idempotency_key_returns_the_first_hold_and_applies_once() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 1, 4).await;
    let seats = app.seat_ids(&event).await;
    let (_, user) = app.new_user().await;
    let path = format!("/v1/events/{event}/holds");
    let body = json!({"seatIds": [seats[0]]});
    let key = [("Idempotency-Key", "checkout-42")];
    let (r1, r2) = tokio::join!(
        app.call("POST", &path, Some(&user), Some(body.clone()), &key),
        app.call("POST", &path, Some(&user), Some(body.clone()), &key)
    );
    // The two at once: one applies it; the other sees the first answer, or 409 while
    // the first is still in flight.
    let (won, other) = if r1.status == 201 {
        (&r1, &r2)
    } else {
        (&r2, &r1)
    };
    assert_eq!(won.status, 201, "{r1:?} {r2:?}");
    match other.status {
        201 => assert_eq!(other.body["id"], won.body["id"]),
        409 => assert_eq!(other.code(), "idempotency_key_in_flight", "{other:?}"),
        _ => panic!("{other:?}"),
    }
    let r3 = app.call("POST", &path, Some(&user), Some(body), &key).await;
    assert_eq!(r3.status, 201, "{r3:?}");
    assert_eq!(r3.body["id"], won.body["id"]);
    let oid = ObjectId::parse_str(&event).unwrap();
    assert_eq!(
        app.settled_count("seat_holds", doc! {"eventId": oid}, 1)
            .await,
        1
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_hold_left_alone_expires_and_its_seats_can_be_held_again() {
    let app = spawn_app_with(Options {
        hold_ttl_secs: 2,
        hold_lock_grace_secs: 2,
        ..Options::default()
    })
    .await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 1, 3).await;
    let seats = app.seat_ids(&event).await;
    let (_, a) = app.new_user().await;
    let (_, b) = app.new_user().await;
    let r = app
        .post(
            &format!("/v1/events/{event}/holds"),
            Some(&a),
            json!({"seatIds": [seats[0], seats[1]]}),
        )
        .await;
    assert_eq!(r.status, 201);
    let hold = r.body["id"].as_str().unwrap().to_string();
    let expires_at: chrono::DateTime<chrono::Utc> =
        r.body["expiresAt"].as_str().unwrap().parse().unwrap();
    // Within 5 seconds of its expiry the hold is expired and its seats are free.
    let expired = wait_until(Duration::from_secs(8), || async {
        app.get(&format!("/v1/holds/{hold}"), Some(&a)).await.body["status"] == "expired"
    })
    .await;
    assert!(expired, "the hold expired");
    let late = chrono::Utc::now() - expires_at;
    assert!(
        late < chrono::Duration::seconds(5),
        "released {late} after expiry"
    );
    let again = app
        .post(
            &format!("/v1/events/{event}/holds"),
            Some(&b),
            json!({"seatIds": [seats[0], seats[1]]}),
        )
        .await;
    assert_eq!(again.status, 201, "{again:?}");
    let counted = wait_until(Duration::from_secs(5), || async {
        let (c, real) = app.seat_counts(&event).await;
        c == real && real == 1
    })
    .await;
    assert!(counted, "{:?}", app.seat_counts(&event).await);
    app.shutdown().await;
}

/// The last sequence of the seat-locks bucket's stream: it moves with every lock write.
async fn lock_writes(app: &e2e::TestApp) -> u64 {
    let mut s = app
        .js
        .get_stream(format!("KV_{}", app.ns.seat_locks_bucket()))
        .await
        .unwrap();
    s.info().await.unwrap().state.last_sequence
}

#[tokio::test]
async fn a_hold_refused_for_a_seat_already_taken_writes_no_lock_and_a_released_seat_is_free_at_once(
) {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 1, 4).await;
    let seats = app.seat_ids(&event).await;
    let (_, first) = app.new_user().await;
    let (_, second) = app.new_user().await;
    let path = format!("/v1/events/{event}/holds");
    let held = app
        .post(&path, Some(&first), json!({"seatIds": [seats[0]]}))
        .await;
    assert_eq!(held.status, 201, "{held:?}");
    // Seat 0 is taken: the refusal names it and takes (and gives back) no lock at all.
    let before = lock_writes(&app).await;
    let refused = app
        .post(
            &path,
            Some(&second),
            json!({"seatIds": [seats[1], seats[0]]}),
        )
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (409, "seats_unavailable"),
        "{refused:?}"
    );
    assert_eq!(
        refused.body["error"]["details"]["seatIds"],
        json!([seats[0]])
    );
    assert_eq!(
        lock_writes(&app).await,
        before,
        "no lock written for a refusal"
    );
    // Released, the seat is free for the next request at once (no stale refusal).
    let id = held.body["id"].as_str().unwrap();
    let released = app
        .call(
            "DELETE",
            &format!("/v1/holds/{id}"),
            Some(&first),
            None,
            &[],
        )
        .await;
    assert_eq!(released.status, 204, "{released:?}");
    let again = app
        .post(
            &path,
            Some(&second),
            json!({"seatIds": [seats[1], seats[0]]}),
        )
        .await;
    assert_eq!(again.status, 201, "{again:?}");
    app.shutdown().await;
}

#[tokio::test]
async fn the_workers_clock_decides_when_a_hold_has_expired() {
    // Holds last ten minutes; a clock an hour ahead finds this one long over.
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 1, 2).await;
    let seats = app.seat_ids(&event).await;
    let (_, a) = app.new_user().await;
    let r = app
        .post(
            &format!("/v1/events/{event}/holds"),
            Some(&a),
            json!({"seatIds": [seats[0]]}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let hold = r.body["id"].as_str().unwrap().to_string();
    let path = format!("/v1/holds/{hold}");
    assert_eq!(app.get(&path, Some(&a)).await.body["status"], "active");

    app.stop_workers().await;
    let ahead = chrono::Utc::now() + chrono::Duration::hours(1);
    app.start_workers_with_clock(std::sync::Arc::new(domain::FixedClock::new(ahead)))
        .await;
    // The expiry worker and the holds worker both ask the clock: the hold expires now,
    // about ten minutes before the wall clock would have let it.
    let expired = wait_until(Duration::from_secs(15), || async {
        app.get(&path, Some(&a)).await.body["status"] == "expired"
    })
    .await;
    assert!(expired, "the hold expired by the workers' clock");
    let (_, b) = app.new_user().await;
    let again = app
        .post(
            &format!("/v1/events/{event}/holds"),
            Some(&b),
            json!({"seatIds": [seats[0]]}),
        )
        .await;
    assert_eq!(again.status, 201, "the seat is free again: {again:?}");
    app.shutdown().await;
}
