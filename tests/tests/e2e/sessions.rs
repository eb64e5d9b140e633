//! Revocable tokens: a logout, a password reset or a suspension ends the tokens issued
//! before it, on every gateway (they watch the `token-revocations` bucket), with no
//! database read per request.

use std::time::Duration;

use bson::doc;
use bson::oid::ObjectId;
use e2e::{mail, spawn_app, wait_until, PASSWORD};
use serde_json::json;

const MAIL_WAIT: Duration = Duration::from_secs(15);

#[tokio::test]
async fn a_logout_ends_the_tokens_issued_before_it_and_a_redelivery_does_not_end_later_ones() {
    let app = spawn_app().await;
    let (user_id, old) = app.new_user().await;
    let email = app.get("/v1/me", Some(&old)).await.body["email"]
        .as_str()
        .unwrap()
        .to_string();
    let second_device = app.login(&email, PASSWORD).await;
    let out = app
        .call(
            "POST",
            "/v1/auth/logout",
            Some(&old),
            None,
            &[("Idempotency-Key", "bye-1")],
        )
        .await;
    assert_eq!(out.status, 200, "{out:?}");
    assert!(out.body["tokensRevokedBefore"].is_string(), "{out:?}");
    for t in [&old, &second_device] {
        let r = app.get("/v1/me", Some(t)).await;
        assert_eq!((r.status, r.code()), (401, "token_revoked"), "{r:?}");
    }
    // Signing in again works at once, in the same second as the logout.
    let fresh = app.login(&email, PASSWORD).await;
    assert_eq!(app.get("/v1/me", Some(&fresh)).await.status, 200);

    // The logout command delivered again (same id, a new message): no second effect,
    // the new token lives on.
    let logout = app
        .find_when("audit_logs", doc! {"action": "user_logged_out"})
        .await
        .expect("the logout is audited");
    let command_id = logout.get_str("commandId").unwrap().to_string();
    assert_eq!(
        logout.get_object_id("userId").unwrap(),
        ObjectId::parse_str(&user_id).unwrap()
    );
    // The very message the gateway published, delivered again.
    let stored = app
        .js
        .get_stream(app.ns.commands_stream())
        .await
        .unwrap()
        .get_last_raw_message_by_subject(&app.ns.command(streams::names::Area::Users, "logout"))
        .await
        .expect("the logout command is in COMMANDS");
    let env: streams::commands::CommandEnvelope = serde_json::from_slice(&stored.payload).unwrap();
    assert_eq!(env.id, command_id);
    assert_eq!(
        env.issuer.as_ref().map(|i| i.user_id.to_hex()),
        Some(user_id.clone())
    );
    let again = app
        .send_command_as(&env, "logout-late")
        .await
        .expect("answered");
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(again.body, out.body, "the first answer");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.get("/v1/me", Some(&fresh)).await.status, 200);
    assert_eq!(
        app.count("audit_logs", doc! {"action": "user_logged_out"})
            .await,
        1
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_password_reset_ends_the_tokens_issued_before_it() {
    let app = spawn_app().await;
    let email = format!("r{}@example.com", uuid::Uuid::new_v4().simple());
    let r = app
        .post(
            "/v1/auth/register",
            None,
            json!({"email": email, "password": PASSWORD, "name": "Reset Me"}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let old = app.login(&email, PASSWORD).await;
    let asked = app
        .post("/v1/auth/password-reset", None, json!({"email": email}))
        .await;
    assert_eq!(asked.status, 202);
    let m = mail::wait_for(&email, "Reset your password", MAIL_WAIT)
        .await
        .expect("reset mailed");
    let secret = mail::field(m["Text"].as_str().unwrap(), "Reset token:").expect("token");
    // Still good until the reset is confirmed.
    assert_eq!(app.get("/v1/me", Some(&old)).await.status, 200);
    let ok = app
        .post(
            "/v1/auth/password-reset/confirm",
            None,
            json!({"token": secret, "newPassword": "a brand new password"}),
        )
        .await;
    assert_eq!(ok.status, 200, "{ok:?}");
    // The gateway learns it from its watch of the revocations bucket (no local shortcut
    // for resets): within moments.
    let revoked = wait_until(Duration::from_secs(5), || async {
        app.get("/v1/me", Some(&old)).await.code() == "token_revoked"
    })
    .await;
    assert!(revoked, "the old token is revoked");
    let fresh = app.login(&email, "a brand new password").await;
    assert_eq!(app.get("/v1/me", Some(&fresh)).await.status, 200);
    app.shutdown().await;
}

#[tokio::test]
async fn a_suspended_account_loses_its_tokens_and_cannot_sign_in() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (user_id, token) = app.new_user().await;
    let (_, other) = app.new_user().await;
    let email = app.get("/v1/me", Some(&token)).await.body["email"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/v1/users/{user_id}/suspend");

    let not_admin = app.call("POST", &path, Some(&other), None, &[]).await;
    assert_eq!((not_admin.status, not_admin.code()), (403, "forbidden"));
    let unknown = app
        .call(
            "POST",
            &format!("/v1/users/{}/suspend", ObjectId::new()),
            Some(&admin),
            None,
            &[],
        )
        .await;
    assert_eq!(
        (unknown.status, unknown.code()),
        (404, "not_found"),
        "{unknown:?}"
    );
    let bad = app
        .call("POST", "/v1/users/nope/suspend", Some(&admin), None, &[])
        .await;
    assert_eq!((bad.status, bad.code()), (400, "invalid_id"));
    assert_eq!(app.get("/v1/me", Some(&token)).await.status, 200);
    let admin_id = app.get("/v1/me", Some(&admin)).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let own = app
        .call(
            "POST",
            &format!("/v1/users/{admin_id}/suspend"),
            Some(&admin),
            None,
            &[],
        )
        .await;
    assert_eq!((own.status, own.code()), (403, "forbidden"), "{own:?}");
    assert_eq!(app.get("/v1/me", Some(&admin)).await.status, 200);

    let done = app.call("POST", &path, Some(&admin), None, &[]).await;
    assert_eq!(done.status, 200, "{done:?}");
    assert_eq!(done.body["status"], "suspended");
    let r = app.get("/v1/me", Some(&token)).await;
    assert_eq!((r.status, r.code()), (401, "token_revoked"), "{r:?}");
    let login = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        (login.status, login.code()),
        (403, "forbidden"),
        "{login:?}"
    );
    // Other users are untouched.
    assert_eq!(app.get("/v1/me", Some(&other)).await.status, 200);
    let audit = app
        .find_when("audit_logs", doc! {"action": "user_suspended"})
        .await
        .expect("the suspension is audited");
    assert_eq!(
        audit.get_object_id("entityId").unwrap(),
        ObjectId::parse_str(&user_id).unwrap()
    );
    app.shutdown().await;
}
