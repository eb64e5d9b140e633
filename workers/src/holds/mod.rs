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

pub(crate) mod expiry;
pub(crate) mod seats;

use bson::Document;
use domain::event::EventStatus;
use domain::events::{DomainEvent, HoldCreated, HoldEnded};
use domain::hold::{check_hold_request, HoldStatus, SeatHold};
use domain::holds::decide::{self, HoldDecision, HoldFacts, ReleaseDecision};
use domain::ids::derive_object_id;
use domain::seat::lock_key;
use domain::{ObjectId, Refusal};
use futures::future::join_all;
use serde_json::{json, Value};
use streams::codes::Reply;
use streams::commands::{CommandEnvelope, CreateHold, ReleaseHold, ReleaseReason};
use streams::live::locks::status_key;
use streams::locks::Acquired;
use tracing::warn;

use crate::app::context::{Ctx, HandlerError};
use crate::events::seat_map::SeatMap;
use crate::holds::seats::{free_seats, Owner};
use crate::store::repo::Repo;
use crate::store::{api_json, to_doc};

/// The hold's id, derived from the command that creates it.
pub(crate) fn hold_id_for(env: &CommandEnvelope) -> ObjectId {
    derive_object_id("hold", &env.id, env.issued_at.timestamp())
}

/// A hold as it is now, for whoever must act on it: the live view after the read barrier
/// (so a hold answered a moment ago by any process is found), else MongoDB (holds older
/// than the view's reach).
pub(crate) async fn find_seat_hold(
    ctx: &Ctx,
    id: ObjectId,
) -> Result<Option<SeatHold>, HandlerError> {
    ctx.live
        .holds
        .sync()
        .await
        .map_err(|e| HandlerError::Transient(e.to_string()))?;
    if let Some(h) = ctx.live.holds.get(&id) {
        return Ok(Some(h));
    }
    Ok(Repo::<SeatHold>::new(&ctx.store).get(id).await?)
}

