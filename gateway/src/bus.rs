//! The gateway's view of NATS: send a command and wait for its reply, read a stored
//! result, ask a query. [`NatsBus`] is the real one; the trait lets the router be tested
//! with an in-memory stand-in and no server.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use futures::future::BoxFuture;
use streams::codes::Reply;
use streams::commands::{CommandEnvelope, Issuer};
use streams::idempotency::{Claim, KeyRecord};
use streams::proof::CommandSigner;
use streams::publish::publish_command_until;
use streams::queries::{ask, ask_answer, ask_raw, Answer, Query, QueryRequest, RawReply};
use streams::replies::{ReplyRouter, Results, StoredResult};
use streams::{Namespace, WireError};

/// How often a duplicate command's result is looked for while waiting.
const RESULT_POLL: Duration = Duration::from_millis(50);

/// What became of a sent command.
#[derive(Debug, Clone, PartialEq)]
pub enum Sent {
    /// The worker answered in time (or had answered a first copy of it).
    Replied(Reply),
    /// Published durably but not answered within the reply timeout.
    Pending,
}

pub trait Bus: Send + Sync + 'static {
    /// Publishes `env` and waits up to the reply timeout for its result. A command id
    /// seen inside JetStream's duplicate window waits for the first copy's stored result.
    fn send<'a>(
        &'a self,
        env: &'a CommandEnvelope,
        request_id: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Sent, WireError>>;

    /// The stored result of a command, if it has one.
    fn stored<'a>(
        &'a self,
        command_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredResult>, WireError>>;

    /// Claims an `Idempotency-Key`'s command id for the request `record` describes, or
    /// returns the record of the request that claimed it first.
    fn claim_key<'a>(
        &'a self,
        command_id: &'a str,
        record: &'a KeyRecord,
    ) -> BoxFuture<'a, Result<Claim, WireError>>;

    /// Asks the queries worker (503 `unavailable` replies when nobody answers in time).
    fn ask<'a>(&'a self, req: &'a QueryRequest) -> BoxFuture<'a, Result<Reply, WireError>>;

    /// Whether the account `who` exists, is active and has the role `who.role` (the
    /// queries worker's `me`): staff and admin rights are confirmed against the account,
    /// so a token minted with a leaked JWT secret cannot invent an admin.
    fn account_holds_role<'a>(&'a self, who: &'a Issuer) -> BoxFuture<'a, Result<bool, WireError>> {
        Box::pin(async move {
            let req = QueryRequest {
                issuer: Some(who.clone()),
                query: Query::Me,
            };
            let reply = self.ask(&req).await?;
            match reply.status {
                200 => Ok(reply.body["role"].as_str() == Some(who.role.as_str())
                    && reply.body["status"].as_str() == Some("active")),
                401 | 403 | 404 => Ok(false),
                s => Err(WireError::Nats(format!(
                    "confirming the account's role: the queries worker answered {s}"
                ))),
            }
        })
    }

    /// [`Bus::ask`], the answer's body kept as the worker's JSON text, for bodies the
    /// gateway forwards untouched (seat maps).
    fn ask_raw<'a>(&'a self, req: &'a QueryRequest) -> BoxFuture<'a, Result<RawReply, WireError>> {
        Box::pin(async move { Ok(self.ask(req).await?.into()) })
    }

    /// [`Bus::ask`] for a query whose answer may be binary (a ticket's QR image).
    fn ask_answer<'a>(&'a self, req: &'a QueryRequest) -> BoxFuture<'a, Result<Answer, WireError>> {
        Box::pin(async move { Ok(Answer::Reply(self.ask(req).await?)) })
    }

    /// Puts a card number in the card vault under `token` (a short-lived KV entry the
    /// payments worker reads and deletes), so it never travels in a command.
    fn vault_card<'a>(
        &'a self,
        token: &'a str,
        number: &'a str,
    ) -> BoxFuture<'a, Result<(), WireError>>;

    /// Purges `token` from the card vault (harmless when the worker already did).
    fn forget_card<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<(), WireError>> {
        let _ = token;
        Box::pin(async { Ok(()) })
    }

    /// Whether the connection to NATS is up right now.
    fn connected(&self) -> bool;
}

/// The buckets the gateway uses (the workers create them).
pub struct Buckets {
    pub results: Results,
    /// Card numbers in transit to the payments worker.
    pub vault: async_nats::jetstream::kv::Store,
    /// `Idempotency-Key` records.
    pub idempotency: async_nats::jetstream::kv::Store,
}

