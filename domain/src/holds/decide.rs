//! The decisions of the holds worker (`workers/src/holds/mod.rs`): create a hold, release it.
//!
//! The seat locks in the KV bucket remain the guard against double selling: the create
//! decision is made on what the worker read (the live lock view after its read barrier),
//! the lock creates then confirm it ([`after_locks`]).

use std::collections::HashMap;

use bson::oid::ObjectId;
use bson::DateTime;

use super::hold::{check_hold_request, HoldStatus, SeatHold};
use crate::catalog::event::EventStatus;
use crate::shared::actor::Actor;
use crate::shared::money::Money;
use crate::{DomainError, Refusal};

/// What the worker knows when a hold is requested. Facts past the first decisive one may
/// be left at their default: a redelivery (`existing`) is answered before the rest is
/// looked at.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HoldFacts {
    /// The hold already recorded under this command's hold id (a redelivery).
    pub existing: Option<SeatHold>,
    /// The event's sale status; `None`: no such event.
    pub sale_status: Option<EventStatus>,
    pub event_date: Option<DateTime>,
    /// The event's seats and their prices.
    pub seat_prices: HashMap<ObjectId, Money>,
    /// Requested seats the lock view shows locked by anything but this hold (after the
    /// read barrier).
    pub taken: Vec<ObjectId>,
}

/// The create-hold command with what the worker adds to it.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateHold<'a> {
    pub hold_id: ObjectId,
    pub command_id: &'a str,
    pub event_id: ObjectId,
    pub seat_ids: &'a [ObjectId],
    pub max_seats: usize,
    /// How long a hold lasts, in milliseconds.
    pub ttl_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum HoldDecision {
    /// A redelivery: answer with the recorded hold, take nothing again.
    Replay(SeatHold),
    /// Take the seats' locks, then record this hold (`hold.created`).
    Create(SeatHold),
    Refuse(Refusal),
}

/// Applied by `workers/src/holds/mod.rs::create` up to the lock creates. `Err` is an
/// inconsistency of the stored data (the handler's permanent error).
pub fn decide_create(
    issuer: Option<Actor>,
    facts: &HoldFacts,
    cmd: &CreateHold<'_>,
    now: DateTime,
) -> Result<HoldDecision, DomainError> {
    let refuse = |r| Ok(HoldDecision::Refuse(r));
    let Some(issuer) = issuer else {
        return refuse(Refusal::Unauthorized("sign in to hold seats"));
    };
    if let Err(e) = check_hold_request(cmd.seat_ids, cmd.max_seats) {
        return refuse(Refusal::Invalid(e.to_string()));
    }
    if let Some(h) = &facts.existing {
        return Ok(HoldDecision::Replay(h.clone()));
    }
    match facts.sale_status {
        None => return refuse(Refusal::EventNotFound),
        Some(EventStatus::Published) => {}
        Some(_) => return refuse(Refusal::EventNotOnSale("the event is not on sale")),
    }
    if facts
        .event_date
        .is_some_and(|d| d.timestamp_millis() < now.timestamp_millis())
    {
        return refuse(Refusal::EventNotOnSale("the event is over"));
    }
    let unknown: Vec<ObjectId> = cmd
        .seat_ids
        .iter()
        .filter(|s| !facts.seat_prices.contains_key(s))
        .copied()
        .collect();
    if !unknown.is_empty() {
        return refuse(Refusal::SeatNotFound { seat_ids: unknown });
    }
    if !facts.taken.is_empty() {
        return refuse(Refusal::SeatsUnavailable {
            seat_ids: facts.taken.clone(),
        });
    }
    let prices: Vec<Money> = cmd.seat_ids.iter().map(|s| facts.seat_prices[s]).collect();
    let total = Money::sum(prices[0].currency(), &prices)
        .ok_or_else(|| DomainError::invalid("totalPrice", "seat prices mix currencies"))?;
    Ok(HoldDecision::Create(SeatHold {
        id: cmd.hold_id,
        user_id: issuer.user_id,
        event_id: cmd.event_id,
        seat_ids: cmd.seat_ids.to_vec(),
        quantity: cmd.seat_ids.len() as i32,
        total_price: total,
        status: HoldStatus::Active,
        created_at: now,
        expires_at: DateTime::from_millis(now.timestamp_millis() + cmd.ttl_ms),
        converted_to_booking_id: None,
        command_id: cmd.command_id.to_string(),
        updated_at: now,
    }))
}

/// After the lock creates: seats another holder won refuse the hold (its locks are given
/// back), and so does an event no longer on sale once the view has applied our locks.
pub fn after_locks(taken_by_others: Vec<ObjectId>, still_on_sale: bool) -> Result<(), Refusal> {
    if !taken_by_others.is_empty() {
        return Err(Refusal::SeatsUnavailable {
            seat_ids: taken_by_others,
        });
    }
    if !still_on_sale {
        return Err(Refusal::EventNotOnSale("the event is not on sale"));
    }
    Ok(())
}

/// Why a hold is let go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseReason {
    /// By its owner (`DELETE /v1/holds/{id}`).
    Released,
    /// By the expiry worker.
    Expired,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ReleaseDecision {
    /// Free the seats and locks, then record `hold.released` / `hold.expired`.
    Release {
        new_status: HoldStatus,
        event_id: ObjectId,
        seat_ids: Vec<ObjectId>,
        owner: ObjectId,
    },
    /// The owner released it before: answer 204 again.
    AlreadyReleased,
    /// The expiry worker found the hold ended already (200 `released: false`).
    AlreadyEnded(HoldStatus),
    /// The expiry came early: retry later (not stored as a result).
    NotYetExpired,
    Refuse(Refusal),
}

/// Applied by `workers/src/holds/mod.rs::release`.
pub fn decide_release(
    issuer: Option<Actor>,
    hold: Option<&SeatHold>,
    reason: ReleaseReason,
    now: DateTime,
) -> ReleaseDecision {
    let Some(hold) = hold else {
        return ReleaseDecision::Refuse(Refusal::HoldNotFound);
    };
    let allowed = match (issuer, reason) {
        (Some(i), _) if i.is_admin() => true,
        (Some(i), ReleaseReason::Released) => i.user_id == hold.user_id,
        (None, ReleaseReason::Expired) => true,
        _ => false,
    };
    if !allowed {
        // Another user's hold answers as if it did not exist, so ids do not leak.
        return ReleaseDecision::Refuse(Refusal::HoldNotFound);
    }
    let new_status = match reason {
        ReleaseReason::Released => HoldStatus::Released,
        ReleaseReason::Expired => HoldStatus::Expired,
    };
    if !hold.status.can_become(new_status) {
        return match (reason, hold.status) {
            (ReleaseReason::Released, HoldStatus::Released) => ReleaseDecision::AlreadyReleased,
            (ReleaseReason::Released, s) => ReleaseDecision::Refuse(Refusal::HoldNotActive(
                format!("the hold is {}", s.as_str()),
            )),
            (ReleaseReason::Expired, s) => ReleaseDecision::AlreadyEnded(s),
        };
    }
    if reason == ReleaseReason::Expired
        && hold.expires_at.timestamp_millis() > now.timestamp_millis()
    {
        return ReleaseDecision::NotYetExpired;
    }
    ReleaseDecision::Release {
        new_status,
        event_id: hold.event_id,
        seat_ids: hold.seat_ids.clone(),
        owner: hold.user_id,
    }
}
#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
