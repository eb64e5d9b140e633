//! The analytics worker: a projection over EVENTS that keeps, per event and per period
//! (hourly, daily, weekly, monthly), every metric of the data model: total revenue,
//! occupancy rate, bookings, cancellations and refunds counts, average ticket price,
//! revenue by section, popular seats and refund rate.
//!
//! Idempotent by construction: each relevant domain event becomes one *fact* in
//! `analytics_facts` (`_id` derived from the domain event id, so a redelivery inserts
//! nothing), and the metrics of the events a batch touched are recomputed from all their
//! facts, under the event's analytics lease. Nothing is incremented.
//!
//! Rebuild (`RebuildAnalytics`, admin): drop the facts and the metrics, replay EVENTS from
//! the start with an ordered consumer, recompute. The live projection may run meanwhile:
//! its facts have the same ids, and the last recompute of an event reads every fact.
//!
//! NOTE: a sale's seat sections and prices are read from `booking_seats` and `seats`
//! when its fact is made: they never change after booking, so a replay derives the same
//! fact. Definitions: `total_revenue` is what was charged in the period less what was
//! refunded in it; `occupancy_rate` is the seats sold and not given back by the end of
//! the period over the capacity; `refund_rate` is refunds over confirmed bookings of the
//! period; `avg_ticket_price` is the seats' prices over the seats sold (rounded down).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use async_nats::jetstream::consumer::{self as js_consumer};
use bson::{doc, Bson, Document};
use chrono::Utc;
use domain::entities::analytics::{Analytics, BreakdownItem, Metric, MetricValue, Period};
use domain::ids::derive_object_id;
use domain::{Currency, DateTime, Money, ObjectId};
use futures::{StreamExt, TryStreamExt};
use serde_json::{json, Value};
use streams::codes::{ErrorCode, Reply};
use streams::commands::CommandEnvelope;
use streams::events::{DomainEvent, EventEnvelope};
use streams::setup;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::info;

use crate::app::consumer::{self, Spec};
use crate::app::context::{Ctx, HandlerError};
use crate::app::runtime::wire_config;
use crate::store::{api_json, is_duplicate_key, names, StoreError};

/// One fact per relevant domain event.
pub const FACTS: &str = "analytics_facts";
/// Seats listed in `popular_seats`.
const TOP_SEATS: usize = 10;

