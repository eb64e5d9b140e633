//! The end-to-end harness: `spawn_app()` starts the workers and the gateway in-process
//! against the real nats-server and MongoDB-wire server, each test with its own subject
//! and bucket namespace, database and HTTP port, so tests run in parallel.
//!
//! Servers come from `TICKETING_NATS_URL` and `TICKETING_MONGODB_URI` (`scripts/test.sh`
//! starts the test profile and exports them; the defaults are that profile's ports).

pub mod mail;

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream;
use bson::doc;
use serde_json::{json, Value};
use streams::commands::{Command, CommandEnvelope, Issuer, RequestContext};
use streams::proof::{CommandSigner, Registry, SignerEntry, ANY, WORKERS_COMMANDS};
use streams::replies::ReplyRouter;
use streams::{Namespace, Reply};

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "admin-password-123";
pub const PASSWORD: &str = "correct horse battery";
/// The QR signing key of every test stack: `test-1`, seed bytes 0 to 31.
pub const QR_SIGNING_KEYS: &str = "test-1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

pub fn nats_url() -> String {
    std::env::var("TICKETING_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:14222".into())
}

pub fn mongodb_uri() -> String {
    std::env::var("TICKETING_MONGODB_URI").unwrap_or_else(|_| "mongodb://127.0.0.1:37017/".into())
}

pub fn smtp_url() -> String {
    std::env::var("TICKETING_SMTP_URL").unwrap_or_else(|_| "smtp://127.0.0.1:11025".into())
}

/// Where the test servers' NATS passwords are (`<user>.password`, made by
/// `scripts/servers.sh start test`).
pub fn nats_auth_dir() -> std::path::PathBuf {
    std::env::var("TICKETING_NATS_AUTH_DIR")
        .map(Into::into)
        .unwrap_or_else(|_| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.data/test/nats-auth")
        })
}

/// The password of a NATS identity of the test servers.
pub fn nats_password(user: &str) -> String {
    let path = nats_auth_dir().join(format!("{user}.password"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (scripts/servers.sh start test makes it)",
                path.display()
            )
        })
        .trim()
        .to_string()
}

/// A NATS connection as `user` (gateway, workers, operator, boxoffice).
pub async fn nats_as(user: &str) -> async_nats::Client {
    streams::connect::connect(&nats_url(), "e2e", Some(user), Some(&nats_password(user)))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Mailpit's HTTP API, where tests read what was mailed.
pub fn mailpit_api() -> String {
    std::env::var("TICKETING_MAILPIT_API").unwrap_or_else(|_| "http://127.0.0.1:18025".into())
}

/// A running stack for one test.
pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub ns: Namespace,
    pub db: mongodb::Database,
    pub nats: async_nats::Client,
    pub js: jetstream::Context,
    pub workers: tokio::sync::Mutex<Option<workers::Running>>,
    pub workers_cfg: workers::Config,
    /// The gateway's signing key (tests that publish as the gateway would use it).
    pub signer: CommandSigner,
    /// A second system's key, trusted for `holds.create` as `user` only (its NATS
    /// identity is `boxoffice`).
    pub boxoffice: CommandSigner,
    /// The signers registry the workers load.
    pub registry: Registry,
    gateway: Option<tokio::task::JoinHandle<()>>,
    stop_gateway: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Options a test may change before the stack starts.
pub struct Options {
    pub hold_ttl_secs: u64,
    pub hold_lock_grace_secs: u64,
    pub expiry_sweep_secs: u64,
    pub booking_ttl_secs: u64,
    /// Whether paying needs a verified e-mail (the product's default is true; most tests
    /// pay with fresh, unverified users).
    pub require_verified_to_pay: bool,
    /// The SMTP relay the notifications worker uses (default: `TICKETING_SMTP_URL`).
    pub smtp_url: Option<String>,
    /// Sending attempts of a notification.
    pub notify_max_attempts: u32,
    /// Failed payment attempts a booking takes before it is cancelled.
    pub payment_max_failed_attempts: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            hold_ttl_secs: 600,
            hold_lock_grace_secs: 30,
            expiry_sweep_secs: 1,
            booking_ttl_secs: 1800,
            require_verified_to_pay: false,
            smtp_url: None,
            notify_max_attempts: 3,
            payment_max_failed_attempts: 5,
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

/// With `TICKETING_TEST_LOG=<file>`, every stack's workers and gateway log (at debug, or
/// `TICKETING_TEST_LOG_FILTER`) to that file for the whole run, so checks such as
/// `scripts/check-no-card-numbers.sh` can read what the code wrote. Unset: no logging.
fn init_test_log() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Ok(path) = std::env::var("TICKETING_TEST_LOG") else {
            return;
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("TICKETING_TEST_LOG {path}: {e}"));
        let filter = std::env::var("TICKETING_TEST_LOG_FILTER").unwrap_or_else(|_| {
            "info,workers=debug,gateway=debug,streams=debug,e2e=debug,async_nats=debug".into()
        });
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::sync::Mutex::new(file))
            .with_ansi(false)
            .try_init();
    });
}

