//! Configuration of the workers process, from flags or `TICKETING_*` environment variables.

use std::time::Duration;

use clap::Parser;
use secrecy::SecretString;

use super::worker::Worker;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "ticketing-workers",
    about = "Ticketing workers: users, events, holds, bookings, payments, tickets, scans, expiry, projections, notifications, analytics, queries"
)]
pub struct Config {
    /// NATS server URL.
    #[arg(
        long,
        env = "TICKETING_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats_url: String,

    /// MongoDB connection string (FerretDB locally, MongoDB 7 in production).
    #[arg(
        long,
        env = "TICKETING_MONGODB_URI",
        default_value = "mongodb://127.0.0.1:27017/"
    )]
    pub mongodb_uri: String,

    /// Most MongoDB connections of the writers' pool (reads have their own, at least 16).
    /// Small on purpose for FerretDB's single SQLite writer; raise it on MongoDB.
    #[arg(long, env = "TICKETING_MONGODB_MAX_POOL", default_value_t = 8)]
    pub mongodb_max_pool: u32,

    /// Database name.
    #[arg(long, env = "TICKETING_MONGODB_DB", default_value = "ticketing")]
    pub mongodb_db: String,

    /// With FerretDB on PostgreSQL: the PostgreSQL database under it. When set, the
    /// workers add GIN indexes to FerretDB's tables for the filters the hot paths use
    /// (FerretDB's own btree indexes cannot serve its `@>` filters). Unset on MongoDB.
    #[arg(long, env = "TICKETING_PG_URL", hide_env_values = true)]
    pub pg_url: Option<SecretString>,

    /// Subject root and stream/bucket prefix; `ticketing` gives the documented names.
    #[arg(long, env = "TICKETING_NAMESPACE", default_value = "ticketing")]
    pub namespace: String,

    /// Which workers this process runs (comma-separated): users, events, holds,
    /// bookings, payments, tickets, scans, expiry, projections, notifications, analytics,
    /// queries, or all (see `app::worker`).
    #[arg(
        long,
        env = "TICKETING_WORKERS",
        default_value = "all",
        value_delimiter = ','
    )]
    pub workers: Vec<String>,

    /// Lifetime of a seat hold, in seconds.
    #[arg(long, env = "TICKETING_HOLD_TTL_SECS", default_value_t = 600)]
    pub hold_ttl_secs: u64,

    /// Extra life of a seat lock past its hold's expiry, in seconds. The expiry worker
    /// releases the hold (and the lock) at expiry; the lock's own TTL is the safety net
    /// for when no expiry worker runs.
    #[arg(long, env = "TICKETING_HOLD_LOCK_GRACE_SECS", default_value_t = 30)]
    pub hold_lock_grace_secs: u64,

    /// Most seats one hold may take.
    #[arg(long, env = "TICKETING_MAX_SEATS_PER_HOLD", default_value_t = 10)]
    pub max_seats_per_hold: usize,

    /// How long a pending booking waits for its payment, in seconds.
    #[arg(long, env = "TICKETING_BOOKING_TTL_SECS", default_value_t = 1800)]
    pub booking_ttl_secs: u64,

    /// Attempts at the payment gateway before a transient failure becomes final.
    #[arg(long, env = "TICKETING_PAYMENT_MAX_ATTEMPTS", default_value_t = 3)]
    pub payment_max_attempts: u32,

    /// Failed payment attempts (declines, or transient failures given up) a pending
    /// booking takes before it is cancelled and its seats released; until then the buyer
    /// may pay again with another card (the booking's expiry still applies).
    #[arg(
        long,
        env = "TICKETING_PAYMENT_MAX_FAILED_ATTEMPTS",
        default_value_t = 5
    )]
    pub payment_max_failed_attempts: u32,

    /// First retry delay of a payment, in milliseconds (doubled each attempt, jittered).
    #[arg(long, env = "TICKETING_PAYMENT_RETRY_BASE_MS", default_value_t = 200)]
    pub payment_retry_base_ms: u64,

    /// Longest retry delay of a payment, in milliseconds.
    #[arg(long, env = "TICKETING_PAYMENT_RETRY_CAP_MS", default_value_t = 2000)]
    pub payment_retry_cap_ms: u64,

    /// Period of the sweep that expires holds the timers missed, in seconds.
    #[arg(long, env = "TICKETING_EXPIRY_SWEEP_SECS", default_value_t = 5)]
    pub expiry_sweep_secs: u64,

    /// Commands handled at once per worker (also the consumer's max_ack_pending).
    #[arg(long, env = "TICKETING_WORKER_CONCURRENCY", default_value_t = 256)]
    pub concurrency: usize,

    /// Deliveries of a command before it is dead-lettered.
    #[arg(long, env = "TICKETING_MAX_DELIVER", default_value_t = 5)]
    pub max_deliver: i64,

    /// The workers' NATS identity (nats-server refuses anonymous clients).
    #[arg(long, env = "TICKETING_NATS_USER")]
    pub nats_user: Option<String>,

    /// The password of `TICKETING_NATS_USER`.
    #[arg(long, env = "TICKETING_NATS_PASSWORD", hide_env_values = true)]
    pub nats_password: Option<SecretString>,

    /// The workers' command signing key, `kid:base64(32-byte Ed25519 seed)`: signs the
    /// commands they fan out and every domain event. Its public half must be in the
    /// signers registry (`TICKETING_COMMAND_SIGNERS`).
    #[arg(long, env = "TICKETING_COMMAND_SIGNING_KEY", hide_env_values = true)]
    pub command_signing_key: Option<SecretString>,

    /// The signers registry: a JSON file of the keys whose commands are applied, each
    /// with its system, grant and (once rotated out) retirement time.
    #[arg(long, env = "TICKETING_COMMAND_SIGNERS")]
    pub command_signers: Option<std::path::PathBuf>,

    /// Replicas of streams and buckets (3 in a NATS cluster).
    #[arg(long, env = "TICKETING_STREAM_REPLICAS", default_value_t = 1)]
    pub stream_replicas: usize,

    /// QR signing keys, comma-separated `kid:base64(32-byte Ed25519 seed)`: the first
    /// signs new tickets, every one verifies scans (rotation). Unset: a key kept in
    /// `--qr-key-file` (made on first start; for development).
    #[arg(long, env = "TICKETING_QR_SIGNING_KEYS", hide_env_values = true)]
    pub qr_signing_keys: Option<SecretString>,

    /// Where the development QR signing key is kept when `TICKETING_QR_SIGNING_KEYS` is
    /// unset (created with mode 0600 if missing).
    #[arg(
        long,
        env = "TICKETING_QR_KEY_FILE",
        default_value = ".data/qr-signing-key"
    )]
    pub qr_key_file: std::path::PathBuf,

    /// How long after an event's start its tickets still get in at the gates, in
    /// seconds; later scans answer `ticket_expired`.
    #[arg(long, env = "TICKETING_SCAN_GRACE_SECS", default_value_t = 43_200)]
    pub scan_grace_secs: i64,

    /// SMTP relay for e-mail notifications (`smtp://host:port` plain, `smtps://` TLS,
    /// `smtp://user:pass@host:587?tls=required` STARTTLS).
    #[arg(
        long,
        env = "TICKETING_SMTP_URL",
        default_value = "smtp://127.0.0.1:1025",
        hide_env_values = true
    )]
    pub smtp_url: String,

    /// The From of notification e-mails.
    #[arg(
        long,
        env = "TICKETING_MAIL_FROM",
        default_value = "Ticketing <no-reply@ticketing.local>"
    )]
    pub mail_from: String,

    /// Where SMS notifications are POSTed as JSON (unset: SMS notifications fail).
    #[arg(long, env = "TICKETING_SMS_WEBHOOK_URL")]
    pub sms_webhook_url: Option<String>,

    /// Where push notifications are POSTed as JSON (unset: push notifications fail).
    #[arg(long, env = "TICKETING_PUSH_WEBHOOK_URL")]
    pub push_webhook_url: Option<String>,

    /// Attempts at sending one notification before it is `failed`.
    #[arg(long, env = "TICKETING_NOTIFY_MAX_ATTEMPTS", default_value_t = 3)]
    pub notify_max_attempts: u32,

    /// First retry delay of a notification, in milliseconds (doubled each attempt, jittered).
    #[arg(long, env = "TICKETING_NOTIFY_RETRY_BASE_MS", default_value_t = 30_000)]
    pub notify_retry_base_ms: u64,

    /// Longest retry delay of a notification, in milliseconds.
    #[arg(
        long,
        env = "TICKETING_NOTIFY_RETRY_CAP_MS",
        default_value_t = 3_600_000
    )]
    pub notify_retry_cap_ms: u64,

    /// How often the dispatcher looks for due notifications, in milliseconds.
    #[arg(long, env = "TICKETING_NOTIFY_POLL_MS", default_value_t = 1000)]
    pub notify_poll_ms: u64,

    /// How long before an event its reminder is sent, in seconds.
    #[arg(long, env = "TICKETING_REMINDER_BEFORE_SECS", default_value_t = 86_400)]
    pub reminder_before_secs: i64,

    /// Whether a user must have verified their e-mail to pay (unverified users may still
    /// hold and book).
    #[arg(
        long,
        env = "TICKETING_REQUIRE_VERIFIED_TO_PAY",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub require_verified_to_pay: bool,

    /// How long a password-reset token stays good, in seconds.
    #[arg(long, env = "TICKETING_RESET_TOKEN_TTL_SECS", default_value_t = 3600)]
    pub reset_token_ttl_secs: i64,

    /// Where the workers serve their Prometheus metrics (`GET /metrics`): `host:port`
    /// (port 0: any free port), or `off`. Each workers process on one host needs its own.
    #[arg(
        long,
        env = "TICKETING_WORKERS_METRICS_ADDR",
        default_value = "127.0.0.1:9464"
    )]
    pub metrics_addr: String,

    /// How often the consumers' backlogs (`workers_consumer_pending`) are polled, in
    /// milliseconds.
    #[arg(
        long,
        env = "TICKETING_WORKERS_METRICS_POLL_MS",
        default_value_t = 5000
    )]
    pub metrics_poll_ms: u64,

    /// Log format: text or json.
    #[arg(long, env = "TICKETING_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
}

