//! The queries worker's event reads: one event (with a cancelled event's progress) and
//! the paged, filtered list of events.

use bson::{doc, Bson, Document};
use chrono::NaiveDate;
use domain::entities::booking::BookingStatus;
use domain::event::EventStatus;
use serde_json::{json, Value};
use streams::codes::{ErrorCode, Reply};
use streams::commands::Issuer;
use streams::queries::EventFilter;

use super::visible;
use crate::app::context::Ctx;
use crate::store::{api_json, names, paged, StoreError};

/// One event, for whoever may see it; a cancelled one carries its `cancellation`.
pub(super) async fn get_event(
    ctx: &Ctx,
    issuer: &Option<Issuer>,
    event_id: &domain::ObjectId,
) -> Result<Reply, StoreError> {
    let col = ctx.store.col(names::EVENTS);
    Ok(match col.find_one(doc! {"_id": event_id}).await? {
        Some(e) if visible(&e, issuer) => {
            let mut v = api_json(&e);
            if e.get_str("status").ok() == Some(EventStatus::Cancelled.as_str()) {
                v["cancellation"] = cancellation_progress(ctx, event_id).await?;
            }
            Reply::ok(200, v)
        }
        _ => Reply::error(ErrorCode::EventNotFound, "no such event"),
    })
}

/// A cancelled event's undoing: `{status: "processing"|"done", bookingsLeft}`, the
/// bookings still pending or confirmed (each gets its cancellation command, refunded in
/// full when paid). One equality count per status, the filters FerretDB pushes down.
async fn cancellation_progress(
    ctx: &Ctx,
    event_id: &domain::ObjectId,
) -> Result<Value, StoreError> {
    let bookings = ctx.store.col(names::BOOKINGS);
    let mut left = 0;
    for status in [
        BookingStatus::Pending,
        BookingStatus::Confirmed,
        BookingStatus::Completed,
    ] {
        left += bookings
            .count_documents(doc! {"eventId": event_id, "status": status.as_str()})
            .await?;
    }
    let status = if left == 0 { "done" } else { "processing" };
    Ok(json!({"status": status, "bookingsLeft": left}))
}

/// A case-insensitive regex matching `s` literally.
fn literal_regex(s: &str, whole: bool) -> Bson {
    let mut escaped = String::with_capacity(s.len());
    for ch in s.chars() {
        if "\\^$.|?*+()[]{}".contains(ch) {
            escaped.push('\\');
        }
        escaped.push(ch);
    }
    let pattern = if whole {
        format!("^{escaped}$")
    } else {
        escaped
    };
    Bson::RegularExpression(bson::Regex {
        pattern,
        options: "i".into(),
    })
}

/// A bound of the events list: an RFC 3339 time (what the gateway sends), or a plain date
/// meaning its first (`end` false) or last millisecond in UTC.
fn day_bound(s: &str, end: bool) -> Option<bson::DateTime> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(bson::DateTime::from_millis(t.timestamp_millis()));
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    let t = if end {
        d.and_hms_milli_opt(23, 59, 59, 999)?
    } else {
        d.and_hms_opt(0, 0, 0)?
    };
    Some(bson::DateTime::from_millis(t.and_utc().timestamp_millis()))
}

pub(super) async fn list_events(
    ctx: &Ctx,
    f: &EventFilter,
    admin: bool,
) -> Result<Reply, StoreError> {
    let mut filter = Document::new();
    if !(admin && f.include_drafts) {
        filter.insert("status", EventStatus::Published.as_str());
    }
    if let Some(c) = f.city.as_deref().filter(|c| !c.trim().is_empty()) {
        filter.insert("city", literal_regex(c.trim(), true));
    }
    if let Some(c) = f.category.as_deref().filter(|c| !c.trim().is_empty()) {
        filter.insert("category", c.trim().to_ascii_lowercase());
    }
    let mut date = Document::new();
    if let Some(from) = f.from.as_deref() {
        match day_bound(from, false) {
            Some(d) => date.insert("$gte", d),
            None => {
                return Ok(Reply::error(
                    ErrorCode::ValidationFailed,
                    "from must be an RFC 3339 time or a date like 2027-03-14",
                ))
            }
        };
    }
    if let Some(to) = f.to.as_deref() {
        match day_bound(to, true) {
            Some(d) => date.insert("$lte", d),
            None => {
                return Ok(Reply::error(
                    ErrorCode::ValidationFailed,
                    "to must be an RFC 3339 time or a date like 2027-03-14",
                ))
            }
        };
    }
    if !date.is_empty() {
        filter.insert("eventDate", date);
    }
    if let Some(q) = f.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        let r = literal_regex(q, false);
        filter.insert(
            "$or",
            vec![
                doc! {"name": r.clone()},
                doc! {"description": r.clone()},
                doc! {"venue": r.clone()},
                doc! {"city": r},
            ],
        );
    }
    let events = ctx.store.col(names::EVENTS);
    let body = paged(
        &events,
        filter,
        doc! {"eventDate": 1, "_id": 1},
        f.page,
        f.limit,
        api_json,
    )
    .await?;
    Ok(Reply::ok(200, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_bounds_are_days_or_rfc_3339_times() {
        let ms = |s: &str, end| day_bound(s, end).map(|d| d.timestamp_millis());
        assert_eq!(ms("1970-01-02", false), Some(86_400_000));
        assert_eq!(ms("1970-01-01", true), Some(86_399_999));
        assert_eq!(ms("1970-01-01T00:00:01.500Z", true), Some(1_500));
        assert_eq!(ms("1970-01-01T01:00:00+01:00", false), Some(0));
        assert_eq!(ms("soon", false), None);
    }
}
