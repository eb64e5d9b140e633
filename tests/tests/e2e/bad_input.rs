use bson::doc;
use e2e::spawn_app;
use serde_json::json;

#[tokio::test]
async fn bad_input_gets_a_4xx_with_a_clear_code_and_changes_nothing() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 1, 3).await;
    let other = app.published_event(&admin, 1, 3).await;
    let other_seat = app.seat_ids(&other).await[0].clone();
    let seats = app.seat_ids(&event).await;
    let (_, user) = app.new_user().await;
    let holds = format!("/v1/events/{event}/holds");

    // Malformed JSON.
    let r = app
        .http
        .post(app.url(&holds))
        .bearer_auth(&user)
        .header("content-type", "application/json")
        .body("{\"seatIds\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "invalid_json");

    let cases: Vec<(&str, String, serde_json::Value, u16, &str)> = vec![
        (
            "empty seat list",
            holds.clone(),
            json!({"seatIds": []}),
            400,
            "validation_failed",
        ),
        (
            "invalid ObjectId",
            holds.clone(),
            json!({"seatIds": ["nope"]}),
            400,
            "invalid_id",
        ),
        (
            "seat of another event",
            holds.clone(),
            json!({"seatIds": [other_seat]}),
            404,
            "seat_not_found",
        ),
        (
            "repeated seat",
            holds.clone(),
            json!({"seatIds": [seats[0], seats[0]]}),
            400,
            "validation_failed",
        ),
        (
            "too many seats",
            holds.clone(),
            json!({"seatIds": (0..11).map(|_| bson::oid::ObjectId::new().to_hex()).collect::<Vec<_>>()}),
            400,
            "validation_failed",
        ),
        (
            "unknown event",
            format!("/v1/events/{}/holds", bson::oid::ObjectId::new().to_hex()),
            json!({"seatIds": [seats[0]]}),
            404,
            "event_not_found",
        ),
        (
            "invalid event id",
            "/v1/events/123/holds".to_string(),
            json!({"seatIds": [seats[0]]}),
            400,
            "invalid_id",
        ),
        (
            "wrong field type",
            holds.clone(),
            json!({"seatIds": "x"}),
            400,
            "validation_failed",
        ),
    ];
    for (what, path, body, status, code) in cases {
        let r = app.post(&path, Some(&user), body).await;
        assert_eq!((r.status, r.code()), (status, code), "{what}: {r:?}");
    }
    let bad_events = [
        json!({"name": "X", "description": "", "eventDate": "2030-13-01", "eventTime": "20:00", "venue": "V", "city": "C", "country": "PT", "category": "concert", "sections": [{"name": "S", "price": "1", "rows": "A", "seatsPerRow": 2}]}),
        json!({"name": "X", "description": "", "eventDate": "2030-01-01", "eventTime": "20:00", "venue": "V", "city": "C", "country": "PT", "category": "concert", "sections": [{"name": "S", "price": "-5", "rows": "A", "seatsPerRow": 2}]}),
        json!({"name": "X", "description": "", "eventDate": "2030-01-01", "eventTime": "20:00", "venue": "V", "city": "C", "country": "PT", "category": "concert", "sections": [{"name": "S", "price": "1", "rows": "A", "seatsPerRow": 100000000}]}),
        json!({"name": "X", "description": "", "eventDate": "2030-01-01", "eventTime": "20:00", "venue": "V", "city": "C", "country": "PT", "category": "opera", "sections": [{"name": "S", "price": "1", "rows": "A", "seatsPerRow": 2}]}),
        json!({"name": "", "description": "", "eventDate": "2030-01-01", "eventTime": "20:00", "venue": "V", "city": "C", "country": "PT", "category": "concert", "sections": []}),
    ];
    for b in bad_events {
        let r = app.post("/v1/events", Some(&admin), b.clone()).await;
        assert_eq!(r.status, 400, "{b}: {r:?}");
    }
    let reg = app
        .post(
            "/v1/auth/register",
            None,
            json!({"email": "not-an-email", "password": "x", "name": "N"}),
        )
        .await;
    assert_eq!((reg.status, reg.code()), (400, "validation_failed"));
    let paging = app.get("/v1/events?page=-1", None).await;
    assert_eq!(paging.status, 400);
    let huge = app.get("/v1/events?limit=99999999999999999999", None).await;
    assert_eq!(huge.status, 400);
    // A NUL byte in free text (schemathesis found the database answering 503 to it).
    for path in [
        "/v1/events?q=a%00b",
        "/v1/events?city=%00",
        "/v1/events?q=line%0Abreak",
    ] {
        let r = app.get(path, None).await;
        assert_eq!((r.status, r.code()), (400, "validation_failed"), "{path}");
    }
    let seats_nul = app
        .get(&format!("/v1/events/{event}/seats?section=%00"), None)
        .await;
    assert_eq!(
        (seats_nul.status, seats_nul.code()),
        (400, "validation_failed")
    );

    // Tokens: none, garbled, forged.
    assert_eq!(
        app.post(&holds, None, json!({"seatIds": [seats[0]]}))
            .await
            .code(),
        "unauthorized"
    );
    assert_eq!(
        app.post(&holds, Some("garbage"), json!({"seatIds": [seats[0]]}))
            .await
            .status,
        401
    );

    // Nothing changed.
    let oid = bson::oid::ObjectId::parse_str(&event).unwrap();
    assert_eq!(app.count("seat_holds", doc! {}).await, 0);
    assert_eq!(
        app.count("seats", doc! {"eventId": oid, "status": "available"})
            .await,
        3
    );
    assert_eq!(app.count("events", doc! {}).await, 2);
    assert_eq!(app.count("users", doc! {}).await, 2);
    app.shutdown().await;
}
