use bson::doc;
use e2e::{spawn_app, wait_until};
use serde_json::json;
use std::time::Duration;

fn event_body(name: &str, city: &str, category: &str, date: &str) -> serde_json::Value {
    json!({
        "name": name, "description": "An evening of music", "eventDate": date, "eventTime": "19:30",
        "venue": "Coliseu", "city": city, "country": "PT", "category": category,
        "sections": [
            {"name": "Premium", "price": "120.50", "rows": "A-B", "seatsPerRow": 10},
            {"name": "Economy", "price": "35", "rows": "C-E", "seatsPerRow": 12}
        ],
        "cancellationPolicy": {"daysBeforeCancellation": 7, "refundPercentage": 50}
    })
}

#[tokio::test]
async fn an_admin_creates_and_publishes_an_event_with_its_seat_map() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let r = app
        .post(
            "/v1/events",
            Some(&admin),
            event_body("Fado Night", "Lisbon", "concert", "2030-05-01"),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["status"], "draft");
    assert_eq!(r.body["totalCapacity"], 56);
    assert_eq!(r.body["pricing"]["minPrice"]["amountMinor"], 3500);
    assert_eq!(r.body["pricing"]["maxPrice"]["amountMinor"], 12050);
    let id = r.body["id"].as_str().unwrap().to_string();

    // Drafts are not public.
    assert_eq!(app.get(&format!("/v1/events/{id}"), None).await.status, 404);
    let p = app
        .post(&format!("/v1/events/{id}/publish"), Some(&admin), json!({}))
        .await;
    assert_eq!(
        (p.status, p.body["status"].as_str()),
        (200, Some("published")),
        "{p:?}"
    );
    let public = app.get(&format!("/v1/events/{id}"), None).await;
    assert_eq!(public.status, 200);
    assert_eq!(public.body["availableSeats"], 56);

    let premium = app
        .get(&format!("/v1/events/{id}/seats?section=Premium"), None)
        .await;
    assert_eq!(premium.body["total"], 20);
    let first = &premium.body["items"][0];
    assert_eq!(
        (first["row"].as_str(), first["number"].as_i64()),
        (Some("A"), Some(1))
    );
    assert_eq!(first["price"]["amountMinor"], 12050);
    assert_eq!(first["status"], "available");

    let oid = bson::oid::ObjectId::parse_str(&id).unwrap();
    assert_eq!(app.count("seats", doc! {"eventId": oid}).await, 56);
    // Every change is audited (the audit projection is asynchronous).
    let audited = wait_until(Duration::from_secs(5), || async {
        app.count("audit_logs", doc! {"entityId": oid}).await >= 2
    })
    .await;
    assert!(audited, "event_created and event_published audit entries");
    let logs = app
        .get(&format!("/v1/audit-logs?entityId={id}"), Some(&admin))
        .await;
    let actions: Vec<&str> = logs.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"event_created") && actions.contains(&"event_published"),
        "{actions:?}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn published_events_are_listed_with_filters_and_pages() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let mut ids = Vec::new();
    for (name, city, cat, date) in [
        ("Fado Night", "Lisbon", "concert", "2030-05-01"),
        ("Derby", "Porto", "sports", "2030-05-10"),
        ("Hamlet", "Lisbon", "theater", "2030-06-01"),
        ("Draft Show", "Lisbon", "concert", "2030-05-02"),
    ] {
        let r = app
            .post(
                "/v1/events",
                Some(&admin),
                event_body(name, city, cat, date),
            )
            .await;
        assert_eq!(r.status, 201);
        ids.push(r.body["id"].as_str().unwrap().to_string());
    }
    for id in &ids[..3] {
        assert_eq!(
            app.post(&format!("/v1/events/{id}/publish"), Some(&admin), json!({}))
                .await
                .status,
            200
        );
    }
    let names = |r: &e2e::Resp| -> Vec<String> {
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_string())
            .collect()
    };
    let all = app.get("/v1/events", None).await;
    assert_eq!(all.body["total"], 3, "drafts are not listed: {all:?}");
    assert_eq!(
        names(&app.get("/v1/events?city=lisbon", None).await),
        ["Fado Night", "Hamlet"]
    );
    assert_eq!(
        names(&app.get("/v1/events?category=sports", None).await),
        ["Derby"]
    );
    assert_eq!(
        names(
            &app.get("/v1/events?from=2030-05-05&to=2030-05-31", None)
                .await
        ),
        ["Derby"]
    );
    assert_eq!(names(&app.get("/v1/events?q=haml", None).await), ["Hamlet"]);
    let page2 = app.get("/v1/events?limit=2&page=2", None).await;
    assert_eq!(names(&page2), ["Hamlet"]);
    assert_eq!(page2.body["total"], 3);
    app.shutdown().await;
}
