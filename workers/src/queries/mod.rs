//! The queries worker: answers the gateway's reads by core request-reply, in a queue
//! group so every replica shares the load. It is the only reader of MongoDB the gateway
//! reaches; ownership is checked here against the query's issuer.

pub mod tickets;

use std::sync::Arc;

use bson::{doc, Bson, Document};
use chrono::NaiveDate;
use futures::{StreamExt, TryStreamExt};
use serde_json::{json, Value};
use streams::codes::{ErrorCode, Reply};
use streams::commands::Issuer;
use streams::queries::{AuditFilter, EventFilter, Query, QueryRequest};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::app::context::Ctx;
use crate::store::{api_json, names, paged, StoreError};

pub async fn start(
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

/// Queries waiting for a permit, per lane, beyond which a query is answered 503
/// `overloaded` at once: a queue in front of the store never grows without bound, and
/// a burst is shed in microseconds instead of timing out seconds later.
const WAITING_PER_PERMIT: usize = 4;

/// Where a query waits for its turn. Seat maps, PNG renders and audit scans are heavy
/// (thousands of seats, a render, an unindexed scan); they have their own permits so a
/// burst of them never queues an ordinary read (an event page, a booking) behind it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Lane {
    Ordinary,
    Heavy,
}

fn lane(q: &Query) -> Lane {
    match q {
        Query::EventSeats { .. } | Query::TicketQrPng { .. } | Query::AuditLogs(_) => Lane::Heavy,
        _ => Lane::Ordinary,
    }
}

/// One lane's permits and its bounded wait.
struct Gate {
    permits: Arc<Semaphore>,
    waiting: Arc<std::sync::atomic::AtomicUsize>,
    max_waiting: usize,
}

impl Gate {
    fn new(permits: usize) -> Self {
        Gate {
            permits: Arc::new(Semaphore::new(permits.max(1))),
            waiting: Arc::default(),
            max_waiting: permits.max(1) * WAITING_PER_PERMIT,
        }
    }

    /// A permit now, or a place in the bounded wait; `None` when both are full.
    fn admit(&self) -> Option<Admission> {
        use std::sync::atomic::Ordering;
        if let Ok(p) = self.permits.clone().try_acquire_owned() {
            return Some(Admission::Now(p));
        }
        let n = self.waiting.fetch_add(1, Ordering::AcqRel);
        if n >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Admission::Wait(self.permits.clone(), self.waiting.clone()))
    }
}

enum Admission {
    Now(tokio::sync::OwnedSemaphorePermit),
    Wait(Arc<Semaphore>, Arc<std::sync::atomic::AtomicUsize>),
}

impl Admission {
    async fn permit(self) -> tokio::sync::OwnedSemaphorePermit {
        match self {
            Admission::Now(p) => p,
            Admission::Wait(sem, waiting) => {
                let p = sem.acquire_owned().await.expect("semaphore never closed");
                waiting.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
                p
            }
        }
    }
}

async fn send(ctx: &Ctx, reply_to: async_nats::Subject, reply: &Reply) {
    if let Ok(body) = serde_json::to_vec(reply) {
        let _ = ctx.client.publish(reply_to, body.into()).await;
    }
}

