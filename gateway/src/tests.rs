//! Router tests with an in-memory bus standing in for NATS and the workers: every
//! request goes through the real middleware stack with `oneshot`, no server needed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::Router;
use chrono::Utc;
use domain::user::Role;
use domain::ObjectId;
use futures::future::BoxFuture;
use serde_json::{json, Value};
use streams::codes::{ErrorCode, Reply};
use streams::commands::{Command, CommandEnvelope};
use streams::queries::{Query, QueryRequest};
use streams::replies::StoredResult;
use streams::WireError;
use tower::ServiceExt;

use crate::auth::Claims;
use crate::bus::{Bus, Sent};
use crate::config::Config;
use crate::routes::router;
use crate::state::AppState;

type OnCommand = Box<dyn Fn(&CommandEnvelope) -> Option<Reply> + Send + Sync>;
type OnQuery = Box<dyn Fn(&QueryRequest) -> Reply + Send + Sync>;

/// Answers commands and queries from closures and keeps results as the workers do.
struct FakeBus {
    connected: bool,
    down: bool,
    /// The accounts behind staff and admin tokens no longer hold those roles.
    roles_revoked: bool,
    /// How long each query takes.
    query_delay: Duration,
    sent: Mutex<Vec<CommandEnvelope>>,
    asked: Mutex<Vec<QueryRequest>>,
    stored: Mutex<HashMap<String, StoredResult>>,
    keys: Mutex<HashMap<String, streams::idempotency::KeyRecord>>,
    on_command: OnCommand,
    on_query: OnQuery,
}

impl FakeBus {
    fn new(on_command: OnCommand, on_query: OnQuery) -> Self {
        FakeBus {
            connected: true,
            down: false,
            roles_revoked: false,
            query_delay: Duration::ZERO,
            sent: Mutex::default(),
            asked: Mutex::default(),
            stored: Mutex::default(),
            keys: Mutex::default(),
            on_command,
            on_query,
        }
    }

    /// Commands answer 201 with their payload; queries 404.
    fn echo() -> Self {
        FakeBus::new(
            Box::new(|env| {
                Some(Reply::ok(
                    201,
                    json!({"id": ObjectId::new().to_hex(), "command": env.command}),
                ))
            }),
            Box::new(|_| Reply::error(ErrorCode::NotFound, "nothing here")),
        )
    }

    fn store(&self, id: &str, issuer_id: Option<String>, reply: Reply) {
        self.stored.lock().unwrap().insert(
            id.to_string(),
            StoredResult {
                issuer_id,
                system: None,
                fingerprint: None,
                reply,
                completed_at: Utc::now(),
            },
        );
    }

    fn sent(&self) -> Vec<CommandEnvelope> {
        self.sent.lock().unwrap().clone()
    }

    fn asked(&self) -> Vec<QueryRequest> {
        self.asked.lock().unwrap().clone()
    }
}

impl Bus for FakeBus {
    fn send<'a>(
        &'a self,
        env: &'a CommandEnvelope,
        _: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Sent, WireError>> {
        Box::pin(async move {
            if self.down {
                return Err(WireError::nats("connection refused"));
            }
            self.sent.lock().unwrap().push(env.clone());
            Ok(match (self.on_command)(env) {
                Some(reply) => {
                    self.store(
                        &env.id,
                        env.issuer.as_ref().map(|i| i.user_id.to_hex()),
                        reply.clone(),
                    );
                    Sent::Replied(reply)
                }
                None => Sent::Pending,
            })
        })
    }

    fn stored<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<StoredResult>, WireError>> {
        Box::pin(async move { Ok(self.stored.lock().unwrap().get(id).cloned()) })
    }