impl Config {
    pub fn runs(&self, worker: Worker) -> bool {
        self.workers
            .iter()
            .any(|w| w == "all" || Worker::parse(w).is_some_and(|(x, _)| x == worker))
    }

    /// Refuses an unknown worker name, and warns of a former one.
    pub fn check_workers(&self) -> anyhow::Result<()> {
        for w in &self.workers {
            match Worker::parse(w) {
                _ if w == "all" => {}
                Some((worker, true)) => tracing::warn!(
                    former = %w,
                    name = %worker,
                    "TICKETING_WORKERS names a worker by its former name"
                ),
                Some(_) => {}
                None => anyhow::bail!(
                    "TICKETING_WORKERS: no worker is called {w:?}; the workers are {}, or all",
                    Worker::ALL.map(Worker::name).join(", ")
                ),
            }
        }
        Ok(())
    }

    /// The metrics endpoint's address, or None when it is `off`.
    pub fn metrics_listen(&self) -> anyhow::Result<Option<std::net::SocketAddr>> {
        let v = self.metrics_addr.trim();
        if v.eq_ignore_ascii_case("off") || v.is_empty() {
            return Ok(None);
        }
        v.parse().map(Some).map_err(|e| {
            anyhow::anyhow!("TICKETING_WORKERS_METRICS_ADDR {v:?} is not host:port or off: {e}")
        })
    }

