use std::time::Duration;

use bson::doc;
use bson::oid::ObjectId;
use e2e::{spawn_app, spawn_app_with, wait_until, Options, TestApp};
use futures::future::join_all;
use serde_json::json;

const APPROVED: &str = "4242424242424242";
const DECLINED: &str = "4000000000000002";
const NO_FUNDS: &str = "4000000000009995";
const ALWAYS_FAILS: &str = "4000000000000119";
const FAILS_TWICE: &str = "4000000000000259";

fn oid(s: &serde_json::Value) -> ObjectId {
    ObjectId::parse_str(s.as_str().expect("id string")).expect("object id")
}

/// What the card vault holds now: its live keys, and whether any message still stored in
/// its stream carries `pan`.
async fn vault_state(app: &TestApp, pan: &str) -> (Vec<String>, bool) {
    use futures::TryStreamExt;
    let bucket = app.ns.card_vault_bucket();
    let kv = app.js.get_key_value(&bucket).await.unwrap();
    let keys: Vec<String> = kv.keys().await.unwrap().try_collect().await.unwrap();
    let mut stream = app.js.get_stream(format!("KV_{bucket}")).await.unwrap();
    let state = stream.info().await.unwrap().state.clone();
    let mut found = false;
    if state.messages > 0 {
        for seq in state.first_sequence..=state.last_sequence {
            if let Ok(m) = stream.get_raw_message(seq).await {
                found |= m.payload.windows(pan.len()).any(|w| w == pan.as_bytes());
            }
        }
    }
    (keys, found)
}

/// Asserts, right after an answer, that the vault holds no card number.
async fn assert_vault_empty(app: &TestApp, pan: &str, what: &str) {
    let (keys, found) = vault_state(app, pan).await;
    assert!(keys.is_empty(), "{what}: vault keys left {keys:?}");
    assert!(
        !found,
        "{what}: the card number is still stored in the vault's stream"
    );
}

#[tokio::test]
async fn every_test_card_has_its_documented_outcome() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 1, 10).await;
    let seats = app.seat_ids(&event).await;
    let (_, user) = app.new_user().await;

    // (card, seat, status, error code, attempts, booking status, seat status)
    let cases = [
        (APPROVED, 0, 201, "", 1, "confirmed", "booked"),
        (DECLINED, 1, 402, "card_declined", 1, "pending", "held"),
        (NO_FUNDS, 2, 402, "insufficient_funds", 1, "pending", "held"),
        (
            ALWAYS_FAILS,
            3,
            402,
            "processing_error",
            3,
            "pending",
            "held",
        ),
        (FAILS_TWICE, 4, 201, "", 3, "confirmed", "booked"),
    ];
    for (card, seat, status, code, attempts, booking_status, seat_status) in cases {
        let booking = app.book(&user, &event, &[seats[seat].clone()]).await;
        assert_eq!(booking["status"], "pending");
        assert!(booking["bookingReference"]
            .as_str()
            .unwrap()
            .starts_with("BK-"));
        assert_eq!(booking["finalPrice"]["amountMinor"], 2500);
        let id = booking["id"].as_str().unwrap().to_string();
        let r = app.pay(&user, &id, card).await;
        assert_eq!(r.status, status, "{card}: {r:?}");
        let payment = if status == 201 {
            &r.body["payment"]
        } else {
            &r.body["error"]["details"]["payment"]
        };
        if status == 201 {
            // Tickets follow asynchronously: the answer says so and where to read them.
            assert_eq!(r.body["tickets"]["status"], "issuing", "{r:?}");
            assert_eq!(r.body["tickets"]["expected"], 1);
            assert_eq!(
                r.body["tickets"]["location"],
                format!("/v1/bookings/{id}/tickets")
            );
        } else {
            assert_eq!(r.code(), code, "{card}");
            assert_eq!(payment["failureCode"], code);
            // A failed attempt leaves the booking payable with another card.
            let details = &r.body["error"]["details"];
            assert_eq!(details["bookingPayable"], true, "{r:?}");
            assert_eq!(details["failedAttempts"], 1);
            assert_eq!(details["attemptsLeft"], 4);
            assert_eq!(details["booking"]["status"], "pending");
        }
        assert_eq!(payment["attemptCount"], attempts, "{card}: {payment}");
        assert_eq!(payment["cardLast4"], &card[12..]);
        assert_eq!(payment["cardBrand"], "Visa");
        assert!(payment["transactionId"]
            .as_str()
            .unwrap()
            .starts_with("sim_ch_"));
        let stored = app
            .find_one("payments", doc! {"_id": oid(&payment["id"])})
            .await
            .unwrap();
        assert!(
            !format!("{stored:?}").contains(card),
            "the card number is never stored"
        );
        assert_vault_empty(&app, card, card).await;
        let b = app.get(&format!("/v1/bookings/{id}"), Some(&user)).await;
        assert_eq!(b.body["status"], booking_status, "{card}");
        let sid = ObjectId::parse_str(&seats[seat]).unwrap();
        assert!(
            app.wait_seats(doc! {"_id": sid, "status": seat_status}, 1)
                .await,
            "{card}: seat {seat_status}"
        );
        if status != 201 {
            // Another card pays the same booking: a second payment, the booking confirmed.
            let again = app.pay(&user, &id, APPROVED).await;
            assert_eq!(again.status, 201, "{card} then {APPROVED}: {again:?}");
            assert_eq!(again.body["booking"]["status"], "confirmed");
            assert_eq!(again.body["payment"]["cardLast4"], "4242");
            assert_ne!(again.body["payment"]["id"], payment["id"]);
            assert_eq!(
                app.count("payments", doc! {"bookingId": oid(&booking["id"])})
                    .await,
                2
            );
            assert!(
                app.wait_seats(doc! {"_id": sid, "status": "booked"}, 1)
                    .await,
                "{card}: seat booked after the second card"
            );
        }
    }
    // Every seat ends sold once: five approved charges in all.
    assert_eq!(
        app.count(
            "payment_gateway_ledger",
            doc! {"type": "charge", "outcome": "approved"}
        )
        .await,
        5
    );
    app.shutdown().await;
}