    fn claim_key<'a>(
        &'a self,
        id: &'a str,
        record: &'a streams::idempotency::KeyRecord,
    ) -> BoxFuture<'a, Result<streams::idempotency::Claim, WireError>> {
        Box::pin(async move {
            let mut keys = self.keys.lock().unwrap();
            Ok(match keys.get(id) {
                Some(first) => streams::idempotency::Claim::Taken(first.clone()),
                None => {
                    keys.insert(id.to_string(), record.clone());
                    streams::idempotency::Claim::First
                }
            })
        })
    }

    /// Every token's role holds unless a test says otherwise.
    fn account_holds_role<'a>(
        &'a self,
        _: &'a streams::commands::Issuer,
    ) -> BoxFuture<'a, Result<bool, WireError>> {
        Box::pin(async move { Ok(!self.roles_revoked) })
    }

    /// A reply whose body is `{"binary": <base64>, "contentType"}` stands for a binary
    /// answer (the worker's QR image).
    fn ask_answer<'a>(
        &'a self,
        req: &'a QueryRequest,
    ) -> BoxFuture<'a, Result<streams::queries::Answer, WireError>> {
        use base64::Engine;
        Box::pin(async move {
            let reply = self.ask(req).await?;
            let binary = reply.body["binary"]
                .as_str()
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
            Ok(match binary {
                Some(body) => streams::queries::Answer::Binary {
                    content_type: reply.body["contentType"].as_str().unwrap_or("").into(),
                    body: body.into(),
                },
                None => streams::queries::Answer::Reply(reply),
            })
        })
    }

    fn ask<'a>(&'a self, req: &'a QueryRequest) -> BoxFuture<'a, Result<Reply, WireError>> {
        Box::pin(async move {
            if self.down {
                return Err(WireError::nats("connection refused"));
            }
            self.asked.lock().unwrap().push(req.clone());
            tokio::time::sleep(self.query_delay).await;
            Ok((self.on_query)(req))
        })
    }

    fn vault_card<'a>(&'a self, _: &'a str, _: &'a str) -> BoxFuture<'a, Result<(), WireError>> {
        Box::pin(async move {
            if self.down {
                return Err(WireError::nats("connection refused"));
            }
            Ok(())
        })
    }

    fn connected(&self) -> bool {
        self.connected
    }
}

struct TestApp {
    router: Router,
    state: AppState,
    bus: Arc<FakeBus>,
}

fn test_config() -> Config {
    let mut cfg = Config::for_servers("nats://127.0.0.1:1", "t");
    cfg.fast_hashing = true;
    cfg
}

fn app_with(bus: FakeBus, cfg: Config) -> TestApp {
    let bus = Arc::new(bus);
    let state = AppState::new(&cfg, bus.clone());
    TestApp {
        router: router(state.clone(), &cfg),
        state,
        bus,
    }
}

fn app(bus: FakeBus) -> TestApp {
    app_with(bus, test_config())
}

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Resp {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl TestApp {
    fn token(&self, role: Role) -> (ObjectId, String) {
        let id = ObjectId::new();
        let t = self
            .state
            .jwt
            .issue(&id, role, Duration::from_secs(600))
            .unwrap();
        (id, t)
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = match body {
            Some(v) => b
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(serde_json::to_vec(&v).unwrap())),
            None => b.body(Body::empty()),
        }
        .unwrap();
        self.send(req).await
    }

    async fn send(&self, req: Request<Body>) -> Resp {
        let r = self.router.clone().oneshot(req).await.unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        let bytes = axum::body::to_bytes(r.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    async fn raw(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<Body>,
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(ct) = content_type {
            b = b.header(header::CONTENT_TYPE, ct);
        }
        self.send(b.body(body.into()).unwrap()).await
    }
}

fn register_body() -> Value {
    json!({"email": "Ana@Example.com", "password": "correct horse battery", "name": " Ana "})
}

fn event_body() -> Value {
    json!({
        "name": "Fado Night", "description": "", "eventDate": "2030-05-01", "eventTime": "19:30",
        "venue": "Coliseu", "city": "Lisbon", "country": "PT", "category": "concert",
        "sections": [{"name": "Standard", "price": "25.00", "rows": "A-B", "seatsPerRow": 5}]
    })
}

#[tokio::test]
async fn malformed_json_is_400_invalid_json_without_auth() {
    let app = app(FakeBus::echo());
    let r = app
        .raw(
            "POST",
            "/v1/auth/register",
            Some("application/json"),
            "{\"email\":",
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_json")
    );
    let r = app
        .raw("POST", "/v1/events", Some("application/json"), "{")
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "auth is checked before the body"
    );
    assert!(app.bus.sent().is_empty());
}

#[tokio::test]
async fn bodies_of_the_wrong_type_size_or_shape_are_refused_in_our_format() {
    let mut cfg = test_config();
    cfg.max_body_bytes = 64;
    let app = app_with(FakeBus::echo(), cfg);
    let r = app
        .raw("POST", "/v1/auth/login", Some("text/plain"), "{}")
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    );
    let r = app.raw("POST", "/v1/auth/login", None, "{}").await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let big = format!("{{\"email\": \"{}\"}}", "a".repeat(200));
    let r = app
        .raw("POST", "/v1/auth/login", Some("application/json"), big)
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    let r = app
        .call(
            "POST",
            "/v1/auth/login",
            None,
            Some(json!({"email": "a@b.io", "pw": "x"})),
            &[],
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "validation_failed")
    );
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown field"),
        "{:?}",
        r.body
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let app = app(FakeBus::echo());
    let r = app.call("GET", "/v1/nope", None, None, &[]).await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "not_found"));
    let r = app.call("DELETE", "/v1/events", None, None, &[]).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
    assert!(r.headers.contains_key(header::ALLOW));
    let r = app
        .call("GET", "/v1/events/not-an-id", None, None, &[])
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_id")
    );
    let r = app
        .call("GET", "/v1/holds/65f0a0a0a0a0a0a0a0a0a0a", None, None, &[])
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn tokens_are_checked_missing_garbled_forged_expired_and_role() {
    let app = app(FakeBus::echo());
    let r = app
        .call("POST", "/v1/events", None, Some(event_body()), &[])
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let r = app
        .call(
            "GET",
            "/v1/me",
            None,
            None,
            &[("authorization", "Token abc")],
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let r = app
        .call("GET", "/v1/me", Some("abc.def.ghi"), None, &[])
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "invalid_token")
    );
    let forged = crate::auth::JwtKeys::new(&"another secret".into())
        .issue(&ObjectId::new(), Role::Admin, Duration::from_secs(60))
        .unwrap();
    let r = app.call("GET", "/v1/me", Some(&forged), None, &[]).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "invalid_token")
    );
    let now = Utc::now().timestamp();
    let expired = app
        .state
        .jwt
        .sign(&Claims {
            sub: ObjectId::new().to_hex(),
            role: Role::Admin,
            iat: now - 7200,
            exp: now - 3600,
            iat_ms: None,
        })
        .unwrap();
    let r = app.call("GET", "/v1/me", Some(&expired), None, &[]).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "token_expired")
    );
    // A bad token on a public route is refused too, rather than silently ignored.
    let r = app
        .call("GET", "/v1/events", Some(&expired), None, &[])
        .await;
    assert_eq!(r.code(), "token_expired");

    let (_, user) = app.token(Role::User);
    let r = app
        .call("POST", "/v1/events", Some(&user), Some(event_body()), &[])
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"));
    let r = app
        .call("GET", "/v1/audit-logs", Some(&user), None, &[])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(app.bus.sent().is_empty() && app.bus.asked().is_empty());
}

