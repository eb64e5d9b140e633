//! Analytics end to end: a scripted mix of purchases, a refund and a declined payment,
//! checked against figures computed here, then again after a rebuild from EVENTS.

use std::time::Duration;

use e2e::spawn_app;
use serde_json::{json, Value};

const APPROVED: &str = "4242424242424242";
const DECLINED: &str = "4000000000000002";

/// Sums a count metric over every period of the answer.
fn sum_count(a: &Value, metric: &str) -> i64 {
    a["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| i["metrics"][metric]["count"].as_i64().unwrap_or(0))
        .sum()
}

fn sum_amount(a: &Value, metric: &str) -> i64 {
    a["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            i["metrics"][metric]["amount"]["amountMinor"]
                .as_i64()
                .unwrap_or(0)
        })
        .sum()
}

#[tokio::test]
async fn analytics_match_the_sales_and_refunds_and_survive_a_rebuild() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let r = app
        .post(
            "/v1/events",
            Some(&admin),
            json!({
                "name": "Stats Night", "description": "", "eventDate": "2031-02-01", "eventTime": "20:00",
                "venue": "Hall", "city": "Porto", "country": "PT", "category": "concert",
                "sections": [
                    {"name": "Standard", "price": "25.00", "rows": "A-B", "seatsPerRow": 5},
                    {"name": "Premium", "price": "60.00", "rows": "C", "seatsPerRow": 5}
                ]
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let event = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        app.post(
            &format!("/v1/events/{event}/publish"),
            Some(&admin),
            json!({})
        )
        .await
        .status,
        200
    );
    let seats = app
        .get(&format!("/v1/events/{event}/seats"), None)
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .clone();
    let seat = |row: &str, n: i64| -> String {
        seats
            .iter()
            .find(|s| s["row"] == row && s["number"] == n)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (_, u1) = app.new_user().await;
    let (_, u2) = app.new_user().await;

    // Sale 1: A1 A2 (50.00). Sale 2: C1 (60.00). Sale 3: A3 C2 (85.00), then cancelled.
    // A declined payment on B1, then the buyer gives up: a cancellation without a sale.
    let mut refunded = 0;
    for (token, picks, cancel) in [
        (&u1, vec![seat("A", 1), seat("A", 2)], false),
        (&u2, vec![seat("C", 1)], false),
        (&u1, vec![seat("A", 3), seat("C", 2)], true),
    ] {
        let b = app.book(token, &event, &picks).await;
        let id = b["id"].as_str().unwrap();
        assert_eq!(app.pay(token, id, APPROVED).await.status, 201);
        if cancel {
            let c = app
                .post(&format!("/v1/bookings/{id}/cancel"), Some(token), json!({}))
                .await;
            assert_eq!(c.status, 200, "{c:?}");
            refunded = c.body["refund"]["refundAmount"]["amountMinor"]
                .as_i64()
                .unwrap();
        }
    }
    let b = app.book(&u2, &event, &[seat("B", 1)]).await;
    assert_eq!(
        app.pay(&u2, b["id"].as_str().unwrap(), DECLINED)
            .await
            .status,
        402
    );
    // A decline leaves the booking payable; cancelling it releases the seat.
    let c = app
        .post(
            &format!("/v1/bookings/{}/cancel", b["id"].as_str().unwrap()),
            Some(&u2),
            json!({}),
        )
        .await;
    assert_eq!(c.status, 200, "{c:?}");
    assert!(refunded > 0);

    let path = format!("/v1/events/{event}/analytics?period=monthly");
    // Every figure asserted below comes from facts the projection applies in batches:
    // wait for all of them, not only the counts (the refund's rate can trail its count).
    let settled = |a: &Value| {
        let last = a["items"]
            .as_array()
            .and_then(|i| i.last())
            .map(|l| l["metrics"].clone())
            .unwrap_or_default();
        sum_count(a, "bookings_count") == 3
            && sum_count(a, "refunds_count") == 1
            && sum_count(a, "cancellations_count") == 2
            && last["refund_rate"]["numerator"] == 1
            && last["occupancy_rate"]["numerator"] == 3
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let live = loop {
        let a = app.get(&path, Some(&admin)).await.body;
        if settled(&a) {
            break a;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "analytics never settled: {a}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let gross = 5000 + 6000 + 8500;
    assert_eq!(
        sum_amount(&live, "total_revenue"),
        gross - refunded,
        "{live}"
    );
    let last = live["items"].as_array().unwrap().last().unwrap()["metrics"].clone();
    // Sold 5 seats, gave 2 back: 3 of 15.
    assert_eq!(last["occupancy_rate"]["numerator"], 3, "{last}");
    assert_eq!(last["occupancy_rate"]["denominator"], 15);
    assert_eq!(last["refund_rate"]["numerator"], 1);
    assert_eq!(last["refund_rate"]["denominator"], 3);
    // Five tickets for 195.00: 39.00 on average.
    assert_eq!(
        last["avg_ticket_price"]["amount"]["amountMinor"], 3900,
        "{last}"
    );
    let by_section: Vec<(String, i64, i64)> = last["revenue_by_section"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["key"].as_str().unwrap().to_string(),
                i["count"].as_i64().unwrap(),
                i["amount"]["amountMinor"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        by_section,
        vec![("Premium".into(), 2, 12000), ("Standard".into(), 3, 7500)]
    );
    assert_eq!(last["popular_seats"]["items"].as_array().unwrap().len(), 5);

    // Other periods agree on the totals.
    for p in ["hourly", "daily", "weekly"] {
        let a = app
            .get(
                &format!("/v1/events/{event}/analytics?period={p}"),
                Some(&admin),
            )
            .await
            .body;
        assert_eq!(sum_count(&a, "bookings_count"), 3, "{p}: {a}");
        assert_eq!(sum_amount(&a, "total_revenue"), gross - refunded, "{p}");
    }
    // Admins only; bad periods are refused.
    let (_, user) = app.new_user().await;
    assert_eq!(app.get(&path, Some(&user)).await.status, 403);
    let bad = app
        .get(
            &format!("/v1/events/{event}/analytics?period=yearly"),
            Some(&admin),
        )
        .await;
    assert_eq!((bad.status, bad.code()), (400, "validation_failed"));

    let rebuilt = app
        .post("/v1/analytics/rebuild", Some(&admin), json!({}))
        .await;
    assert_eq!(rebuilt.status, 200, "{rebuilt:?}");
    assert!(rebuilt.body["replayedEvents"].as_u64().unwrap() > 0);
    let after = app.get(&path, Some(&admin)).await.body;
    assert_eq!(after["items"], live["items"], "rebuild changed the figures");
    assert_eq!(
        app.post("/v1/analytics/rebuild", Some(&user), json!({}))
            .await
            .status,
        403
    );
    app.shutdown().await;
}