/// The user's case: a processing error ("try again later") and a declined card, then
/// another card pays. Each attempt is a payment with its audit log; declines are not
/// retried, processing errors are (with backoff), and one charge is approved.
#[tokio::test]
async fn a_failed_payment_can_be_followed_by_another_card() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 1, 4).await;
    let seats = app.seat_ids(&event).await;
    let (_, user) = app.new_user().await;
    let booking = app.book(&user, &event, &seats[..2]).await;
    let id = booking["id"].as_str().unwrap().to_string();
    let bid = oid(&booking["id"]);

    let first = app.pay(&user, &id, ALWAYS_FAILS).await;
    assert_eq!(
        (first.status, first.code()),
        (402, "processing_error"),
        "{first:?}"
    );
    assert_eq!(first.body["error"]["details"]["payment"]["attemptCount"], 3);
    let second = app.pay(&user, &id, DECLINED).await;
    assert_eq!(
        (second.status, second.code()),
        (402, "card_declined"),
        "{second:?}"
    );
    assert_eq!(
        second.body["error"]["details"]["payment"]["attemptCount"], 1,
        "declines are not retried"
    );
    assert_eq!(second.body["error"]["details"]["failedAttempts"], 2);
    let third = app.pay(&user, &id, APPROVED).await;
    assert_eq!(third.status, 201, "{third:?}");
    assert_eq!(third.body["booking"]["status"], "confirmed");
    assert_eq!(
        third.body["booking"]["paymentId"],
        third.body["payment"]["id"]
    );

    use futures::TryStreamExt;
    let payments: Vec<bson::Document> = app
        .db
        .collection::<bson::Document>("payments")
        .find(doc! {"bookingId": bid})
        .sort(doc! {"createdAt": 1})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let seen: Vec<(&str, &str, i32)> = payments
        .iter()
        .map(|p| {
            (
                p.get_str("status").unwrap(),
                p.get_str("cardLast4").unwrap(),
                p.get_i32("attemptCount").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("failed", "0119", 3),
            ("failed", "0002", 1),
            ("completed", "4242", 1)
        ]
    );
    // The gateway saw 3 + 1 + 1 calls, one approved.
    assert_eq!(
        app.count("payment_gateway_ledger", doc! {"type": "charge"})
            .await,
        5
    );
    assert_eq!(
        app.count(
            "payment_gateway_ledger",
            doc! {"type": "charge", "outcome": "approved"}
        )
        .await,
        1
    );
    // Each attempt has its audit log.
    for p in &payments {
        let pid = p.get_object_id("_id").unwrap();
        let action = if p.get_str("status").unwrap() == "failed" {
            "payment_failed"
        } else {
            "payment_completed"
        };
        for a in ["payment_initiated", action] {
            assert!(
                app.find_when("audit_logs", doc! {"entityId": pid, "action": a})
                    .await
                    .is_some(),
                "{a} of {pid}"
            );
        }
    }
    assert!(app.wait_seats(doc! {"status": "booked"}, 2).await);
    // Paid now: a fourth card is refused before any charge.
    let fourth = app.pay(&user, &id, APPROVED).await;
    assert_eq!((fourth.status, fourth.code()), (409, "already_paid"));
    assert_eq!(app.count("payments", doc! {"bookingId": bid}).await, 3);
    app.shutdown().await;
}