#[tokio::test]
async fn registration_sends_a_hash_never_the_password() {
    let app = app(FakeBus::echo());
    let r = app
        .call(
            "POST",
            "/v1/auth/register",
            None,
            Some(register_body()),
            &[("x-request-id", "req-42"), ("user-agent", "tests")],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.headers["x-request-id"], "req-42");
    let sent = app.bus.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(r.headers["ticketing-command-id"], sent[0].id.as_str());
    let Command::RegisterUser(c) = &sent[0].command else {
        panic!("{:?}", sent[0].command)
    };
    assert_eq!(
        (c.email.as_str(), c.name.as_str()),
        ("ana@example.com", "Ana")
    );
    assert!(c.password_hash.starts_with("$argon2id$"));
    assert!(!serde_json::to_string(&sent[0])
        .unwrap()
        .contains("correct horse"));
    assert!(sent[0].issuer.is_none());
    assert_eq!(sent[0].context.request_id.as_deref(), Some("req-42"));
    assert_eq!(sent[0].context.user_agent.as_deref(), Some("tests"));

    for bad in [
        json!({"email": "nope", "password": "correct horse battery", "name": "A"}),
        json!({"email": "a@b.io", "password": "short", "name": "A"}),
        json!({"email": "a@b.io", "password": "correct horse battery", "name": " "}),
        json!({"email": "a@b.io", "password": "correct horse battery"}),
    ] {
        let r = app
            .call("POST", "/v1/auth/register", None, Some(bad.clone()), &[])
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "validation_failed"),
            "{bad}"
        );
    }
    assert_eq!(app.bus.sent().len(), 1);
}

