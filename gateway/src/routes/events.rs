//! Events: create and publish (admins), list, read and browse seats (anyone).
//!
//! A creation request is checked here with the domain's own rules (dates, seat map,
//! currency, policy) so bad input is refused before it reaches NATS; the catalog worker
//! checks again.

use std::str::FromStr;

use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use chrono::SecondsFormat;
use domain::event::{
    parse_date_time, plan_seats, required_text, CancellationPolicy, Category, SectionSpec,
};
use domain::seat::SeatStatus;
use domain::Currency;
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use streams::commands::{Command, CreateEvent, EventRef};
use streams::queries::{EventFilter, Query};
use utoipa::{IntoParams, ToSchema};

use super::{ask, ask_raw, non_blank, one_of, page_and_limit};
use crate::auth::AuthUser;
use crate::commands::{self, Origin};
use crate::error::ApiError;
use crate::extract::{
    date_or_time, DayEdge, IdPath, IdempotencyKey, Json, QueryParams, RequestMeta,
};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/events", post(create).get(list))
        .route("/v1/events/{id}", get(read))
        .route("/v1/events/{id}/publish", post(publish))
        .route("/v1/events/{id}/seats", get(seats))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateEventRequest {
    /// 1 to 200 characters, not blank.
    #[schema(
        example = "Fado Night",
        min_length = 1,
        max_length = 200,
        pattern = "[^\\t-\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]"
    )]
    pub name: String,
    /// Up to 5000 characters; may be empty.
    #[schema(max_length = 5000)]
    pub description: String,
    /// The event's day at the venue: `YYYY-MM-DD`, or an RFC 3339 time whose date (at its
    /// own offset) is that day; the time of day is `eventTime`.
    #[schema(value_type = crate::openapi::params::DateOrTime, example = "2030-05-01")]
    pub event_date: String,
    /// `HH:MM`, 24-hour, local to the venue.
    #[schema(
        example = "19:30",
        pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]",
        min_length = 5,
        max_length = 5
    )]
    pub event_time: String,
    /// 1 to 200 characters, not blank.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "[^\\t-\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]"
    )]
    pub venue: String,
    /// 1 to 100 characters, not blank.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "[^\\t-\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]"
    )]
    pub city: String,
    /// 1 to 100 characters, not blank.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "[^\\t-\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]"
    )]
    pub country: String,
    /// concert, theater, sports, comedy or other (any case).
    #[schema(example = "concert")]
    pub category: String,
    /// ISO 4217 code, three capital letters; USD when absent.
    #[schema(example = "EUR", pattern = "^[A-Z]{3}", min_length = 3, max_length = 3)]
    pub currency: Option<String>,
    /// An http(s) URL of at most 2048 characters.
    #[schema(pattern = "^https?://", max_length = 2048)]
    pub image_url: Option<String>,
    /// At least one; no row in two sections.
    #[schema(min_items = 1)]
    pub sections: Vec<SectionRequest>,
    pub cancellation_policy: Option<PolicyRequest>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SectionRequest {
    /// 1 to 50 characters, not blank.
    #[schema(
        example = "Premium",
        min_length = 1,
        max_length = 50,
        pattern = "[^\\t-\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]"
    )]
    pub name: String,
    /// Price of each seat in major units, a string or a number with at most two
    /// decimals.
    #[serde(deserialize_with = "decimal_from_string_or_number")]
    #[schema(value_type = String, example = "120.50")]
    pub price: Decimal,
    /// A letter or a range of letters.
    #[schema(example = "A-J")]
    pub rows: String,
    #[schema(example = 20, minimum = 1, maximum = 500)]
    pub seats_per_row: u32,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyRequest {
    /// Days before the event until which a booking may be cancelled, 0 to 3650.
    #[schema(maximum = 3650)]
    pub days_before_cancellation: u32,
    /// 0 to 100.
    #[schema(maximum = 100)]
    pub refund_percentage: u32,
}

fn decimal_from_string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    let text = match Value::deserialize(d)? {
        Value::String(s) => s,
        Value::Number(n) => n.to_string(),
        _ => {
            return Err(serde::de::Error::custom(
                "price must be a decimal number such as \"49.99\"",
            ))
        }
    };
    Decimal::from_str(text.trim())
        .or_else(|_| Decimal::from_scientific(text.trim()))
        .map_err(|_| serde::de::Error::custom("price must be a decimal number such as \"49.99\""))
}

fn parse_category(s: &str) -> Result<Category, ApiError> {
    serde_json::from_value(Value::String(s.trim().to_ascii_lowercase())).map_err(|_| {
        ApiError::validation("category: must be one of concert, theater, sports, comedy, other")
    })
}