#[tokio::test]
async fn a_booking_is_cancelled_after_the_configured_number_of_failed_attempts() {
    let app = spawn_app_with(Options {
        payment_max_failed_attempts: 2,
        ..Options::default()
    })
    .await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 1, 2).await;
    let seats = app.seat_ids(&event).await;
    let (_, user) = app.new_user().await;
    let booking = app.book(&user, &event, &seats[..1]).await;
    let id = booking["id"].as_str().unwrap().to_string();
    let first = app.pay(&user, &id, NO_FUNDS).await;
    assert_eq!((first.status, first.code()), (402, "insufficient_funds"));
    assert_eq!(first.body["error"]["details"]["attemptsLeft"], 1);
    let second = app.pay(&user, &id, DECLINED).await;
    assert_eq!(
        (second.status, second.code()),
        (402, "card_declined"),
        "{second:?}"
    );
    let details = &second.body["error"]["details"];
    assert_eq!(details["bookingPayable"], false);
    assert_eq!(details["attemptsLeft"], 0);
    assert_eq!(details["booking"]["status"], "cancelled");
    assert_eq!(details["booking"]["cancellationReason"], "payment_failed");
    assert_eq!(details["booking"]["paymentId"], details["payment"]["id"]);
    let b = app.get(&format!("/v1/bookings/{id}"), Some(&user)).await;
    assert_eq!(b.body["status"], "cancelled");
    assert_eq!(b.body["paymentStatus"], "failed");
    assert_eq!(b.body["ticketsStatus"], "cancelled");
    // The seat is back on sale; the booking takes no more cards.
    let sid = ObjectId::parse_str(&seats[0]).unwrap();
    assert!(
        app.wait_seats(doc! {"_id": sid, "status": "available"}, 1)
            .await
    );
    let third = app.pay(&user, &id, APPROVED).await;
    assert_eq!(
        (third.status, third.code()),
        (409, "booking_not_payable"),
        "{third:?}"
    );
    assert_vault_empty(&app, APPROVED, "refused: not payable").await;
    assert_eq!(
        app.count("payment_gateway_ledger", doc! {"outcome": "approved"})
            .await,
        0
    );
    let (_, other) = app.new_user().await;
    app.book(&other, &event, &seats[..1]).await;
    app.shutdown().await;
}

#[tokio::test]
async fn racing_pay_requests_charge_a_booking_once() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 1, 4).await;
    let seats = app.seat_ids(&event).await;
    let (_, user) = app.new_user().await;
    let booking = app.book(&user, &event, &seats[..2]).await;
    let id = booking["id"].as_str().unwrap().to_string();
    let answers = join_all((0..6).map(|_| app.pay(&user, &id, APPROVED))).await;
    let won: Vec<_> = answers.iter().filter(|r| r.status == 201).collect();
    assert_eq!(won.len(), 1, "{answers:?}");
    for r in answers.iter().filter(|r| r.status != 201) {
        assert!(
            matches!(r.code(), "payment_in_progress" | "already_paid"),
            "{r:?}"
        );
    }
    let charges = app
        .count(
            "payment_gateway_ledger",
            doc! {"type": "charge", "outcome": "approved"},
        )
        .await;
    assert_eq!(charges, 1);
    assert_eq!(
        app.count("payments", doc! {"bookingId": oid(&booking["id"])})
            .await,
        1
    );
    let again = app.pay(&user, &id, APPROVED).await;
    assert_eq!((again.status, again.code()), (409, "already_paid"));
    app.shutdown().await;
}

