//! Projections over the EVENTS stream, each a durable pull consumer:
//!
//! - `audit`: one `audit_logs` entry per domain event, `_id` derived from the event id,
//!   so a redelivered event inserts nothing twice;
//! - `counters`: `events.availableSeats`, recomputed from the seats of every event a batch
//!   touched. NOTE: a recount, not a `$inc`: on FerretDB an `$inc` is a read-modify-write
//!   and concurrent increments lose updates, and a recount is idempotent under
//!   redelivery. The recount runs after the seat writes it follows (events are published
//!   after the effect), so once the system is quiet the counter is exact.

use std::collections::{HashMap, HashSet};
use std::future::IntoFuture;
use std::time::Duration;

use bson::{doc, Document};
use domain::audit::{AuditLog, AuditStatus, Changes};
use domain::ids::derive_object_id;
use domain::{DateTime, ObjectId};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use streams::events::{DomainEvent, EventEnvelope};
use streams::setup;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::warn;

use crate::app::consumer::{self, Delivery, Spec};
use crate::app::context::{Ctx, HandlerError};
use crate::app::runtime::wire_config;
use crate::store::{is_duplicate_key, names};

/// Messages per batch: one recount per touched event per batch.
const BATCH: usize = 500;
/// Pause after a short batch: projections trail by up to this much, and in return a storm's
/// events are applied in large batches.
const PACE: Duration = Duration::from_millis(250);

pub async fn start(
    ctx: &Ctx,
    tasks: &mut JoinSet<()>,
    stopped: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let wire = wire_config(&ctx.cfg);
    let audit =
        setup::ensure_projection_consumer(&ctx.js, &ctx.ns, "audit", ctx.ns.all_events(), &wire)
            .await
            .map_err(|e| anyhow::anyhow!("ensuring audit projection: {e}"))?;
    let counters =
        setup::ensure_projection_consumer(&ctx.js, &ctx.ns, "counters", ctx.ns.all_events(), &wire)
            .await
            .map_err(|e| anyhow::anyhow!("ensuring counters projection: {e}"))?;
    ctx.metrics.watch(&audit);
    ctx.metrics.watch(&counters);
    let spec = |name| Spec {
        pace: Some(PACE),
        ..Spec::new(name, BATCH)
    };
    tasks.spawn(consumer::batches(
        ctx.clone(),
        audit,
        spec("audit"),
        stopped.clone(),
        consumer::json::<EventEnvelope>,
        |ctx, batch| {
            let (ctx, events) = (ctx.clone(), items(batch));
            async move { apply_audit(&ctx, &events).await.map_err(HandlerError::from) }
        },
    ));
    tasks.spawn(consumer::batches(
        ctx.clone(),
        counters,
        spec("counters"),
        stopped,
        consumer::json::<EventEnvelope>,
        |ctx, batch| {
            let (ctx, events) = (ctx.clone(), items(batch));
            async move { apply_counters(&ctx, &events).await }
        },
    ));
    Ok(())
}

/// The decoded events of a batch.
pub fn items<T: Clone>(batch: &[Delivery<T>]) -> Vec<T> {
    batch.iter().map(|d| d.item.clone()).collect()
}

/// The audit entry of a domain event.
pub fn audit_entry(ev: &EventEnvelope) -> AuditLog {
    let when = DateTime::from_millis(ev.occurred_at.timestamp_millis());
    let to_doc = |v: &Option<serde_json::Value>| v.as_ref().and_then(|v| bson::to_document(v).ok());
    let failure = ev.event.failure_reason().map(str::to_string);
    AuditLog {
        id: derive_object_id("audit", &ev.id, ev.occurred_at.timestamp()),
        user_id: ev.actor.as_ref().map(|a| a.user_id),
        action: ev.event.action().to_string(),
        entity_type: ev.event.entity_type().to_string(),
        entity_id: Some(ev.entity_id()),
        changes: Changes {
            before: to_doc(&ev.before),
            after: to_doc(&ev.after),
        },
        status: if failure.is_some() {
            AuditStatus::Failure
        } else {
            AuditStatus::Success
        },
        failure_reason: failure,
        ip_address: ev.context.ip_address.clone(),
        user_agent: ev.context.user_agent.clone(),
        request_id: ev.context.request_id.clone(),
        status_code: ev.event.status_code().map(i32::from),
        response_time: None,
        command_id: Some(ev.command_id.clone()),
        timestamp: when,
        created_at: DateTime::now(),
    }
}