async fn serve(ctx: Ctx, mut sub: async_nats::Subscriber, mut stopped: watch::Receiver<bool>) {
    let ordinary = Gate::new(ctx.cfg.concurrency);
    // Heavy reads are CPU-bound here (a seat map is built and serialized in this
    // process): more at once than cores only adds memory.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let heavy = Gate::new((cores * 2).min(ctx.cfg.concurrency));
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
        let req = match serde_json::from_slice::<QueryRequest>(&msg.payload) {
            Ok(req) => req,
            Err(e) => {
                let ctx = ctx.clone();
                let reply = Reply::error(
                    ErrorCode::ValidationFailed,
                    format!("undecodable query: {e}"),
                );
                inflight.spawn(async move { send(&ctx, reply_to, &reply).await });
                continue;
            }
        };
        if let Err(refusal) = ctx.trust.check_query(
            msg.headers.as_ref(),
            &msg.payload,
            req.query.name(),
            req.issuer.as_ref(),
        ) {
            warn!(query = req.query.name(), reason = %refusal, "query refused: its sender is not proven");
            let ctx = ctx.clone();
            let reply = Reply::error(refusal.code(), refusal.to_string());
            inflight.spawn(async move { send(&ctx, reply_to, &reply).await });
            continue;
        }
        let gate = match lane(&req.query) {
            Lane::Ordinary => &ordinary,
            Lane::Heavy => &heavy,
        };
        let Some(admission) = gate.admit() else {
            let ctx = ctx.clone();
            inflight.spawn(async move {
                let reply = Reply::error(
                    ErrorCode::Overloaded,
                    "too many reads of this kind at once, try again shortly",
                );
                send(&ctx, reply_to, &reply).await;
            });
            continue;
        };
        let ctx = ctx.clone();
        inflight.spawn(async move {
            let permit = admission.permit().await;
            // Checked again once a permit is free: the wait for it may have been long.
            if streams::headers::past_deadline(msg.headers.as_ref()) {
                return;
            }
            let bytes = match reply_bytes(&ctx, &req).await {
                Ok(b) => b,
                Err(e) => {
                    warn!(error = %e, "query failed");
                    let r = Reply::error(ErrorCode::Unavailable, "the database did not answer");
                    serde_json::to_vec(&r).unwrap_or_default().into()
                }
            };
            drop(permit);
            let _ = ctx.client.publish(reply_to, bytes).await;
        });
        while inflight.try_join_next().is_some() {}
    }
    while inflight.join_next().await.is_some() {}
    info!("queries worker stopped");
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
        Query::Credentials { email } => {
            let email = email.trim().to_ascii_lowercase();
            match col(names::USERS).find_one(doc! {"email": &email}).await? {
                Some(u) => Reply::ok(
                    200,
                    json!({
                        "userId": u.get_object_id("_id").map(|o| o.to_hex()).unwrap_or_default(),
                        "email": email,
                        "passwordHash": u.get_str("passwordHash").unwrap_or_default(),
                        "role": u.get_str("role").unwrap_or("user"),
                        "status": u.get_str("status").unwrap_or("active"),
                    }),
                ),
                None => Reply::error(ErrorCode::NotFound, "no such account"),
            }
        }
        Query::Me => {
            let Some(i) = &req.issuer else {
                return Ok(Reply::error(ErrorCode::Unauthorized, "sign in first"));
            };
            match col(names::USERS).find_one(doc! {"_id": i.user_id}).await? {
                Some(u) => Reply::ok(200, api_json(&u)),
                None => Reply::error(ErrorCode::NotFound, "no such account"),
            }
        }
        Query::ListEvents(f) => list_events(ctx, f, is_admin(&req.issuer)).await?,
        Query::GetEvent { event_id } => {
            match col(names::EVENTS).find_one(doc! {"_id": event_id}).await? {
                Some(e) if visible(&e, &req.issuer) => {
                    let mut v = api_json(&e);
                    if e.get_str("status").ok() == Some("cancelled") {
                        v["cancellation"] = cancellation_progress(ctx, event_id).await?;
                    }
                    Reply::ok(200, v)
                }
                _ => Reply::error(ErrorCode::EventNotFound, "no such event"),
            }
        }
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
        Query::GetBooking { booking_id } => match col(names::BOOKINGS)
            .find_one(doc! {"_id": booking_id})
            .await?
        {
            Some(b) if owns(&b, &req.issuer) => {
                let mut v = api_json(&b);
                let seats: Vec<Value> = col(names::BOOKING_SEATS)
                    .find(doc! {"bookingId": booking_id})
                    .await?
                    .map_ok(|d| api_json(&d))
                    .try_collect()
                    .await?;
                v["seats"] = Value::Array(seats);
                let issued = crate::queries::tickets::issued_count(ctx, &b).await?;
                v["ticketsStatus"] = json!(crate::queries::tickets::tickets_status(&b, issued));
                Reply::ok(200, v)
            }
            _ => Reply::error(ErrorCode::BookingNotFound, "no such booking"),
        },
        Query::MyBookings { page, limit } => {
            let Some(i) = &req.issuer else {
                return Ok(Reply::error(ErrorCode::Unauthorized, "sign in first"));
            };
            let body = paged(
                &col(names::BOOKINGS),
                doc! {"userId": i.user_id},
                doc! {"createdAt": -1, "_id": -1},
                *page,
                *limit,
                api_json,
            )
            .await?;
            Reply::ok(200, body)
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
            audit_logs(ctx, f).await?
        }
        Query::BookingTickets { booking_id } => {
            crate::queries::tickets::booking_tickets(ctx, &req.issuer, *booking_id).await?
        }
        Query::GetTicket { ticket_id } => {
            crate::queries::tickets::get_ticket(ctx, &req.issuer, *ticket_id).await?
        }
        Query::TicketQrPng { ticket_id } => {
            crate::queries::tickets::qr_png(ctx, &req.issuer, *ticket_id).await?
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

/// An event's seat map as JSON text, or why it is not shown.
async fn seat_map(
    ctx: &Ctx,
    issuer: &Option<Issuer>,
    event_id: domain::ObjectId,
    section: &Option<String>,
    status: &Option<String>,
) -> Result<Result<bytes::Bytes, Reply>, StoreError> {
    ctx.live
        .locks
        .sync()
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    // The sale status beside the locks says whether the event exists and may be shown;
    // only an event older than those keys is looked up in MongoDB.
    let shown = match ctx.live.locks.status(&event_id) {
        Some(s) => status_visible(&s) || is_admin(issuer),
        None => ctx
            .store
            .col(names::EVENTS)
            .find_one(doc! {"_id": event_id})
            .await?
            .is_some_and(|e| visible(&e, issuer)),
    };
    if !shown {
        return Ok(Err(Reply::error(ErrorCode::EventNotFound, "no such event")));
    }
    Ok(Ok(live_seats(
        ctx,
        event_id,
        section.as_deref(),
        status.as_deref(),
    )
    .await?))
}

/// The reply to `req` as sent on the wire. Seat maps are written straight into it: their
/// body is never built as a JSON value (see `streams::queries::RawReply`).
async fn reply_bytes(ctx: &Ctx, req: &QueryRequest) -> Result<bytes::Bytes, StoreError> {
    let reply = match &req.query {
        Query::EventSeats {
            event_id,
            section,
            status,
        } => match seat_map(ctx, &req.issuer, *event_id, section, status).await? {
            Ok(body) => return Ok(streams::queries::RawReply::encode(200, &body)),
            Err(refused) => refused,
        },
        _ => answer(ctx, req).await?,
    };
    serde_json::to_vec(&reply)
        .map(Into::into)
        .map_err(|e| StoreError::Bson(e.to_string()))
}

/// One seat as the seat map lists it.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct SeatItem<'a> {
    id: String,
    event_id: &'a str,
    row: &'a str,
    number: i32,
    section: &'a str,
    price: &'a domain::Money,
    status: &'a str,
}