/// Racing pay requests with different cards, declined and approved: whatever the order,
/// the booking is charged at most once, every attempt is recorded, none is left running,
/// and the booking ends confirmed by its one approved charge.
#[tokio::test]
async fn racing_pay_requests_with_different_cards_charge_a_booking_once() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 1, 4).await;
    let seats = app.seat_ids(&event).await;
    let (_, user) = app.new_user().await;
    for round in 0..3 {
        let booking = app.book(&user, &event, &seats[round..round + 1]).await;
        let id = booking["id"].as_str().unwrap().to_string();
        let bid = oid(&booking["id"]);
        let cards = [
            DECLINED,
            APPROVED,
            NO_FUNDS,
            APPROVED,
            FAILS_TWICE,
            DECLINED,
        ];
        let answers = join_all(cards.iter().map(|c| app.pay(&user, &id, c))).await;
        for r in &answers {
            assert!(
                matches!(
                    (r.status, r.code()),
                    (201, _)
                        | (402, "card_declined" | "insufficient_funds")
                        | (409, "payment_in_progress" | "already_paid")
                ),
                "{r:?}"
            );
        }
        let won = answers.iter().filter(|r| r.status == 201).count();
        assert!(won <= 1, "{answers:?}");
        // If every approved card lost its race, a last one pays now.
        if won == 0 {
            let last = app.pay(&user, &id, APPROVED).await;
            assert_eq!(last.status, 201, "{last:?}");
        }
        let filter = doc! {"bookingId": bid};
        let paid = app
            .count("payments", doc! {"bookingId": bid, "status": "completed"})
            .await;
        assert_eq!(paid, 1, "round {round}: one completed payment");
        assert_eq!(
            app.count("payments", doc! {"bookingId": bid, "status": "pending"})
                .await,
            0
        );
        // Every payment's charges are in the ledger; one of them approved.
        let mut approved = 0;
        use futures::TryStreamExt;
        let payments: Vec<bson::Document> = app
            .db
            .collection::<bson::Document>("payments")
            .find(filter)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        for p in &payments {
            let key = format!("^{}:", p.get_object_id("_id").unwrap().to_hex());
            approved += app
                .count(
                    "payment_gateway_ledger",
                    doc! {"_id": {"$regex": key}, "outcome": "approved"},
                )
                .await;
        }
        assert_eq!(approved, 1, "round {round}: charged once: {answers:?}");
        let b = app.get(&format!("/v1/bookings/{id}"), Some(&user)).await;
        assert_eq!(b.body["status"], "confirmed");
        assert_vault_empty(&app, APPROVED, "after the race").await;
    }
    app.shutdown().await;
}

#[tokio::test]
async fn a_pending_booking_expires_and_its_seats_are_released() {
    let app = spawn_app_with(Options {
        booking_ttl_secs: 2,
        ..Options::default()
    })
    .await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 1, 3).await;
    let seats = app.seat_ids(&event).await;
    let (_, user) = app.new_user().await;
    let booking = app.book(&user, &event, &seats[..2]).await;
    let id = booking["id"].as_str().unwrap().to_string();
    let expired = wait_until(Duration::from_secs(8), || async {
        app.get(&format!("/v1/bookings/{id}"), Some(&user))
            .await
            .body["status"]
            == "cancelled"
    })
    .await;
    assert!(expired, "the booking expired");
    let b = app.get(&format!("/v1/bookings/{id}"), Some(&user)).await;
    assert_eq!(b.body["cancellationReason"], "expired");
    let pay = app.pay(&user, &id, APPROVED).await;
    assert_eq!(
        pay.status, 409,
        "an expired booking cannot be paid: {pay:?}"
    );
    assert_vault_empty(&app, APPROVED, "refused: expired").await;
    let (_, other) = app.new_user().await;
    app.book(&other, &event, &seats[..2]).await;
    app.shutdown().await;
}

