//! Configuration of the gateway process, from flags or `TICKETING_*` environment variables.
//!
//! Every field has a documented default so `ticketing-gateway` starts with no
//! configuration at all against a local nats-server; production sets at least
//! `TICKETING_JWT_SECRET` and `TICKETING_LISTEN`.

use std::time::Duration;

use clap::{Parser, ValueEnum};
use secrecy::{ExposeSecret, SecretString};

/// The JWT secret used when none is configured. Fine for a laptop, never for production:
/// the gateway warns at start-up when it is in use.
pub const DEV_JWT_SECRET: &str = "dev-only-insecure-jwt-secret-change-me-in-production";

const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";
const DEFAULT_NAMESPACE: &str = "ticketing";
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_TOKEN_TTL_SECS: u64 = 3600;
const DEFAULT_REPLY_TIMEOUT_MS: u64 = 10_000;
const DEFAULT_QUERY_TIMEOUT_MS: u64 = 5_000;
const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 30_000;
const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
const DEFAULT_MAX_SEATS_PER_HOLD: usize = 10;
const DEFAULT_MAX_IN_FLIGHT: usize = 1024;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Parser)]
#[command(
    name = "ticketing-gateway",
    about = "Ticketing HTTP API: auth, validation, OpenAPI; commands to NATS JetStream, reads from the queries worker"
)]
pub struct Config {
    /// NATS server URL (several may be given, comma-separated).
    #[arg(long, env = "TICKETING_NATS_URL", default_value = DEFAULT_NATS_URL)]
    pub nats_url: String,

    /// The gateway's NATS identity (nats-server refuses anonymous clients).
    #[arg(long, env = "TICKETING_NATS_USER")]
    pub nats_user: Option<String>,

    /// The password of `TICKETING_NATS_USER`.
    #[arg(long, env = "TICKETING_NATS_PASSWORD", hide_env_values = true)]
    pub nats_password: Option<SecretString>,

    /// The gateway's command signing key, `kid:base64(32-byte Ed25519 seed)`: every
    /// command it publishes is signed with it, and the workers apply only commands signed
    /// by a key in their registry. Not the JWT secret: that one only proves HTTP tokens.
    #[arg(long, env = "TICKETING_COMMAND_SIGNING_KEY", hide_env_values = true)]
    pub command_signing_key: Option<SecretString>,

    /// How long start-up waits for the workers to create the buckets it uses, seconds.
    #[arg(long, env = "TICKETING_STARTUP_WAIT_SECS", default_value_t = 60)]
    pub startup_wait_secs: u64,

    /// Subject root and stream/bucket prefix; `ticketing` gives the documented names.
    /// Must match the workers' namespace.
    #[arg(long, env = "TICKETING_NAMESPACE", default_value = DEFAULT_NAMESPACE)]
    pub namespace: String,

    /// Address the HTTP server listens on (`host:port`; port 0 picks a free port).
    #[arg(long, env = "TICKETING_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: String,