/// Checks a creation request with the domain's rules and builds the command.
/// A required text field: at most `max` characters as sent, not blank; trimmed.
fn text(field: &'static str, v: &str, max: usize) -> Result<String, ApiError> {
    if v.chars().count() > max {
        return Err(ApiError::validation(format!(
            "{field}: must be 1 to {max} characters"
        )));
    }
    Ok(required_text(field, v, max)?)
}

/// The event's day: `YYYY-MM-DD`, or the date (at its own offset) of an RFC 3339 time.
fn event_day(v: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(v) {
        Ok(t) => t.date_naive().format("%Y-%m-%d").to_string(),
        Err(_) => v.to_string(),
    }
}

fn create_command(b: CreateEventRequest) -> Result<CreateEvent, ApiError> {
    let name = text("name", &b.name, 200)?;
    if b.description.chars().count() > 5000 {
        return Err(ApiError::validation(
            "description: must be at most 5000 characters",
        ));
    }
    if b.event_time.len() != 5 {
        return Err(ApiError::validation("eventTime: must be a time like 19:30"));
    }
    let (date, time) = parse_date_time(&event_day(&b.event_date), &b.event_time)?;
    let venue = text("venue", &b.venue, 200)?;
    let city = text("city", &b.city, 100)?;
    let country = text("country", &b.country, 100)?;
    let category = parse_category(&b.category)?;
    let currency = Currency::parse(b.currency.as_deref().unwrap_or("USD"))?;
    let image_url = b.image_url;
    if let Some(u) = &image_url {
        if u.len() > 2048 || !(u.starts_with("https://") || u.starts_with("http://")) {
            return Err(ApiError::validation(
                "imageUrl: must be an http(s) URL of at most 2048 characters",
            ));
        }
    }
    let sections: Vec<SectionSpec> = b
        .sections
        .into_iter()
        .map(|s| SectionSpec {
            name: if s.name.chars().count() > 50 {
                // Over the limit as sent: refused by plan_seats below.
                "x".repeat(51)
            } else {
                s.name.trim().to_string()
            },
            price: s.price,
            rows: s.rows.trim().to_string(),
            seats_per_row: s.seats_per_row,
        })
        .collect();
    plan_seats(&sections, currency)?;
    let cancellation_policy = b
        .cancellation_policy
        .map(|p| {
            CancellationPolicy {
                days_before_cancellation: p.days_before_cancellation,
                refund_percentage: p.refund_percentage,
            }
            .check()
        })
        .transpose()?;
    Ok(CreateEvent {
        name,
        description: b.description.trim().to_string(),
        event_date: date.format("%Y-%m-%d").to_string(),
        event_time: time.format("%H:%M").to_string(),
        venue,
        city,
        country,
        category,
        currency,
        image_url,
        sections,
        cancellation_policy,
    })
}

