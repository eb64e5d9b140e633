//! `Idempotency-Key` as payment APIs have it: scoped to the user, remembering the route
//! and a fingerprint of the body; a mismatch is 422, a request still in flight 409.

use std::time::Duration;

use bson::doc;
use bson::oid::ObjectId;
use e2e::{envelope, spawn_app};
use serde_json::json;
use streams::commands::{Command, CreateHold};

#[tokio::test]
async fn the_same_key_with_another_body_or_route_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 1, 4).await;
    let seats = app.seat_ids(&event).await;
    let (_, user) = app.new_user().await;
    let holds = format!("/v1/events/{event}/holds");
    let key = [("Idempotency-Key", "checkout-1")];

    let first = app
        .call(
            "POST",
            &holds,
            Some(&user),
            Some(json!({"seatIds": [seats[0]]})),
            &key,
        )
        .await;
    assert_eq!(first.status, 201, "{first:?}");
    let hold = first.body["id"].as_str().unwrap().to_string();

    // The same request again, its JSON written differently: the first answer.
    let again = app
        .call(
            "POST",
            &holds,
            Some(&user),
            Some(json!({ "seatIds": [seats[0]] })),
            &key,
        )
        .await;
    assert_eq!(
        (again.status, again.body["id"].as_str()),
        (201, Some(hold.as_str()))
    );

    // Other seats under the same key: 422, no second hold.
    let other = app
        .call(
            "POST",
            &holds,
            Some(&user),
            Some(json!({"seatIds": [seats[1]]})),
            &key,
        )
        .await;
    assert_eq!(
        (other.status, other.code()),
        (422, "idempotency_key_reused"),
        "{other:?}"
    );

    // The README's old mistake: the hold's key on the booking. 422, no booking.
    let booking = app
        .call(
            "POST",
            "/v1/bookings",
            Some(&user),
            Some(json!({"holdId": hold})),
            &key,
        )
        .await;
    assert_eq!(
        (booking.status, booking.code()),
        (422, "idempotency_key_reused"),
        "{booking:?}"
    );

    // Another user's identical key is theirs alone.
    let (_, other_user) = app.new_user().await;
    let theirs = app
        .call(
            "POST",
            &holds,
            Some(&other_user),
            Some(json!({"seatIds": [seats[2]]})),
            &key,
        )
        .await;
    assert_eq!(theirs.status, 201, "{theirs:?}");
    assert_ne!(theirs.body["id"], first.body["id"]);

    let oid = ObjectId::parse_str(&event).unwrap();
    assert_eq!(
        app.settled_count("seat_holds", doc! {"eventId": oid}, 2)
            .await,
        2
    );
    assert_eq!(app.count("bookings", doc! {}).await, 0);
    // Seat 1 is still free: the refused request took no lock.
    let free = app.seat_ids_with(&event, Some("available")).await;
    assert!(free.contains(&seats[1]), "{free:?}");

    // A distinct key books it.
    let booked = app
        .call(
            "POST",
            "/v1/bookings",
            Some(&user),
            Some(json!({"holdId": hold})),
            &[("Idempotency-Key", "book-1")],
        )
        .await;
    assert_eq!(booked.status, 201, "{booked:?}");
    app.shutdown().await;
}

#[tokio::test]
async fn a_second_request_while_the_first_is_in_flight_is_409_then_gets_the_first_answer() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 1, 3).await;
    let seats = app.seat_ids(&event).await;
    let (_, user) = app.new_user().await;
    let holds = format!("/v1/events/{event}/holds");
    let key = [("Idempotency-Key", "slow-1")];
    let body = json!({"seatIds": [seats[0]]});

    // Nobody applies commands for a while: the first request waits in flight.
    app.stop_workers().await;
    let first = app.call("POST", &holds, Some(&user), Some(body.clone()), &key);
    let meanwhile = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let same = app
            .call("POST", &holds, Some(&user), Some(body.clone()), &key)
            .await;
        let other = app
            .call(
                "POST",
                &holds,
                Some(&user),
                Some(json!({"seatIds": [seats[1]]})),
                &key,
            )
            .await;
        // Back before the first request's wait ends.
        app.start_workers().await;
        (same, other)
    };
    let (first, (same, other)) = tokio::join!(first, meanwhile);
    assert_eq!(first.status, 201, "{first:?}");
    let command = first.headers["ticketing-command-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(
        (same.status, same.code()),
        (409, "idempotency_key_in_flight"),
        "{same:?}"
    );
    assert_eq!(same.headers["retry-after"], "1");
    assert_eq!(
        same.headers["location"].to_str().unwrap(),
        format!("/v1/commands/{command}")
    );
    assert_eq!(same.body["error"]["details"]["commandId"], command.as_str());
    assert_eq!(
        (other.status, other.code()),
        (422, "idempotency_key_reused")
    );

    // Once applied, the same request answers the first result.
    let retried = app
        .call("POST", &holds, Some(&user), Some(body), &key)
        .await;
    assert_eq!(retried.status, 201, "{retried:?}");
    assert_eq!(retried.body["id"], first.body["id"]);
    let oid = ObjectId::parse_str(&event).unwrap();
    assert_eq!(
        app.settled_count("seat_holds", doc! {"eventId": oid}, 1)
            .await,
        1
    );
    app.shutdown().await;
}

#[tokio::test]
async fn keys_are_kept_a_day_and_a_command_id_reused_over_nats_for_another_command_is_refused() {
    let app = spawn_app().await;
    for bucket in [app.ns.idempotency_bucket(), app.ns.results_bucket()] {
        let kv = app.js.get_key_value(&bucket).await.expect("bucket");
        let age = kv.status().await.expect("status").max_age();
        assert!(age >= Duration::from_secs(24 * 3600), "{bucket}: {age:?}");
    }

    // Another system publishing straight to NATS: the id is the key, and the worker
    // remembers the command it stood for.
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 1, 3).await;
    let seats = app.seat_ids(&event).await;
    let (user_id, _) = app.new_user().await;
    let issuer = streams::commands::Issuer {
        user_id: ObjectId::parse_str(&user_id).unwrap(),
        role: domain::user::Role::User,
    };
    let hold = |seat: &str| {
        envelope(
            "direct-1",
            Some(issuer.clone()),
            Command::CreateHold(CreateHold {
                event_id: ObjectId::parse_str(&event).unwrap(),
                seat_ids: vec![ObjectId::parse_str(seat).unwrap()],
            }),
        )
    };
    let first = app.send_command(&hold(&seats[0])).await.expect("answered");
    assert_eq!(first.status, 201, "{first:?}");
    // The same command again after JetStream's duplicate window (a new message id):
    // the first answer.
    let again = app
        .send_command_as(&hold(&seats[0]), "direct-1-late")
        .await
        .expect("answered");
    assert_eq!(again.body["id"], first.body["id"]);
    // Another command under the id: refused, nothing held.
    let other = app
        .send_command_as(&hold(&seats[1]), "direct-1-other")
        .await
        .expect("answered");
    assert_eq!(
        (other.status, other.code()),
        (422, Some("idempotency_key_reused")),
        "{other:?}"
    );
    let oid = ObjectId::parse_str(&event).unwrap();
    assert_eq!(
        app.settled_count("seat_holds", doc! {"eventId": oid}, 1)
            .await,
        1
    );
    app.shutdown().await;
}
