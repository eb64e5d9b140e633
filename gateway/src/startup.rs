//! Start-up and shutdown: connect to NATS, ensure the streams and buckets, ask for the
//! configured admin, bind the listener ([`Application::build`]), then serve until told to
//! stop, finishing the requests in flight ([`Application::run_until_stopped`]).

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use async_nats::jetstream;
use axum::Router;
use chrono::Utc;
use domain::user::{check_password, Email};
use secrecy::ExposeSecret;
use std::sync::Arc;
use streams::commands::{
    idempotent_command_id, Command, CommandEnvelope, RegisterUser, RequestContext,
};
use streams::proof::CommandSigner;
use streams::publish::publish_command;
use streams::replies::{ReplyRouter, Results};
use streams::setup::open_bucket;
use streams::Namespace;
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::bus::NatsBus;
use crate::config::Config;
use crate::routes;
use crate::state::AppState;

/// A gateway bound to its port, ready to serve.
pub struct Application {
    listener: TcpListener,
    router: Router,
    client: async_nats::Client,
    port: u16,
}

impl Application {
    /// Connects to NATS, ensures the streams and buckets, publishes `EnsureAdmin` when an
    /// admin is configured, and binds `cfg.listen` (port 0 picks a free port).
    pub async fn build(cfg: Config) -> anyhow::Result<Application> {
        cfg.validate()
            .map_err(anyhow::Error::msg)
            .context("invalid configuration")?;
        if cfg.uses_dev_jwt_secret() {
            warn!("TICKETING_JWT_SECRET is not set: using the development secret; never do this in production");
        }
        if cfg.fast_hashing {
            warn!("TICKETING_ARGON2_TEST_PARAMS is on: passwords are hashed with test-only parameters");
        }
        let signer = Arc::new(
            CommandSigner::parse(
                cfg.command_signing_key
                    .as_ref()
                    .map(|k| k.expose_secret())
                    .unwrap_or_default(),
            )
            .context("TICKETING_COMMAND_SIGNING_KEY")?,
        );
        let client = streams::connect::connect(
            &cfg.nats_url,
            "ticketing-gateway",
            cfg.nats_user.as_deref(),
            cfg.nats_password.as_ref().map(|p| p.expose_secret()),
        )
        .await?;
        let ns = Namespace::new(&cfg.namespace);
        let js = jetstream::new(client.clone());
        // The workers create streams and buckets; the gateway's NATS identity may only
        // use them, so it waits for them here.
        let wait = std::time::Duration::from_secs(cfg.startup_wait_secs);
        let results = open_bucket(&js, &ns.results_bucket(), wait).await?;
        let vault = open_bucket(&js, &ns.card_vault_bucket(), wait).await?;
        let idempotency = open_bucket(&js, &ns.idempotency_bucket(), wait).await?;
        let revocations_kv = open_bucket(&js, &ns.token_revocations_bucket(), wait).await?;
        let replies = ReplyRouter::start(client.clone())
            .await
            .context("subscribing to the reply inbox")?;
        let bus = NatsBus::new(
            client.clone(),
            ns.clone(),
            replies,
            crate::bus::Buckets {
                results: Results::new(results),
                vault,
                idempotency,
            },
            signer.clone(),
            &cfg,
        );
        let state = AppState::new(&cfg, bus);
        crate::auth::watch_revocations(revocations_kv, state.revocations.clone()).await;
        ensure_admin(&cfg, &state, &js, &ns, &signer).await?;

        let listener = TcpListener::bind(cfg.listen.as_str())
            .await
            .with_context(|| format!("binding {}", cfg.listen))?;
        let port = listener
            .local_addr()
            .context("reading the bound address")?
            .port();
        let router = routes::router(state, &cfg);
        info!(port, namespace = %cfg.namespace, "gateway ready");
        Ok(Application {
            listener,
            router,
            client,
            port,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` completes, then lets the requests in flight finish (each
    /// bounded by the request timeout) and drains the NATS connection.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(self.listener, service)
            .with_graceful_shutdown(shutdown)
            .await
            .context("serving HTTP")?;
        info!("HTTP server stopped; draining the NATS connection");
        if let Err(e) = self.client.drain().await {
            warn!(error = %e, "draining the NATS connection");
        }
        Ok(())
    }
}

/// Asks the accounts worker for the configured first admin. The command id derives from
/// the e-mail, so every restart sends the same command: JetStream drops it inside the
/// duplicate window and the worker answers it from its record after that. The worker
/// may not be running yet; nothing waits for the answer.
///
/// NOTE: an existing account is left as it is, so changing the configured password of
/// an admin that exists does not change their password.
async fn ensure_admin(
    cfg: &Config,
    state: &AppState,
    js: &jetstream::Context,
    ns: &Namespace,
    signer: &CommandSigner,
) -> anyhow::Result<()> {
    let (email, password) = match (&cfg.admin_email, &cfg.admin_password) {
        (Some(e), Some(p)) => (e, p),
        (None, None) => return Ok(()),
        _ => {
            warn!("set both TICKETING_ADMIN_EMAIL and TICKETING_ADMIN_PASSWORD to create the first admin");
            return Ok(());
        }
    };
    let email = Email::parse(email).context("TICKETING_ADMIN_EMAIL")?;
    check_password(password.expose_secret()).context("TICKETING_ADMIN_PASSWORD")?;
    let password_hash = state
        .passwords
        .hash(password.clone())
        .await
        .context("hashing the admin password")?;
    let env = CommandEnvelope {
        id: idempotent_command_id("config:admin", email.as_str()),
        issuer: None,
        issued_at: Utc::now(),
        context: RequestContext::default(),
        command: Command::EnsureAdmin(RegisterUser {
            email: email.clone(),
            password_hash,
            name: "Administrator".to_string(),
            phone: None,
        }),
    };
    let published = publish_command(js, ns, signer, &env, None, None)
        .await
        .context("publishing EnsureAdmin")?;
    info!(admin = %email.as_str(), duplicate = published.duplicate, "asked for the configured admin");
    Ok(())
}