/// [`find_seat_hold`] as the stored document.
pub(crate) async fn find_hold(ctx: &Ctx, id: ObjectId) -> Result<Option<Document>, HandlerError> {
    match find_seat_hold(ctx, id).await? {
        Some(h) => Ok(Some(to_doc(&h)?)),
        None => Ok(None),
    }
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

/// What the create decision rests on, read from memory: the event's sale status and date,
/// the requested seats' prices, and the requested seats the lock view shows taken.
///
/// Seats the view shows taken by another are refused without a write: a lock create
/// that fails, and the give-back of the ones that succeeded, cost the storm fsynced writes
/// for nothing (about 40% of its requests are such conflicts). The view may trail the
/// stream, so a seat seen taken is confirmed after a read barrier (never a 409 for a seat
/// freed before this command); a seat seen free is still decided by the lock create.
/// The seat map is read only for an event on sale (`None` otherwise).
async fn hold_facts(
    ctx: &Ctx,
    c: &CreateHold,
    hold_id: ObjectId,
) -> Result<(HoldFacts, Option<SeatMap>), HandlerError> {
    let Some(status) = sale_status(ctx, c.event_id).await? else {
        return Ok((HoldFacts::default(), None));
    };
    let status = EventStatus::parse(&status).ok_or_else(|| {
        HandlerError::Permanent(format!("event {} has status {status:?}", c.event_id))
    })?;
    if status != EventStatus::Published {
        let facts = HoldFacts {
            sale_status: Some(status),
            ..HoldFacts::default()
        };
        return Ok((facts, None));
    }
    let event_date = ctx
        .seat_maps
        .facts(&ctx.store, c.event_id)
        .await?
        .and_then(|f| f.event_date);
    let map = ctx.seat_maps.get(&ctx.store, c.event_id).await?;
    let seat_prices = c
        .seat_ids
        .iter()
        .filter_map(|s| map.get(s).map(|i| (*s, i.price)))
        .collect();
    let mut taken = taken_in_view(ctx, c, hold_id);
    if !taken.is_empty() {
        ctx.live
            .locks
            .sync()
            .await
            .map_err(|e| HandlerError::Transient(e.to_string()))?;
        taken = taken_in_view(ctx, c, hold_id);
    }
    let facts = HoldFacts {
        existing: None,
        sale_status: Some(status),
        event_date,
        seat_prices,
        taken,
    };
    Ok((facts, Some(map)))
}

pub(crate) async fn create(
    ctx: &Ctx,
    env: &CommandEnvelope,
    c: &CreateHold,
) -> Result<Reply, HandlerError> {
    let hold_id = hold_id_for(env);
    let cmd = decide::CreateHold {
        hold_id,
        command_id: &env.id,
        event_id: c.event_id,
        seat_ids: &c.seat_ids,
        max_seats: ctx.cfg.max_seats_per_hold,
        ttl_ms: ctx.cfg.hold_ttl().as_millis() as i64,
    };
    // A redelivery after the hold was recorded is answered with it, and takes nothing
    // again (the hold may have been released since, its seats someone else's now).
    let existing = ctx.live.holds.get(&hold_id);
    let (facts, map) = match existing {
        Some(_) => {
            let facts = HoldFacts {
                existing,
                ..HoldFacts::default()
            };
            (facts, None)
        }
        // Refused on the command alone: nothing is read.
        None if env.issuer.is_none() || check_hold_request(&c.seat_ids, cmd.max_seats).is_err() => {
            (HoldFacts::default(), None)
        }
        None => hold_facts(ctx, c, hold_id).await?,
    };
    let decision = decide::decide_create(env.actor(), &facts, &cmd, ctx.now_stored())
        .map_err(HandlerError::permanent)?;
    let hold = match decision {
        HoldDecision::Refuse(r) => {
            // A redelivery may find locks its first delivery took before it died (the
            // rest of its seats taken by others since): they go back with the refusal.
            let left = locked_by(ctx, c, hold_id);
            if !left.is_empty() {
                let keys: Vec<String> = left.iter().map(|s| lock_key(&c.event_id, s)).collect();
                give_back(ctx, &keys, &hold_id.to_hex()).await;
            }
            return Ok(Reply::refused(&r));
        }
        HoldDecision::Replay(existing) => {
            let map = ctx.seat_maps.get(&ctx.store, c.event_id).await?;
            emit_created(ctx, env, &existing).await?;
            return Ok(Reply::ok(201, hold_json(&existing, &map)));
        }
        HoldDecision::Create(hold) => hold,
    };
    let map =
        map.ok_or_else(|| HandlerError::Permanent("a hold decided without its seats".into()))?;
    if let Err(r) = take_locks(ctx, &hold).await? {
        return Ok(Reply::refused(&r));
    }
    // NOTE: no MongoDB write here: the event is the record; the projections write the
    // `seat_holds` and `seats` documents from it.
    emit_created(ctx, env, &hold).await?;
    Ok(Reply::ok(201, hold_json(&hold, &map)))
}

/// All or none: takes every seat's lock at once, and gives back what it took if any is
/// taken or the event went off sale meanwhile. `Ok(Err(_))`: refused, nothing kept.
async fn take_locks(ctx: &Ctx, hold: &SeatHold) -> Result<Result<(), Refusal>, HandlerError> {
    let owner = hold.id.to_hex();
    let ttl = ctx.cfg.lock_ttl();
    let keys: Vec<String> = hold
        .seat_ids
        .iter()
        .map(|s| lock_key(&hold.event_id, s))
        .collect();
    let outcomes = join_all(keys.iter().map(|k| ctx.locks.acquire(k, &owner, ttl))).await;
    ctx.metrics.locks_taken(
        outcomes
            .iter()
            .filter(|o| matches!(o, Ok(Acquired::Taken(_))))
            .count(),
    );
    let mut taken_by_others = Vec::new();
    let mut ours = Vec::new();
    let mut failed = None;
    let mut newest = 0;
    for ((seat, key), o) in hold.seat_ids.iter().zip(&keys).zip(&outcomes) {
        match o {
            Ok(Acquired::Taken(r)) | Ok(Acquired::AlreadyOurs(r)) => {
                newest = newest.max(*r);
                ours.push(key.clone());
            }
            Ok(Acquired::HeldByOther) => taken_by_others.push(*seat),
            Err(e) => failed = Some(e.to_string()),
        }
    }
    if let Some(e) = failed {
        give_back(ctx, &ours, &owner).await;
        return Err(HandlerError::Transient(format!("seat locks: {e}")));
    }
    // The event may have been cancelled while we took the locks. The status key and the
    // locks share one stream: once this view has applied our own lock writes, a status
    // written before them is visible here, and a cancellation written after them finds
    // our locks when it releases the event's holds.
    let still_on_sale = taken_by_others.is_empty() && {
        if let Err(e) = ctx.live.locks.wait_for(newest).await {
            give_back(ctx, &ours, &owner).await;
            return Err(HandlerError::Transient(e.to_string()));
        }
        ctx.live.locks.status(&hold.event_id).as_deref() == Some(EventStatus::Published.as_str())
    };
    let verdict = decide::after_locks(taken_by_others, still_on_sale);
    if verdict.is_err() {
        give_back(ctx, &ours, &owner).await;
    }
    Ok(verdict)
}

/// The requested seats the lock view shows locked by anything but this hold.
fn taken_in_view(ctx: &Ctx, c: &CreateHold, hold_id: ObjectId) -> Vec<ObjectId> {
    ctx.live.locks.with_event(&c.event_id, |locks| {
        c.seat_ids
            .iter()
            .filter(|s| {
                locks
                    .seats
                    .get(s)
                    .is_some_and(|l| *l != streams::live::locks::SeatLock::Held(hold_id))
            })
            .copied()
            .collect()
    })
}

/// The requested seats the lock view shows held by this hold.
fn locked_by(ctx: &Ctx, c: &CreateHold, hold_id: ObjectId) -> Vec<ObjectId> {
    ctx.live.locks.with_event(&c.event_id, |locks| {
        c.seat_ids
            .iter()
            .filter(|s| locks.seats.get(s) == Some(&streams::live::locks::SeatLock::Held(hold_id)))
            .copied()
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
pub(crate) async fn release(
    ctx: &Ctx,
    env: &CommandEnvelope,
    c: &ReleaseHold,
) -> Result<Reply, HandlerError> {
    let hold = find_seat_hold(ctx, c.hold_id).await?;
    let decision = decide::decide_release(
        env.actor(),
        hold.as_ref(),
        c.reason.into(),
        ctx.now_stored(),
    );
    let (new_status, event_id, seat_ids, owner) = match decision {
        ReleaseDecision::Refuse(r) => return Ok(Reply::refused(&r)),
        ReleaseDecision::AlreadyReleased => return Ok(Reply::ok(204, Value::Null)),
        ReleaseDecision::AlreadyEnded(status) => {
            return Ok(Reply::ok(
                200,
                json!({"released": false, "status": status.as_str()}),
            ))
        }
        // Not stored as a result (that would answer the real expiry later): retried.
        ReleaseDecision::NotYetExpired => {
            return Err(HandlerError::Transient("hold not yet expired".into()))
        }
        ReleaseDecision::Release {
            new_status,
            event_id,
            seat_ids,
            owner,
        } => (new_status, event_id, seat_ids, owner),
    };
    free_seats(ctx, event_id, &seat_ids, Owner::Hold(c.hold_id)).await?;
    // The hold's document follows from the event (the projection is its one writer).
    let ended = HoldEnded {
        hold_id: c.hold_id,
        event_id,
        seat_ids,
        user_id: Some(owner),
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
