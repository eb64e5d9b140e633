use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bson::doc;
use bson::oid::ObjectId;
use e2e::{spawn_app, wait_until};
use futures::future::join_all;
use futures::TryStreamExt;
use serde_json::json;

/// 60 buyers race for overlapping seats of a 30-seat event.
#[tokio::test]
async fn concurrent_buyers_never_share_a_seat_and_losers_get_409() {
    let app = Arc::new(spawn_app().await);
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 3, 10).await;
    let seats = app.seat_ids(&event).await;
    let users = join_all((0..60).map(|_| app.new_user())).await;

    let attempts = users.iter().enumerate().map(|(i, (_, token))| {
        let app = app.clone();
        // Windows of 3 seats starting at i mod 28: neighbours overlap.
        let wanted: Vec<String> = (0..3).map(|k| seats[(i + k) % 28].clone()).collect();
        let event = event.clone();
        let token = token.clone();
        async move {
            app.post(
                &format!("/v1/events/{event}/holds"),
                Some(&token),
                json!({"seatIds": wanted}),
            )
            .await
        }
    });
    let results = join_all(attempts).await;
    let won: Vec<_> = results.iter().filter(|r| r.status == 201).collect();
    let lost: Vec<_> = results.iter().filter(|r| r.status != 201).collect();
    assert!(!won.is_empty(), "someone wins");
    for r in &lost {
        assert_eq!((r.status, r.code()), (409, "seats_unavailable"), "{r:?}");
    }

    // No seat is in two active holds (the documents are the projection's, so they are
    // waited for).
    let oid = ObjectId::parse_str(&event).unwrap();
    app.settled_count(
        "seat_holds",
        doc! {"eventId": oid, "status": "active"},
        won.len() as u64,
    )
    .await;
    let holds: Vec<bson::Document> = app
        .db
        .collection::<bson::Document>("seat_holds")
        .find(doc! {"eventId": oid, "status": "active"})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(holds.len(), won.len());
    let mut owner: HashMap<ObjectId, ObjectId> = HashMap::new();
    for h in &holds {
        for s in h.get_array("seatIds").unwrap() {
            let prev = owner.insert(s.as_object_id().unwrap(), h.get_object_id("_id").unwrap());
            assert!(prev.is_none(), "seat {s} is in two active holds");
        }
    }
    // The seats collection agrees with the holds.
    assert!(
        app.wait_seats(doc! {"eventId": oid, "status": "held"}, owner.len() as u64)
            .await,
        "held seat documents match the holds"
    );
    // And the counter equals the available seats once quiet.
    let exact = wait_until(Duration::from_secs(10), || async {
        let (c, real) = app.seat_counts(&event).await;
        c == real && real == 30 - owner.len() as i64
    })
    .await;
    assert!(
        exact,
        "availableSeats {:?}, held {}",
        app.seat_counts(&event).await,
        owner.len()
    );
    if let Ok(app) = Arc::try_unwrap(app) {
        app.shutdown().await;
    }
}
