//! The live seat map and the hold path without MongoDB: every read reflects every answer
//! given before it, and the MongoDB documents (written by the projections) catch up.

use std::collections::HashSet;
use std::time::Duration;

use bson::doc;
use bson::oid::ObjectId;
use e2e::{spawn_app, wait_until, TestApp};
use serde_json::json;

/// The ids of the event's seats with `status`, read through the API.
async fn seats_with(app: &TestApp, event: &str, status: &str) -> HashSet<String> {
    app.seat_ids_with(event, Some(status))
        .await
        .into_iter()
        .collect()
}

#[tokio::test]
async fn the_seat_map_shows_each_hold_payment_and_failure_as_soon_as_it_is_answered() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 1, 6).await;
    let seats = app.seat_ids(&event).await;
    let (_, user) = app.new_user().await;

    // A hold, read back at once: held, by any reader.
    let h = app
        .post(
            &format!("/v1/events/{event}/holds"),
            Some(&user),
            json!({"seatIds": [seats[0], seats[1]]}),
        )
        .await;
    assert_eq!(h.status, 201, "{h:?}");
    let pair: HashSet<String> = [seats[0].clone(), seats[1].clone()].into();
    assert_eq!(seats_with(&app, &event, "held").await, pair);
    let hold_id = h.body["id"].as_str().unwrap();
    let read = app.get(&format!("/v1/holds/{hold_id}"), Some(&user)).await;
    assert_eq!(
        (read.status, read.body["status"].as_str()),
        (200, Some("active"))
    );

    // Booked and paid: booked at once.
    let b = app
        .post("/v1/bookings", Some(&user), json!({"holdId": hold_id}))
        .await;
    assert_eq!(
        b.status, 201,
        "a hold answered a moment ago can be booked: {b:?}"
    );
    let paid = app
        .pay(&user, b.body["id"].as_str().unwrap(), "4242424242424242")
        .await;
    assert_eq!(paid.status, 201, "{paid:?}");
    assert_eq!(seats_with(&app, &event, "booked").await, pair);

    // A declined payment: the seats are for sale again at once.
    let other = app.book(&user, &event, &[seats[2].clone()]).await;
    assert!(seats_with(&app, &event, "held").await.contains(&seats[2]));
    let declined = app
        .pay(&user, other["id"].as_str().unwrap(), "4000000000000002")
        .await;
    assert_eq!(declined.status, 402, "{declined:?}");
    let available = seats_with(&app, &event, "available").await;
    assert!(available.contains(&seats[2]), "{available:?}");
    assert_eq!(available.len(), 4);

    // The MongoDB record follows: the hold's document, written by the projection.
    let hid = ObjectId::parse_str(hold_id).unwrap();
    let projected = wait_until(Duration::from_secs(5), || async {
        app.count(
            "seat_holds",
            doc! {"_id": hid, "status": "converted_to_booking"},
        )
        .await
            == 1
    })
    .await;
    assert!(projected, "the seat_holds document follows the events");
    app.shutdown().await;
}

#[tokio::test]
async fn after_a_storm_of_holds_the_seat_documents_and_the_counter_agree_with_the_locks() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 5, 30).await;
    let seats = app.seat_ids(&event).await;
    assert_eq!(seats.len(), 150);
    let mut users = Vec::new();
    for _ in 0..10 {
        users.push(app.new_user().await.1);
    }
    // 140 holds at once, one seat each, two buyers per seat for the first 20 seats.
    let mut wanted: Vec<String> = seats[..120].to_vec();
    wanted.extend(seats[..20].iter().cloned());
    let tries = wanted.iter().enumerate().map(|(i, seat)| {
        let (app, user, seat, event) = (&app, &users[i % users.len()], seat.clone(), &event);
        async move {
            let r = app
                .post(
                    &format!("/v1/events/{event}/holds"),
                    Some(user),
                    json!({"seatIds": [seat]}),
                )
                .await;
            (r.status, seat)
        }
    });
    let answers = futures::future::join_all(tries).await;
    let won: HashSet<String> = answers
        .iter()
        .filter(|(s, _)| *s == 201)
        .map(|(_, seat)| seat.clone())
        .collect();
    let won_count = answers.iter().filter(|(s, _)| *s == 201).count();
    assert!(
        answers.iter().all(|(s, _)| *s == 201 || *s == 409),
        "only 201 or 409: {:?}",
        answers.iter().map(|a| a.0).collect::<Vec<_>>()
    );
    assert_eq!(won_count, 120, "one winner per seat, no seat twice");
    assert_eq!(won.len(), 120);
    // The map is exact at once; the documents and the counter within 5 s.
    assert_eq!(seats_with(&app, &event, "held").await, won);
    let eid = ObjectId::parse_str(&event).unwrap();
    let agree = wait_until(Duration::from_secs(5), || async {
        let (counter, available) = app.seat_counts(&event).await;
        let held = app
            .count("seats", doc! {"eventId": eid, "status": "held"})
            .await;
        let holds = app
            .count("seat_holds", doc! {"eventId": eid, "status": "active"})
            .await;
        counter == 30 && available == 30 && held == 120 && holds == 120
    })
    .await;
    assert!(
        agree,
        "counter/available {:?}, held seats {}, active holds {}",
        app.seat_counts(&event).await,
        app.count("seats", doc! {"eventId": eid, "status": "held"})
            .await,
        app.count("seat_holds", doc! {"eventId": eid, "status": "active"})
            .await
    );
    app.shutdown().await;
}
