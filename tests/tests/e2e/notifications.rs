//! Notifications end to end: real SMTP (Mailpit), retries against a dead relay, the
//! e-mailed account tokens, and the verified-to-pay switch.

use std::time::Duration;

use bson::doc;
use bson::oid::ObjectId;
use e2e::{mail, spawn_app, spawn_app_with, wait_until, Options, TestApp, PASSWORD};
use serde_json::json;

const APPROVED: &str = "4242424242424242";
const MAIL_WAIT: Duration = Duration::from_secs(20);

/// Registers a fresh user: (e-mail, id, token).
async fn register(app: &TestApp) -> (String, String, String) {
    let email = format!("n{}@example.com", uuid::Uuid::new_v4().simple());
    let r = app
        .post(
            "/v1/auth/register",
            None,
            json!({"email": email, "password": PASSWORD, "name": "Nia"}),
        )
        .await;
    assert_eq!(r.status, 201, "register: {r:?}");
    let id = r.body["id"].as_str().expect("id").to_string();
    let token = app.login(&email, PASSWORD).await;
    (email, id, token)
}

fn oid(s: &str) -> ObjectId {
    ObjectId::parse_str(s).expect("oid")
}

#[tokio::test]
async fn a_purchase_mails_exactly_one_confirmation_to_the_buyer() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 1, 4).await;
    let seats = app.seat_ids(&event).await;
    let (email, user_id, token) = register(&app).await;
    let booking = app.book(&token, &event, &seats[..2]).await;
    let reference = booking["bookingReference"].as_str().unwrap().to_string();
    let paid = app
        .pay(&token, booking["id"].as_str().unwrap(), APPROVED)
        .await;
    assert_eq!(paid.status, 201, "{paid:?}");

    let subject = format!("Your booking {reference} is confirmed");
    let m = mail::wait_for(&email, &subject, MAIL_WAIT)
        .await
        .expect("confirmation mailed");
    assert_eq!(m["To"][0]["Address"], email.as_str());
    let text = m["Text"].as_str().unwrap();
    assert!(text.contains("Test Concert"), "{text}");
    assert!(text.contains("A1") && text.contains("A2"), "{text}");
    assert!(text.contains("50.00 USD"), "{text}");
    assert!(m["HTML"].as_str().unwrap().contains(&reference));
    mail::wait_for(&email, "Payment received", MAIL_WAIT)
        .await
        .expect("receipt mailed");
    // Redelivery or a second dispatcher never mails it twice.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(mail::count(&email, &subject).await, 1);

    // The user sees it, newest first, and marks it read.
    let list = app.get("/v1/me/notifications", Some(&token)).await;
    assert_eq!(list.status, 200, "{list:?}");
    let items = list.body["items"].as_array().unwrap();
    let confirmation = items
        .iter()
        .find(|n| n["type"] == "booking_confirmation")
        .expect("listed");
    assert_eq!(confirmation["status"], "sent");
    assert_eq!(confirmation["medium"], "email");
    assert_eq!(confirmation["attemptCount"], 1);
    assert!(items.iter().any(|n| n["type"] == "event_reminder"
        && n["status"] == "pending"
        && n["scheduledFor"].is_string()));
    let id = confirmation["id"].as_str().unwrap();
    let read = app
        .post(
            &format!("/v1/me/notifications/{id}/read"),
            Some(&token),
            json!({}),
        )
        .await;
    assert_eq!(read.status, 200, "{read:?}");
    assert_eq!(read.body["status"], "read");
    // Another user cannot read or mark it.
    let (_, _, other) = register(&app).await;
    let r = app
        .post(
            &format!("/v1/me/notifications/{id}/read"),
            Some(&other),
            json!({}),
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "notification_not_found"));
    assert_eq!(
        app.count(
            "notifications",
            doc! {"userId": oid(&user_id), "type": "booking_confirmation"}
        )
        .await,
        1
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_cancellation_mails_the_refund() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 1, 2).await;
    let seats = app.seat_ids(&event).await;
    let (email, _, token) = register(&app).await;
    let booking = app.book(&token, &event, &seats[..1]).await;
    let id = booking["id"].as_str().unwrap();
    let reference = booking["bookingReference"].as_str().unwrap();
    assert_eq!(app.pay(&token, id, APPROVED).await.status, 201);
    let c = app
        .post(
            &format!("/v1/bookings/{id}/cancel"),
            Some(&token),
            json!({}),
        )
        .await;
    assert_eq!(c.status, 200, "{c:?}");
    let refund = c.body["refund"]["refundAmount"]["amount"]
        .as_str()
        .unwrap()
        .to_string();
    let m = mail::wait_for(
        &email,
        &format!("Refund processed for booking {reference}"),
        MAIL_WAIT,
    )
    .await
    .expect("refund mailed");
    assert!(
        m["Text"]
            .as_str()
            .unwrap()
            .contains(&format!("{refund} USD")),
        "{m}"
    );
    mail::wait_for(
        &email,
        &format!("Your booking {reference} is cancelled"),
        MAIL_WAIT,
    )
    .await
    .expect("cancellation mailed");
    // The cancelled booking's reminder is withdrawn.
    let bid = oid(id);
    assert!(
        wait_until(Duration::from_secs(10), || async {
            app.count(
                "notifications",
                doc! {"bookingId": bid, "type": "event_reminder", "status": "failed"},
            )
            .await
                == 1
        })
        .await
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_dead_mail_relay_never_blocks_a_purchase_and_the_mail_fails_after_its_attempts() {
    // Nothing listens on port 9 of the loopback: every connection is refused.
    let app = spawn_app_with(Options {
        smtp_url: Some("smtp://127.0.0.1:9".into()),
        ..Options::default()
    })
    .await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 1, 2).await;
    let seats = app.seat_ids(&event).await;
    let (_, _, token) = register(&app).await;
    let booking = app.book(&token, &event, &seats[..1]).await;
    let paid = app
        .pay(&token, booking["id"].as_str().unwrap(), APPROVED)
        .await;
    assert_eq!(paid.status, 201, "{paid:?}");
    assert_eq!(paid.body["booking"]["status"], "confirmed");
    let bid = oid(booking["id"].as_str().unwrap());
    let filter = doc! {"bookingId": bid, "type": "booking_confirmation"};
    assert!(
        wait_until(Duration::from_secs(30), || async {
            app.find_one("notifications", filter.clone())
                .await
                .is_some_and(|n| n.get_str("status") == Ok("failed"))
        })
        .await,
        "{:?}",
        app.find_one("notifications", filter.clone()).await
    );
    let n = app.find_one("notifications", filter).await.unwrap();
    assert_eq!(n.get_i32("attemptCount").unwrap(), 3);
    assert!(
        n.get_str("failureReason").unwrap().contains("smtp"),
        "{n:?}"
    );
    assert!(n.get_datetime("lastAttemptAt").is_ok());
    app.shutdown().await;
}