async fn apply_audit(ctx: &Ctx, events: &[EventEnvelope]) -> Result<(), mongodb::error::Error> {
    let docs: Vec<Document> = events
        .iter()
        .filter_map(|e| bson::to_document(&audit_entry(e)).ok())
        .collect();
    if docs.is_empty() {
        return Ok(());
    }
    match ctx
        .store
        .col(names::AUDIT_LOGS)
        .insert_many(docs)
        .ordered(false)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_duplicate_key(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

/// What a domain event does to a seat document.
#[derive(Debug, Clone, PartialEq)]
enum SeatChange {
    Held {
        user: Option<ObjectId>,
        hold: ObjectId,
        until: Option<bson::DateTime>,
    },
    Pending {
        booking: ObjectId,
        until: Option<bson::DateTime>,
    },
    Booked {
        user: Option<ObjectId>,
        booking: ObjectId,
    },
    Available,
}

fn time_of(t: &chrono::DateTime<chrono::Utc>) -> Option<bson::DateTime> {
    Some(bson::DateTime::from_millis(t.timestamp_millis()))
}

/// The seat changes of one domain event, in order.
fn seat_changes(e: &DomainEvent) -> Vec<(ObjectId, SeatChange)> {
    let (seats, change) = match e {
        DomainEvent::HoldCreated(h) => (
            &h.seat_ids,
            SeatChange::Held {
                user: Some(h.user_id),
                hold: h.hold_id,
                until: time_of(&h.expires_at),
            },
        ),
        DomainEvent::HoldReleased(h) | DomainEvent::HoldExpired(h) => {
            (&h.seat_ids, SeatChange::Available)
        }
        DomainEvent::BookingCreated(b) => (
            &b.seat_ids,
            SeatChange::Pending {
                booking: b.booking_id,
                until: time_of(&b.expires_at),
            },
        ),
        DomainEvent::BookingConfirmed(b) => (
            &b.seat_ids,
            SeatChange::Booked {
                user: Some(b.user_id),
                booking: b.booking_id,
            },
        ),
        DomainEvent::BookingCancelled(b) | DomainEvent::BookingExpired(b) => {
            (&b.seat_ids, SeatChange::Available)
        }
        // A converted hold's seats follow its booking's events.
        DomainEvent::HoldConverted(_)
        | DomainEvent::RefundProcessed(_)
        | DomainEvent::PaymentInitiated(_)
        | DomainEvent::PaymentFailed(_)
        | DomainEvent::PaymentCompleted(_)
        | DomainEvent::TicketsIssued(_)
        | DomainEvent::TicketDownloaded(_)
        | DomainEvent::TicketScanned(_)
        | DomainEvent::TicketScanRefused(_)
        | DomainEvent::EventCreated(_)
        | DomainEvent::EventPublished(_)
        | DomainEvent::EventCancelled(_)
        | DomainEvent::UserRegistered(_)
        | DomainEvent::UserLoggedOut(_)
        | DomainEvent::UserSuspended(_)
        | DomainEvent::UserVerified(_)
        | DomainEvent::UserPasswordReset(_)
        | DomainEvent::CommandRefused(_) => return Vec::new(),
    };
    seats.iter().map(|s| (*s, change.clone())).collect()
}

/// Whether an event can change its show's available seats (the recount follows it).
fn touches_seats(e: &DomainEvent) -> bool {
    match e {
        DomainEvent::HoldCreated(_)
        | DomainEvent::HoldReleased(_)
        | DomainEvent::HoldExpired(_)
        | DomainEvent::HoldConverted(_)
        | DomainEvent::BookingCreated(_)
        | DomainEvent::BookingConfirmed(_)
        | DomainEvent::BookingCancelled(_)
        | DomainEvent::BookingExpired(_)
        | DomainEvent::EventCreated(_)
        | DomainEvent::EventPublished(_)
        | DomainEvent::EventCancelled(_) => true,
        DomainEvent::RefundProcessed(_)
        | DomainEvent::PaymentInitiated(_)
        | DomainEvent::PaymentFailed(_)
        | DomainEvent::PaymentCompleted(_)
        | DomainEvent::TicketsIssued(_)
        | DomainEvent::TicketDownloaded(_)
        | DomainEvent::TicketScanned(_)
        | DomainEvent::TicketScanRefused(_)
        | DomainEvent::UserRegistered(_)
        | DomainEvent::UserLoggedOut(_)
        | DomainEvent::UserSuspended(_)
        | DomainEvent::UserVerified(_)
        | DomainEvent::UserPasswordReset(_)
        | DomainEvent::CommandRefused(_) => false,
    }
}

/// The seats projection: the one writer of seat documents. It applies the batch's seat
/// changes in stream order (coalesced per seat: only the last state is written, with
/// `version` raised by the number of changes), then recounts every touched event.
///
/// NOTE: seat documents follow the KV locks (the truth) by the projection's lag; the hot
/// path writes none of them. On FerretDB each update is its own SQLite transaction
/// (~5 ms), so a storm's seat writes are taken off the hold's latency path and coalesced.
async fn apply_counters(ctx: &Ctx, events: &[EventEnvelope]) -> Result<(), HandlerError> {
    apply_holds(ctx, events).await?;
    apply_scans(ctx, events).await?;
    let mut last: HashMap<ObjectId, (SeatChange, i64)> = HashMap::new();
    let mut order: Vec<ObjectId> = Vec::new();
    for e in events {
        for (seat, change) in seat_changes(&e.event) {
            match last.get_mut(&seat) {
                Some(entry) => {
                    entry.0 = change;
                    entry.1 += 1;
                }
                None => {
                    order.push(seat);
                    last.insert(seat, (change, 1));
                }
            }
        }
    }
    let now = DateTime::now();
    let seats = ctx.store.col(names::SEATS);
    let writes = order.iter().map(|seat| {
        let (change, n) = &last[seat];
        let update = match change {
            SeatChange::Held { user, hold, until } => doc! {
                "$set": {"status": "held", "heldBy": user, "heldUntil": until, "holdId": hold, "updatedAt": now},
                "$unset": {"bookedBy": "", "bookingId": ""},
                "$inc": {"version": n},
            },
            SeatChange::Pending { booking, until } => doc! {
                "$set": {"status": "held", "bookingId": booking, "heldUntil": until, "updatedAt": now},
                "$inc": {"version": n},
            },
            SeatChange::Booked { user, booking } => doc! {
                "$set": {"status": "booked", "bookedBy": user, "bookingId": booking, "updatedAt": now},
                "$unset": {"heldBy": "", "heldUntil": "", "holdId": ""},
                "$inc": {"version": n},
            },
            SeatChange::Available => doc! {
                "$set": {"status": "available", "updatedAt": now},
                "$unset": {"heldBy": "", "heldUntil": "", "holdId": "", "bookedBy": "", "bookingId": ""},
                "$inc": {"version": n},
            },
        };
        let (col, seat) = (seats.clone(), *seat);
        async move {
            persist(|| col.update_one(doc! {"_id": seat}, update.clone()).into_future()).await?;
            Ok(())
        }
        .boxed()
    });
    // Bounded: a catch-up batch may touch thousands of seats.
    bounded(writes.collect()).await?;
    let touched: HashSet<ObjectId> = events
        .iter()
        .filter(|e| touches_seats(&e.event))
        .filter_map(|e| e.show_id())
        .collect();
    for event_id in touched {
        recount(ctx, event_id).await?;
    }
    Ok(())
}

/// Retries one write in place (a short backoff, a few times), so a passing failure does
/// not send the whole batch back to be applied again from its start.
async fn persist<T, F, Fut>(mut write: F) -> Result<T, mongodb::error::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, mongodb::error::Error>>,
{
    let mut delay = Duration::from_millis(50);
    let mut tries = 0;
    loop {
        match write().await {
            Ok(v) => return Ok(v),
            Err(e) if tries < 5 => {
                tries += 1;
                warn!(error = %e, tries, "projection write failed; retrying it");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(e),
        }
    }
}

/// The `seat_holds` documents, of which this projection is the one writer: a hold is
/// inserted from its `hold.created` event (which carries the whole hold), and its status
/// follows `hold.released`, `hold.expired` and `hold.converted`. Creations go first (one
/// `insert_many`; duplicates are earlier deliveries), then each touched hold's last status.
async fn apply_holds(ctx: &Ctx, events: &[EventEnvelope]) -> Result<(), HandlerError> {
    let col = ctx.store.col(names::SEAT_HOLDS);
    let mut created = Vec::new();
    let mut changed: HashMap<ObjectId, Document> = HashMap::new();
    let mut order = Vec::new();
    for e in events {
        let at = DateTime::from_millis(e.occurred_at.timestamp_millis());
        let (id, set) = match &e.event {
            DomainEvent::HoldCreated(h) => {
                created.push(crate::store::to_doc(&h.hold)?);
                continue;
            }
            // `endedAt` starts the retention a MongoDB TTL index purges after (see
            // `store::indexes`).
            DomainEvent::HoldReleased(h) => (
                h.hold_id,
                doc! {"status": "released", "updatedAt": at, "endedAt": at},
            ),
            DomainEvent::HoldExpired(h) => (
                h.hold_id,
                doc! {"status": "expired", "updatedAt": at, "endedAt": at},
            ),
            DomainEvent::HoldConverted(h) => (
                h.hold_id,
                doc! {"status": "converted_to_booking", "convertedToBookingId": h.booking_id, "updatedAt": at, "endedAt": at},
            ),
            DomainEvent::BookingCreated(_)
            | DomainEvent::BookingConfirmed(_)
            | DomainEvent::BookingCancelled(_)
            | DomainEvent::BookingExpired(_)
            | DomainEvent::RefundProcessed(_)
            | DomainEvent::PaymentInitiated(_)
            | DomainEvent::PaymentFailed(_)
            | DomainEvent::PaymentCompleted(_)
            | DomainEvent::TicketsIssued(_)
            | DomainEvent::TicketDownloaded(_)
            | DomainEvent::TicketScanned(_)
            | DomainEvent::TicketScanRefused(_)
            | DomainEvent::EventCreated(_)
            | DomainEvent::EventPublished(_)
            | DomainEvent::EventCancelled(_)
            | DomainEvent::UserRegistered(_)
            | DomainEvent::UserLoggedOut(_)
            | DomainEvent::UserSuspended(_)
            | DomainEvent::UserVerified(_)
            | DomainEvent::UserPasswordReset(_)
            | DomainEvent::CommandRefused(_) => continue,
        };
        if !changed.contains_key(&id) {
            order.push(id);
        }
        changed.insert(id, set);
    }
    if !created.is_empty() {
        let r = persist(|| {
            col.insert_many(created.clone())
                .ordered(false)
                .into_future()
        })
        .await;
        match r {
            Ok(_) => {}
            Err(e) if is_duplicate_key(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let writes = order.into_iter().map(|id| {
        let (col, set) = (col.clone(), changed[&id].clone());
        async move {
            persist(|| {
                col.update_one(doc! {"_id": id}, doc! {"$set": set.clone()})
                    .into_future()
            })
            .await?;
            Ok(())
        }
        .boxed()
    });
    bounded(writes.collect()).await
}

/// Runs the writes, 16 at a time (the connection pool is shared with the other workers
/// of the process), and fails with the first failure once all have run.
/// (Boxed: a generic future here trips the compiler's `Send` inference in the spawned
/// projection loop.)
async fn bounded(writes: Vec<BoxFuture<'_, Result<(), HandlerError>>>) -> Result<(), HandlerError> {
    let results: Vec<_> = futures::stream::iter(writes)
        .buffer_unordered(16)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Gate scans, decided in NATS KV by the scans worker (see `gate`): every scan's
/// `ticket_scans` record (carried whole by its event; `_id` unique, so a redelivery
/// inserts nothing twice), and for each first scan the ticket's scan fields and the QR
/// code's `scanCount` (set, not incremented: one successful scan per ticket).
async fn apply_scans(ctx: &Ctx, events: &[EventEnvelope]) -> Result<(), HandlerError> {
    let mut records = Vec::new();
    let mut firsts = Vec::new();
    for e in events {
        match &e.event {
            DomainEvent::TicketScanned(s) => {
                records.push(crate::store::to_doc(&s.scan)?);
                firsts.push((s.ticket_id, s.scan.clone()));
            }
            DomainEvent::TicketScanRefused(s) => records.push(crate::store::to_doc(&s.scan)?),
            DomainEvent::HoldCreated(_)
            | DomainEvent::HoldReleased(_)
            | DomainEvent::HoldExpired(_)
            | DomainEvent::HoldConverted(_)
            | DomainEvent::BookingCreated(_)
            | DomainEvent::BookingConfirmed(_)
            | DomainEvent::BookingCancelled(_)
            | DomainEvent::BookingExpired(_)
            | DomainEvent::RefundProcessed(_)
            | DomainEvent::PaymentInitiated(_)
            | DomainEvent::PaymentFailed(_)
            | DomainEvent::PaymentCompleted(_)
            | DomainEvent::TicketsIssued(_)
            | DomainEvent::TicketDownloaded(_)
            | DomainEvent::EventCreated(_)
            | DomainEvent::EventPublished(_)
            | DomainEvent::EventCancelled(_)
            | DomainEvent::UserRegistered(_)
            | DomainEvent::UserLoggedOut(_)
            | DomainEvent::UserSuspended(_)
            | DomainEvent::UserVerified(_)
            | DomainEvent::UserPasswordReset(_)
            | DomainEvent::CommandRefused(_) => {}
        }
    }
    if !records.is_empty() {
        let col = ctx.store.col(names::TICKET_SCANS);
        match persist(|| {
            col.insert_many(records.clone())
                .ordered(false)
                .into_future()
        })
        .await
        {
            Ok(_) => {}
            Err(e) if is_duplicate_key(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let tickets = ctx.store.col(names::TICKETS);
    let qr_codes = ctx.store.col(names::QR_CODES);
    bounded(firsts.into_iter().map(|(ticket_id, rec)| {
        let (tickets, qr_codes) = (tickets.clone(), qr_codes.clone());
        async move {
            let at = rec.scanned_at;
            let gate = rec.scan_location.as_ref().and_then(|l| l.gate.clone());
            let set = doc! {
                "status": "scanned", "isScanned": true, "scannedAt": at,
                "scannedByUserId": rec.scanned_by_user_id, "scanLocation": gate, "updatedAt": at,
            };
            crate::store::leases::with_lease(ctx, names::TICKETS, ticket_id, || async {
                persist(|| {
                    tickets
                        .update_one(doc! {"_id": ticket_id}, doc! {"$set": set.clone()})
                        .into_future()
                })
                .await?;
                Ok(())
            })
            .await?;
            if let Some(qr_id) = rec.qr_code_id {
                crate::store::leases::with_lease(ctx, names::QR_CODES, qr_id, || async {
                    persist(|| {
                        qr_codes
                            .update_one(
                                doc! {"_id": qr_id},
                                doc! {"$set": {"scanCount": 1_i64, "lastScannedAt": at, "updatedAt": at}},
                            )
                            .into_future()
                    })
                    .await?;
                    Ok(())
                })
                .await?;
            }
            Ok(())
        }
        .boxed()
    }).collect())
    .await
}

/// Sets `availableSeats` of one event to the count of its available seats, under the
/// event document's lease (the catalog writes its status).
pub async fn recount(ctx: &Ctx, event_id: ObjectId) -> Result<u64, HandlerError> {
    let n = ctx
        .store
        .col(names::SEATS)
        .count_documents(doc! {"eventId": event_id, "status": "available"})
        .await?;
    let events = ctx.store.col(names::EVENTS);
    crate::store::leases::with_lease(ctx, names::EVENTS, event_id, || async {
        events
            .update_one(
                doc! {"_id": event_id},
                doc! {"$set": {"availableSeats": n as i64}},
            )
            .await?;
        Ok(())
    })
    .await?;
    Ok(n)
}
