//! The queries worker: answers the gateway's reads by core request-reply, in a queue
//! group so every replica shares the load. It is the only reader of MongoDB the gateway
//! reaches; ownership is checked here against the query's issuer.
//!
//! Reads live by subject (`accounts`, `events`, `seats`, `bookings`, `tickets`, `audit`);
//! `gate` bounds how many run at once, per lane.

mod accounts;
mod audit;
mod bookings;
mod events;
mod gate;
mod seats;
pub(crate) mod tickets;

use async_nats::{Message, Subject};
use bson::{doc, Document};
use domain::event::EventStatus;
use futures::StreamExt;
use serde_json::json;
use streams::codes::{ErrorCode, Reply};
use streams::commands::Issuer;
use streams::queries::{Query, QueryRequest};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{info, warn};

use self::gate::{Admission, Gates};
use crate::app::context::Ctx;
use crate::store::{api_json, names, StoreError};

pub(crate) async fn start(
    ctx: &Ctx,
    tasks: &mut JoinSet<()>,
    stopped: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let sub = ctx
        .client
        .queue_subscribe(ctx.ns.all_queries(), ctx.ns.queries_queue_group())
        .await
        .map_err(|e| anyhow::anyhow!("subscribing to queries: {e}"))?;
    tasks.spawn(serve(ctx.clone(), sub, stopped));
    Ok(())
}

async fn send(ctx: &Ctx, reply_to: async_nats::Subject, reply: &Reply) {
    if let Ok(body) = serde_json::to_vec(reply) {
        let _ = ctx.client.publish(reply_to, body.into()).await;
    }
}

async fn serve(ctx: Ctx, mut sub: async_nats::Subscriber, mut stopped: watch::Receiver<bool>) {
    let gates = Gates::new(ctx.cfg.concurrency);
    let mut inflight = JoinSet::new();
    info!("queries worker started");
    loop {
        let msg = tokio::select! {
            _ = stopped.changed() => break,
            m = sub.next() => m,
        };
        let Some(msg) = msg else { break };
        // Only a client's inbox gets an answer: the requester picks the reply subject,
        // and the workers' identity may write to KV and the JetStream API.
        let Some(reply_to) = msg
            .reply
            .clone()
            .filter(|r| streams::replies::is_reply_inbox(r.as_str()))
        else {
            continue;
        };
        // The caller gave up already: doing the read now would only load the database
        // for nobody (that is how abandoned seat-map scans kept FerretDB busy for minutes).
        if streams::headers::past_deadline(msg.headers.as_ref()) {
            continue;
        }
        take(&ctx, &gates, &mut inflight, msg, reply_to);
        while inflight.try_join_next().is_some() {}
    }
    while inflight.join_next().await.is_some() {}
    info!("queries worker stopped");
}

/// Spawns what one request gets: a refusal when it is undecodable, unproven or its lane
/// is full, else its answer once a permit is free.
fn take(ctx: &Ctx, gates: &Gates, inflight: &mut JoinSet<()>, msg: Message, reply_to: Subject) {
    let req = match proven_request(ctx, &msg) {
        Ok(req) => req,
        Err(reply) => {
            let ctx = ctx.clone();
            inflight.spawn(async move { send(&ctx, reply_to, &reply).await });
            return;
        }
    };
    let Some(admission) = gates.of(&req.query).admit() else {
        let ctx = ctx.clone();
        inflight.spawn(async move {
            let reply = Reply::error(
                ErrorCode::Overloaded,
                "too many reads of this kind at once, try again shortly",
            );
            send(&ctx, reply_to, &reply).await;
        });
        return;
    };
    inflight.spawn(answer_in_turn(ctx.clone(), msg, req, admission, reply_to));
}

/// The request in `msg`, or the refusal to send when it is undecodable or its sender is
/// not proven.
fn proven_request(ctx: &Ctx, msg: &Message) -> Result<QueryRequest, Reply> {
    let req = serde_json::from_slice::<QueryRequest>(&msg.payload).map_err(|e| {
        Reply::error(
            ErrorCode::ValidationFailed,
            format!("undecodable query: {e}"),
        )
    })?;
    if let Err(refusal) = ctx.trust.check_query(
        msg.headers.as_ref(),
        &msg.payload,
        req.query.name(),
        req.issuer.as_ref(),
    ) {
        warn!(query = req.query.name(), reason = %refusal, "query refused: its sender is not proven");
        return Err(Reply::error(refusal.code(), refusal.to_string()));
    }
    Ok(req)
}

/// Waits for a permit, then answers `req` unless its caller gave up in the meantime.
async fn answer_in_turn(
    ctx: Ctx,
    msg: Message,
    req: QueryRequest,
    admission: Admission,
    reply_to: Subject,
) {
    let permit = admission.permit().await;
    // Checked again once a permit is free: the wait for it may have been long.
    if streams::headers::past_deadline(msg.headers.as_ref()) {
        return;
    }
    let answer = match reply_bytes(&ctx, &req).await {
        Ok(a) => a,
        Err(e) => {
            warn!(error = %e, "query failed");
            let r = Reply::error(ErrorCode::Unavailable, "the database did not answer");
            WireAnswer::Json(serde_json::to_vec(&r).unwrap_or_default().into())
        }
    };
    drop(permit);
    let _ = match answer {
        WireAnswer::Json(bytes) => ctx.client.publish(reply_to, bytes).await,
        WireAnswer::Binary(content_type, bytes) => {
            let h = streams::queries::Answer::binary_headers(content_type);
            ctx.client.publish_with_headers(reply_to, h, bytes).await
        }
    };
}

fn is_admin(i: &Option<Issuer>) -> bool {
    i.as_ref().is_some_and(|i| i.role.is_admin())
}

