//! The holds worker: takes seats for a user, all or none, and lets them go.
//!
//! The guard against double selling is the `seat-locks` KV bucket: a hold takes one key
//! per seat with an expected-last-sequence of 0 (create) and a TTL. A hold is decided and
//! answered without MongoDB: the event's sale status and its seat catalog come from memory
//! (`streams::live`, `seatmap`), and the record the answer rests on is NATS: the locks and
//! the `hold.created` event in EVENTS (which carries the whole hold). The `seat_holds` and
//! `seats` documents are written from that event by the projections.
//!
//! Durable writes per successful hold of N seats: N KV creates, one domain event, the
//! stored result (plus the command's own publish and ack). A refused hold costs the
//! creates it won plus their deletes.

pub mod expiry;
pub mod seats;

use bson::{doc, Document};
use chrono::Utc;
use domain::events::{DomainEvent, HoldCreated, HoldEnded};
use domain::hold::{check_hold_request, HoldStatus, SeatHold};
use domain::ids::derive_object_id;
use domain::seat::lock_key;
use domain::{DateTime, Money, ObjectId};
use futures::future::join_all;
use serde_json::{json, Value};
use streams::codes::{ErrorCode, Reply};
use streams::commands::{CommandEnvelope, CreateHold, ReleaseHold, ReleaseReason};
use streams::live::locks::status_key;
use streams::locks::Acquired;
use tracing::warn;

use crate::app::context::{Ctx, HandlerError};
use crate::events::seat_map::SeatMap;
use crate::holds::seats::{free_seats, Owner};
use crate::store::{api_json, names, to_doc};

/// The hold's id, derived from the command that creates it.
pub fn hold_id_for(env: &CommandEnvelope) -> ObjectId {
    derive_object_id("hold", &env.id, env.issued_at.timestamp())
}

/// A hold as it is now, for whoever must act on it: the live view after the read barrier
/// (so a hold answered a moment ago by any process is found), else MongoDB (holds older
/// than the view's reach).
pub async fn find_hold(ctx: &Ctx, id: ObjectId) -> Result<Option<Document>, HandlerError> {
    ctx.live
        .holds
        .sync()
        .await
        .map_err(|e| HandlerError::Transient(e.to_string()))?;
    if let Some(h) = ctx.live.holds.get(&id) {
        return Ok(Some(to_doc(&h)?));
    }
    Ok(ctx
        .store
        .col(names::SEAT_HOLDS)
        .find_one(doc! {"_id": id})
        .await?)
}

/// The event's sale status from the live view; an event from before the status keys
/// existed gets its key written once from MongoDB. `None`: no such event.
async fn sale_status(ctx: &Ctx, event_id: ObjectId) -> Result<Option<String>, HandlerError> {
    if let Some(s) = ctx.live.locks.status(&event_id) {
        return Ok(Some(s));
    }
    let Some(facts) = ctx.seat_maps.facts(&ctx.store, event_id).await? else {
        return Ok(None);
    };
    // Created only if absent: the catalog's own write, if any, wins.
    ctx.locks
        .put_if_absent(&status_key(&event_id), &facts.status)
        .await?;
    ctx.live
        .locks
        .sync()
        .await
        .map_err(|e| HandlerError::Transient(e.to_string()))?;
    Ok(ctx.live.locks.status(&event_id))
}

