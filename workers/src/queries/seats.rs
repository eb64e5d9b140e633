//! The queries worker's seat maps: an event's seats with their live status, rendered
//! as JSON text from the seat catalog in memory and the lock view, never from MongoDB.

use bson::doc;
use streams::codes::{ErrorCode, Reply};
use streams::commands::Issuer;

use super::{is_admin, status_visible, visible};
use crate::app::context::Ctx;
use crate::store::{names, StoreError};

/// An event's seat map as JSON text, or why it is not shown.
pub(super) async fn seat_map(
    ctx: &Ctx,
    issuer: &Option<Issuer>,
    event_id: domain::ObjectId,
    section: &Option<String>,
    status: &Option<String>,
) -> Result<Result<bytes::Bytes, Reply>, StoreError> {
    ctx.live
        .locks
        .sync()
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    // The sale status beside the locks says whether the event exists and may be shown;
    // only an event older than those keys is looked up in MongoDB.
    let shown = match ctx.live.locks.status(&event_id) {
        Some(s) => status_visible(&s) || is_admin(issuer),
        None => ctx
            .store
            .col(names::EVENTS)
            .find_one(doc! {"_id": event_id})
            .await?
            .is_some_and(|e| visible(&e, issuer)),
    };
    if !shown {
        return Ok(Err(Reply::error(ErrorCode::EventNotFound, "no such event")));
    }
    Ok(Ok(live_seats(
        ctx,
        event_id,
        section.as_deref(),
        status.as_deref(),
    )
    .await?))
}

/// One seat as the seat map lists it.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct SeatItem<'a> {
    id: String,
    event_id: &'a str,
    row: &'a str,
    number: i32,
    section: &'a str,
    price: &'a domain::Money,
    status: &'a str,
}

#[derive(serde::Serialize)]
struct SeatList<'a> {
    total: usize,
    items: Vec<SeatItem<'a>>,
}

/// The seat map's body as JSON text, from the seat catalog in memory and the lock view
/// (synced by the caller): nothing is read from MongoDB once the catalog is loaded.
/// Renderings are shared by every read at the same lock-view version.
async fn live_seats(
    ctx: &Ctx,
    event_id: domain::ObjectId,
    section: Option<&str>,
    status: Option<&str>,
) -> Result<bytes::Bytes, StoreError> {
    let map = ctx.seat_maps.get(&ctx.store, event_id).await?;
    let key = (
        event_id,
        section.map(str::to_string),
        status.map(str::to_string),
    );
    let event_hex = event_id.to_hex();
    let (version, body) = ctx.live.locks.with_event(&event_id, |locks| {
        if let Some(b) = ctx.seat_maps.rendered(&key, locks.version) {
            return (locks.version, Ok((b, false)));
        }
        let mut seats: Vec<_> = map
            .iter()
            .filter(|(_, i)| section.is_none_or(|s| i.section == s))
            .collect();
        seats.sort_by(|a, b| (&a.1.row, a.1.number).cmp(&(&b.1.row, b.1.number)));
        let items: Vec<SeatItem> = seats
            .iter()
            .filter_map(|(id, i)| {
                let now = locks.seats.get(id).map_or("available", |l| l.api_status());
                if status.is_some_and(|s| s != now) {
                    return None;
                }
                Some(SeatItem {
                    id: id.to_hex(),
                    event_id: &event_hex,
                    row: &i.row,
                    number: i.number,
                    section: &i.section,
                    price: &i.price,
                    status: now,
                })
            })
            .collect();
        let list = SeatList {
            total: items.len(),
            items,
        };
        let rendered = serde_json::to_vec(&list).map(|b| (bytes::Bytes::from(b), true));
        (locks.version, rendered)
    });
    let (body, fresh) = body.map_err(|e| StoreError::Bson(e.to_string()))?;
    if fresh {
        ctx.seat_maps.keep_rendered(key, version, body.clone());
    }
    Ok(body)
}
