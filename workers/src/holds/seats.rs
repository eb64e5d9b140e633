//! Seat operations shared by the holds and bookings workers: who owns a seat's lock, and
//! putting seats back on sale.
//!
//! Lock values name the owner: a hold's id while held (`<holdId>`), `b:<bookingId>` while
//! a pending booking waits for payment, `s:<bookingId>` once sold (no TTL).

use domain::seat::lock_key;
use domain::ObjectId;
use futures::future::join_all;

use crate::app::context::{Ctx, HandlerError};

/// Who holds a seat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    Hold(ObjectId),
    Booking(ObjectId),
}

impl Owner {
    /// The lock values this owner may have written.
    pub(crate) fn lock_values(&self) -> Vec<String> {
        match self {
            Owner::Hold(h) => vec![h.to_hex()],
            Owner::Booking(b) => vec![pending_value(b), sold_value(b)],
        }
    }
}

pub(crate) fn pending_value(booking: &ObjectId) -> String {
    format!("b:{}", booking.to_hex())
}

pub(crate) fn sold_value(booking: &ObjectId) -> String {
    format!("s:{}", booking.to_hex())
}

/// Puts the seats back on sale where `owner` still owns their locks: compare-and-delete
/// on the revision it read. The seat documents follow from the domain event the caller
/// publishes (the seats projection is their one writer). Harmless to repeat.
pub(crate) async fn free_seats(
    ctx: &Ctx,
    event_id: ObjectId,
    seats: &[ObjectId],
    owner: Owner,
) -> Result<(), HandlerError> {
    let mut released = 0;
    let mut failed = None;
    for r in join_all(seats.iter().map(|s| free_seat(ctx, event_id, *s, owner))).await {
        match r {
            Ok(true) => released += 1,
            Ok(false) => {}
            Err(e) => failed = Some(e),
        }
    }
    ctx.metrics.locks_released("release", released);
    failed.map_or(Ok(()), Err)
}

async fn free_seat(
    ctx: &Ctx,
    event_id: ObjectId,
    seat: ObjectId,
    owner: Owner,
) -> Result<bool, HandlerError> {
    let key = lock_key(&event_id, &seat);
    let Some((current, rev)) = ctx.locks.owner(&key).await? else {
        return Ok(false);
    };
    if !owner.lock_values().contains(&current) {
        return Ok(false);
    }
    match ctx
        .locks
        .store()
        .delete_expect_revision(&key, Some(rev))
        .await
    {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == async_nats::jetstream::kv::DeleteErrorKind::WrongLastRevision => {
            Ok(false)
        }
        Err(e) => Err(HandlerError::Transient(format!(
            "releasing lock {key}: {e}"
        ))),
    }
}
