//! The queries worker's booking reads: one booking with its seats and tickets status,
//! and the issuer's bookings, newest first.

use bson::doc;
use futures::TryStreamExt;
use serde_json::{json, Value};
use streams::codes::{ErrorCode, Reply};
use streams::commands::Issuer;

use super::owns;
use crate::app::context::Ctx;
use crate::store::{api_json, names, paged, StoreError};

/// One booking, for its owner (or an admin), with its `seats` and `ticketsStatus`.
pub(super) async fn get_booking(
    ctx: &Ctx,
    issuer: &Option<Issuer>,
    booking_id: &domain::ObjectId,
) -> Result<Reply, StoreError> {
    let col = |n| ctx.store.col(n);
    Ok(
        match col(names::BOOKINGS)
            .find_one(doc! {"_id": booking_id})
            .await?
        {
            Some(b) if owns(&b, issuer) => {
                let mut v = api_json(&b);
                let seats: Vec<Value> = col(names::BOOKING_SEATS)
                    .find(doc! {"bookingId": booking_id})
                    .await?
                    .map_ok(|d| api_json(&d))
                    .try_collect()
                    .await?;
                v["seats"] = Value::Array(seats);
                let issued = crate::queries::tickets::issued_count(ctx, &b).await?;
                v["ticketsStatus"] = json!(crate::queries::tickets::tickets_status(&b, issued));
                Reply::ok(200, v)
            }
            _ => Reply::error(ErrorCode::BookingNotFound, "no such booking"),
        },
    )
}

/// The issuer's bookings, newest first, one page of them.
pub(super) async fn my_bookings(
    ctx: &Ctx,
    issuer: &Option<Issuer>,
    page: u32,
    limit: u32,
) -> Result<Reply, StoreError> {
    let Some(i) = issuer else {
        return Ok(Reply::error(ErrorCode::Unauthorized, "sign in first"));
    };
    let body = paged(
        &ctx.store.col(names::BOOKINGS),
        doc! {"userId": i.user_id},
        doc! {"createdAt": -1, "_id": -1},
        page,
        limit,
        api_json,
    )
    .await?;
    Ok(Reply::ok(200, body))
}
