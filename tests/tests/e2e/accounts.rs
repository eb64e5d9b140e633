use bson::doc;
use e2e::{spawn_app, PASSWORD};
use serde_json::json;

#[tokio::test]
async fn a_user_registers_logs_in_and_reads_their_account_without_secrets() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/v1/auth/register",
            None,
            json!({"email": "Ana@Example.com", "password": PASSWORD, "name": "Ana"}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["email"], "ana@example.com");
    assert_eq!(r.body["isVerified"], false);
    assert_eq!(r.body["role"], "user");
    assert!(r.body.get("passwordHash").is_none(), "hash leaked: {r:?}");

    let token = app.login("ana@example.com", PASSWORD).await;
    let me = app.get("/v1/me", Some(&token)).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["email"], "ana@example.com");
    assert!(me.body.get("passwordHash").is_none());

    let stored = app
        .find_one("users", doc! {"email": "ana@example.com"})
        .await
        .expect("stored");
    assert!(stored
        .get_str("passwordHash")
        .unwrap()
        .starts_with("$argon2"));
    app.shutdown().await;
}

#[tokio::test]
async fn a_second_account_with_the_same_email_is_refused() {
    let app = spawn_app().await;
    let body = json!({"email": "bo@example.com", "password": PASSWORD, "name": "Bo"});
    assert_eq!(
        app.post("/v1/auth/register", None, body.clone())
            .await
            .status,
        201
    );
    let again = app
        .post(
            "/v1/auth/register",
            None,
            json!({"email": "BO@example.com", "password": PASSWORD, "name": "Bo 2"}),
        )
        .await;
    assert_eq!(again.status, 409, "{again:?}");
    assert_eq!(again.code(), "email_taken");
    assert_eq!(
        app.count("users", doc! {"email": "bo@example.com"}).await,
        1
    );
    app.shutdown().await;
}

#[tokio::test]
async fn wrong_passwords_and_unknown_emails_get_the_same_401() {
    let app = spawn_app().await;
    app.post(
        "/v1/auth/register",
        None,
        json!({"email": "cy@example.com", "password": PASSWORD, "name": "Cy"}),
    )
    .await;
    let wrong = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "cy@example.com", "password": "not the password"}),
        )
        .await;
    let unknown = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "nobody@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!((wrong.status, wrong.code()), (401, "invalid_credentials"));
    assert_eq!(
        (unknown.status, unknown.code()),
        (401, "invalid_credentials")
    );
    assert_eq!(
        wrong.body["error"]["message"],
        unknown.body["error"]["message"]
    );
    app.shutdown().await;
}

#[tokio::test]
async fn the_configured_admin_exists_and_users_cannot_act_as_admins() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let me = app.get("/v1/me", Some(&admin)).await;
    assert_eq!(me.body["role"], "admin");
    let (_, user) = app.new_user().await;
    let r = app.post("/v1/events", Some(&user), json!({
        "name": "X", "description": "", "eventDate": "2030-01-01", "eventTime": "20:00", "venue": "V", "city": "C",
        "country": "PT", "category": "concert", "sections": [{"name": "S", "price": "1.00", "rows": "A", "seatsPerRow": 2}]
    })).await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    assert_eq!(app.get("/v1/audit-logs", Some(&user)).await.status, 403);
    app.shutdown().await;
}