/// Create an event (`draft`) with its seats.
#[utoipa::path(
    post, path = "/v1/events", tag = "events",
    security(("bearer" = [])),
    request_body = CreateEventRequest,
    params(("Idempotency-Key" = Option<crate::openapi::params::IdempotencyKey>, Header, description = "Retries with the same key return the first result")),
    responses(
        (status = 201, description = "The event, `draft`", body = crate::openapi::schemas::Event),
        (status = 202, description = "Accepted, still in flight", body = crate::openapi::PendingCommand),
        (status = 400, description = "`invalid_json`, `validation_failed`", body = crate::openapi::ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_token`, `token_expired`", body = crate::openapi::ErrorBody),
        (status = 403, description = "`forbidden`: admins only", body = crate::openapi::ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    key: IdempotencyKey,
    meta: RequestMeta,
    Json(body): Json<CreateEventRequest>,
) -> Result<Response, ApiError> {
    user.require_admin()?;
    let command = create_command(body)?;
    commands::send(
        &state,
        Origin::user(&user, key, meta),
        Command::CreateEvent(command),
    )
    .await
}

/// Put a draft event on sale.
#[utoipa::path(
    post, path = "/v1/events/{id}/publish", tag = "events",
    security(("bearer" = [])),
    params(
        ("id" = crate::openapi::params::ObjectId, Path, description = "Event id"),
        ("Idempotency-Key" = Option<crate::openapi::params::IdempotencyKey>, Header, description = "Retries with the same key return the first result"),
    ),
    responses(
        (status = 200, description = "The event, `published` (also when it already was, for a retried command)", body = crate::openapi::schemas::Event),
        (status = 202, description = "Accepted, still in flight", body = crate::openapi::PendingCommand),
        (status = 400, description = "`invalid_id`", body = crate::openapi::ErrorBody),
        (status = 403, description = "`forbidden`: admins only", body = crate::openapi::ErrorBody),
        (status = 404, description = "`event_not_found`", body = crate::openapi::ErrorBody),
        (status = 409, description = "`event_not_draft`", body = crate::openapi::ErrorBody),
    )
)]
pub async fn publish(
    State(state): State<AppState>,
    user: AuthUser,
    IdPath(event_id): IdPath,
    key: IdempotencyKey,
    meta: RequestMeta,
) -> Result<Response, ApiError> {
    user.require_admin()?;
    let command = Command::PublishEvent(EventRef { event_id });
    commands::send(&state, Origin::user(&user, key, meta), command).await
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Exact city, any case. No control characters.
    #[param(pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub city: Option<String>,
    #[param(inline, value_type = Option<crate::openapi::params::Category>)]
    pub category: Option<String>,
    /// Events starting at or after this time or day (an event's start is `eventDate` at
    /// `eventTime`, written as UTC).
    #[param(value_type = Option<crate::openapi::params::DateOrTime>)]
    pub from: Option<String>,
    /// Events on or before this time or day (a plain date includes that whole day).
    #[param(value_type = Option<crate::openapi::params::DateOrTime>)]
    pub to: Option<String>,
    /// Text searched in name, description, venue and city. No control characters.
    #[param(pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub q: Option<String>,
    /// From 1 (default 1).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1_000_000)]
    pub page: Option<String>,
    /// 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// `published` (default) or, for admins, `draft` to include drafts.
    #[param(inline, value_type = Option<crate::openapi::params::ListStatus>)]
    pub status: Option<String>,
    /// Admins only: include drafts.
    #[param(value_type = Option<bool>)]
    pub include_drafts: Option<String>,
}

fn event_filter(p: ListParams, admin: bool) -> Result<EventFilter, ApiError> {
    let (page, limit) = page_and_limit(p.page.as_deref(), p.limit.as_deref())?;
    let category = one_of(
        "category",
        p.category,
        &["concert", "theater", "sports", "comedy", "other"],
    )?;
    // Sent to the queries worker as RFC 3339 times; an empty range finds nothing.
    let bound = |field: &str, v: Option<String>, edge| {
        v.map(|v| {
            date_or_time(field, &v, edge).map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        })
        .transpose()
    };
    let from = bound("from", p.from, DayEdge::Start)?;
    let to = bound("to", p.to, DayEdge::End)?;
    let wants_drafts =
        one_of("status", p.status, &["published", "draft"])?.as_deref() == Some("draft");
    let include_drafts =
        one_of("includeDrafts", p.include_drafts, &["true", "false"])?.as_deref() == Some("true");
    Ok(EventFilter {
        city: non_blank("city", p.city)?,
        category,
        from,
        to,
        q: non_blank("q", p.q)?,
        page,
        limit,
        // Only admins see drafts; for anyone else the flag is ignored.
        include_drafts: admin && (wants_drafts || include_drafts),
    })
}

/// Published events, filtered and paged.
#[utoipa::path(
    get, path = "/v1/events", tag = "events",
    security((), ("bearer" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "A page of events, soonest first", body = crate::openapi::schemas::Page<crate::openapi::schemas::Event>),
        (status = 400, description = "`validation_failed`", body = crate::openapi::ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    user: Option<AuthUser>,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Response, ApiError> {
    let admin = user.is_some_and(|u| u.role.is_admin());
    let filter = event_filter(params, admin)?;
    ask(&state, user.map(|u| u.issuer()), Query::ListEvents(filter)).await
}

/// One event (drafts only for admins).
#[utoipa::path(
    get, path = "/v1/events/{id}", tag = "events",
    security((), ("bearer" = [])),
    params(("id" = crate::openapi::params::ObjectId, Path, description = "Event id")),
    responses(
        (status = 200, description = "The event", body = crate::openapi::schemas::Event),
        (status = 400, description = "`invalid_id`", body = crate::openapi::ErrorBody),
        (status = 404, description = "`event_not_found`", body = crate::openapi::ErrorBody),
    )
)]
pub async fn read(
    State(state): State<AppState>,
    user: Option<AuthUser>,
    IdPath(event_id): IdPath,
) -> Result<Response, ApiError> {
    ask(
        &state,
        user.map(|u| u.issuer()),
        Query::GetEvent { event_id },
    )
    .await
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct SeatParams {
    /// Section name, exact. No control characters.
    #[param(pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub section: Option<String>,
    #[param(inline, value_type = Option<crate::openapi::params::SeatStatus>)]
    pub status: Option<String>,
}

/// Seats of an event, in row and number order.
#[utoipa::path(
    get, path = "/v1/events/{id}/seats", tag = "events",
    security((), ("bearer" = [])),
    params(("id" = crate::openapi::params::ObjectId, Path, description = "Event id"), SeatParams),
    responses(
        (status = 200, description = "The seats", body = crate::openapi::schemas::SeatList),
        (status = 400, description = "`invalid_id`, `validation_failed`", body = crate::openapi::ErrorBody),
        (status = 404, description = "`event_not_found`", body = crate::openapi::ErrorBody),
    )
)]
pub async fn seats(
    State(state): State<AppState>,
    user: Option<AuthUser>,
    IdPath(event_id): IdPath,
    QueryParams(p): QueryParams<SeatParams>,
) -> Result<Response, ApiError> {
    let status = match p.status {
        None => None,
        Some(s) => Some(
            SeatStatus::parse(&s)
                .ok_or_else(|| {
                    ApiError::validation("status: must be available, held, booked or blocked")
                })?
                .as_str()
                .to_string(),
        ),
    };
    let query = Query::EventSeats {
        event_id,
        section: non_blank("section", p.section)?,
        status,
    };
    ask_raw(&state, user.map(|u| u.issuer()), query).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> Result<CreateEvent, ApiError> {
        create_command(serde_json::from_value(v).map_err(|e| ApiError::validation(e.to_string()))?)
    }

    fn good() -> Value {
        json!({
            "name": " Fado Night ", "description": "", "eventDate": "2030-05-01", "eventTime": "19:30",
            "venue": "Coliseu", "city": "Lisbon", "country": "PT", "category": "Concert",
            "sections": [{"name": "Premium", "price": "120.50", "rows": "A-B", "seatsPerRow": 10},
                         {"name": "Economy", "price": 35, "rows": "C", "seatsPerRow": 12}],
            "cancellationPolicy": {"daysBeforeCancellation": 7, "refundPercentage": 50}
        })
    }

    #[test]
    fn a_good_request_becomes_a_normalised_command() {
        let c = body(good()).unwrap();
        assert_eq!(c.name, "Fado Night");
        assert_eq!(c.currency, Currency::USD);
        assert_eq!(c.category, Category::Concert);
        assert_eq!(c.sections[1].price, Decimal::from(35));
    }

    #[test]
    fn bad_fields_are_refused_before_nats() {
        for (field, value) in [
            ("eventDate", json!("2030-13-01")),
            ("eventTime", json!("25:00")),
            ("category", json!("opera")),
            ("currency", json!("usd")),
            ("name", json!("  ")),
            ("imageUrl", json!("ftp://x")),
            ("sections", json!([])),
            (
                "sections",
                json!([{"name": "S", "price": "1.001", "rows": "A", "seatsPerRow": 1}]),
            ),
            (
                "sections",
                json!([{"name": "S", "price": "1", "rows": "A-", "seatsPerRow": 1}]),
            ),
            (
                "cancellationPolicy",
                json!({"daysBeforeCancellation": 1, "refundPercentage": 101}),
            ),
        ] {
            let mut b = good();
            b[field] = value.clone();
            let e = body(b).unwrap_err();
            assert_eq!(
                e.code,
                streams::ErrorCode::ValidationFailed,
                "{field} = {value}"
            );
        }
    }

    #[test]
    fn drafts_are_listed_for_admins_only() {
        let p = || ListParams {
            status: Some("draft".into()),
            ..Default::default()
        };
        assert!(event_filter(p(), true).unwrap().include_drafts);
        assert!(!event_filter(p(), false).unwrap().include_drafts);
        for (from, to) in [
            ("tomorrow", "2030-01-01"),
            ("", "2030-01-01"),
            ("2030-01-01", ""),
        ] {
            let bad = ListParams {
                from: Some(from.into()),
                to: Some(to.into()),
                ..Default::default()
            };
            assert!(event_filter(bad, false).is_err(), "{from:?} {to:?}");
        }
        for bad in [
            ListParams {
                status: Some(String::new()),
                ..Default::default()
            },
            ListParams {
                category: Some("Opera".into()),
                ..Default::default()
            },
            ListParams {
                include_drafts: Some("yes".into()),
                ..Default::default()
            },
            ListParams {
                page: Some(String::new()),
                ..Default::default()
            },
        ] {
            assert!(event_filter(bad, true).is_err());
        }
    }

    #[test]
    fn date_bounds_take_a_plain_day_or_an_rfc_3339_time() {
        let f = event_filter(
            ListParams {
                from: Some("2027-01-01".into()),
                to: Some("2027-01-31".into()),
                ..Default::default()
            },
            false,
        )
        .unwrap();
        assert_eq!(f.from.as_deref(), Some("2027-01-01T00:00:00.000Z"));
        assert_eq!(f.to.as_deref(), Some("2027-01-31T23:59:59.999Z"));
        let f = event_filter(
            ListParams {
                from: Some("2027-01-01T18:00:00+01:00".into()),
                // An empty range is not an error: it finds nothing.
                to: Some("2026-01-01".into()),
                ..Default::default()
            },
            false,
        )
        .unwrap();
        assert_eq!(f.from.as_deref(), Some("2027-01-01T17:00:00.000Z"));
    }
}
