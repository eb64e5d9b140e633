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