    pub fn hold_ttl(&self) -> Duration {
        Duration::from_secs(self.hold_ttl_secs)
    }

    pub fn booking_ttl(&self) -> Duration {
        Duration::from_secs(self.booking_ttl_secs)
    }

    /// A pending booking's seat locks live this long (its window plus the grace).
    pub fn booking_lock_ttl(&self) -> Duration {
        Duration::from_secs(self.booking_ttl_secs + self.hold_lock_grace_secs)
    }

    pub fn lock_ttl(&self) -> Duration {
        Duration::from_secs(self.hold_ttl_secs + self.hold_lock_grace_secs)
    }

    /// Defaults with the given servers and namespace (tests, tools).
    pub fn for_servers(nats_url: &str, mongodb_uri: &str, db: &str, namespace: &str) -> Self {
        let mut c = Config::parse_from(["ticketing-workers"]);
        c.nats_url = nats_url.into();
        c.mongodb_uri = mongodb_uri.into();
        c.mongodb_db = db.into();
        c.namespace = namespace.into();
        // Many stacks run in one test process: each binds a free port of its own.
        c.metrics_addr = "127.0.0.1:0".into();
        c.metrics_poll_ms = 1000;
        // A fresh QR key in memory: tests and tools never read or write a key file.
        c.qr_signing_keys = Some(crate::tickets::qr_keys::generate().secret_spec().into());
        c
    }
}
