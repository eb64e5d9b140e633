//! The analytics read (`GET /v1/events/{id}/analytics?period=`): a show's stored
//! metrics of one period, grouped by bucket.

use std::collections::BTreeMap;

use bson::{doc, Document};
use domain::entities::analytics::Period;
use domain::ObjectId;
use futures::TryStreamExt;
use serde_json::{json, Value};
use streams::codes::{ErrorCode, Reply};

use crate::app::context::Ctx;
use crate::store::{api_json, names, StoreError};

/// `GET /v1/events/{id}/analytics?period=`: the stored metrics, oldest period first.
pub(crate) async fn read(
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