#[derive(serde::Serialize)]
struct SeatList<'a> {
    total: usize,
    items: Vec<SeatItem<'a>>,
}

/// The seat map's body as JSON text, from the seat catalog in memory and the lock view
/// (synced by the caller): nothing is read from MongoDB once the catalog is loaded.
/// Renderings are shared by every read at the same lock-view version.
async fn live_seats(
    ctx: &Ctx,
    event_id: domain::ObjectId,
    section: Option<&str>,
    status: Option<&str>,
) -> Result<bytes::Bytes, StoreError> {
    let map = ctx.seat_maps.get(&ctx.store, event_id).await?;
    let key = (
        event_id,
        section.map(str::to_string),
        status.map(str::to_string),
    );
    let event_hex = event_id.to_hex();
    let (version, body) = ctx.live.locks.with_event(&event_id, |locks| {
        if let Some(b) = ctx.seat_maps.rendered(&key, locks.version) {
            return (locks.version, Ok((b, false)));
        }
        let mut seats: Vec<_> = map
            .iter()
            .filter(|(_, i)| section.is_none_or(|s| i.section == s))
            .collect();
        seats.sort_by(|a, b| (&a.1.row, a.1.number).cmp(&(&b.1.row, b.1.number)));
        let items: Vec<SeatItem> = seats
            .iter()
            .filter_map(|(id, i)| {
                let now = locks.seats.get(id).map_or("available", |l| l.api_status());
                if status.is_some_and(|s| s != now) {
                    return None;
                }
                Some(SeatItem {
                    id: id.to_hex(),
                    event_id: &event_hex,
                    row: &i.row,
                    number: i.number,
                    section: &i.section,
                    price: &i.price,
                    status: now,
                })
            })
            .collect();
        let list = SeatList {
            total: items.len(),
            items,
        };
        let rendered = serde_json::to_vec(&list).map(|b| (bytes::Bytes::from(b), true));
        (locks.version, rendered)
    });
    let (body, fresh) = body.map_err(|e| StoreError::Bson(e.to_string()))?;
    if fresh {
        ctx.seat_maps.keep_rendered(key, version, body.clone());
    }
    Ok(body)
}