    /// Secret that signs access tokens (HS256). The default is a development value (a
    /// warning is logged when it is in use): set your own in every real deployment.
    #[arg(
        long,
        env = "TICKETING_JWT_SECRET",
        default_value = DEV_JWT_SECRET,
        hide_default_value = true,
        hide_env_values = true
    )]
    pub jwt_secret: SecretString,

    /// Lifetime of an access token, in seconds.
    #[arg(long, env = "TICKETING_TOKEN_TTL_SECS", default_value_t = DEFAULT_TOKEN_TTL_SECS)]
    pub token_ttl_secs: u64,

    /// E-mail of the first admin. With `TICKETING_ADMIN_PASSWORD`, the gateway asks the
    /// accounts worker at start-up to create this admin unless the account exists.
    #[arg(long, env = "TICKETING_ADMIN_EMAIL")]
    pub admin_email: Option<String>,

    /// Password of the first admin (hashed with argon2 here; never sent in clear).
    #[arg(long, env = "TICKETING_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<SecretString>,

    /// How long a command waits for its worker's reply, in milliseconds. Past it the
    /// client gets 202 with `/v1/commands/{id}` to poll.
    #[arg(long, env = "TICKETING_REPLY_TIMEOUT_MS", default_value_t = DEFAULT_REPLY_TIMEOUT_MS)]
    pub reply_timeout_ms: u64,

    /// How long a read waits for the queries worker, in milliseconds (then 503).
    #[arg(long, env = "TICKETING_QUERY_TIMEOUT_MS", default_value_t = DEFAULT_QUERY_TIMEOUT_MS)]
    pub query_timeout_ms: u64,

    /// Upper bound on a whole HTTP request, in milliseconds (then 503). Keep it above the
    /// reply timeout plus the query timeout.
    #[arg(long, env = "TICKETING_REQUEST_TIMEOUT_MS", default_value_t = DEFAULT_REQUEST_TIMEOUT_MS)]
    pub request_timeout_ms: u64,

    /// Replicas of the streams and buckets this process ensures (3 in a NATS cluster).
    #[arg(long, env = "TICKETING_STREAM_REPLICAS", default_value_t = 1)]
    pub stream_replicas: usize,

    /// Log format: text or json.
    #[arg(long, env = "TICKETING_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Largest request body accepted, in bytes (then 413).
    #[arg(long, env = "TICKETING_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// Most seats one hold may take (checked here and again by the holds worker).
    #[arg(long, env = "TICKETING_MAX_SEATS_PER_HOLD", default_value_t = DEFAULT_MAX_SEATS_PER_HOLD)]
    pub max_seats_per_hold: usize,

    /// Requests handled at once; one more is answered 503 `overloaded` with
    /// `Retry-After` at once, instead of queueing behind work that may time out.
    #[arg(long, env = "TICKETING_MAX_IN_FLIGHT", default_value_t = DEFAULT_MAX_IN_FLIGHT)]
    pub max_in_flight: usize,

    /// Browser origins allowed to call the API (CORS), comma-separated, each exactly
    /// `scheme://host[:port]` such as `https://shop.example.com`. Empty (the default):
    /// no CORS headers, so browsers allow only same-origin calls.
    #[arg(long, env = "TICKETING_CORS_ORIGINS", default_value = "")]
    pub cors_origins: String,

    /// FOR TESTS ONLY: hash passwords with minimal argon2 parameters (m=8 KiB, t=1) so
    /// debug-build test suites run fast. Never enable it in production: such hashes are
    /// cheap to brute-force. Verification reads the parameters from each stored hash, so
    /// either setting verifies both kinds.
    #[arg(
        long = "fast-hashing",
        env = "TICKETING_ARGON2_TEST_PARAMS",
        default_value_t = false
    )]
    pub fast_hashing: bool,
}

impl Config {
    /// The defaults, with the given NATS servers and namespace, listening on
    /// `127.0.0.1:0` (tests, tools). Environment variables are not read.
    pub fn for_servers(nats_url: &str, namespace: &str) -> Self {
        Config {
            nats_url: nats_url.to_string(),
            nats_user: None,
            nats_password: None,
            // A fresh key: whoever runs the workers must put its public half in their
            // signers registry (the test harness does).
            command_signing_key: Some(SecretString::from(
                streams::proof::CommandSigner::generate("gateway-test")
                    .expect("a valid key id")
                    .to_spec(),
            )),
            startup_wait_secs: 60,
            namespace: namespace.to_string(),
            listen: "127.0.0.1:0".to_string(),
            jwt_secret: SecretString::from(DEV_JWT_SECRET),
            token_ttl_secs: DEFAULT_TOKEN_TTL_SECS,
            admin_email: None,
            admin_password: None,
            reply_timeout_ms: DEFAULT_REPLY_TIMEOUT_MS,
            query_timeout_ms: DEFAULT_QUERY_TIMEOUT_MS,
            request_timeout_ms: DEFAULT_REQUEST_TIMEOUT_MS,
            stream_replicas: 1,
            log_format: LogFormat::Text,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_seats_per_hold: DEFAULT_MAX_SEATS_PER_HOLD,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            fast_hashing: false,
            cors_origins: String::new(),
        }
    }