pub async fn start(
    ctx: &Ctx,
    tasks: &mut JoinSet<()>,
    stopped: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    ctx.store
        .col(FACTS)
        .create_index(
            mongodb::IndexModel::builder()
                .keys(doc! {"eventId": 1})
                .build(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("indexing {FACTS}: {e}"))?;
    let wire = wire_config(&ctx.cfg);
    let consumer = setup::ensure_projection_consumer(
        &ctx.js,
        &ctx.ns,
        "analytics",
        ctx.ns.all_events(),
        &wire,
    )
    .await
    .map_err(|e| anyhow::anyhow!("ensuring analytics consumer: {e}"))?;
    ctx.metrics.watch(&consumer);
    // Caught up: a pause after a short batch, so a storm is recomputed in large batches
    // (each recompute reads every fact of the show).
    let spec = Spec {
        pace: Some(Duration::from_secs(1)),
        ..Spec::new("analytics", 500)
    };
    tasks.spawn(consumer::batches(
        ctx.clone(),
        consumer,
        spec,
        stopped,
        consumer::json::<EventEnvelope>,
        |ctx, batch| {
            let (ctx, events) = (ctx.clone(), crate::projections::items(batch));
            async move { apply(&ctx, &events).await }
        },
    ));
    Ok(())
}

/// Records the facts of `events` and recomputes the metrics of the shows they touch.
async fn apply(ctx: &Ctx, events: &[EventEnvelope]) -> Result<(), HandlerError> {
    let mut touched = BTreeSet::new();
    for ev in events {
        if let Some(event_id) = record(ctx, ev).await? {
            touched.insert(event_id);
        }
    }
    for event_id in touched {
        recompute(ctx, event_id).await?;
    }
    Ok(())
}

/// The fact of one domain event, inserted once. Returns the show it belongs to.
async fn record(ctx: &Ctx, ev: &EventEnvelope) -> Result<Option<ObjectId>, HandlerError> {
    let at = DateTime::from_millis(ev.occurred_at.timestamp_millis());
    let id = derive_object_id("afact", &ev.id, ev.occurred_at.timestamp());
    let (event_id, facts) = match &ev.event {
        DomainEvent::BookingConfirmed(e) => (
            e.event_id,
            doc! {
                "kind": "sale", "bookingId": e.booking_id,
                "amountMinor": e.final_price.minor(), "currency": e.final_price.currency().as_str(),
                "seats": sale_seats(ctx, e.booking_id).await?,
            },
        ),
        DomainEvent::BookingCancelled(e) => (
            e.event_id,
            doc! {
                "kind": "cancellation", "bookingId": e.booking_id,
                "wasConfirmed": e.was_paid().unwrap_or(false), "seatCount": e.seat_ids.len() as i64,
            },
        ),
        DomainEvent::RefundProcessed(e) => (
            e.event_id,
            doc! {
                "kind": "refund", "amountMinor": e.refund_minor,
                "currency": e.currency.unwrap_or(Currency::USD).as_str(),
            },
        ),
        // Not a sale, a cancellation or a refund.
        DomainEvent::HoldCreated(_)
        | DomainEvent::HoldReleased(_)
        | DomainEvent::HoldExpired(_)
        | DomainEvent::HoldConverted(_)
        | DomainEvent::BookingCreated(_)
        | DomainEvent::BookingExpired(_)
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
        | DomainEvent::CommandRefused(_) => return Ok(None),
    };
    let mut fact = doc! {"_id": id, "eventId": event_id, "at": at, "domainEventId": &ev.id};
    fact.extend(facts);
    match ctx.store.col(FACTS).insert_one(fact).await {
        Ok(_) => {}
        Err(e) if is_duplicate_key(&e) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(Some(event_id))
}

/// The seats of a sale as its fact keeps them: label, section and price paid.
async fn sale_seats(ctx: &Ctx, booking_id: ObjectId) -> Result<Vec<Document>, HandlerError> {
    let booking_seats: Vec<Document> = ctx
        .store
        .col(names::BOOKING_SEATS)
        .find(doc! {"bookingId": booking_id})
        .await?
        .try_collect()
        .await?;
    let mut seats = Vec::new();
    for bs in &booking_seats {
        let seat_id = bs.get_object_id("seatId").unwrap_or_default();
        let seat = ctx
            .store
            .col(names::SEATS)
            .find_one(doc! {"_id": seat_id})
            .await?
            .unwrap_or_default();
        let number = match seat.get("number") {
            Some(Bson::Int32(n)) => n.to_string(),
            Some(Bson::Int64(n)) => n.to_string(),
            Some(Bson::String(s)) => s.clone(),
            _ => String::new(),
        };
        let price = bs
            .get_document("priceAtBooking")
            .ok()
            .and_then(|p| p.get_i64("amountMinor").ok())
            .unwrap_or(0);
        seats.push(doc! {
            "seatId": seat_id,
            "label": format!("{}{}", seat.get_str("row").unwrap_or_default(), number),
            "section": seat.get_str("section").unwrap_or_default(),
            "priceMinor": price,
        });
    }
    Ok(seats)
}

/// One fact, typed.
#[derive(Debug, Clone)]
struct Fact {
    kind: String,
    at: chrono::DateTime<Utc>,
    amount_minor: i64,
    currency: String,
    /// (label, section, price)
    seats: Vec<(String, String, i64)>,
    was_confirmed: bool,
    seat_count: i64,
}

fn fact_of(d: &Document) -> Fact {
    let seats = d
        .get_array("seats")
        .map(|a| {
            a.iter()
                .filter_map(Bson::as_document)
                .map(|s| {
                    (
                        s.get_str("label").unwrap_or_default().to_string(),
                        s.get_str("section").unwrap_or_default().to_string(),
                        s.get_i64("priceMinor").unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Fact {
        kind: d.get_str("kind").unwrap_or_default().to_string(),
        at: d
            .get_datetime("at")
            .map(|t| t.to_chrono())
            .unwrap_or_else(|_| Utc::now()),
        amount_minor: d.get_i64("amountMinor").unwrap_or(0),
        currency: d.get_str("currency").unwrap_or("USD").to_string(),
        seats,
        was_confirmed: d.get_bool("wasConfirmed").unwrap_or(false),
        seat_count: d.get_i64("seatCount").unwrap_or(0),
    }
}

/// The nine metrics of one period bucket, from every fact of the show.
fn metrics_of(
    facts: &[Fact],
    start: chrono::DateTime<Utc>,
    end: chrono::DateTime<Utc>,
    capacity: i64,
    currency: Currency,
) -> Vec<(Metric, MetricValue)> {
    let inside = |f: &&Fact| f.at >= start && f.at < end;
    let sales: Vec<&Fact> = facts
        .iter()
        .filter(|f| f.kind == "sale")
        .filter(inside)
        .collect();
    let refunds: Vec<&Fact> = facts
        .iter()
        .filter(|f| f.kind == "refund")
        .filter(inside)
        .collect();
    let cancellations = facts
        .iter()
        .filter(|f| f.kind == "cancellation")
        .filter(inside)
        .count() as i64;
    let gross: i64 = sales.iter().map(|f| f.amount_minor).sum();
    let refunded: i64 = refunds.iter().map(|f| f.amount_minor).sum();
    let tickets: i64 = sales.iter().map(|f| f.seats.len() as i64).sum();
    let seat_revenue: i64 = sales.iter().flat_map(|f| f.seats.iter().map(|s| s.2)).sum();
    let mut sections: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let mut seat_counts: HashMap<String, i64> = HashMap::new();
    for s in sales.iter().flat_map(|f| f.seats.iter()) {
        let e = sections.entry(s.1.clone()).or_default();
        e.0 += 1;
        e.1 += s.2;
        *seat_counts.entry(s.0.clone()).or_default() += 1;
    }
    let mut popular: Vec<(String, i64)> = seat_counts.into_iter().collect();
    popular.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    popular.truncate(TOP_SEATS);
    // Occupancy at the end of the period: seats sold so far less those given back.
    let sold_by_end: i64 = facts
        .iter()
        .filter(|f| f.at < end)
        .map(|f| match f.kind.as_str() {
            "sale" => f.seats.len() as i64,
            "cancellation" if f.was_confirmed => -f.seat_count,
            _ => 0,
        })
        .sum();
    let money = |m: i64| Money::from_minor(m, currency);
    vec![
        (
            Metric::TotalRevenue,
            MetricValue::Amount {
                amount: money(gross - refunded),
            },
        ),
        (
            Metric::OccupancyRate,
            MetricValue::Ratio {
                numerator: sold_by_end.max(0),
                denominator: capacity,
            },
        ),
        (
            Metric::BookingsCount,
            MetricValue::Count {
                count: sales.len() as i64,
            },
        ),
        (
            Metric::CancellationsCount,
            MetricValue::Count {
                count: cancellations,
            },
        ),
        (
            Metric::RefundsCount,
            MetricValue::Count {
                count: refunds.len() as i64,
            },
        ),
        (
            Metric::AvgTicketPrice,
            MetricValue::Amount {
                amount: money(if tickets > 0 {
                    seat_revenue / tickets
                } else {
                    0
                }),
            },
        ),
        (
            Metric::RevenueBySection,
            MetricValue::Breakdown {
                items: sections
                    .into_iter()
                    .map(|(key, (count, amount))| BreakdownItem {
                        key,
                        count,
                        amount: Some(money(amount)),
                    })
                    .collect(),
            },
        ),
        (
            Metric::PopularSeats,
            MetricValue::Breakdown {
                items: popular
                    .into_iter()
                    .map(|(key, count)| BreakdownItem {
                        key,
                        count,
                        amount: None,
                    })
                    .collect(),
            },
        ),
        (
            Metric::RefundRate,
            MetricValue::Ratio {
                numerator: refunds.len() as i64,
                denominator: sales.len() as i64,
            },
        ),
    ]
}

/// Recomputes every metric of one show from its facts, under its analytics lease.
pub async fn recompute(ctx: &Ctx, event_id: ObjectId) -> Result<(), HandlerError> {
    crate::store::leases::with_lease(ctx, names::ANALYTICS, event_id, || async {
        let facts: Vec<Fact> = ctx
            .store
            .col(FACTS)
            .find(doc! {"eventId": event_id})
            .await?
            .try_collect::<Vec<Document>>()
            .await?
            .iter()
            .map(fact_of)
            .collect();
        let event = ctx
            .store
            .col(names::EVENTS)
            .find_one(doc! {"_id": event_id})
            .await?
            .unwrap_or_default();
        let capacity = event
            .get_i64("totalCapacity")
            .or_else(|_| event.get_i32("totalCapacity").map(i64::from))
            .unwrap_or(0);
        let currency = facts
            .iter()
            .find(|f| f.kind == "sale")
            .and_then(|f| Currency::parse(&f.currency).ok())
            .unwrap_or(Currency::USD);
        let now = DateTime::now();
        let col = ctx.store.col(names::ANALYTICS);
        for &period in Period::ALL.iter() {
            let buckets: BTreeSet<_> = facts.iter().map(|f| period.bounds(f.at)).collect();
            for (start, end) in buckets {
                for (metric, value) in metrics_of(&facts, start, end, capacity, currency) {
                    let id = derive_object_id(
                        "analytics",
                        &format!(
                            "{}:{}:{}:{}",
                            event_id.to_hex(),
                            metric.as_str(),
                            period.as_str(),
                            start.timestamp()
                        ),
                        start.timestamp(),
                    );
                    let a = Analytics {
                        id,
                        event_id,
                        metric,
                        value,
                        period,
                        period_start: DateTime::from_chrono(start),
                        period_end: DateTime::from_chrono(end),
                        calculated_at: now,
                        updated_at: now,
                    };
                    let d = bson::to_document(&a)
                        .map_err(|e| HandlerError::Permanent(e.to_string()))?;
                    col.replace_one(doc! {"_id": id}, d).upsert(true).await?;
                }
            }
        }
        Ok(())
    })
    .await
}

/// `RebuildAnalytics` (admins): drop everything and replay EVENTS from the start.
pub async fn rebuild(ctx: &Ctx, env: &CommandEnvelope) -> Result<Reply, HandlerError> {
    if !env.issuer.as_ref().is_some_and(|i| i.role.is_admin()) {
        return Ok(Reply::error(ErrorCode::Forbidden, "admins only"));
    }
    let mut stream = ctx
        .js
        .get_stream(ctx.ns.events_stream())
        .await
        .map_err(|e| HandlerError::Transient(e.to_string()))?;
    let last = stream
        .info()
        .await
        .map_err(|e| HandlerError::Transient(e.to_string()))?
        .state
        .last_sequence;
    ctx.store.col(FACTS).delete_many(doc! {}).await?;
    ctx.store.col(names::ANALYTICS).delete_many(doc! {}).await?;
    let mut replayed = 0u64;
    let mut touched = BTreeSet::new();
    if last > 0 {
        let ordered = stream
            .create_consumer(js_consumer::pull::OrderedConfig {
                filter_subject: ctx.ns.all_events(),
                deliver_policy: js_consumer::DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .map_err(|e| HandlerError::Transient(e.to_string()))?;
        let mut messages = ordered
            .messages()
            .await
            .map_err(|e| HandlerError::Transient(e.to_string()))?;
        loop {
            let next = tokio::time::timeout(Duration::from_secs(10), messages.next()).await;
            let m = match next {
                Ok(Some(Ok(m))) => m,
                Ok(Some(Err(e))) => return Err(HandlerError::Transient(e.to_string())),
                Ok(None) | Err(_) => {
                    return Err(HandlerError::Transient("replay of EVENTS stalled".into()))
                }
            };
            let seq = m.info().map(|i| i.stream_sequence).unwrap_or(last);
            match serde_json::from_slice::<EventEnvelope>(&m.payload) {
                Ok(ev) => {
                    if let Some(event_id) = record(ctx, &ev).await? {
                        touched.insert(event_id);
                    }
                }
                // The live consumer dead-letters it; the rebuild goes on without it.
                Err(e) => {
                    tracing::warn!(seq, error = %e, "undecodable event skipped by the rebuild")
                }
            }
            replayed += 1;
            if seq >= last {
                break;
            }
        }
    }
    for event_id in &touched {
        recompute(ctx, *event_id).await?;
    }
    info!(replayed, events = touched.len(), "analytics rebuilt");
    Ok(Reply::ok(
        200,
        json!({"rebuilt": true, "replayedEvents": replayed, "shows": touched.len()}),
    ))
}

/// `GET /v1/events/{id}/analytics?period=`: the stored metrics, oldest period first.
pub async fn read(
    ctx: &Ctx,
    event_id: ObjectId,
    period: Option<&str>,
) -> Result<Reply, StoreError> {
    let period = match period.map(str::trim).filter(|p| !p.is_empty()) {
        None => Period::Daily,
        Some(p) => match Period::ALL.iter().copied().find(|x| x.as_str() == p) {
            Some(p) => p,
            None => {
                return Ok(Reply::error(
                    ErrorCode::ValidationFailed,
                    "period must be hourly, daily, weekly or monthly",
                ))
            }
        },
    };
    if ctx
        .store
        .col(names::EVENTS)
        .find_one(doc! {"_id": event_id})
        .await?
        .is_none()
    {
        return Ok(Reply::error(ErrorCode::EventNotFound, "no such event"));
    }
    let docs: Vec<Document> = ctx
        .store
        .col(names::ANALYTICS)
        .find(doc! {"eventId": event_id, "period": period.as_str()})
        .await?
        .try_collect()
        .await?;
    let mut buckets: BTreeMap<i64, (Value, Value, serde_json::Map<String, Value>)> =
        BTreeMap::new();
    for d in &docs {
        let start = d
            .get_datetime("periodStart")
            .map(|t| t.timestamp_millis())
            .unwrap_or(0);
        let v = api_json(d);
        let e = buckets.entry(start).or_insert_with(|| {
            (
                v["periodStart"].clone(),
                v["periodEnd"].clone(),
                serde_json::Map::new(),
            )
        });
        if let Some(m) = v["metric"].as_str() {
            e.2.insert(m.to_string(), v["value"].clone());
        }
    }
    let items: Vec<Value> = buckets
        .into_values()
        .map(|(s, e, m)| json!({"periodStart": s, "periodEnd": e, "metrics": m}))
        .collect();
    Ok(Reply::ok(
        200,
        json!({"eventId": event_id.to_hex(), "period": period.as_str(), "items": items}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn sale(at: i64, seats: &[(&str, &str, i64)]) -> Fact {
        Fact {
            kind: "sale".into(),
            at: Utc.timestamp_opt(at, 0).unwrap(),
            amount_minor: seats.iter().map(|s| s.2).sum(),
            currency: "USD".into(),
            seats: seats
                .iter()
                .map(|s| (s.0.into(), s.1.into(), s.2))
                .collect(),
            was_confirmed: false,
            seat_count: 0,
        }
    }

    #[test]
    fn metrics_net_refunds_and_count_occupancy_to_the_end_of_the_period() {
        let t0 = 1_900_000_000;
        let mut facts = vec![
            sale(t0, &[("A1", "Standard", 2500), ("A2", "Standard", 2500)]),
            sale(t0 + 60, &[("B1", "Premium", 5000)]),
        ];
        facts.push(Fact {
            kind: "cancellation".into(),
            was_confirmed: true,
            seat_count: 1,
            ..sale(t0 + 120, &[])
        });
        facts.push(Fact {
            kind: "refund".into(),
            amount_minor: 5000,
            ..sale(t0 + 120, &[])
        });
        let at = Utc.timestamp_opt(t0, 0).unwrap();
        let (s, e) = Period::Monthly.bounds(at);
        let m: HashMap<_, _> = metrics_of(&facts, s, e, 10, Currency::USD)
            .into_iter()
            .collect();
        assert_eq!(
            m[&Metric::TotalRevenue],
            MetricValue::Amount {
                amount: Money::from_minor(5000, Currency::USD)
            }
        );
        assert_eq!(m[&Metric::BookingsCount], MetricValue::Count { count: 2 });
        assert_eq!(
            m[&Metric::OccupancyRate],
            MetricValue::Ratio {
                numerator: 2,
                denominator: 10
            }
        );
        assert_eq!(
            m[&Metric::RefundRate],
            MetricValue::Ratio {
                numerator: 1,
                denominator: 2
            }
        );
        assert_eq!(
            m[&Metric::AvgTicketPrice],
            MetricValue::Amount {
                amount: Money::from_minor(3333, Currency::USD)
            }
        );
    }
}