pub async fn spawn_app_with(o: Options) -> TestApp {
    init_test_log();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let ns_root = format!("t{}", &id[..12]);
    let db_name = format!("test_{}", &id[..12]);
    let mut wcfg = workers::Config::for_servers(&nats_url(), &mongodb_uri(), &db_name, &ns_root);
    wcfg.hold_ttl_secs = o.hold_ttl_secs;
    wcfg.hold_lock_grace_secs = o.hold_lock_grace_secs;
    wcfg.expiry_sweep_secs = o.expiry_sweep_secs;
    wcfg.booking_ttl_secs = o.booking_ttl_secs;
    wcfg.require_verified_to_pay = o.require_verified_to_pay;
    wcfg.smtp_url = o.smtp_url.unwrap_or_else(smtp_url);
    wcfg.notify_max_attempts = o.notify_max_attempts;
    wcfg.payment_max_failed_attempts = o.payment_max_failed_attempts;
    wcfg.notify_retry_base_ms = 100;
    wcfg.notify_retry_cap_ms = 400;
    wcfg.notify_poll_ms = 100;
    wcfg.payment_retry_base_ms = 20;
    wcfg.payment_retry_cap_ms = 100;
    wcfg.concurrency = 64;
    wcfg.qr_signing_keys = Some(QR_SIGNING_KEYS.to_string().into());
    // Each stack its own keys and registry, as `ticketing-keys init` makes them.
    let signer = CommandSigner::generate("gateway-test-1").expect("key");
    let workers_key = CommandSigner::generate("workers-test-1").expect("key");
    let boxoffice = CommandSigner::generate("boxoffice-test-1").expect("key");
    let registry = Registry {
        signers: vec![
            SignerEntry::new(&signer, "gateway", &[ANY], &[ANY]),
            SignerEntry::new(&workers_key, "workers", WORKERS_COMMANDS, &[ANY]),
            SignerEntry::for_system(&boxoffice, "boxoffice", &["holds.create"], &["user"]),
        ],
    };
    let registry_file = std::env::temp_dir().join(format!("{ns_root}-signers.json"));
    std::fs::write(&registry_file, serde_json::to_vec(&registry).expect("json"))
        .expect("registry written");
    wcfg.command_signing_key = Some(workers_key.to_spec().into());
    wcfg.command_signers = Some(registry_file);
    wcfg.nats_user = Some("workers".into());
    wcfg.nats_password = Some(nats_password("workers").into());
    let running = workers::run(wcfg.clone())
        .await
        .expect("workers start (are the test servers up? scripts/test.sh starts them)");

    let mut gcfg = gateway::Config::for_servers(&nats_url(), &ns_root);
    gcfg.admin_email = Some(ADMIN_EMAIL.into());
    gcfg.admin_password = Some(ADMIN_PASSWORD.to_string().into());
    gcfg.fast_hashing = true;
    gcfg.command_signing_key = Some(signer.to_spec().into());
    gcfg.nats_user = Some("gateway".into());
    gcfg.nats_password = Some(nats_password("gateway").into());
    let app = gateway::Application::build(gcfg)
        .await
        .expect("gateway starts");
    let port = app.port();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        let _ = app
            .run_until_stopped(async move {
                let _ = rx.await;
            })
            .await;
    });
    // The harness looks at everything, as an operator does.
    let nats = nats_as("operator").await;
    let js = jetstream::new(nats.clone());
    let mongo = mongodb::Client::with_uri_str(mongodb_uri())
        .await
        .expect("mongodb");
    TestApp {
        base: format!("http://127.0.0.1:{port}"),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client"),
        ns: Namespace::new(&ns_root),
        db: mongo.database(&db_name),
        nats,
        js,
        workers: tokio::sync::Mutex::new(Some(running)),
        workers_cfg: wcfg,
        signer,
        boxoffice,
        registry,
        gateway: Some(handle),
        stop_gateway: Some(tx),
    }
}