/// Published events are public; drafts and the rest only for admins.
fn visible(e: &Document, issuer: &Option<Issuer>) -> bool {
    e.get_str("status").is_ok_and(status_visible) || is_admin(issuer)
}

fn status_visible(status: &str) -> bool {
    matches!(status, "published" | "cancelled" | "completed")
}

fn owns(d: &Document, issuer: &Option<Issuer>) -> bool {
    match issuer {
        Some(i) if i.role.is_admin() => true,
        Some(i) => d.get_object_id("userId").ok() == Some(i.user_id),
        None => false,
    }
}

/// A case-insensitive regex matching `s` literally.
fn literal_regex(s: &str, whole: bool) -> Bson {
    let mut escaped = String::with_capacity(s.len());
    for ch in s.chars() {
        if "\\^$.|?*+()[]{}".contains(ch) {
            escaped.push('\\');
        }
        escaped.push(ch);
    }
    let pattern = if whole {
        format!("^{escaped}$")
    } else {
        escaped
    };
    Bson::RegularExpression(bson::Regex {
        pattern,
        options: "i".into(),
    })
}

/// A bound of the events list: an RFC 3339 time (what the gateway sends), or a plain date
/// meaning its first (`end` false) or last millisecond in UTC.
fn day_bound(s: &str, end: bool) -> Option<bson::DateTime> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(bson::DateTime::from_millis(t.timestamp_millis()));
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    let t = if end {
        d.and_hms_milli_opt(23, 59, 59, 999)?
    } else {
        d.and_hms_opt(0, 0, 0)?
    };
    Some(bson::DateTime::from_millis(t.and_utc().timestamp_millis()))
}

async fn list_events(ctx: &Ctx, f: &EventFilter, admin: bool) -> Result<Reply, StoreError> {
    let mut filter = Document::new();
    if !(admin && f.include_drafts) {
        filter.insert("status", "published");
    }
    if let Some(c) = f.city.as_deref().filter(|c| !c.trim().is_empty()) {
        filter.insert("city", literal_regex(c.trim(), true));
    }
    if let Some(c) = f.category.as_deref().filter(|c| !c.trim().is_empty()) {
        filter.insert("category", c.trim().to_ascii_lowercase());
    }
    let mut date = Document::new();
    if let Some(from) = f.from.as_deref() {
        match day_bound(from, false) {
            Some(d) => date.insert("$gte", d),
            None => {
                return Ok(Reply::error(
                    ErrorCode::ValidationFailed,
                    "from must be an RFC 3339 time or a date like 2027-03-14",
                ))
            }
        };
    }
    if let Some(to) = f.to.as_deref() {
        match day_bound(to, true) {
            Some(d) => date.insert("$lte", d),
            None => {
                return Ok(Reply::error(
                    ErrorCode::ValidationFailed,
                    "to must be an RFC 3339 time or a date like 2027-03-14",
                ))
            }
        };
    }
    if !date.is_empty() {
        filter.insert("eventDate", date);
    }
    if let Some(q) = f.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        let r = literal_regex(q, false);
        filter.insert(
            "$or",
            vec![
                doc! {"name": r.clone()},
                doc! {"description": r.clone()},
                doc! {"venue": r.clone()},
                doc! {"city": r},
            ],
        );
    }
    let events = ctx.store.col(names::EVENTS);
    let body = paged(
        &events,
        filter,
        doc! {"eventDate": 1, "_id": 1},
        f.page,
        f.limit,
        api_json,
    )
    .await?;
    Ok(Reply::ok(200, body))
}