pub async fn create(
    ctx: &Ctx,
    env: &CommandEnvelope,
    c: &CreateHold,
) -> Result<Reply, HandlerError> {
    let Some(issuer) = env.issuer.clone() else {
        return Ok(Reply::error(
            ErrorCode::Unauthorized,
            "sign in to hold seats",
        ));
    };
    if let Err(e) = check_hold_request(&c.seat_ids, ctx.cfg.max_seats_per_hold) {
        return Ok(Reply::error(ErrorCode::ValidationFailed, e.to_string()));
    }
    let hold_id = hold_id_for(env);
    // A redelivery after the hold was recorded: answer with it, take nothing again (the
    // hold may have been released since, and its seats are someone else's now).
    if let Some(existing) = ctx.live.holds.get(&hold_id) {
        let map = ctx.seat_maps.get(&ctx.store, c.event_id).await?;
        emit_created(ctx, env, &existing).await?;
        return Ok(Reply::ok(201, hold_json(&existing, &map)));
    }

    let Some(status) = sale_status(ctx, c.event_id).await? else {
        return Ok(Reply::error(ErrorCode::EventNotFound, "no such event"));
    };
    if status != "published" {
        return Ok(Reply::error(
            ErrorCode::EventNotOnSale,
            "the event is not on sale",
        ));
    }
    let over = ctx
        .seat_maps
        .facts(&ctx.store, c.event_id)
        .await?
        .and_then(|f| f.event_date)
        .is_some_and(|d| d.timestamp_millis() < Utc::now().timestamp_millis());
    if over {
        return Ok(Reply::error(ErrorCode::EventNotOnSale, "the event is over"));
    }
    let map = ctx.seat_maps.get(&ctx.store, c.event_id).await?;
    let unknown: Vec<String> = c
        .seat_ids
        .iter()
        .filter(|s| !map.contains_key(s))
        .map(|s| s.to_hex())
        .collect();
    if !unknown.is_empty() {
        return Ok(Reply::error_with(
            ErrorCode::SeatNotFound,
            "some seats are not seats of this event",
            json!({"seatIds": unknown}),
        ));
    }

    // Seats the live lock view shows taken by another are refused without a write: a
    // lock create that fails, and the give-back of the ones that succeeded, cost the
    // storm fsynced writes for nothing (about 40% of its requests are such conflicts).
    // The view may trail the stream, so a refusal is confirmed after a read barrier
    // (never a 409 for a seat freed before this command); a seat seen free is still
    // decided by the lock create below.
    if !taken_in_view(ctx, c, hold_id).is_empty() {
        ctx.live
            .locks
            .sync()
            .await
            .map_err(|e| HandlerError::Transient(e.to_string()))?;
        let taken = taken_in_view(ctx, c, hold_id);
        if !taken.is_empty() {
            return Ok(Reply::error_with(
                ErrorCode::SeatsUnavailable,
                "some of these seats are taken",
                json!({"seatIds": taken}),
            ));
        }
    }

    // All or none: take every lock at once, give back what we took if any is taken.
    let owner = hold_id.to_hex();
    let ttl = ctx.cfg.lock_ttl();
    let keys: Vec<String> = c
        .seat_ids
        .iter()
        .map(|s| lock_key(&c.event_id, s))
        .collect();
    let outcomes = join_all(keys.iter().map(|k| ctx.locks.acquire(k, &owner, ttl))).await;
    ctx.metrics.locks_taken(
        outcomes
            .iter()
            .filter(|o| matches!(o, Ok(Acquired::Taken(_))))
            .count(),
    );
    let mut taken_by_others = Vec::new();
    let mut failed = None;
    for (seat, o) in c.seat_ids.iter().zip(&outcomes) {
        match o {
            Ok(Acquired::Taken(_)) | Ok(Acquired::AlreadyOurs(_)) => {}
            Ok(Acquired::HeldByOther) => taken_by_others.push(seat.to_hex()),
            Err(e) => failed = Some(e.to_string()),
        }
    }
    if failed.is_some() || !taken_by_others.is_empty() {
        let ours: Vec<&String> = keys
            .iter()
            .zip(&outcomes)
            .filter(|(_, o)| matches!(o, Ok(Acquired::Taken(_)) | Ok(Acquired::AlreadyOurs(_))))
            .map(|(k, _)| k)
            .collect();
        let mut released = 0;
        for r in join_all(ours.iter().map(|k| ctx.locks.release(k, &owner))).await {
            match r {
                Ok(true) => released += 1,
                Ok(false) => {}
                // The lock's TTL frees it anyway.
                Err(e) => warn!(error = %e, "could not give back a seat lock"),
            }
        }
        ctx.metrics.locks_released("rollback", released);
        if let Some(e) = failed {
            return Err(HandlerError::Transient(format!("seat locks: {e}")));
        }
        return Ok(Reply::error_with(
            ErrorCode::SeatsUnavailable,
            "some of these seats are taken",
            json!({"seatIds": taken_by_others}),
        ));
    }

    // The event may have been cancelled while we took the locks. The status key and the
    // locks share one stream: once this view has applied our own lock writes, a status
    // written before them is visible here, and a cancellation written after them finds
    // our locks when it releases the event's holds.
    let newest = outcomes
        .iter()
        .filter_map(|o| match o {
            Ok(Acquired::Taken(r)) | Ok(Acquired::AlreadyOurs(r)) => Some(*r),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let still_on_sale = match ctx.live.locks.wait_for(newest).await {
        Ok(()) => ctx.live.locks.status(&c.event_id).as_deref() == Some("published"),
        Err(e) => {
            give_back(ctx, &keys, &owner).await;
            return Err(HandlerError::Transient(e.to_string()));
        }
    };
    if !still_on_sale {
        give_back(ctx, &keys, &owner).await;
        return Ok(Reply::error(
            ErrorCode::EventNotOnSale,
            "the event is not on sale",
        ));
    }

    let now = DateTime::now();
    let expires_at =
        DateTime::from_millis(now.timestamp_millis() + ctx.cfg.hold_ttl().as_millis() as i64);
    let prices: Vec<Money> = c.seat_ids.iter().map(|s| map[s].price).collect();
    let currency = prices[0].currency();
    let total = Money::sum(currency, &prices)
        .ok_or_else(|| HandlerError::Permanent("seat prices mix currencies".into()))?;
    let hold = SeatHold {
        id: hold_id,
        user_id: issuer.user_id,
        event_id: c.event_id,
        seat_ids: c.seat_ids.clone(),
        quantity: c.seat_ids.len() as i32,
        total_price: total,
        status: HoldStatus::Active,
        created_at: now,
        expires_at,
        converted_to_booking_id: None,
        command_id: env.id.clone(),
        updated_at: now,
    };
    // NOTE: no MongoDB write here: the event is the record; the projections write the
    // `seat_holds` and `seats` documents from it.
    emit_created(ctx, env, &hold).await?;
    Ok(Reply::ok(201, hold_json(&hold, &map)))
}

/// The requested seats the lock view shows locked by anything but this hold.
fn taken_in_view(ctx: &Ctx, c: &CreateHold, hold_id: ObjectId) -> Vec<String> {
    ctx.live.locks.with_event(&c.event_id, |locks| {
        c.seat_ids
            .iter()
            .filter(|s| {
                locks
                    .seats
                    .get(s)
                    .is_some_and(|l| *l != streams::live::locks::SeatLock::Held(hold_id))
            })
            .map(|s| s.to_hex())
            .collect()
    })
}

/// Gives back the locks of `keys` that `owner` holds (a hold that cannot go on).
async fn give_back(ctx: &Ctx, keys: &[String], owner: &str) {
    let mut released = 0;
    for r in join_all(keys.iter().map(|k| ctx.locks.release(k, owner))).await {
        match r {
            Ok(true) => released += 1,
            Ok(false) => {}
            // The lock's TTL frees it anyway.
            Err(e) => warn!(error = %e, "could not give back a seat lock"),
        }
    }
    ctx.metrics.locks_released("rollback", released);
}

async fn emit_created(
    ctx: &Ctx,
    env: &CommandEnvelope,
    hold: &SeatHold,
) -> Result<(), HandlerError> {
    let after = api_json(&to_doc(hold)?);
    let event = DomainEvent::HoldCreated(HoldCreated {
        hold_id: hold.id,
        event_id: hold.event_id,
        user_id: hold.user_id,
        seat_ids: hold.seat_ids.clone(),
        expires_at: hold.expires_at.to_chrono(),
        hold: hold.clone(),
    });
    ctx.emit(env, event, None, Some(after)).await
}

/// The hold as the API shows it, with each seat's row, number, section and price.
fn hold_json(hold: &SeatHold, map: &SeatMap) -> Value {
    let mut v = to_doc(hold).map(|d| api_json(&d)).unwrap_or(Value::Null);
    let seats: Vec<Value> = hold
        .seat_ids
        .iter()
        .map(|s| match map.get(s) {
            Some(i) => json!({"id": s.to_hex(), "row": i.row, "number": i.number, "section": i.section, "price": i.price}),
            None => json!({"id": s.to_hex()}),
        })
        .collect();
    v["seats"] = Value::Array(seats);
    v
}

/// Lets a hold go: by its owner (`DELETE /v1/holds/{id}`) or by the expiry worker.
///
/// Order matters for redelivery: seats back to `available`, then locks deleted, then the
/// hold's status. A crash anywhere leaves the hold `active`, so the next delivery (or the
/// expiry sweep) does the rest; every step is harmless to repeat.
pub async fn release(
    ctx: &Ctx,
    env: &CommandEnvelope,
    c: &ReleaseHold,
) -> Result<Reply, HandlerError> {
    let Some(hold) = find_hold(ctx, c.hold_id).await? else {
        return Ok(Reply::error(ErrorCode::HoldNotFound, "no such hold"));
    };
    let owner_id = hold.get_object_id("userId").ok();
    let allowed = match (&env.issuer, c.reason) {
        (Some(i), _) if i.role.is_admin() => true,
        (Some(i), ReleaseReason::Released) => Some(i.user_id) == owner_id,
        (None, ReleaseReason::Expired) => true,
        _ => false,
    };
    if !allowed {
        // Another user's hold answers as if it did not exist, so ids do not leak.
        return Ok(Reply::error(ErrorCode::HoldNotFound, "no such hold"));
    }
    let status = hold.get_str("status").unwrap_or_default();
    if status != HoldStatus::Active.as_str() {
        return Ok(match (c.reason, status) {
            (ReleaseReason::Released, "released") => Reply::ok(204, Value::Null),
            (ReleaseReason::Released, _) => {
                Reply::error(ErrorCode::HoldNotActive, format!("the hold is {status}"))
            }
            (ReleaseReason::Expired, _) => {
                Reply::ok(200, json!({"released": false, "status": status}))
            }
        });
    }
    let now = DateTime::now();
    if c.reason == ReleaseReason::Expired {
        let expires = hold
            .get_datetime("expiresAt")
            .map(|d| d.timestamp_millis())
            .unwrap_or(0);
        if expires > now.timestamp_millis() {
            // Not stored as a result (that would answer the real expiry later): retried.
            return Err(HandlerError::Transient("hold not yet expired".into()));
        }
    }
    let event_id = hold
        .get_object_id("eventId")
        .map_err(|e| HandlerError::Permanent(e.to_string()))?;
    let seat_ids: Vec<ObjectId> = hold
        .get_array("seatIds")
        .map(|a| a.iter().filter_map(|s| s.as_object_id()).collect())
        .unwrap_or_default();
    free_seats(ctx, event_id, &seat_ids, Owner::Hold(c.hold_id)).await?;
    let new_status = match c.reason {
        ReleaseReason::Released => HoldStatus::Released,
        ReleaseReason::Expired => HoldStatus::Expired,
    };
    // The hold's document follows from the event (the projection is its one writer).
    let ended = HoldEnded {
        hold_id: c.hold_id,
        event_id,
        seat_ids,
        user_id: owner_id,
    };
    let event = match c.reason {
        ReleaseReason::Released => DomainEvent::HoldReleased(ended),
        ReleaseReason::Expired => DomainEvent::HoldExpired(ended),
    };
    ctx.emit(
        env,
        event,
        Some(json!({"status": HoldStatus::Active.as_str()})),
        Some(json!({"status": new_status.as_str()})),
    )
    .await?;
    Ok(match c.reason {
        ReleaseReason::Released => Reply::ok(204, Value::Null),
        ReleaseReason::Expired => Reply::ok(
            200,
            json!({"released": true, "status": new_status.as_str()}),
        ),
    })
}