/// The card vault is empty right after every answer: paid, declined, processing error
/// given up, and each refusal before any charge (already paid, another user's booking,
/// a currency the booking is not priced in, a cancelled booking, a retried
/// Idempotency-Key answered from its stored result).
#[tokio::test]
async fn a_card_number_leaves_the_vault_whatever_the_answer() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 1, 6).await;
    let seats = app.seat_ids(&event).await;
    let (_, user) = app.new_user().await;
    let (_, stranger) = app.new_user().await;
    let paid = app.book(&user, &event, &seats[0..1]).await;
    let paid = paid["id"].as_str().unwrap().to_string();
    let r = app.pay(&user, &paid, APPROVED).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_vault_empty(&app, APPROVED, "approved").await;
    let r = app.pay(&user, &paid, APPROVED).await;
    assert_eq!((r.status, r.code()), (409, "already_paid"));
    assert_vault_empty(&app, APPROVED, "already paid").await;

    let open = app.book(&user, &event, &seats[1..2]).await;
    let open = open["id"].as_str().unwrap().to_string();
    let r = app.pay(&user, &open, DECLINED).await;
    assert_eq!((r.status, r.code()), (402, "card_declined"));
    assert_vault_empty(&app, DECLINED, "declined").await;
    let r = app.pay(&user, &open, ALWAYS_FAILS).await;
    assert_eq!((r.status, r.code()), (402, "processing_error"));
    assert_vault_empty(&app, ALWAYS_FAILS, "processing error given up").await;
    let r = app.pay(&stranger, &open, APPROVED).await;
    assert_eq!((r.status, r.code()), (404, "booking_not_found"));
    assert_vault_empty(&app, APPROVED, "another user's booking").await;
    let r = app
        .post(
            &format!("/v1/bookings/{open}/payments"),
            Some(&user),
            json!({"method": "card", "cardNumber": NO_FUNDS, "currency": "EUR"}),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "validation_failed"), "{r:?}");
    assert_vault_empty(&app, NO_FUNDS, "wrong currency").await;

    let gone = app.book(&user, &event, &seats[2..3]).await;
    let gone = gone["id"].as_str().unwrap().to_string();
    let c = app
        .post(
            &format!("/v1/bookings/{gone}/cancel"),
            Some(&user),
            json!({}),
        )
        .await;
    assert_eq!(c.status, 200, "{c:?}");
    let r = app.pay(&user, &gone, APPROVED).await;
    assert_eq!((r.status, r.code()), (409, "booking_not_payable"), "{r:?}");
    assert_vault_empty(&app, APPROVED, "cancelled booking").await;

    // The same Idempotency-Key with another card: another body, 422, and the new card
    // not kept.
    let keyed = app.book(&user, &event, &seats[3..4]).await;
    let keyed = keyed["id"].as_str().unwrap().to_string();
    let path = format!("/v1/bookings/{keyed}/payments");
    let pay_keyed = |card: &'static str| {
        app.call(
            "POST",
            &path,
            Some(&user),
            Some(json!({"method": "card", "cardNumber": card})),
            &[("Idempotency-Key", "pay-once-1")],
        )
    };
    assert_eq!(pay_keyed(APPROVED).await.status, 201);
    let again = pay_keyed(FAILS_TWICE).await;
    assert_eq!(
        (again.status, again.code()),
        (422, "idempotency_key_reused"),
        "{again:?}"
    );
    assert_vault_empty(&app, FAILS_TWICE, "retried Idempotency-Key").await;
    assert_eq!(
        app.count("payment_gateway_ledger", doc! {"outcome": "approved"})
            .await,
        2
    );
    app.shutdown().await;
}

