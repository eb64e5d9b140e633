//! What every handler shares: the bus to NATS, token keys, password hashing, limits.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::auth::JwtKeys;
use crate::bus::Bus;
use crate::config::Config;
use crate::passwords::Passwords;

/// Cheap to clone; the router's state.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub bus: Arc<dyn Bus>,
    pub jwt: JwtKeys,
    /// Staff and admin roles confirmed against their accounts.
    pub roles: crate::auth::RoleCache,
    /// Token revocations, kept current by a watch of the `token-revocations` bucket.
    pub revocations: Arc<crate::auth::Revocations>,
    /// How long an `Idempotency-Key` whose command has no result yet counts as in
    /// flight (409); after that the first request is taken to have died before
    /// publishing, and a retry publishes again (same id, so at most once).
    pub in_flight_grace: Duration,
    pub passwords: Passwords,
    pub token_ttl: Duration,
    pub max_seats_per_hold: usize,
    /// `None` when another Prometheus recorder owns the process (then `/metrics` is 503).
    pub metrics: Option<PrometheusHandle>,
}

impl AppState {
    pub fn new(cfg: &Config, bus: Arc<dyn Bus>) -> Self {
        AppState(Arc::new(Inner {
            bus,
            jwt: JwtKeys::new(&cfg.jwt_secret),
            roles: Default::default(),
            revocations: Default::default(),
            in_flight_grace: (cfg.reply_timeout() * 2).max(Duration::from_secs(30)),
            passwords: Passwords::new(cfg.fast_hashing),
            token_ttl: cfg.token_ttl(),
            max_seats_per_hold: cfg.max_seats_per_hold,
            metrics: crate::metrics::handle(),
        }))
    }
}

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}