/// The bus over a NATS connection.
pub struct NatsBus {
    client: async_nats::Client,
    js: jetstream::Context,
    ns: Namespace,
    replies: ReplyRouter,
    results: Results,
    vault: async_nats::jetstream::kv::Store,
    idempotency: async_nats::jetstream::kv::Store,
    signer: Arc<CommandSigner>,
    reply_timeout: Duration,
    query_timeout: Duration,
}

impl NatsBus {
    pub fn new(
        client: async_nats::Client,
        ns: Namespace,
        replies: ReplyRouter,
        buckets: Buckets,
        signer: Arc<CommandSigner>,
        cfg: &crate::config::Config,
    ) -> Arc<Self> {
        let js = jetstream::new(client.clone());
        Arc::new(NatsBus {
            client,
            js,
            ns,
            replies,
            results: buckets.results,
            vault: buckets.vault,
            idempotency: buckets.idempotency,
            signer,
            reply_timeout: cfg.reply_timeout(),
            query_timeout: cfg.query_timeout(),
        })
    }

    async fn poll_result(
        &self,
        command_id: &str,
        deadline: tokio::time::Instant,
    ) -> Result<Sent, WireError> {
        loop {
            if let Some(stored) = self.results.get(command_id).await? {
                return Ok(Sent::Replied(stored.reply));
            }
            if tokio::time::Instant::now() + RESULT_POLL > deadline {
                return Ok(Sent::Pending);
            }
            tokio::time::sleep(RESULT_POLL).await;
        }
    }

    #[tracing::instrument(skip_all, fields(command_id = %env.id, kind = env.command.route().1), err)]
    async fn send_now(
        &self,
        env: &CommandEnvelope,
        request_id: Option<&str>,
    ) -> Result<Sent, WireError> {
        let deadline = tokio::time::Instant::now() + self.reply_timeout;
        // Registered before publishing, so a fast reply cannot arrive before we listen.
        let pending = self.replies.register();
        let published = publish_command_until(
            &self.js,
            &self.ns,
            &self.signer,
            env,
            Some(&pending.inbox),
            request_id,
            Some(self.reply_timeout),
        )
        .await?;
        if published.duplicate {
            drop(pending);
            tracing::debug!("duplicate command: waiting for the first copy's result");
            return self.poll_result(&env.id, deadline).await;
        }
        match pending.wait(self.reply_timeout).await {
            Some(reply) => Ok(Sent::Replied(reply)),
            // The reply may have been lost (a reconnect) after the result was stored.
            None => match self.results.get(&env.id).await? {
                Some(stored) => Ok(Sent::Replied(stored.reply)),
                None => Ok(Sent::Pending),
            },
        }
    }
}

impl Bus for NatsBus {
    fn send<'a>(
        &'a self,
        env: &'a CommandEnvelope,
        request_id: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Sent, WireError>> {
        Box::pin(self.send_now(env, request_id))
    }

    fn stored<'a>(
        &'a self,
        command_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredResult>, WireError>> {
        Box::pin(self.results.get(command_id))
    }

    fn claim_key<'a>(
        &'a self,
        command_id: &'a str,
        record: &'a KeyRecord,
    ) -> BoxFuture<'a, Result<Claim, WireError>> {
        Box::pin(streams::idempotency::claim(
            &self.idempotency,
            command_id,
            record,
        ))
    }

    fn ask<'a>(&'a self, req: &'a QueryRequest) -> BoxFuture<'a, Result<Reply, WireError>> {
        Box::pin(ask(
            &self.client,
            &self.ns,
            &self.signer,
            req,
            self.query_timeout,
        ))
    }

    fn ask_raw<'a>(&'a self, req: &'a QueryRequest) -> BoxFuture<'a, Result<RawReply, WireError>> {
        Box::pin(ask_raw(
            &self.client,
            &self.ns,
            &self.signer,
            req,
            self.query_timeout,
        ))
    }

    fn ask_answer<'a>(&'a self, req: &'a QueryRequest) -> BoxFuture<'a, Result<Answer, WireError>> {
        Box::pin(ask_answer(
            &self.client,
            &self.ns,
            &self.signer,
            req,
            self.query_timeout,
        ))
    }

    fn vault_card<'a>(
        &'a self,
        token: &'a str,
        number: &'a str,
    ) -> BoxFuture<'a, Result<(), WireError>> {
        Box::pin(async move {
            self.vault
                .put(token, bytes::Bytes::copy_from_slice(number.as_bytes()))
                .await
                .map(|_| ())
                .map_err(WireError::nats)
        })
    }

    fn forget_card<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<(), WireError>> {
        Box::pin(async move { self.vault.purge(token).await.map_err(WireError::nats) })
    }

    fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }
}