async fn audit_logs(ctx: &Ctx, f: &AuditFilter) -> Result<Reply, StoreError> {
    let mut filter = Document::new();
    if let Some(u) = f.user_id {
        filter.insert("userId", u);
    }
    if let Some(e) = f.entity_id {
        filter.insert("entityId", e);
    }
    if let Some(a) = &f.action {
        filter.insert("action", a);
    }
    if let Some(s) = &f.status {
        filter.insert("status", s);
    }
    let mut when = Document::new();
    if let Some(from) = f.from {
        when.insert("$gte", bson::DateTime::from_chrono(from));
    }
    if let Some(to) = f.to {
        when.insert("$lt", bson::DateTime::from_chrono(to));
    }
    if !when.is_empty() {
        filter.insert("timestamp", when);
    }
    let col = ctx.store.col(names::AUDIT_LOGS);
    let body = paged(
        &col,
        filter,
        doc! {"timestamp": -1, "_id": -1},
        f.page,
        f.limit,
        api_json,
    )
    .await?;
    Ok(Reply::ok(200, body))
}

/// A cancelled event's undoing: `{status: "processing"|"done", bookingsLeft}`, the
/// bookings still pending or confirmed (each gets its cancellation command, refunded in
/// full when paid). One equality count per status, the filters FerretDB pushes down.
async fn cancellation_progress(
    ctx: &Ctx,
    event_id: &domain::ObjectId,
) -> Result<Value, StoreError> {
    let bookings = ctx.store.col(names::BOOKINGS);
    let mut left = 0;
    for status in ["pending", "confirmed", "completed"] {
        left += bookings
            .count_documents(doc! {"eventId": event_id, "status": status})
            .await?;
    }
    let status = if left == 0 { "done" } else { "processing" };
    Ok(json!({"status": status, "bookingsLeft": left}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_lane_refuses_at_once_and_admits_again_when_a_permit_frees() {
        let g = Gate::new(2);
        let mut now = Vec::new();
        let mut waiting = Vec::new();
        for _ in 0..2 {
            match g.admit() {
                Some(Admission::Now(p)) => now.push(p),
                _ => panic!("a free permit is taken at once"),
            }
        }
        for _ in 0..2 * WAITING_PER_PERMIT {
            match g.admit() {
                Some(a @ Admission::Wait(..)) => waiting.push(a),
                _ => panic!("the bounded wait has room"),
            }
        }
        assert!(g.admit().is_none(), "permits and wait are full: refused");
        // A permit frees: the first waiter gets it, and the wait has room again.
        drop(now.pop());
        let first = waiting.remove(0).permit().await;
        assert!(g.admit().is_some());
        drop(first);
    }

    #[test]
    fn list_bounds_are_days_or_rfc_3339_times() {
        let ms = |s: &str, end| day_bound(s, end).map(|d| d.timestamp_millis());
        assert_eq!(ms("1970-01-02", false), Some(86_400_000));
        assert_eq!(ms("1970-01-01", true), Some(86_399_999));
        assert_eq!(ms("1970-01-01T00:00:01.500Z", true), Some(1_500));
        assert_eq!(ms("1970-01-01T01:00:00+01:00", false), Some(0));
        assert_eq!(ms("soon", false), None);
    }

    #[test]
    fn seat_maps_png_and_audit_reads_take_the_heavy_lane() {
        let e = domain::ObjectId::new();
        let seats = Query::EventSeats {
            event_id: e,
            section: None,
            status: None,
        };
        assert_eq!(lane(&seats), Lane::Heavy);
        assert_eq!(lane(&Query::GetEvent { event_id: e }), Lane::Ordinary);
        assert_eq!(lane(&Query::Me), Lane::Ordinary);
    }
}
