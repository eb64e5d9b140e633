//! Real answers against the OpenAPI document: each main resource, read from a running
//! stack, decodes into the gateway's response schema type (which refuses unknown
//! fields), so a field the document does not name, or a named field that is missing or
//! of another type, fails here.

use std::time::Duration;

use e2e::{spawn_app, wait_until, Resp, TestApp};
use gateway::openapi::schemas as s;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

const APPROVED: &str = "4242424242424242";

/// The answer has the status the document lists and decodes into its documented type.
fn conforms<T: DeserializeOwned>(what: &str, r: &Resp, status: u16) {
    assert_eq!(r.status, status, "{what}: {r:?}");
    if let Err(e) = serde_json::from_value::<T>(r.body.clone()) {
        panic!(
            "{what}: the answer does not match its schema {}: {e}\n{:#}",
            std::any::type_name::<T>(),
            r.body
        );
    }
}

/// The document names `schema` as the body of `status` of `method path`.
fn documents(doc: &Value, method: &str, path: &str, status: &str, schema: &str) {
    let content =
        &doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"];
    assert!(
        content.to_string().contains(schema),
        "{method} {path} {status} should be {schema}: {content}"
    );
}

async fn eventually(app: &TestApp, path: &str, token: &str, ok: impl Fn(&Value) -> bool) -> Resp {
    assert!(
        wait_until(Duration::from_secs(15), || async {
            ok(&app.get(path, Some(token)).await.body)
        })
        .await,
        "{path} never became ready"
    );
    app.get(path, Some(token)).await
}