#[tokio::test]
async fn a_retried_idempotency_key_returns_the_first_result_without_sending_again() {
    let app = app(FakeBus::echo());
    let (_, admin) = app.token(Role::Admin);
    let key = [("idempotency-key", "create-fado-1")];
    let first = app
        .call("POST", "/v1/events", Some(&admin), Some(event_body()), &key)
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    let again = app
        .call("POST", "/v1/events", Some(&admin), Some(event_body()), &key)
        .await;
    assert_eq!(
        (again.status, &again.body),
        (StatusCode::CREATED, &first.body)
    );
    assert_eq!(
        again.headers["ticketing-command-id"],
        first.headers["ticketing-command-id"]
    );
    assert_eq!(app.bus.sent().len(), 1);
    assert!(app.bus.sent()[0].id.starts_with("idem-"));

    // Another admin's same key is another command.
    let (_, other) = app.token(Role::Admin);
    let theirs = app
        .call("POST", "/v1/events", Some(&other), Some(event_body()), &key)
        .await;
    assert_ne!(
        theirs.headers["ticketing-command-id"],
        first.headers["ticketing-command-id"]
    );

    let long = "k".repeat(201);
    let r = app
        .call(
            "POST",
            "/v1/events",
            Some(&admin),
            Some(event_body()),
            &[("idempotency-key", &long)],
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "validation_failed")
    );
}

#[tokio::test]
async fn an_unanswered_command_is_202_and_readable_later_by_its_issuer_only() {
    let app = app(FakeBus::new(
        Box::new(|_| None),
        Box::new(|_| Reply::ok(200, json!({}))),
    ));
    let (user_id, token) = app.token(Role::User);
    let event = ObjectId::new().to_hex();
    let seat = ObjectId::new().to_hex();
    let r = app
        .call(
            "POST",
            &format!("/v1/events/{event}/holds"),
            Some(&token),
            Some(json!({"seatIds": [seat]})),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let id = r.headers["ticketing-command-id"]
        .to_str()
        .unwrap()
        .to_string();
    let location = format!("/v1/commands/{id}");
    assert_eq!(r.headers[header::LOCATION], location.as_str());
    assert_eq!(
        r.body,
        json!({"commandId": id, "status": "pending", "location": location})
    );

    let r = app.call("GET", &location, Some(&token), None, &[]).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    app.bus.store(
        &id,
        Some(user_id.to_hex()),
        Reply::ok(201, json!({"id": "h1"})),
    );
    let r = app.call("GET", &location, Some(&token), None, &[]).await;
    assert_eq!(
        (r.status, &r.body),
        (StatusCode::CREATED, &json!({"id": "h1"}))
    );
    let (_, other) = app.token(Role::User);
    let r = app.call("GET", &location, Some(&other), None, &[]).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::NOT_FOUND, "command_not_found")
    );
    let r = app.call("GET", &location, None, None, &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .call("GET", "/v1/commands/whatever", Some(&token), None, &[])
        .await;
    assert_eq!(r.code(), "command_not_found");
}

#[tokio::test]
async fn hold_requests_are_checked_before_they_are_sent() {
    let app = app(FakeBus::echo());
    let (_, token) = app.token(Role::User);
    let path = format!("/v1/events/{}/holds", ObjectId::new().to_hex());
    let r = app
        .call(
            "POST",
            &path,
            Some(&token),
            Some(json!({"seatIds": ["zz"]})),
            &[],
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_id")
    );
    assert_eq!(r.body["error"]["details"]["seatIds"], json!(["zz"]));
    let many: Vec<String> = (0..11).map(|_| ObjectId::new().to_hex()).collect();
    let r = app
        .call(
            "POST",
            &path,
            Some(&token),
            Some(json!({"seatIds": many})),
            &[],
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "validation_failed")
    );
    let s = ObjectId::new().to_hex();
    let r = app
        .call(
            "POST",
            &path,
            Some(&token),
            Some(json!({"seatIds": [s, s]})),
            &[],
        )
        .await;
    assert_eq!(r.code(), "validation_failed");
    let r = app
        .call(
            "POST",
            &path,
            Some(&token),
            Some(json!({"seatIds": []})),
            &[],
        )
        .await;
    assert_eq!(r.code(), "validation_failed");
    assert!(app.bus.sent().is_empty());
}