async fn answer(ctx: &Ctx, req: &QueryRequest) -> Result<Reply, StoreError> {
    let col = |n| ctx.store.col(n);
    Ok(match &req.query {
        Query::Ping => {
            ctx.store.ping().await?;
            Reply::ok(200, json!({"mongodb": "ok"}))
        }
        Query::Credentials { email } => accounts::credentials(ctx, email).await?,
        Query::Me => accounts::me(ctx, &req.issuer).await?,
        Query::ListEvents(f) => events::list_events(ctx, f, is_admin(&req.issuer)).await?,
        Query::GetEvent { event_id } => events::get_event(ctx, &req.issuer, event_id).await?,
        // Written straight into the wire reply by `reply_bytes`, never built as a value.
        Query::EventSeats { .. } => {
            return Err(StoreError::Unavailable(
                "seat maps are answered by reply_bytes".into(),
            ))
        }
        Query::GetHold { hold_id } => match crate::holds::find_hold(ctx, *hold_id)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?
        {
            Some(h) if owns(&h, &req.issuer) => Reply::ok(200, api_json(&h)),
            _ => Reply::error(ErrorCode::HoldNotFound, "no such hold"),
        },
        Query::GetBooking { booking_id } => {
            bookings::get_booking(ctx, &req.issuer, booking_id).await?
        }
        Query::MyBookings { page, limit } => {
            bookings::my_bookings(ctx, &req.issuer, *page, *limit).await?
        }
        Query::GetPayment { payment_id } => match col(names::PAYMENTS)
            .find_one(doc! {"_id": payment_id})
            .await?
        {
            Some(p) if owns(&p, &req.issuer) => Reply::ok(200, api_json(&p)),
            _ => Reply::error(ErrorCode::PaymentNotFound, "no such payment"),
        },
        Query::GetRefund { refund_id } => match col(names::REFUNDS)
            .find_one(doc! {"_id": refund_id})
            .await?
        {
            Some(r) if owns(&r, &req.issuer) => Reply::ok(200, api_json(&r)),
            _ => Reply::error(ErrorCode::RefundNotFound, "no such refund"),
        },
        Query::AuditLogs(f) => {
            if !is_admin(&req.issuer) {
                return Ok(Reply::error(ErrorCode::Forbidden, "admins only"));
            }
            audit::audit_logs(ctx, f).await?
        }
        Query::BookingTickets { booking_id } => {
            crate::queries::tickets::booking_tickets(ctx, &req.issuer, *booking_id).await?
        }
        Query::GetTicket { ticket_id } => {
            crate::queries::tickets::get_ticket(ctx, &req.issuer, *ticket_id).await?
        }
        // A binary answer, sent as its bytes by `reply_bytes`.
        Query::TicketQrPng { .. } => {
            return Err(StoreError::Unavailable(
                "QR images are answered by reply_bytes".into(),
            ))
        }
        Query::ScanKeys => crate::queries::tickets::scan_keys(ctx, &req.issuer),
        Query::EventRevocations { event_id, since } => {
            crate::tickets::revocations::list(ctx, &req.issuer, *event_id, *since).await?
        }
        Query::MyNotifications { page, limit } => match &req.issuer {
            Some(i) => crate::notifications::mine(ctx, i.user_id, *page, *limit).await?,
            None => Reply::error(ErrorCode::Unauthorized, "sign in first"),
        },
        Query::EventAnalytics { event_id, period } => {
            if !is_admin(&req.issuer) {
                return Ok(Reply::error(ErrorCode::Forbidden, "admins only"));
            }
            crate::analytics::read(ctx, *event_id, period.as_deref()).await?
        }
    })
}

/// An answer as it goes on the wire: JSON text (a `Reply`), or a binary body with its
/// media type (see `streams::queries::Answer`).
enum WireAnswer {
    Json(bytes::Bytes),
    Binary(&'static str, bytes::Bytes),
}

/// The reply to `req` as sent on the wire. Seat maps are written straight into it: their
/// body is never built as a JSON value (see `streams::queries::RawReply`); a ticket's QR
/// image goes as its PNG bytes.
async fn reply_bytes(ctx: &Ctx, req: &QueryRequest) -> Result<WireAnswer, StoreError> {
    let reply = match &req.query {
        Query::EventSeats {
            event_id,
            section,
            status,
        } => match seats::seat_map(ctx, &req.issuer, *event_id, section, status).await? {
            Ok(body) => {
                return Ok(WireAnswer::Json(streams::queries::RawReply::encode(
                    200, &body,
                )))
            }
            Err(refused) => refused,
        },
        Query::TicketQrPng { ticket_id } => {
            match crate::queries::tickets::qr_png(ctx, &req.issuer, *ticket_id).await? {
                Ok(png) => return Ok(WireAnswer::Binary("image/png", png.into())),
                Err(refused) => refused,
            }
        }
        _ => answer(ctx, req).await?,
    };
    serde_json::to_vec(&reply)
        .map(|b| WireAnswer::Json(b.into()))
        .map_err(|e| StoreError::Bson(e.to_string()))
}

/// Published events are public; drafts and the rest only for admins.
fn visible(e: &Document, issuer: &Option<Issuer>) -> bool {
    e.get_str("status").is_ok_and(status_visible) || is_admin(issuer)
}

fn status_visible(status: &str) -> bool {
    matches!(
        EventStatus::parse(status),
        Some(EventStatus::Published | EventStatus::Cancelled | EventStatus::Completed)
    )
}

fn owns(d: &Document, issuer: &Option<Issuer>) -> bool {
    match issuer {
        Some(i) if i.role.is_admin() => true,
        Some(i) => d.get_object_id("userId").ok() == Some(i.user_id),
        None => false,
    }
}