async fn event_on(app: &e2e::TestApp, admin: &str, date: chrono::NaiveDate) -> String {
    let r = app
        .post(
            "/v1/events",
            Some(admin),
            json!({
                "name": "Policy Test", "description": "", "eventDate": date.format("%Y-%m-%d").to_string(), "eventTime": "20:00",
                "venue": "Hall", "city": "Porto", "country": "PT", "category": "theater",
                "sections": [{"name": "Stalls", "price": "40.00", "rows": "A", "seatsPerRow": 4}],
                "cancellationPolicy": {"daysBeforeCancellation": 7, "refundPercentage": 50}
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        app.post(&format!("/v1/events/{id}/publish"), Some(admin), json!({}))
            .await
            .status,
        200
    );
    id
}

#[tokio::test]
async fn cancellation_refunds_by_the_policy_on_both_sides_of_the_window() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (_, user) = app.new_user().await;
    let today = chrono::Utc::now().date_naive();
    // 30 days out: outside the 7-day window, full refund. 3 days out: inside, 50%.
    for (days, percent, refund_minor, payment_status) in [
        (30, 100, 8000, "refunded"),
        (3, 50, 4000, "partially_refunded"),
    ] {
        let event = event_on(&app, &admin, today + chrono::Duration::days(days)).await;
        let seats = app.seat_ids(&event).await;
        let booking = app.book(&user, &event, &seats[..2]).await;
        let id = booking["id"].as_str().unwrap().to_string();
        assert_eq!(app.pay(&user, &id, APPROVED).await.status, 201);
        let c = app
            .post(
                &format!("/v1/bookings/{id}/cancel"),
                Some(&user),
                json!({"reason": "cannot come"}),
            )
            .await;
        assert_eq!(c.status, 200, "{c:?}");
        assert_eq!(c.body["booking"]["status"], "cancelled");
        assert_eq!(c.body["refund"]["refundPercentage"], percent, "{days} days");
        assert_eq!(
            c.body["refund"]["refundAmount"]["amountMinor"],
            refund_minor
        );
        assert_eq!(c.body["refund"]["originalAmount"]["amountMinor"], 8000);
        assert_eq!(c.body["refund"]["reason"], "user_requested");
        assert!(c.body["refund"]["refundTransactionId"]
            .as_str()
            .unwrap()
            .starts_with("sim_rf_"));
        let refund = app
            .get(
                &format!("/v1/refunds/{}", c.body["refund"]["id"].as_str().unwrap()),
                Some(&user),
            )
            .await;
        assert_eq!(refund.status, 200);
        let payment = app
            .find_one("payments", doc! {"bookingId": oid(&booking["id"])})
            .await
            .unwrap();
        assert_eq!(payment.get_str("status").unwrap(), payment_status);
        assert_eq!(
            payment
                .get_document("refundedAmount")
                .unwrap()
                .get_i64("amountMinor")
                .unwrap(),
            refund_minor
        );
        // Cancelling again refunds nothing more.
        let again = app
            .post(&format!("/v1/bookings/{id}/cancel"), Some(&user), json!({}))
            .await;
        assert_eq!(
            (again.status, again.code()),
            (409, "booking_not_cancellable")
        );
        assert_eq!(
            app.count("refunds", doc! {"bookingId": oid(&booking["id"])})
                .await,
            1
        );
        // The booking's seat lines are cancelled too, and kept with their prices.
        let lines = doc! {"bookingId": oid(&booking["id"])};
        assert_eq!(app.count("booking_seats", lines.clone()).await, 2);
        let mut cancelled = lines;
        cancelled.insert("status", "cancelled");
        assert_eq!(app.count("booking_seats", cancelled).await, 2);
        // Seats are back on sale and counted.
        let exact = wait_until(Duration::from_secs(5), || async {
            let (c, real) = app.seat_counts(&event).await;
            c == real && real == 4
        })
        .await;
        assert!(exact, "{:?}", app.seat_counts(&event).await);
    }
    app.shutdown().await;
}

#[tokio::test]
async fn cancelling_an_event_refunds_every_booking_and_releases_the_rest() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 1, 8).await;
    let seats = app.seat_ids(&event).await;
    let (_, a) = app.new_user().await;
    let (_, b) = app.new_user().await;
    let paid1 = app.book(&a, &event, &seats[0..2]).await;
    let paid2 = app.book(&b, &event, &seats[2..3]).await;
    let pending = app.book(&b, &event, &seats[3..4]).await;
    for p in [&paid1, &paid2] {
        let token = if p == &paid1 { &a } else { &b };
        assert_eq!(
            app.pay(token, p["id"].as_str().unwrap(), APPROVED)
                .await
                .status,
            201
        );
    }
    let hold = app
        .post(
            &format!("/v1/events/{event}/holds"),
            Some(&a),
            json!({"seatIds": [seats[5]]}),
        )
        .await;
    assert_eq!(hold.status, 201);

    let r = app
        .post(
            &format!("/v1/events/{event}/cancel"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["status"], "cancelled");
    // The refunds run asynchronously; the answer says so and where to look.
    let progress = &r.body["cancellation"];
    assert_eq!(progress["bookings"], 3, "{r:?}");
    assert_eq!(progress["status"], "processing");
    let location = progress["location"].as_str().unwrap().to_string();
    assert_eq!(location, format!("/v1/events/{event}"));
    let eid = ObjectId::parse_str(&event).unwrap();
    let done = wait_until(Duration::from_secs(15), || async {
        app.get(&location, Some(&admin)).await.body["cancellation"]["status"] == "done"
    })
    .await;
    let seen = app.get(&location, Some(&admin)).await;
    assert!(done, "the event says its refunds are done: {seen:?}");
    assert_eq!(seen.body["cancellation"]["bookingsLeft"], 0);
    assert_eq!(
        app.count("bookings", doc! {"eventId": eid, "status": "cancelled"})
            .await,
        3,
        "done means every booking is cancelled"
    );
    for p in [&paid1, &paid2] {
        let token = if p == &paid1 { &a } else { &b };
        let mine = app
            .get(
                &format!("/v1/bookings/{}", p["id"].as_str().unwrap()),
                Some(token),
            )
            .await;
        assert_eq!(mine.body["status"], "cancelled");
        assert_eq!(mine.body["paymentStatus"], "refunded", "{mine:?}");
    }
    let released = wait_until(Duration::from_secs(10), || async {
        app.count("seat_holds", doc! {"eventId": eid, "status": "active"})
            .await
            == 0
    })
    .await;
    assert!(released, "the hold released");
    for p in [&paid1, &paid2] {
        let refund = app
            .find_one("refunds", doc! {"bookingId": oid(&p["id"])})
            .await
            .expect("refund");
        assert_eq!(refund.get_str("reason").unwrap(), "event_cancelled");
        assert_eq!(refund.get_i32("refundPercentage").unwrap(), 100);
        let payment = app
            .find_one("payments", doc! {"bookingId": oid(&p["id"])})
            .await
            .unwrap();
        assert_eq!(payment.get_str("status").unwrap(), "refunded");
    }
    assert!(
        app.find_one("refunds", doc! {"bookingId": oid(&pending["id"])})
            .await
            .is_none(),
        "nothing was paid, nothing refunded"
    );
    assert!(
        app.wait_seats(doc! {"eventId": eid, "status": "available"}, 8)
            .await
    );
    // A cancelled event sells nothing.
    let late = app
        .post(
            &format!("/v1/events/{event}/holds"),
            Some(&a),
            json!({"seatIds": [seats[6]]}),
        )
        .await;
    assert_eq!((late.status, late.code()), (409, "event_not_on_sale"));
    app.shutdown().await;
}

