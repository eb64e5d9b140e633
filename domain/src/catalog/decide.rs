//! The decisions of the catalog worker (`workers/src/events/mod.rs`): who may manage
//! events, publishing a draft and cancelling an event. Parsing a new event's request
//! (`plan_seats`, `parse_date_time`) is in [`super::event`].

use bson::DateTime;

use super::event::{Event, EventStatus};
use crate::shared::actor::Actor;
use crate::Refusal;

/// Only admins manage events (`workers/src/events/mod.rs::require_admin`).
pub fn require_admin(issuer: Option<Actor>) -> Result<Actor, Refusal> {
    match issuer {
        Some(i) if i.is_admin() => Ok(i),
        Some(_) => Err(Refusal::Forbidden("only admins manage events")),
        None => Err(Refusal::Unauthorized("sign in first")),
    }
}

#[derive(Debug, Clone, PartialEq)]
// NOTE: a decision lives for one command and is matched at once; boxing its entity
// would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum PublishDecision {
    /// `draft -> published`: write it, open sales (the status key), record it.
    Publish(Event),
    /// Publishing twice is harmless: write the status key again, answer as it is.
    AlreadyPublished,
    Refuse(Refusal),
}

/// Applied by `workers/src/events/mod.rs::publish_event`.
pub fn decide_publish(
    issuer: Option<Actor>,
    event: Option<&Event>,
    now: DateTime,
) -> PublishDecision {
    if let Err(r) = require_admin(issuer) {
        return PublishDecision::Refuse(r);
    }
    let Some(e) = event else {
        return PublishDecision::Refuse(Refusal::EventNotFound);
    };
    match e.status {
        EventStatus::Published => PublishDecision::AlreadyPublished,
        s if s.can_become(EventStatus::Published) => {
            let mut after = e.clone();
            after.status = EventStatus::Published;
            after.published_at = Some(now);
            after.updated_at = now;
            PublishDecision::Publish(after)
        }
        s => PublishDecision::Refuse(Refusal::EventNotDraft(s)),
    }
}

#[derive(Debug, Clone, PartialEq)]
// NOTE: a decision lives for one command and is matched at once; boxing its entity
// would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum CancelEventDecision {
    /// Stop sales, then write `event` (`None`: cancelled before, nothing to write; the
    /// fan-out to its bookings and holds runs again either way).
    Cancel(Option<Event>),
    Refuse(Refusal),
}

/// Decides the checks of `workers/src/events/mod.rs::cancel_event`: a completed event
/// cannot be cancelled; a draft or published one is (`-> cancelled`).
pub fn decide_cancel_event(
    issuer: Option<Actor>,
    event: Option<&Event>,
    now: DateTime,
) -> CancelEventDecision {
    if let Err(r) = require_admin(issuer) {
        return CancelEventDecision::Refuse(r);
    }
    let Some(e) = event else {
        return CancelEventDecision::Refuse(Refusal::EventNotFound);
    };
    match e.status {
        EventStatus::Cancelled => CancelEventDecision::Cancel(None),
        s if s.can_become(EventStatus::Cancelled) => {
            let mut after = e.clone();
            after.status = EventStatus::Cancelled;
            after.cancelled_at = Some(now);
            after.updated_at = now;
            CancelEventDecision::Cancel(Some(after))
        }
        _ => CancelEventDecision::Refuse(Refusal::EventNotCancellable),
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