    /// The CORS origins, parsed (see [`Config::validate`]).
    pub fn cors_origins(&self) -> Vec<axum::http::HeaderValue> {
        self.cors_origins
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .filter_map(|o| axum::http::HeaderValue::from_str(o).ok())
            .collect()
    }

    pub fn reply_timeout(&self) -> Duration {
        Duration::from_millis(self.reply_timeout_ms)
    }

    pub fn query_timeout(&self) -> Duration {
        Duration::from_millis(self.query_timeout_ms)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn token_ttl(&self) -> Duration {
        Duration::from_secs(self.token_ttl_secs)
    }

    /// True when the JWT secret is the development default.
    pub fn uses_dev_jwt_secret(&self) -> bool {
        self.jwt_secret.expose_secret() == DEV_JWT_SECRET
    }

    /// Checks what clap cannot: a usable namespace, non-zero limits.
    pub fn validate(&self) -> Result<(), String> {
        let ns = &self.namespace;
        if ns.is_empty()
            || !ns
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!("namespace {ns:?} must be letters, digits, _ or -"));
        }
        match &self.command_signing_key {
            None => return Err("TICKETING_COMMAND_SIGNING_KEY is not set: the gateway signs every command it publishes (scripts/up.sh makes development keys under .data/dev/keys)".into()),
            Some(k) => {
                streams::proof::CommandSigner::parse(k.expose_secret())
                    .map_err(|e| format!("TICKETING_COMMAND_SIGNING_KEY: {e}"))?;
            }
        }
        if self.jwt_secret.expose_secret().is_empty() {
            return Err("the JWT secret must not be empty".into());
        }
        if self.token_ttl_secs == 0 || self.reply_timeout_ms == 0 || self.query_timeout_ms == 0 {
            return Err("token TTL and timeouts must be positive".into());
        }
        if self.max_body_bytes == 0 || self.max_seats_per_hold == 0 || self.max_in_flight == 0 {
            return Err(
                "max body bytes, max seats per hold and max in flight must be positive".into(),
            );
        }
        if self.stream_replicas == 0 {
            return Err("stream replicas must be at least 1".into());
        }
        if self.token_ttl_secs > streams::revocations::REVOCATION_TTL.as_secs() {
            return Err(format!(
                "TICKETING_TOKEN_TTL_SECS must be at most {} (token revocations are kept that long)",
                streams::revocations::REVOCATION_TTL.as_secs()
            ));
        }
        for o in self
            .cors_origins
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
        {
            let ok = (o.starts_with("https://") || o.starts_with("http://"))
                && !o.ends_with('/')
                && o.split("://")
                    .nth(1)
                    .is_some_and(|h| !h.is_empty() && !h.contains('/'))
                && axum::http::HeaderValue::from_str(o).is_ok();
            if !ok {
                return Err(format!(
                    "TICKETING_CORS_ORIGINS: {o:?} is not an origin (scheme://host[:port], no path, no trailing slash)"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_configs_listen_on_a_free_port_with_the_documented_defaults() {
        let c = Config::for_servers("nats://127.0.0.1:4333", "t1");
        assert_eq!(c.listen, "127.0.0.1:0");
        assert_eq!(c.reply_timeout(), Duration::from_secs(10));
        assert!(c.uses_dev_jwt_secret());
        assert!(c.validate().is_ok());
    }

    #[test]
    fn the_flag_defaults_match_the_test_defaults() {
        let parsed = Config::try_parse_from([
            "ticketing-gateway",
            "--namespace",
            "t1",
            "--listen",
            "127.0.0.1:0",
        ])
        .expect("parses");
        let built = Config::for_servers(DEFAULT_NATS_URL, "t1");
        // Environment variables may be set where tests run; compare what they rarely touch.
        assert_eq!(parsed.max_body_bytes, built.max_body_bytes);
        assert_eq!(parsed.max_seats_per_hold, built.max_seats_per_hold);
        assert_eq!(parsed.request_timeout_ms, built.request_timeout_ms);
    }

    #[test]
    fn bad_namespaces_are_refused() {
        let c = Config::for_servers("nats://x", "a.b");
        assert!(c.validate().is_err());
    }
}
