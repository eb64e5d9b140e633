//! The catalog worker: creates events with their seat maps, publishes them, and cancels
//! them (the cancellation in `cancel`).
//!
//! Ids derive from the command id (the event's) and from (event, row, number) (each
//! seat's), so a redelivered creation inserts nothing twice: seats go in first with an
//! unordered `insert_many` whose duplicate-key errors are the expected redelivery case,
//! then the event document, whose duplicate reads back the first result.

mod cancel;
pub(crate) mod seat_map;

use bson::{doc, Document};
use chrono::{NaiveDateTime, TimeZone, Utc};
use domain::catalog::decide::{self, PublishDecision};
use domain::event::{
    parse_date_time, plan_seats, required_text, CancellationPolicy, Event, EventStatus, Pricing,
    SeatPlan, SectionSummary,
};
use domain::events::{DomainEvent, EventCreated, EventStatusChanged};
use domain::ids::derive_object_id;
use domain::seat::{Accessibility, Seat, SeatStatus};
use domain::{Currency, DateTime, Money, ObjectId};
use serde_json::json;
use streams::codes::{ErrorCode, Reply};
use streams::commands::{CommandEnvelope, CreateEvent, EventRef};
use streams::live::locks::status_key;

pub(crate) use self::cancel::cancel_event;
use crate::app::context::{Ctx, HandlerError};
use crate::store::repo::Repo;
use crate::store::{api_json, is_duplicate_key, names, to_doc};

/// Seats per `insert_many` batch.
const SEAT_BATCH: usize = 1000;

fn require_admin(env: &CommandEnvelope) -> Option<Reply> {
    decide::require_admin(env.actor())
        .err()
        .map(|r| Reply::refused(&r))
}

/// The event, read only for an admin (anyone else is refused without a read).
async fn event_for_admin(
    ctx: &Ctx,
    env: &CommandEnvelope,
    id: ObjectId,
) -> Result<Option<Event>, HandlerError> {
    match decide::require_admin(env.actor()) {
        Ok(_) => Ok(Repo::<Event>::new(&ctx.store).get(id).await?),
        Err(_) => Ok(None),
    }
}

/// The id of a seat: stable for (event, row, number).
pub(crate) fn seat_id(event_id: &ObjectId, row: char, number: u32, unix_secs: i64) -> ObjectId {
    derive_object_id(
        "seat",
        &format!("{}:{row}:{number}", event_id.to_hex()),
        unix_secs,
    )
}

pub(crate) async fn create_event(
    ctx: &Ctx,
    env: &CommandEnvelope,
    c: &CreateEvent,
) -> Result<Reply, HandlerError> {
    if let Some(r) = require_admin(env) {
        return Ok(r);
    }
    let admin = env.issuer.as_ref().map(|i| i.user_id).unwrap_or_default();
    let p = match Creation::parse(c) {
        Ok(p) => p,
        Err(e) => return Ok(Reply::error(ErrorCode::ValidationFailed, e.to_string())),
    };
    let secs = env.issued_at.timestamp();
    let event_id = derive_object_id("event", &env.id, secs);
    let now = ctx.now_stored();
    insert_seats(ctx, &p.plan, event_id, secs, now).await?;
    let seats = p.plan.len();
    let event = p.into_event(c, event_id, admin, now)?;
    let mut d = to_doc(&event)?;
    d.insert("commandId", env.id.as_str());
    if let Some(first) = insert_event(ctx, &d, event_id).await? {
        return Ok(first);
    }
    // The sale status the hold path reads (from memory, see `streams::live::locks`).
    // Only if absent: a redelivery must not put a published event back to draft.
    ctx.locks
        .put_if_absent(&status_key(&event_id), EventStatus::Draft.as_str())
        .await?;
    let after = api_json(&d);
    ctx.emit(
        env,
        DomainEvent::EventCreated(EventCreated {
            event_id,
            seats: seats as u64,
        }),
        None,
        Some(after.clone()),
    )
    .await?;
    Ok(Reply::ok(201, after))
}

/// A creation request, checked: what the event and its seats are made from.
struct Creation {
    currency: Currency,
    starts: NaiveDateTime,
    plan: Vec<SeatPlan>,
    policy: CancellationPolicy,
    name: String,
    venue: String,
    city: String,
    country: String,
}

impl Creation {
    fn parse(c: &CreateEvent) -> Result<Self, domain::DomainError> {
        let currency = c.currency;
        let (date, time) = parse_date_time(&c.event_date, &c.event_time)?;
        let plan = plan_seats(&c.sections, currency)?;
        let policy = c.cancellation_policy.unwrap_or_default().check()?;
        let name = required_text("name", &c.name, 200)?;
        let venue = required_text("venue", &c.venue, 200)?;
        let city = required_text("city", &c.city, 100)?;
        let country = required_text("country", &c.country, 100)?;
        if c.description.chars().count() > 5000 {
            return Err(domain::DomainError::invalid(
                "description",
                "must be at most 5000 characters",
            ));
        }
        Ok(Creation {
            currency,
            starts: NaiveDateTime::new(date, time),
            plan,
            policy,
            name,
            venue,
            city,
            country,
        })
    }