#[tokio::test]
async fn releasing_a_hold_answers_204_with_no_body() {
    let app = app(FakeBus::new(
        Box::new(|_| Some(Reply::ok(204, Value::Null))),
        Box::new(|_| Reply::ok(200, json!({}))),
    ));
    let (user_id, token) = app.token(Role::User);
    let hold = ObjectId::new();
    let r = app
        .call(
            "DELETE",
            &format!("/v1/holds/{}", hold.to_hex()),
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!((r.status, &r.body), (StatusCode::NO_CONTENT, &Value::Null));
    let sent = app.bus.sent();
    let Command::ReleaseHold(c) = &sent[0].command else {
        panic!()
    };
    assert_eq!(c.hold_id, hold);
    assert_eq!(sent[0].issuer.as_ref().unwrap().user_id, user_id);
}

fn credentials_bus(hash: String, status: &'static str, user_id: ObjectId) -> FakeBus {
    FakeBus::new(
        Box::new(|_| None),
        Box::new(move |q| match &q.query {
            Query::Credentials { email } if email == "ana@example.com" => Reply::ok(
                200,
                json!({"userId": user_id.to_hex(), "email": email, "passwordHash": hash, "role": "staff", "status": status}),
            ),
            Query::Credentials { .. } => Reply::error(ErrorCode::NotFound, "no such account"),
            Query::Me => Reply::ok(
                200,
                json!({"id": q.issuer.as_ref().unwrap().user_id.to_hex()}),
            ),
            _ => Reply::error(ErrorCode::NotFound, "no"),
        }),
    )
}

#[tokio::test]
async fn logging_in_gives_a_token_that_reads_your_account() {
    let hash = crate::passwords::Passwords::new(true)
        .hash("correct horse battery".into())
        .await
        .unwrap();
    let user_id = ObjectId::new();
    let app = app(credentials_bus(hash, "active", user_id));
    let r = app
        .call(
            "POST",
            "/v1/auth/login",
            None,
            Some(json!({"email": " ANA@example.com", "password": "correct horse battery"})),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        (r.body["tokenType"].as_str(), r.body["expiresIn"].as_u64()),
        (Some("Bearer"), Some(3600))
    );
    assert!(r.body.get("passwordHash").is_none());
    let token = r.body["accessToken"].as_str().unwrap();
    let who = app.state.jwt.verify(token).unwrap();
    assert_eq!((who.user_id, who.role), (user_id, Role::Staff));
    let me = app.call("GET", "/v1/me", Some(token), None, &[]).await;
    assert_eq!(me.body["id"], user_id.to_hex());

    let wrong = app
        .call(
            "POST",
            "/v1/auth/login",
            None,
            Some(json!({"email": "ana@example.com", "password": "not the password"})),
            &[],
        )
        .await;
    let unknown = app
        .call(
            "POST",
            "/v1/auth/login",
            None,
            Some(json!({"email": "bo@example.com", "password": "correct horse battery"})),
            &[],
        )
        .await;
    let garbage = app
        .call(
            "POST",
            "/v1/auth/login",
            None,
            Some(json!({"email": "bo", "password": "x"})),
            &[],
        )
        .await;
    for r in [&wrong, &unknown, &garbage] {
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNAUTHORIZED, "invalid_credentials")
        );
        assert_eq!(r.body, wrong.body);
    }
}