#[tokio::test]
async fn an_email_is_verified_with_the_mailed_token_once() {
    let app = spawn_app().await;
    let (email, user_id, token) = register(&app).await;
    let m = mail::wait_for(&email, "Verify your e-mail", MAIL_WAIT)
        .await
        .expect("verification mailed");
    let secret = mail::field(m["Text"].as_str().unwrap(), "Verification token:").expect("token");
    // Only the hash is stored, and the API never shows the token.
    let stored = app
        .find_one("users", doc! {"_id": oid(&user_id)})
        .await
        .unwrap();
    assert_ne!(stored.get_str("verificationToken").unwrap(), secret);
    let list = app.get("/v1/me/notifications", Some(&token)).await;
    assert!(
        !list.body.to_string().contains(&secret),
        "token leaked: {list:?}"
    );

    let wrong = app
        .post("/v1/auth/verify", None, json!({"token": "nope"}))
        .await;
    assert_eq!(
        (wrong.status, wrong.code()),
        (400, "invalid_or_expired_token")
    );
    let ok = app
        .post("/v1/auth/verify", None, json!({"token": secret}))
        .await;
    assert_eq!(ok.status, 200, "{ok:?}");
    let me = app.get("/v1/me", Some(&token)).await;
    assert_eq!(me.body["isVerified"], true);
    let again = app
        .post("/v1/auth/verify", None, json!({"token": secret}))
        .await;
    assert_eq!(
        (again.status, again.code()),
        (400, "invalid_or_expired_token")
    );
    // Sign-ins are counted.
    assert!(
        wait_until(Duration::from_secs(10), || async {
            app.find_one("users", doc! {"_id": oid(&user_id)})
                .await
                .is_some_and(|u| u.get_datetime("lastLoginAt").is_ok())
        })
        .await
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_password_is_reset_with_the_mailed_token_which_works_once_and_expires() {
    let app = spawn_app().await;
    let (email, user_id, _) = register(&app).await;
    let unknown = app
        .post(
            "/v1/auth/password-reset",
            None,
            json!({"email": "nobody-here@example.com"}),
        )
        .await;
    let known = app
        .post("/v1/auth/password-reset", None, json!({"email": email}))
        .await;
    assert_eq!((unknown.status, known.status), (202, 202));
    assert_eq!(unknown.body, known.body);

    let m = mail::wait_for(&email, "Reset your password", MAIL_WAIT)
        .await
        .expect("reset mailed");
    let secret = mail::field(m["Text"].as_str().unwrap(), "Reset token:").expect("token");
    let new_password = "a brand new password";
    let ok = app
        .post(
            "/v1/auth/password-reset/confirm",
            None,
            json!({"token": secret, "newPassword": new_password}),
        )
        .await;
    assert_eq!(ok.status, 200, "{ok:?}");
    app.login(&email, new_password).await;
    let old = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(old.status, 401);
    let reused = app
        .post(
            "/v1/auth/password-reset/confirm",
            None,
            json!({"token": secret, "newPassword": "yet another password"}),
        )
        .await;
    assert_eq!(
        (reused.status, reused.code()),
        (400, "invalid_or_expired_token")
    );

    // A second token that has expired is refused too.
    let second = app
        .post("/v1/auth/password-reset", None, json!({"email": email}))
        .await;
    assert_eq!(second.status, 202);
    assert!(
        wait_until(MAIL_WAIT, || async {
            mail::count(&email, "Reset your password").await == 2
        })
        .await
    );
    let m = mail::messages_to(&email)
        .await
        .into_iter()
        .filter(|m| m["Subject"] == "Reset your password")
        .max_by_key(|m| m["Created"].as_str().unwrap_or_default().to_string())
        .unwrap();
    let text = mail::message(m["ID"].as_str().unwrap()).await;
    let secret2 = mail::field(text["Text"].as_str().unwrap(), "Reset token:").unwrap();
    assert_ne!(secret, secret2);
    app.db
        .collection::<bson::Document>("users")
        .update_one(
            doc! {"_id": oid(&user_id)},
            doc! {"$set": {"resetPasswordExpiry": bson::DateTime::from_millis(0)}},
        )
        .await
        .unwrap();
    let expired = app
        .post(
            "/v1/auth/password-reset/confirm",
            None,
            json!({"token": secret2, "newPassword": "yet another password"}),
        )
        .await;
    assert_eq!(
        (expired.status, expired.code()),
        (400, "invalid_or_expired_token")
    );
    app.login(&email, new_password).await;
    app.shutdown().await;
}

#[tokio::test]
async fn an_unverified_user_may_book_but_not_pay_until_verified() {
    let app = spawn_app_with(Options {
        require_verified_to_pay: true,
        ..Options::default()
    })
    .await;
    let admin = app.admin_token().await;
    let event = app.published_event(&admin, 1, 2).await;
    let seats = app.seat_ids(&event).await;
    let (email, _, token) = register(&app).await;
    let booking = app.book(&token, &event, &seats[..1]).await;
    let id = booking["id"].as_str().unwrap();
    let refused = app.pay(&token, id, APPROVED).await;
    assert_eq!(
        (refused.status, refused.code()),
        (403, "email_not_verified"),
        "{refused:?}"
    );

    let m = mail::wait_for(&email, "Verify your e-mail", MAIL_WAIT)
        .await
        .expect("verification mailed");
    let secret = mail::field(m["Text"].as_str().unwrap(), "Verification token:").unwrap();
    assert_eq!(
        app.post("/v1/auth/verify", None, json!({"token": secret}))
            .await
            .status,
        200
    );
    let paid = app
        .call(
            "POST",
            &format!("/v1/bookings/{id}/payments"),
            Some(&token),
            Some(json!({"method": "card", "cardNumber": APPROVED})),
            &[("Idempotency-Key", "after-verify")],
        )
        .await;
    assert_eq!(paid.status, 201, "{paid:?}");
    app.shutdown().await;
}
