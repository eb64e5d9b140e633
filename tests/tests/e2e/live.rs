//! The live seat map and the hold path without MongoDB: every read reflects every answer
//! given before it, and the MongoDB documents (written by the projections) catch up.

use std::collections::HashSet;
use std::time::Duration;

use bson::doc;
use bson::oid::ObjectId;
use e2e::{spawn_app, wait_until, TestApp};
use futures::StreamExt;
use serde_json::{json, Value};

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

    // A declined payment keeps the seat for another card; cancelling the booking puts
    // it on sale again at once.
    let other = app.book(&user, &event, &[seats[2].clone()]).await;
    assert!(seats_with(&app, &event, "held").await.contains(&seats[2]));
    let other_id = other["id"].as_str().unwrap();
    let declined = app.pay(&user, other_id, "4000000000000002").await;
    assert_eq!(declined.status, 402, "{declined:?}");
    assert!(seats_with(&app, &event, "held").await.contains(&seats[2]));
    let cancelled = app
        .post(
            &format!("/v1/bookings/{other_id}/cancel"),
            Some(&user),
            json!({}),
        )
        .await;
    assert_eq!(cancelled.status, 200, "{cancelled:?}");
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

/// One buyer's hold attempt in the storm: the answer, and for a 202 where to look.
struct Attempt {
    status: u16,
    took: Duration,
    body: Value,
    seats: Vec<String>,
    user: usize,
}