    /// The event document, a draft, with its price range and section summaries.
    fn into_event(
        self,
        c: &CreateEvent,
        event_id: ObjectId,
        admin: ObjectId,
        now: DateTime,
    ) -> Result<Event, HandlerError> {
        let currency = self.currency;
        let plan = &self.plan;
        let min = plan.iter().map(|p| p.price.minor()).min().unwrap_or(0);
        let max = plan.iter().map(|p| p.price.minor()).max().unwrap_or(0);
        let mut sections: Vec<SectionSummary> = Vec::new();
        for s in &c.sections {
            let price = Money::from_decimal(s.price, currency).map_err(HandlerError::permanent)?;
            sections.push(SectionSummary {
                name: s.name.trim().to_string(),
                price,
                rows: s.rows.trim().to_string(),
                seats_per_row: s.seats_per_row,
            });
        }
        let event = Event {
            id: event_id,
            name: self.name,
            description: c.description.trim().to_string(),
            event_date: DateTime::from_chrono(Utc.from_utc_datetime(&self.starts)),
            event_time: c.event_time.trim().to_string(),
            venue: self.venue,
            city: self.city,
            country: self.country,
            category: c.category,
            total_capacity: plan.len() as i64,
            available_seats: plan.len() as i64,
            image_url: c.image_url.clone(),
            pricing: Pricing {
                min_price: Money::from_minor(min, currency),
                max_price: Money::from_minor(max, currency),
                currency,
            },
            sections,
            status: EventStatus::Draft,
            visibility: "public".into(),
            cancellation_policy: self.policy,
            created_by: admin,
            published_at: None,
            cancelled_at: None,
            created_at: now,
            updated_at: now,
        };
        Ok(event)
    }
}

/// Inserts the seats of `plan`; on a redelivery those of the first attempt are there.
async fn insert_seats(
    ctx: &Ctx,
    plan: &[SeatPlan],
    event_id: ObjectId,
    secs: i64,
    now: DateTime,
) -> Result<(), HandlerError> {
    let seats: Vec<Document> = plan
        .iter()
        .map(|p| {
            let seat = Seat {
                id: seat_id(&event_id, p.row, p.number, secs),
                event_id,
                row: p.row.to_string(),
                number: p.number as i32,
                section: p.section.clone(),
                price: p.price,
                accessibility: Accessibility::default(),
                status: SeatStatus::Available,
                held_by: None,
                held_until: None,
                hold_id: None,
                booked_by: None,
                booking_id: None,
                version: 0,
                created_at: now,
                updated_at: now,
            };
            to_doc(&seat)
        })
        .collect::<Result<_, _>>()?;
    let seats_col = ctx.store.col(names::SEATS);
    for chunk in seats.chunks(SEAT_BATCH) {
        match seats_col.insert_many(chunk).ordered(false).await {
            Ok(_) => {}
            // A redelivery: the seats of the first attempt are there already.
            Err(e) if is_duplicate_key(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Inserts the event document. On a redelivery: the reply with the first attempt's.
async fn insert_event(
    ctx: &Ctx,
    d: &Document,
    event_id: ObjectId,
) -> Result<Option<Reply>, HandlerError> {
    let events = ctx.store.col(names::EVENTS);
    match events.insert_one(d).await {
        Ok(_) => Ok(None),
        Err(e) if is_duplicate_key(&e) => {
            if let Some(first) = events.find_one(doc! {"_id": event_id}).await? {
                return Ok(Some(Reply::ok(201, api_json(&first))));
            }
            Err(HandlerError::Transient(
                "event insert reported a duplicate but the event is missing".into(),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn publish_event(
    ctx: &Ctx,
    env: &CommandEnvelope,
    c: &EventRef,
) -> Result<Reply, HandlerError> {
    let event = event_for_admin(ctx, env, c.event_id).await?;
    let after = match decide::decide_publish(env.actor(), event.as_ref(), ctx.now_stored()) {
        PublishDecision::Refuse(r) => return Ok(Reply::refused(&r)),
        // Publishing twice is harmless.
        PublishDecision::AlreadyPublished => {
            let published = EventStatus::Published.as_str();
            ctx.locks.put(&status_key(&c.event_id), published).await?;
            let shown = event
                .ok_or_else(|| HandlerError::Permanent("published without its event".into()))?;
            return Ok(Reply::ok(200, api_json(&to_doc(&shown)?)));
        }
        PublishDecision::Publish(after) => after,
    };
    let repo = Repo::<Event>::new(&ctx.store);
    crate::store::leases::with_lease(ctx, names::EVENTS, c.event_id, || async {
        let set = doc! {
            "status": after.status.as_str(), "publishedAt": after.published_at,
            "updatedAt": after.updated_at,
        };
        repo.patch(c.event_id, set).await?;
        Ok(())
    })
    .await?;
    // Sales open once the status key says so (the hold path reads only that).
    ctx.locks
        .put(&status_key(&c.event_id), after.status.as_str())
        .await?;
    ctx.emit(
        env,
        DomainEvent::EventPublished(EventStatusChanged {
            event_id: c.event_id,
            previous_status: event.map(|e| e.status),
        }),
        Some(json!({"status": EventStatus::Draft.as_str()})),
        Some(json!({"status": after.status.as_str()})),
    )
    .await?;
    Ok(Reply::ok(200, api_json(&to_doc(&after)?)))
}
