//! The holds worker: takes seats for a user, all or none, and lets them go.
//!
//! The guard against double selling is the `seat-locks` KV bucket: a hold takes one key
//! per seat with an expected-last-sequence of 0 (create) and a TTL. MongoDB records the
//! outcome (seats `held` with owner and `version`, the `seat_holds` document) but never
//! decides it: FerretDB's conditional updates are not atomic under concurrency.
//!
//! Writes per successful hold of N seats: N KV creates, N seat updates by `_id`, one hold
//! insert, one domain event. A refused hold costs the creates it won plus their deletes.

use bson::{doc, Document};
use chrono::Utc;
use domain::hold::{check_hold_request, HoldStatus, SeatHold};
use domain::ids::derive_object_id;
use domain::seat::lock_key;
use domain::{DateTime, Money, ObjectId};
use futures::future::join_all;
use serde_json::{json, Value};
use streams::codes::{ErrorCode, Reply};
use streams::commands::{CommandEnvelope, CreateHold, ReleaseHold, ReleaseReason};
use streams::locks::Acquired;
use tracing::warn;

use crate::context::{Change, Ctx, HandlerError};
use crate::seatmap::SeatMap;
use crate::seatops::{free_seats, Owner};
use crate::store::batch::Inserted;
use crate::store::{api_json, names, to_doc};

/// The hold's id, derived from the command that creates it.
pub fn hold_id_for(env: &CommandEnvelope) -> ObjectId {
    derive_object_id("hold", &env.id, env.issued_at.timestamp())
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
    let holds = ctx.store.col(names::SEAT_HOLDS);
    let hold_id = hold_id_for(env);
    // A redelivery after the hold was stored: answer with it, take nothing again (the
    // hold may have been released since, and its seats are someone else's now).
    if let Some(existing) = holds.find_one(doc! {"_id": hold_id}).await? {
        let map = ctx.seat_maps.get(&ctx.store, c.event_id).await?;
        emit_created(ctx, env, &existing).await?;
        return Ok(Reply::ok(201, hold_json(&existing, &map)));
    }

    let Some(event) = ctx
        .store
        .col(names::EVENTS)
        .find_one(doc! {"_id": c.event_id})
        .await?
    else {
        return Ok(Reply::error(ErrorCode::EventNotFound, "no such event"));
    };
    if event.get_str("status").unwrap_or_default() != "published" {
        return Ok(Reply::error(
            ErrorCode::EventNotOnSale,
            "the event is not on sale",
        ));
    }
    if event
        .get_datetime("eventDate")
        .map(|d| d.timestamp_millis() < Utc::now().timestamp_millis())
        .unwrap_or(false)
    {
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

    // All or none: take every lock at once, give back what we took if any is taken.
    let owner = hold_id.to_hex();
    let ttl = ctx.cfg.lock_ttl();
    let keys: Vec<String> = c
        .seat_ids
        .iter()
        .map(|s| lock_key(&c.event_id, s))
        .collect();
    let outcomes = join_all(keys.iter().map(|k| ctx.locks.acquire(k, &owner, ttl))).await;
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
        for r in join_all(ours.iter().map(|k| ctx.locks.release(k, &owner))).await {
            if let Err(e) = r {
                // The lock's TTL frees it anyway.
                warn!(error = %e, "could not give back a seat lock");
            }
        }
        if let Some(e) = failed {
            return Err(HandlerError::Transient(format!("seat locks: {e}")));
        }
        return Ok(Reply::error_with(
            ErrorCode::SeatsUnavailable,
            "some of these seats are taken",
            json!({"seatIds": taken_by_others}),
        ));
    }

    let now = DateTime::now();
    let expires_at =
        DateTime::from_millis(now.timestamp_millis() + ctx.cfg.hold_ttl().as_millis() as i64);
    // NOTE: no seat document is written here: the seats projection applies
    // `hold.created` to them (one writer per seat document, batched, off this path).

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
    let d = to_doc(&hold)?;
    // Group-committed with the other handlers' holds (see store::batch).
    let stored = match ctx.hold_inserts.insert(d.clone()).await {
        Ok(Inserted::New) => d,
        Ok(Inserted::Duplicate) => {
            holds
                .find_one(doc! {"_id": hold_id})
                .await?
                .ok_or_else(|| {
                    HandlerError::Transient("hold reported duplicate but is missing".into())
                })?
        }
        Err(e) => return Err(HandlerError::Transient(format!("storing the hold: {e}"))),
    };
    emit_created(ctx, env, &stored).await?;
    Ok(Reply::ok(201, hold_json(&stored, &map)))
}

async fn emit_created(
    ctx: &Ctx,
    env: &CommandEnvelope,
    hold: &Document,
) -> Result<(), HandlerError> {
    let id = hold
        .get_object_id("_id")
        .map_err(|e| HandlerError::Permanent(e.to_string()))?;
    let event_id = hold.get_object_id("eventId").ok();
    let after = api_json(hold);
    ctx.emit(
        env,
        Change {
            kind: "hold.created",
            action: "hold_created",
            entity_type: "hold",
            entity_id: id,
            event_id,
            before: None,
            after: Some(after.clone()),
            data: json!({"seatIds": after["seatIds"], "expiresAt": after["expiresAt"], "userId": after["userId"]}),
        },
    )
    .await
}

/// The hold as the API shows it, with each seat's row, number, section and price.
fn hold_json(hold: &Document, map: &SeatMap) -> Value {
    let mut v = api_json(hold);
    let seats: Vec<Value> = hold
        .get_array("seatIds")
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_object_id())
                .map(|s| match map.get(&s) {
                    Some(i) => json!({"id": s.to_hex(), "row": i.row, "number": i.number, "section": i.section, "price": i.price}),
                    None => json!({"id": s.to_hex()}),
                })
                .collect()
        })
        .unwrap_or_default();
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
    let holds = ctx.store.col(names::SEAT_HOLDS);
    let Some(hold) = holds.find_one(doc! {"_id": c.hold_id}).await? else {
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
    holds
        .update_one(
            doc! {"_id": c.hold_id},
            doc! {"$set": {"status": new_status.as_str(), "updatedAt": now}},
        )
        .await?;
    let (kind, action) = match c.reason {
        ReleaseReason::Released => ("hold.released", "hold_released"),
        ReleaseReason::Expired => ("hold.expired", "hold_expired"),
    };
    ctx.emit(
        env,
        Change {
            kind,
            action,
            entity_type: "hold",
            entity_id: c.hold_id,
            event_id: Some(event_id),
            before: Some(json!({"status": "active"})),
            after: Some(json!({"status": new_status.as_str()})),
            data: json!({"seatIds": seat_ids.iter().map(|s| s.to_hex()).collect::<Vec<_>>(), "userId": owner_id.map(|o| o.to_hex())}),
        },
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
