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

mod facts;
mod metrics;
mod reads;
mod rebuild;

use std::collections::BTreeSet;
use std::time::Duration;

use bson::{doc, Document};
use domain::entities::analytics::{Analytics, Period};
use domain::ids::derive_object_id;
use domain::{Currency, DateTime, ObjectId};
use futures::TryStreamExt;
use streams::events::EventEnvelope;
use streams::setup;
use tokio::sync::watch;
use tokio::task::JoinSet;

use self::facts::{fact_of, record, Fact};
use self::metrics::metrics_of;
pub(crate) use self::reads::read;
pub(crate) use self::rebuild::rebuild;
use crate::app::consumer::{self, Spec};
use crate::app::context::{Ctx, HandlerError};
use crate::app::runtime::wire_config;
use crate::store::names;

/// One fact per relevant domain event.
pub(crate) const FACTS: &str = "analytics_facts";

pub(crate) async fn start(
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

/// Recomputes every metric of one show from its facts, under its analytics lease.
pub(crate) async fn recompute(ctx: &Ctx, event_id: ObjectId) -> Result<(), HandlerError> {
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
        let now = ctx.now_stored();
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
                    let d = bson::to_document(&a).map_err(HandlerError::permanent)?;
                    col.replace_one(doc! {"_id": id}, d).upsert(true).await?;
                }
            }
        }
        Ok(())
    })
    .await
}