#[tokio::test]
async fn killing_the_workers_mid_storm_loses_no_answered_hold_and_holds_no_seat_twice() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 6, 20).await;
    let seats = app.seat_ids(&event).await;
    assert_eq!(seats.len(), 120);
    let mut users = Vec::new();
    for _ in 0..12 {
        users.push(app.new_user().await.1);
    }
    // 240 hold requests of 1 or 2 seats, 24 at a time, over 120 seats: every seat is
    // wanted about three times, and the workers die once 60 have been answered.
    let answered = std::sync::atomic::AtomicUsize::new(0);
    let attempt = |i: usize| {
        let (app, users, seats, event, answered) = (&app, &users, &seats, &event, &answered);
        async move {
            let first = (i * 7) % seats.len();
            let mut want = vec![seats[first].clone()];
            if i.is_multiple_of(2) {
                want.push(seats[(first + 1) % seats.len()].clone());
            }
            let started = std::time::Instant::now();
            let r = app
                .post(
                    &format!("/v1/events/{event}/holds"),
                    Some(&users[i % users.len()]),
                    json!({"seatIds": want}),
                )
                .await;
            let took = started.elapsed();
            answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Attempt {
                status: r.status,
                took,
                body: r.body,
                seats: want,
                user: i % users.len(),
            }
        }
    };
    let storm = futures::stream::iter(0..240)
        .map(attempt)
        .buffer_unordered(24)
        .collect::<Vec<_>>();
    let fault = async {
        while answered.load(std::sync::atomic::Ordering::SeqCst) < 60 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        app.kill_workers().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        app.start_workers().await;
    };
    let (attempts, ()) = futures::join!(storm, fault);

    // Every answer is a decision (201, 409) or a 202 that resolves to one.
    let mut holds: Vec<(Value, Vec<String>, usize)> = Vec::new();
    let mut pending = 0;
    for a in &attempts {
        let (status, body) = if a.status == 202 {
            pending += 1;
            let location = a.body["location"]
                .as_str()
                .expect("a 202 says where to look");
            let token = &users[a.user];
            wait_until(Duration::from_secs(30), || async {
                app.get(location, Some(token)).await.status != 202
            })
            .await;
            let last = app.get(location, Some(token)).await;
            assert_ne!(last.status, 202, "every 202 resolves: {location}");
            (last.status, last.body)
        } else {
            (a.status, a.body.clone())
        };
        match status {
            201 => holds.push((body, a.seats.clone(), a.user)),
            // Lost the seat, or the command reached a restarted worker after its
            // deadline and was not applied.
            409 | 503 => {}
            s => panic!("unexpected answer {s}: {body}"),
        }
    }
    // Those in flight at the kill were redelivered to the restarted workers (after the
    // consumer's first backoff, 5 s) and answered then, or answered 202.
    let redelivered = attempts
        .iter()
        .filter(|a| a.took > Duration::from_secs(4))
        .count();
    eprintln!(
        "{} attempts, {} holds, {redelivered} answered after a redelivery, {pending} answered 202 first",
        attempts.len(),
        holds.len()
    );
    assert!(!holds.is_empty());

    // No seat in two holds; every hold answered 201 is still there, active, as answered.
    let mut taken: HashSet<String> = HashSet::new();
    for (body, want, user) in &holds {
        for s in want {
            assert!(taken.insert(s.clone()), "seat {s} held twice");
        }
        let id = body["id"].as_str().expect("hold id");
        let read = app
            .get(&format!("/v1/holds/{id}"), Some(&users[*user]))
            .await;
        assert_eq!(
            read.status, 200,
            "hold {id} answered 201 is readable: {read:?}"
        );
        assert_eq!(read.body["status"], "active", "{read:?}");
    }
    // The seat map shows exactly those seats held, and the documents follow: the batch
    // the killed projection had taken comes back after the consumer's ack wait.
    assert_eq!(seats_with(&app, &event, "held").await, taken);
    let eid = ObjectId::parse_str(&event).unwrap();
    let n = taken.len() as u64;
    let after_kill = streams::setup::PROJECTION_ACK_WAIT + Duration::from_secs(10);
    let settled = wait_until(after_kill, || async {
        app.count("seats", doc! {"eventId": eid, "status": "held"})
            .await
            == n
            && app
                .count("seat_holds", doc! {"eventId": eid, "status": "active"})
                .await
                == holds.len() as u64
    })
    .await;
    assert!(
        settled,
        "held seats {} of {n}, active holds {} of {}",
        app.count("seats", doc! {"eventId": eid, "status": "held"})
            .await,
        app.count("seat_holds", doc! {"eventId": eid, "status": "active"})
            .await,
        holds.len()
    );
    // And stays so: nothing arrives twice.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        app.count("seats", doc! {"eventId": eid, "status": "held"})
            .await,
        n
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_burst_of_seat_map_reads_does_not_hold_up_an_ordinary_read() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    // 25 rows of 200: a 5,000-seat map.
    let event = app.published_event(&admin, 25, 200).await;
    let path = format!("/v1/events/{event}/seats");
    let burst = futures::future::join_all((0..200).map(|_| async {
        let r = app.get(&path, None).await;
        (r, std::time::Instant::now())
    }));
    let ordinary = async {
        // Once the burst is on its way, an ordinary read goes through beside it.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let started = std::time::Instant::now();
        let r = app.get(&format!("/v1/events/{event}"), None).await;
        (r, started, std::time::Instant::now())
    };
    let (maps, (event_read, started, done)) = futures::join!(burst, ordinary);
    assert_eq!(event_read.status, 200, "{event_read:?}");
    eprintln!(
        "an ordinary read beside 200 seat-map reads answered in {:?}",
        done - started
    );
    // It did not queue behind the burst: maps were still being answered after it.
    let last_map = maps.iter().map(|(_, at)| *at).max().unwrap();
    assert!(
        done < last_map,
        "the ordinary read finished after the whole burst of seat-map reads"
    );
    let maps: Vec<_> = maps.into_iter().map(|(r, _)| r).collect();
    // Every map read is answered: in full, or shed at once with Retry-After.
    let mut full = 0;
    for m in &maps {
        match m.status {
            200 => {
                assert_eq!(m.body["total"], 5000);
                full += 1;
            }
            503 => {
                assert_eq!(m.code(), "overloaded", "{:?}", m.body);
                assert!(m.headers.contains_key("retry-after"));
            }
            s => panic!("seat map answered {s}: {:?}", m.body),
        }
    }
    assert!(full > 0, "some maps are served");
    // And right after, the system answers normally.
    let again = app.get(&path, None).await;
    assert_eq!(again.status, 200);
    app.shutdown().await;
}