#[tokio::test]
async fn another_users_booking_answers_404() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 1, 2).await;
    let seats = app.seat_ids(&event).await;
    let (_, a) = app.new_user().await;
    let (_, b) = app.new_user().await;
    let booking = app.book(&a, &event, &seats[..1]).await;
    let id = booking["id"].as_str().unwrap();
    let peek = app.get(&format!("/v1/bookings/{id}"), Some(&b)).await;
    assert_eq!((peek.status, peek.code()), (404, "booking_not_found"));
    assert_eq!(app.pay(&b, id, APPROVED).await.status, 404);
    assert_eq!(
        app.post(&format!("/v1/bookings/{id}/cancel"), Some(&b), json!({}))
            .await
            .status,
        404
    );
    let mine = app.get("/v1/me/bookings", Some(&a)).await;
    assert_eq!(mine.body["total"], 1);
    assert_eq!(app.get("/v1/me/bookings", Some(&b)).await.body["total"], 0);
    // The admin sees it.
    assert_eq!(
        app.get(&format!("/v1/bookings/{id}"), Some(&admin))
            .await
            .status,
        200
    );
    app.shutdown().await;
}

/// After a mixed run, for the event: the counter equals the available seats, every booked
/// seat belongs to exactly one confirmed booking, and payments minus refunds equal the
/// confirmed bookings' totals.
#[tokio::test]
async fn after_a_mixed_run_seats_counters_and_money_agree() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 2, 10).await;
    let seats = app.seat_ids(&event).await;
    let users = join_all((0..6).map(|_| app.new_user())).await;
    let cards = [
        APPROVED,
        DECLINED,
        APPROVED,
        FAILS_TWICE,
        NO_FUNDS,
        APPROVED,
    ];
    let runs = users.iter().enumerate().map(|(i, (_, token))| {
        let app = &app;
        let event = event.clone();
        let mine: Vec<String> = seats[i * 3..i * 3 + 3].to_vec();
        let card = cards[i];
        async move {
            let booking = app.book(token, &event, &mine).await;
            let id = booking["id"].as_str().unwrap().to_string();
            let paid = app.pay(token, &id, card).await;
            // Users whose card failed give up: their pending booking is cancelled.
            if paid.status == 402 {
                let c = app
                    .post(&format!("/v1/bookings/{id}/cancel"), Some(token), json!({}))
                    .await;
                assert_eq!(c.status, 200, "{c:?}");
                assert!(c.body["refund"].is_null());
            }
            // Users 2 and 5 cancel after paying.
            if paid.status == 201 && (i == 2 || i == 5) {
                let c = app
                    .post(&format!("/v1/bookings/{id}/cancel"), Some(token), json!({}))
                    .await;
                assert_eq!(c.status, 200, "{c:?}");
            }
        }
    });
    join_all(runs).await;
    // Someone holds and lets go; someone holds and keeps the hold.
    let (_, late) = app.new_user().await;
    let h = app
        .post(
            &format!("/v1/events/{event}/holds"),
            Some(&late),
            json!({"seatIds": [seats[18]]}),
        )
        .await;
    app.call(
        "DELETE",
        &format!("/v1/holds/{}", h.body["id"].as_str().unwrap()),
        Some(&late),
        None,
        &[],
    )
    .await;
    app.post(
        &format!("/v1/events/{event}/holds"),
        Some(&late),
        json!({"seatIds": [seats[19]]}),
    )
    .await;

    let eid = ObjectId::parse_str(&event).unwrap();
    let exact = wait_until(Duration::from_secs(10), || async {
        let (c, real) = app.seat_counts(&event).await;
        c == real
    })
    .await;
    assert!(exact, "{:?}", app.seat_counts(&event).await);

    use futures::TryStreamExt;
    let all = |col: &'static str, filter: bson::Document| {
        let db = app.db.clone();
        async move {
            db.collection::<bson::Document>(col)
                .find(filter)
                .await
                .unwrap()
                .try_collect::<Vec<_>>()
                .await
                .unwrap()
        }
    };
    let confirmed = all("bookings", doc! {"eventId": eid, "status": "confirmed"}).await;
    // Seat documents follow the seats projection: wait until the booked ones are exactly
    // the confirmed bookings' seats (a count alone can match in passing).
    let mut wanted: Vec<bson::oid::ObjectId> = confirmed
        .iter()
        .flat_map(|b| {
            b.get_array("seatIds")
                .unwrap()
                .iter()
                .map(|s| s.as_object_id().unwrap())
        })
        .collect();
    wanted.sort();
    let settled = wait_until(Duration::from_secs(10), || {
        let wanted = wanted.clone();
        let all = &all;
        async move {
            let mut got: Vec<bson::oid::ObjectId> =
                all("seats", doc! {"eventId": eid, "status": "booked"})
                    .await
                    .iter()
                    .map(|s| s.get_object_id("_id").unwrap())
                    .collect();
            got.sort();
            got == wanted
        }
    })
    .await;
    assert!(
        settled,
        "booked seats are exactly the confirmed bookings' seats"
    );
    let booked = all("seats", doc! {"eventId": eid, "status": "booked"}).await;
    let mut seat_owner = std::collections::HashMap::new();
    for b in &confirmed {
        for s in b.get_array("seatIds").unwrap() {
            assert!(
                seat_owner
                    .insert(s.as_object_id().unwrap(), b.get_object_id("_id").unwrap())
                    .is_none(),
                "a seat in two bookings"
            );
        }
    }
    assert_eq!(
        booked.len(),
        seat_owner.len(),
        "booked seats are exactly the confirmed bookings' seats"
    );
    for s in &booked {
        let owner = seat_owner
            .get(&s.get_object_id("_id").unwrap())
            .expect("a booked seat has a confirmed booking");
        assert_eq!(s.get_object_id("bookingId").unwrap(), *owner);
    }
    let minor =
        |d: &bson::Document, k: &str| d.get_document(k).unwrap().get_i64("amountMinor").unwrap();
    let paid: i64 = all(
        "payments",
        doc! {"eventId": eid, "status": {"$in": ["completed", "refunded", "partially_refunded"]}},
    )
    .await
    .iter()
    .map(|p| minor(p, "amount") - minor(p, "refundedAmount"))
    .sum();
    let confirmed_total: i64 = confirmed.iter().map(|b| minor(b, "finalPrice")).sum();
    assert_eq!(
        paid, confirmed_total,
        "payments minus refunds equal the confirmed bookings"
    );
    assert_eq!(confirmed.len(), 2, "users 0 and 3 keep their bookings");
    app.shutdown().await;
}