/// An HTTP answer: status and JSON body (Null when empty).
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Resp {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request; `body` None sends no body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut rb = self.http.request(m, self.url(path));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.expect("request sent");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let bytes = r.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Resp {
            status,
            body,
            headers,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.call("GET", path, token, None, &[]).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.call("POST", path, token, Some(body), &[]).await
    }

    /// Logs in, retrying while the account is being created (the admin is created
    /// asynchronously at start-up).
    pub async fn login(&self, email: &str, password: &str) -> String {
        let mut last = None;
        for _ in 0..100 {
            let r = self
                .post(
                    "/v1/auth/login",
                    None,
                    json!({"email": email, "password": password}),
                )
                .await;
            if r.status == 200 {
                return r.body["accessToken"]
                    .as_str()
                    .expect("accessToken")
                    .to_string();
            }
            last = Some(r);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("login of {email} failed: {last:?}");
    }

    pub async fn admin_token(&self) -> String {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// Registers a user with a fresh e-mail and logs in: (user id, token).
    pub async fn new_user(&self) -> (String, String) {
        let email = format!("u{}@example.com", uuid::Uuid::new_v4().simple());
        let r = self
            .post(
                "/v1/auth/register",
                None,
                json!({"email": email, "password": PASSWORD, "name": "Test User"}),
            )
            .await;
        assert_eq!(r.status, 201, "register: {r:?}");
        let id = r.body["id"].as_str().expect("user id").to_string();
        (id, self.login(&email, PASSWORD).await)
    }

    /// Creates and publishes an event with `rows` rows of `per_row` seats at 25.00 (rows
    /// A..), returning its id.
    pub async fn published_event(&self, admin: &str, rows: u8, per_row: u32) -> String {
        let last = (b'A' + rows - 1) as char;
        let r = self
            .post(
                "/v1/events",
                Some(admin),
                json!({
                    "name": "Test Concert", "description": "A test", "eventDate": "2030-06-01", "eventTime": "20:00",
                    "venue": "Hall", "city": "Lisbon", "country": "PT", "category": "concert",
                    "sections": [{"name": "Standard", "price": "25.00", "rows": format!("A-{last}"), "seatsPerRow": per_row}]
                }),
            )
            .await;
        assert_eq!(r.status, 201, "create event: {r:?}");
        let id = r.body["id"].as_str().expect("event id").to_string();
        let p = self
            .post(&format!("/v1/events/{id}/publish"), Some(admin), json!({}))
            .await;
        assert_eq!(p.status, 200, "publish: {p:?}");
        id
    }

    /// Holds `seats` and books the hold: the booking's JSON.
    pub async fn book(&self, token: &str, event_id: &str, seats: &[String]) -> Value {
        let h = self
            .post(
                &format!("/v1/events/{event_id}/holds"),
                Some(token),
                json!({"seatIds": seats}),
            )
            .await;
        assert_eq!(h.status, 201, "hold: {h:?}");
        let b = self
            .post("/v1/bookings", Some(token), json!({"holdId": h.body["id"]}))
            .await;
        assert_eq!(b.status, 201, "booking: {b:?}");
        b.body
    }

    /// Pays a booking with a card: the whole answer.
    pub async fn pay(&self, token: &str, booking_id: &str, card: &str) -> Resp {
        self.post(
            &format!("/v1/bookings/{booking_id}/payments"),
            Some(token),
            json!({"method": "card", "cardNumber": card}),
        )
        .await
    }

    /// The seat ids of an event, in row/number order.
    pub async fn seat_ids(&self, event_id: &str) -> Vec<String> {
        self.seat_ids_with(event_id, None).await
    }

    /// The ids of the event's seats with `status` (all seats for `None`), in row/number order.
    pub async fn seat_ids_with(&self, event_id: &str, status: Option<&str>) -> Vec<String> {
        let filter = status.map(|s| format!("?status={s}")).unwrap_or_default();
        let r = self
            .get(&format!("/v1/events/{event_id}/seats{filter}"), None)
            .await;
        assert_eq!(r.status, 200, "seats: {r:?}");
        r.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|s| s["id"].as_str().expect("seat id").to_string())
            .collect()
    }

    /// Publishes a command straight to JetStream, as another system would, and waits for
    /// its reply on an inbox of ours.
    pub async fn send_command(&self, env: &CommandEnvelope) -> Option<Reply> {
        let router = ReplyRouter::start(self.nats.clone()).await.expect("router");
        let pending = router.register();
        streams::publish::publish_command(
            &self.js,
            &self.ns,
            &self.signer,
            env,
            Some(&pending.inbox),
            None,
        )
        .await
        .expect("published");
        pending.wait(Duration::from_secs(10)).await
    }

    /// [`TestApp::send_command`] under another `Nats-Msg-Id` than the envelope's id:
    /// the same command delivered again after JetStream's duplicate window, as another
    /// system retrying late would send it.
    pub async fn send_command_as(&self, env: &CommandEnvelope, msg_id: &str) -> Option<Reply> {
        use futures::StreamExt;
        let (area, verb) = env.command.route();
        let body = serde_json::to_vec(env).expect("json");
        let inbox = self.nats.new_inbox();
        let mut sub = self
            .nats
            .subscribe(inbox.clone())
            .await
            .expect("subscribed");
        let mut h = async_nats::HeaderMap::new();
        h.insert(async_nats::header::NATS_MESSAGE_ID, msg_id);
        h.insert(streams::headers::REPLY_TO, inbox.as_str());
        self.signer.sign_into(&mut h, &body);
        self.js
            .publish_with_headers(self.ns.command(area, verb), h, body.into())
            .await
            .expect("published")
            .await
            .expect("stored by JetStream");
        let msg = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .ok()??;
        serde_json::from_slice(&msg.payload).ok()
    }

    /// Stops the workers (draining in-flight messages).
    pub async fn stop_workers(&self) {
        if let Some(w) = self.workers.lock().await.take() {
            w.shutdown().await;
        }
    }

    /// Stops the workers at once, as a killed process would: handlers in flight are
    /// dropped wherever they are, and what they had not acknowledged is redelivered.
    pub async fn kill_workers(&self) {
        if let Some(w) = self.workers.lock().await.take() {
            w.kill().await;
        }
    }

    /// `http://host:port/metrics` of the running workers (each stack binds its own port).
    pub async fn workers_metrics_url(&self) -> Option<String> {
        let w = self.workers.lock().await;
        let addr = w.as_ref()?.metrics_addr?;
        Some(format!("http://{addr}/metrics"))
    }

    pub async fn start_workers(&self) {
        self.start_workers_with(self.workers_cfg.clone()).await;
    }

    /// Starts the workers with another configuration (a rotated key, say).
    pub async fn start_workers_with(&self, cfg: workers::Config) {
        let running = workers::run(cfg).await.expect("workers restart");
        *self.workers.lock().await = Some(running);
    }

    /// Starts the workers with this configuration and another clock: their decisions
    /// take `now` from `clock`.
    pub async fn start_workers_with_clock(&self, clock: std::sync::Arc<dyn domain::Clock>) {
        let running = workers::run_with_clock(self.workers_cfg.clone(), clock)
            .await
            .expect("workers restart");
        *self.workers.lock().await = Some(running);
    }

    pub async fn count(&self, collection: &str, filter: bson::Document) -> u64 {
        self.db
            .collection::<bson::Document>(collection)
            .count_documents(filter)
            .await
            .expect("count")
    }

    pub async fn find_one(
        &self,
        collection: &str,
        filter: bson::Document,
    ) -> Option<bson::Document> {
        self.db
            .collection::<bson::Document>(collection)
            .find_one(filter)
            .await
            .expect("find")
    }

    /// Waits (up to 10 s) until `filter` matches exactly `n` seats: seat documents follow
    /// the KV locks through the seats projection, so they lag the API's answers a little.
    /// Waits up to 5 s for exactly `n` documents of `collection` to match (documents written
    /// by the projections follow the answers), and then checks it stays `n` (a second
    /// effect would arrive just as late).
    pub async fn settled_count(&self, collection: &str, filter: bson::Document, n: u64) -> u64 {
        wait_until(Duration::from_secs(5), || async {
            self.count(collection, filter.clone()).await == n
        })
        .await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        self.count(collection, filter).await
    }

    /// Waits (up to 5 s) for a document matching `filter`: documents written by the
    /// projections (scan records, a scanned ticket) follow the answers a little.
    pub async fn find_when(
        &self,
        collection: &str,
        filter: bson::Document,
    ) -> Option<bson::Document> {
        wait_until(Duration::from_secs(5), || async {
            self.find_one(collection, filter.clone()).await.is_some()
        })
        .await;
        self.find_one(collection, filter).await
    }

    pub async fn wait_seats(&self, filter: bson::Document, n: u64) -> bool {
        wait_until(Duration::from_secs(10), || {
            let filter = filter.clone();
            async move { self.count("seats", filter).await == n }
        })
        .await
    }

    /// `availableSeats` of the event and the count of its available seats.
    pub async fn seat_counts(&self, event_id: &str) -> (i64, i64) {
        let oid = bson::oid::ObjectId::parse_str(event_id).expect("oid");
        let ev = self
            .find_one("events", doc! {"_id": oid})
            .await
            .expect("event");
        let counter = ev
            .get_i64("availableSeats")
            .or_else(|_| ev.get_i32("availableSeats").map(i64::from))
            .expect("availableSeats");
        let real = self
            .count("seats", doc! {"eventId": oid, "status": "available"})
            .await as i64;
        (counter, real)
    }

    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop_gateway.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.gateway.take() {
            let _ = h.await;
        }
        self.stop_workers().await;
        let _ = self.db.drop().await;
        if let Some(registry) = &self.workers_cfg.command_signers {
            let _ = std::fs::remove_file(registry);
        }
    }
}

/// A command envelope as another system would send it.
pub fn envelope(id: &str, issuer: Option<Issuer>, command: Command) -> CommandEnvelope {
    CommandEnvelope {
        id: id.into(),
        issuer,
        issued_at: chrono::Utc::now(),
        context: RequestContext::default(),
        command,
    }
}

/// Waits until `f` returns true, checking every 100 ms, for at most `timeout`.
pub async fn wait_until<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