#[tokio::test]
async fn a_suspended_account_cannot_log_in() {
    let hash = crate::passwords::Passwords::new(true)
        .hash("correct horse battery".into())
        .await
        .unwrap();
    let app = app(credentials_bus(hash, "suspended", ObjectId::new()));
    let r = app
        .call(
            "POST",
            "/v1/auth/login",
            None,
            Some(json!({"email": "ana@example.com", "password": "correct horse battery"})),
            &[],
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"));
}

#[tokio::test]
async fn event_listings_check_their_parameters_and_drafts_are_for_admins() {
    let app = app(FakeBus::new(
        Box::new(|_| None),
        Box::new(|_| Reply::ok(200, json!({"items": []}))),
    ));
    for q in [
        "limit=abc",
        "limit=0",
        "limit=101",
        "page=0",
        "from=2030-02-30",
        "category=opera",
        "status=sold",
    ] {
        let r = app
            .call("GET", &format!("/v1/events?{q}"), None, None, &[])
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "validation_failed"),
            "{q}"
        );
    }
    let r = app
        .call(
            "GET",
            "/v1/events?city=Lisbon&page=2&limit=5&status=draft",
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let (_, admin) = app.token(Role::Admin);
    app.call(
        "GET",
        "/v1/events?includeDrafts=true",
        Some(&admin),
        None,
        &[],
    )
    .await;
    let asked = app.bus.asked();
    let Query::ListEvents(anon) = &asked[0].query else {
        panic!()
    };
    assert_eq!(
        (
            anon.city.as_deref(),
            anon.page,
            anon.limit,
            anon.include_drafts
        ),
        (Some("Lisbon"), 2, 5, false)
    );
    let Query::ListEvents(adm) = &asked[1].query else {
        panic!()
    };
    assert!(adm.include_drafts && adm.page == 1 && adm.limit == 20);

    let e = ObjectId::new().to_hex();
    let r = app
        .call(
            "GET",
            &format!("/v1/events/{e}/seats?status=sold"),
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(r.code(), "validation_failed");
    let r = app
        .call(
            "GET",
            &format!("/v1/events/{e}/seats?status=held&section=VIP"),
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn audit_logs_take_ids_and_filters() {
    let app = app(FakeBus::new(
        Box::new(|_| None),
        Box::new(|_| Reply::ok(200, json!({"items": []}))),
    ));
    let (_, admin) = app.token(Role::Admin);
    let r = app
        .call(
            "GET",
            "/v1/audit-logs?entityId=xyz",
            Some(&admin),
            None,
            &[],
        )
        .await;
    assert_eq!(r.code(), "invalid_id");
    let e = ObjectId::new();
    let r = app
        .call(
            "GET",
            &format!("/v1/audit-logs?entityId={}&action=hold_created", e.to_hex()),
            Some(&admin),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let Query::AuditLogs(f) = &app.bus.asked()[0].query else {
        panic!()
    };
    assert_eq!(
        (f.entity_id, f.action.as_deref()),
        (Some(e), Some("hold_created"))
    );
}

#[tokio::test]
async fn a_lost_bus_is_503_unavailable_without_internals() {
    let mut bus = FakeBus::echo();
    bus.down = true;
    let app = app(bus);
    let r = app
        .call(
            "POST",
            "/v1/auth/register",
            None,
            Some(register_body()),
            &[],
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    );
    assert!(!r.body.to_string().contains("refused"));
    assert_eq!(
        r.headers[header::RETRY_AFTER],
        "1",
        "every 503 says when to retry"
    );
}

#[tokio::test]
async fn requests_over_the_in_flight_bound_are_shed_with_retry_after() {
    let mut bus = FakeBus::echo();
    bus.query_delay = Duration::from_millis(300);
    let mut cfg = test_config();
    cfg.max_in_flight = 1;
    let app = Arc::new(app_with(bus, cfg));
    let first = {
        let app = app.clone();
        tokio::spawn(async move { app.call("GET", "/v1/events", None, None, &[]).await })
    };
    // The first read holds the only slot while the bus answers it.
    while app.bus.asked().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let shed = app.call("GET", "/v1/events", None, None, &[]).await;
    assert_eq!(
        (shed.status, shed.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "overloaded")
    );
    assert_eq!(shed.headers[header::RETRY_AFTER], "1");
    assert_eq!(app.bus.asked().len(), 1, "a shed request reaches no worker");
    // Probes are answered whatever the load.
    assert_ne!(
        app.call("GET", "/healthz", None, None, &[]).await.code(),
        "overloaded"
    );
    let first = first.await.unwrap();
    assert_ne!(first.code(), "overloaded");
    // The slot is free again: the next request is handled.
    let next = app.call("GET", "/v1/events", None, None, &[]).await;
    assert_ne!(next.code(), "overloaded");
    assert_eq!(app.bus.asked().len(), 2);
}

#[tokio::test]
async fn health_and_readiness_report_their_parts() {
    let ok = app(FakeBus::new(
        Box::new(|_| None),
        Box::new(|_| Reply::ok(200, json!({"mongodb": "ok"}))),
    ));
    let r = ok.call("GET", "/healthz", None, None, &[]).await;
    assert_eq!(
        (r.status, &r.body),
        (StatusCode::OK, &json!({"status": "ok"}))
    );
    let r = ok.call("GET", "/readyz", None, None, &[]).await;
    assert_eq!(
        (r.status, &r.body),
        (StatusCode::OK, &json!({"nats": "ok", "mongodb": "ok"}))
    );

    let no_db = app_with(
        FakeBus::new(
            Box::new(|_| None),
            Box::new(|_| Reply::error(ErrorCode::Unavailable, "no query service is running")),
        ),
        test_config(),
    );
    let r = no_db.call("GET", "/readyz", None, None, &[]).await;
    assert_eq!(
        (r.status, &r.body),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"nats": "ok", "mongodb": "down"})
        )
    );
    let mut bus = FakeBus::echo();
    bus.connected = false;
    let down = app(bus);
    let r = down.call("GET", "/readyz", None, None, &[]).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.body["nats"], "down");
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let app = app(FakeBus::echo());
    let r = app.call("GET", "/openapi.json", None, None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    let paths = r.body["paths"].as_object().unwrap();
    for p in [
        "/v1/auth/register",
        "/v1/auth/login",
        "/v1/me",
        "/v1/events",
        "/v1/events/{id}",
        "/v1/events/{id}/publish",
        "/v1/events/{id}/seats",
        "/v1/events/{id}/holds",
        "/v1/holds/{id}",
        "/v1/commands/{id}",
        "/v1/audit-logs",
        "/v1/bookings/{id}/tickets",
        "/v1/tickets/{id}",
        "/v1/tickets/{id}/qr.png",
        "/v1/scans",
        "/v1/scan-keys",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
    ] {
        assert!(paths.contains_key(p), "{p} missing");
    }
    assert!(r.body["components"]["schemas"]["CreateEventRequest"].is_object());
    assert!(r.body["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    let app = app(FakeBus::echo());
    app.call("GET", "/healthz", None, None, &[]).await;
    let r = app
        .send(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let text = r.body.as_str().unwrap_or_default().to_string();
    assert!(text.contains("http_requests_total"), "{text}");
    assert!(text.contains("route=\"/healthz\""), "{text}");
}

#[tokio::test]
async fn a_request_id_is_made_when_absent_and_echoed() {
    let app = app(FakeBus::echo());
    let r = app.call("GET", "/healthz", None, None, &[]).await;
    assert!(!r.headers["x-request-id"].is_empty());
}

#[tokio::test]
async fn an_oversized_client_request_id_is_replaced() {
    let app = app(FakeBus::echo());
    let long = "x".repeat(500);
    let r = app
        .call("GET", "/healthz", None, None, &[("x-request-id", &long)])
        .await;
    let id = r.headers["x-request-id"].to_str().unwrap();
    assert!(id.len() <= 128 && id != long);
}

#[tokio::test]
async fn scans_are_for_staff_and_checked_before_they_are_sent() {
    let app = app(FakeBus::echo());
    let (_, user) = app.token(Role::User);
    let (_, staff) = app.token(Role::Staff);
    let body = json!({"qrString": "T1.k.a.b", "deviceId": "scanner-1", "gate": "North"});
    let r = app
        .call("POST", "/v1/scans", Some(&user), Some(body.clone()), &[])
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"));
    for bad in [
        json!({"qrString": "", "deviceId": "d"}),
        json!({"qrString": "x".repeat(5000), "deviceId": "d"}),
        json!({"qrString": "T1.k.a.b", "deviceId": "  "}),
        json!({"qrString": "T1.k.a.b", "deviceId": "d", "gate": "x".repeat(200)}),
        json!({"qrString": "T1.k.a.b"}),
        json!({"qrString": "T1.k.a.b", "deviceId": "d", "extra": 1}),
    ] {
        let r = app
            .call("POST", "/v1/scans", Some(&staff), Some(bad.clone()), &[])
            .await;
        assert_eq!(r.code(), "validation_failed", "{bad}");
    }
    assert!(app.bus.sent().is_empty());
    let r = app
        .call("POST", "/v1/scans", Some(&staff), Some(body), &[])
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "the echo bus answers 201");
    match &app.bus.sent()[0].command {
        Command::ScanTicket(s) => {
            assert_eq!(s.device_id, "scanner-1");
            assert_eq!(s.gate.as_deref(), Some("North"));
        }
        other => panic!("sent {other:?}"),
    }
}

#[tokio::test]
async fn a_tickets_qr_code_is_served_as_png_and_scan_keys_are_for_staff() {
    use base64::Engine;
    let png = vec![0x89, b'P', b'N', b'G', 1, 2, 3];
    let encoded = base64::engine::general_purpose::STANDARD.encode(&png);
    let app = app(FakeBus::new(
        Box::new(|_| None),
        Box::new(move |q| match &q.query {
            Query::TicketQrPng { .. } => Reply::ok(
                200,
                json!({"binary": encoded.clone(), "contentType": "image/png"}),
            ),
            Query::ScanKeys => Reply::ok(200, json!({"keys": []})),
            _ => Reply::error(ErrorCode::TicketNotFound, "no such ticket"),
        }),
    ));
    let (_, user) = app.token(Role::User);
    let id = ObjectId::new().to_hex();
    let req = Request::get(format!("/v1/tickets/{id}/qr.png"))
        .header(header::AUTHORIZATION, format!("Bearer {user}"))
        .body(Body::empty())
        .unwrap();
    let r = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[header::CONTENT_TYPE], "image/png");
    assert_eq!(r.headers()[header::CACHE_CONTROL], "private, no-store");
    let bytes = axum::body::to_bytes(r.into_body(), usize::MAX)
        .await
        .unwrap();
    assert_eq!(bytes.as_ref(), png.as_slice());
    let r = app
        .call("GET", &format!("/v1/tickets/{id}"), Some(&user), None, &[])
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::NOT_FOUND, "ticket_not_found")
    );
    let r = app
        .call("GET", "/v1/scan-keys", Some(&user), None, &[])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let (_, staff) = app.token(Role::Staff);
    let r = app
        .call("GET", "/v1/scan-keys", Some(&staff), None, &[])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app
        .call("GET", "/v1/tickets/nope/qr.png", Some(&user), None, &[])
        .await;
    assert_eq!(r.code(), "invalid_id");
}