#[tokio::test]
async fn every_main_resource_matches_its_documented_schema() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let email = format!("u{}@example.com", uuid::Uuid::new_v4().simple());
    let reg = app
        .post(
            "/v1/auth/register",
            None,
            json!({"email": email, "password": e2e::PASSWORD, "name": "Ana"}),
        )
        .await;
    conforms::<s::User>("register", &reg, 201);
    let login = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": email, "password": e2e::PASSWORD}),
        )
        .await;
    conforms::<gateway::routes::accounts::TokenResponse>("login", &login, 200);
    let user = login.body["accessToken"].as_str().unwrap().to_string();
    conforms::<s::User>("me", &app.get("/v1/me", Some(&user)).await, 200);
    let created = app
        .post(
            "/v1/events",
            Some(&admin),
            json!({
                "name": "Schema Night", "description": "d", "eventDate": "2030-06-01", "eventTime": "20:00",
                "venue": "Hall", "city": "Lisbon", "country": "PT", "category": "concert", "currency": "EUR",
                "imageUrl": "https://example.com/a.png",
                "sections": [{"name": "Standard", "price": "25.00", "rows": "A-B", "seatsPerRow": 3}],
                "cancellationPolicy": {"daysBeforeCancellation": 1, "refundPercentage": 50}
            }),
        )
        .await;
    conforms::<s::Event>("event_create", &created, 201);
    let event = created.body["id"].as_str().unwrap().to_string();
    let published = app
        .post(
            &format!("/v1/events/{event}/publish"),
            Some(&admin),
            json!({}),
        )
        .await;
    conforms::<s::Event>("event_publish", &published, 200);
    conforms::<s::Page<s::Event>>("event_list", &app.get("/v1/events", None).await, 200);
    conforms::<s::Event>(
        "event_read",
        &app.get(&format!("/v1/events/{event}"), None).await,
        200,
    );
    conforms::<s::SeatList>(
        "event_seats",
        &app.get(&format!("/v1/events/{event}/seats"), None).await,
        200,
    );
    let seats = app.seat_ids(&event).await;
    let hold = app
        .post(
            &format!("/v1/events/{event}/holds"),
            Some(&user),
            json!({"seatIds": [seats[0], seats[1]]}),
        )
        .await;
    conforms::<s::Hold>("hold_create", &hold, 201);
    let hold_id = hold.body["id"].as_str().unwrap().to_string();
    conforms::<s::Hold>(
        "hold_read",
        &app.get(&format!("/v1/holds/{hold_id}"), Some(&user)).await,
        200,
    );
    let booking = app
        .post("/v1/bookings", Some(&user), json!({"holdId": hold_id}))
        .await;
    conforms::<s::Booking>("booking_create", &booking, 201);
    let booking_id = booking.body["id"].as_str().unwrap().to_string();
    conforms::<s::Booking>(
        "booking_read",
        &app.get(&format!("/v1/bookings/{booking_id}"), Some(&user))
            .await,
        200,
    );
    conforms::<s::Page<s::Booking>>(
        "booking_mine",
        &app.get("/v1/me/bookings", Some(&user)).await,
        200,
    );
    let paid = app.pay(&user, &booking_id, APPROVED).await;
    conforms::<s::PaymentAnswer>("pay", &paid, 201);
    let payment_id = paid.body["payment"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    conforms::<s::Payment>(
        "payment_read",
        &app.get(&format!("/v1/payments/{payment_id}"), Some(&user))
            .await,
        200,
    );
    let tickets = eventually(
        &app,
        &format!("/v1/bookings/{booking_id}/tickets"),
        &user,
        |b| b["total"] == 2,
    )
    .await;
    conforms::<s::BookingTickets>("booking_tickets", &tickets, 200);
    let ticket = tickets.body["items"][0].clone();
    conforms::<s::Ticket>(
        "ticket_read",
        &app.get(
            &format!("/v1/tickets/{}", ticket["id"].as_str().unwrap()),
            Some(&user),
        )
        .await,
        200,
    );
    conforms::<s::ScanKeys>(
        "scan_keys",
        &app.get("/v1/scan-keys", Some(&admin)).await,
        200,
    );
    let scan = app
        .post(
            "/v1/scans",
            Some(&admin),
            json!({"qrString": ticket["qrString"], "deviceId": "d1", "gate": "A"}),
        )
        .await;
    conforms::<s::ScanAnswer>("scan", &scan, 200);
    let scan2 = app
        .post(
            "/v1/scans",
            Some(&admin),
            json!({"qrString": ticket["qrString"], "deviceId": "d1", "gate": "A"}),
        )
        .await;
    conforms::<s::ScanAnswer>("scan_again", &scan2, 200);
    let cancel = app
        .post(
            &format!("/v1/bookings/{booking_id}/cancel"),
            Some(&user),
            json!({"reason": "ill"}),
        )
        .await;
    conforms::<s::CancelAnswer>("booking_cancel", &cancel, 200);
    let refund_id = cancel.body["refund"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    conforms::<s::Refund>(
        "refund_read",
        &app.get(&format!("/v1/refunds/{refund_id}"), Some(&user))
            .await,
        200,
    );
    // An unpaid booking cancelled.
    let b2 = app.book(&user, &event, &[seats[2].clone()]).await;
    let c2 = app
        .post(
            &format!("/v1/bookings/{}/cancel", b2["id"].as_str().unwrap()),
            Some(&user),
            json!({}),
        )
        .await;
    conforms::<s::CancelAnswer>("booking_cancel_unpaid", &c2, 200);
    let h3 = app
        .post(
            &format!("/v1/events/{event}/holds"),
            Some(&user),
            json!({"seatIds": [seats[3]]}),
        )
        .await;
    let rel = app
        .call(
            "DELETE",
            &format!("/v1/holds/{}", h3.body["id"].as_str().unwrap()),
            Some(&user),
            None,
            &[],
        )
        .await;
    assert_eq!(rel.status, 204, "release");
    conforms::<s::Hold>(
        "hold_read_released",
        &app.get(
            &format!("/v1/holds/{}", h3.body["id"].as_str().unwrap()),
            Some(&user),
        )
        .await,
        200,
    );
    let cmd = hold
        .headers
        .get("ticketing-command-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    conforms::<s::Hold>(
        "command",
        &app.get(&format!("/v1/commands/{cmd}"), Some(&user)).await,
        201,
    );
    let notes = eventually(&app, "/v1/me/notifications", &user, |b| {
        b["total"].as_u64().unwrap_or(0) > 0
    })
    .await;
    conforms::<s::Page<s::Notification>>("notifications", &notes, 200);
    let nid = notes.body["items"][0]["id"].as_str().unwrap().to_string();
    conforms::<s::Notification>(
        "notification_read",
        &app.post(
            &format!("/v1/me/notifications/{nid}/read"),
            Some(&user),
            json!({}),
        )
        .await,
        200,
    );
    conforms::<s::Page<s::AuditLog>>(
        "audit_logs",
        &app.get("/v1/audit-logs?limit=100", Some(&admin)).await,
        200,
    );
    conforms::<s::Analytics>(
        "analytics",
        &app.get(&format!("/v1/events/{event}/analytics"), Some(&admin))
            .await,
        200,
    );
    conforms::<s::Rebuilt>(
        "analytics_rebuild",
        &app.post("/v1/analytics/rebuild", Some(&admin), json!({}))
            .await,
        200,
    );
    conforms::<s::Event>(
        "event_cancel",
        &app.post(
            &format!("/v1/events/{event}/cancel"),
            Some(&admin),
            json!({}),
        )
        .await,
        200,
    );
    conforms::<s::Accepted>(
        "reset",
        &app.post("/v1/auth/password-reset", None, json!({"email": email}))
            .await,
        202,
    );
    conforms::<gateway::openapi::ErrorBody>(
        "verify_bad",
        &app.post("/v1/auth/verify", None, json!({"token": "x"}))
            .await,
        400,
    );
    conforms::<s::Health>("healthz", &app.get("/healthz", None).await, 200);
    conforms::<s::Readiness>("readyz", &app.get("/readyz", None).await, 200);
    let doc = app.get("/openapi.json", None).await.body;
    for (method, path, status, schema) in [
        ("get", "/v1/me", "200", "User"),
        ("post", "/v1/events", "201", "Event"),
        ("get", "/v1/events", "200", "Page_Event"),
        ("get", "/v1/events/{id}/seats", "200", "SeatList"),
        ("post", "/v1/events/{id}/holds", "201", "Hold"),
        ("post", "/v1/events/{id}/holds", "202", "PendingCommand"),
        ("post", "/v1/bookings", "201", "Booking"),
        ("post", "/v1/bookings/{id}/payments", "201", "PaymentAnswer"),
        ("get", "/v1/tickets/{id}", "200", "Ticket"),
        ("get", "/v1/audit-logs", "200", "Page_AuditLog"),
        ("get", "/v1/holds/{id}", "401", "ErrorBody"),
    ] {
        documents(&doc, method, path, status, schema);
    }
    app.shutdown().await;
}

/// `from`/`to` take a plain day (that whole day, UTC) or an RFC 3339 time, on the events
/// list and the audit trail alike.
#[tokio::test]
async fn date_filters_take_a_plain_day_or_an_rfc_3339_time() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    // The harness's event starts 2030-06-01 at 20:00 (compared as UTC).
    let event = app.published_event(&admin, 1, 2).await;
    let listed = |q: &'static str| {
        let app = &app;
        let event = event.clone();
        async move {
            let r = app.get(&format!("/v1/events?{q}"), None).await;
            assert_eq!(r.status, 200, "{q}: {r:?}");
            r.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["id"] == event.as_str())
        }
    };
    assert!(
        listed("from=2030-06-01&to=2030-06-01").await,
        "the day itself"
    );
    assert!(
        listed("from=2030-05-31T23:00:00-01:00").await,
        "midnight UTC, at -01:00"
    );
    assert!(listed("to=2030-06-01T20:00:00Z").await);
    assert!(!listed("to=2030-06-01T19:59:59Z").await);
    assert!(!listed("from=2030-06-02").await);
    assert!(!listed("to=2030-05-31").await);
    assert!(!listed("from=2030-06-01T20:00:00.001Z").await);
    assert!(
        listed("from=2030-06-01T21:00:00%2B01:00").await,
        "20:00 UTC, at +01:00"
    );
    assert!(
        !listed("from=2030-06-02&to=2030-06-01").await,
        "an empty range finds nothing"
    );
    for bad in [
        "from=",
        "to=2030-6-1",
        "from=tomorrow",
        "page=",
        "page=2147483648",
        "limit=101",
    ] {
        let r = app.get(&format!("/v1/events?{bad}"), None).await;
        assert_eq!((r.status, r.code()), (400, "validation_failed"), "{bad}");
    }

    let today = chrono::Utc::now().date_naive();
    let audit = |q: String| {
        let app = &app;
        let admin = admin.clone();
        let event = event.clone();
        async move {
            let r = app
                .get(
                    &format!("/v1/audit-logs?entityId={event}&{q}"),
                    Some(&admin),
                )
                .await;
            assert_eq!(r.status, 200, "{q}: {r:?}");
            r.body["total"].as_u64().unwrap()
        }
    };
    assert!(
        wait_until(Duration::from_secs(10), || async {
            audit(String::new()).await >= 2
        })
        .await,
        "the creation and the publication are audited"
    );
    let all = audit(String::new()).await;
    assert_eq!(audit(format!("from={today}&to={today}")).await, all);
    assert_eq!(audit(format!("to={}", today.pred_opt().unwrap())).await, 0);
    assert_eq!(
        audit(format!("from={}", today.succ_opt().unwrap())).await,
        0
    );
    let hour_ago = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    assert_eq!(
        audit(format!("from={}", hour_ago.replace('+', "%2B"))).await,
        all
    );
    assert_eq!(audit("to=2000-01-01T00:00:00Z".into()).await, 0);
    let r = app.get("/v1/audit-logs?from=", Some(&admin)).await;
    assert_eq!((r.status, r.code()), (400, "validation_failed"));
    app.shutdown().await;
}