#[tokio::test]
async fn a_staff_or_admin_token_whose_account_lacks_the_role_is_refused_and_sends_nothing() {
    let mut bus = FakeBus::echo();
    bus.roles_revoked = true;
    let app = app(bus);
    let (_, admin) = app.token(Role::Admin);
    let r = app
        .call("POST", "/v1/events", Some(&admin), Some(event_body()), &[])
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "invalid_token"),
        "{:?}",
        r.body
    );
    assert!(app.bus.sent().is_empty(), "nothing reached NATS");
    // A user token needs no confirmation: its rights are the user's own.
    let (_, user) = app.token(Role::User);
    let r = app
        .call("GET", "/v1/me/bookings", Some(&user), None, &[])
        .await;
    assert_ne!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
}

#[tokio::test]
async fn cors_is_off_by_default_and_answers_only_the_configured_origins() {
    let preflight = [
        ("origin", "https://shop.example.com"),
        ("access-control-request-method", "POST"),
        (
            "access-control-request-headers",
            "authorization, idempotency-key, content-type",
        ),
    ];
    // Off: no CORS headers, the preflight is a plain 405.
    let off = app(FakeBus::echo());
    let r = off
        .call("OPTIONS", "/v1/bookings", None, None, &preflight)
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.headers.get("access-control-allow-origin").is_none());

    let mut cfg = test_config();
    cfg.cors_origins = "https://shop.example.com, http://localhost:5173".into();
    cfg.validate().unwrap();
    let on = app_with(FakeBus::echo(), cfg);
    let r = on
        .call("OPTIONS", "/v1/bookings", None, None, &preflight)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "https://shop.example.com"
    );
    let allowed = r.headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        allowed.contains("idempotency-key") && allowed.contains("authorization"),
        "{allowed}"
    );
    // A real request from that origin can read the command id and Location.
    let r = on
        .call(
            "GET",
            "/healthz",
            None,
            None,
            &[("origin", "http://localhost:5173")],
        )
        .await;
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "http://localhost:5173"
    );
    let exposed = r.headers["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        exposed.contains("ticketing-command-id") && exposed.contains("location"),
        "{exposed}"
    );
    // Another origin gets no grant.
    let r = on
        .call(
            "GET",
            "/healthz",
            None,
            None,
            &[("origin", "https://evil.example")],
        )
        .await;
    assert!(r.headers.get("access-control-allow-origin").is_none());

    for bad in [
        "shop.example.com",
        "https://shop.example.com/",
        "https://x/path",
        "*",
    ] {
        let mut cfg = test_config();
        cfg.cors_origins = bad.into();
        assert!(cfg.validate().is_err(), "{bad}");
    }
}

#[tokio::test]
async fn a_revoked_token_is_401_token_revoked_and_a_later_one_works() {
    let t = app(FakeBus::echo());
    let (id, old) = t.token(Role::User);
    let before = t
        .call("GET", "/v1/me/bookings", Some(&old), None, &[])
        .await;
    assert_ne!(before.status, StatusCode::UNAUTHORIZED, "{:?}", before.body);
    t.state
        .revocations
        .note(id, chrono::Utc::now().timestamp_millis() + 1);
    let r = t
        .call("GET", "/v1/me/bookings", Some(&old), None, &[])
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "token_revoked")
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    let fresh = t
        .state
        .jwt
        .issue(&id, Role::User, Duration::from_secs(600))
        .unwrap();
    let r = t
        .call("GET", "/v1/me/bookings", Some(&fresh), None, &[])
        .await;
    assert_ne!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
    // Others are untouched.
    let (_, other) = t.token(Role::User);
    let r = t
        .call("GET", "/v1/me/bookings", Some(&other), None, &[])
        .await;
    assert_ne!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
}
