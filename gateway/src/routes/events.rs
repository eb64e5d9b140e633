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
use chrono::NaiveDate;
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

use super::{ask, ask_raw, non_blank, page_and_limit};
use crate::auth::AuthUser;
use crate::commands::{self, Origin};
use crate::error::ApiError;
use crate::extract::{IdPath, IdempotencyKey, Json, QueryParams, RequestMeta};
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
    #[schema(example = "Fado Night")]
    pub name: String,
    /// Up to 5000 characters; may be empty.
    pub description: String,
    /// `YYYY-MM-DD`.
    #[schema(example = "2030-05-01")]
    pub event_date: String,
    /// `HH:MM`, local to the venue.
    #[schema(example = "19:30")]
    pub event_time: String,
    pub venue: String,
    pub city: String,
    pub country: String,
    /// concert, theater, sports, comedy or other.
    #[schema(example = "concert")]
    pub category: String,
    /// ISO 4217 code; USD when absent.
    #[schema(example = "EUR")]
    pub currency: Option<String>,
    pub image_url: Option<String>,
    pub sections: Vec<SectionRequest>,
    pub cancellation_policy: Option<PolicyRequest>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SectionRequest {
    #[schema(example = "Premium")]
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
    /// Days before the event until which a booking may be cancelled.
    pub days_before_cancellation: u32,
    /// 0 to 100.
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
fn create_command(b: CreateEventRequest) -> Result<CreateEvent, ApiError> {
    let name = required_text("name", &b.name, 200)?;
    if b.description.chars().count() > 5000 {
        return Err(ApiError::validation(
            "description: must be at most 5000 characters",
        ));
    }
    let (date, time) = parse_date_time(&b.event_date, &b.event_time)?;
    let venue = required_text("venue", &b.venue, 200)?;
    let city = required_text("city", &b.city, 100)?;
    let country = required_text("country", &b.country, 100)?;
    let category = parse_category(&b.category)?;
    let currency = Currency::parse(b.currency.as_deref().map(str::trim).unwrap_or("USD"))?;
    let image_url = non_blank(b.image_url);
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
            name: s.name.trim().to_string(),
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
        currency: currency.as_str().to_string(),
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
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key return the first result")),
    responses(
        (status = 201, description = "The event, `draft`", body = Object),
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
        ("id" = String, Path, description = "Event id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key return the first result"),
    ),
    responses(
        (status = 200, description = "The event, `published`", body = Object),
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
    /// Exact city, any case.
    pub city: Option<String>,
    /// concert, theater, sports, comedy or other.
    pub category: Option<String>,
    /// Earliest event date, `YYYY-MM-DD`.
    pub from: Option<String>,
    /// Latest event date, `YYYY-MM-DD`.
    pub to: Option<String>,
    /// Text searched in name, description, venue and city.
    pub q: Option<String>,
    /// From 1 (default 1).
    #[param(value_type = Option<u32>)]
    pub page: Option<String>,
    /// 1 to 100 (default 20).
    #[param(value_type = Option<u32>)]
    pub limit: Option<String>,
    /// `published` (default) or, for admins, `draft` to include drafts.
    pub status: Option<String>,
    /// Admins only: include drafts.
    #[param(value_type = Option<bool>)]
    pub include_drafts: Option<String>,
}

fn parse_day(field: &str, v: Option<String>) -> Result<Option<String>, ApiError> {
    match non_blank(v) {
        None => Ok(None),
        Some(s) => NaiveDate::parse_from_str(&s, "%Y-%m-%d")
            .map(|d| Some(d.format("%Y-%m-%d").to_string()))
            .map_err(|_| ApiError::validation(format!("{field}: must be a date like 2027-03-14"))),
    }
}

fn event_filter(p: ListParams, admin: bool) -> Result<EventFilter, ApiError> {
    let (page, limit) = page_and_limit(p.page.as_deref(), p.limit.as_deref())?;
    let category = match non_blank(p.category) {
        Some(c) => {
            parse_category(&c)?;
            Some(c.to_ascii_lowercase())
        }
        None => None,
    };
    let from = parse_day("from", p.from)?;
    let to = parse_day("to", p.to)?;
    if let (Some(f), Some(t)) = (&from, &to) {
        if f > t {
            return Err(ApiError::validation("from: must not be after to"));
        }
    }
    let wants_drafts = match non_blank(p.status).as_deref() {
        None | Some("published") => false,
        Some("draft") => true,
        Some(_) => return Err(ApiError::validation("status: must be published or draft")),
    };
    let include_drafts = match non_blank(p.include_drafts).as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::validation("includeDrafts: must be true or false")),
    };
    Ok(EventFilter {
        city: non_blank(p.city),
        category,
        from,
        to,
        q: non_blank(p.q),
        page,
        limit,
        // Only admins see drafts; for anyone else the flag is ignored.
        include_drafts: admin && (wants_drafts || include_drafts),
    })
}

/// Published events, filtered and paged.
#[utoipa::path(
    get, path = "/v1/events", tag = "events",
    params(ListParams),
    responses(
        (status = 200, description = "`{items, page, limit, total}`", body = Object),
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
    params(("id" = String, Path, description = "Event id")),
    responses(
        (status = 200, description = "The event", body = Object),
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
    /// Section name, exact.
    pub section: Option<String>,
    /// available, held, booked or blocked.
    pub status: Option<String>,
}

/// Seats of an event, in row and number order.
#[utoipa::path(
    get, path = "/v1/events/{id}/seats", tag = "events",
    params(("id" = String, Path, description = "Event id"), SeatParams),
    responses(
        (status = 200, description = "`{items, total}`", body = Object),
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
    let status = match non_blank(p.status) {
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
        section: non_blank(p.section),
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
        assert_eq!(c.currency, "USD");
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
        let bad = ListParams {
            from: Some("tomorrow".into()),
            ..Default::default()
        };
        assert!(event_filter(bad, false).is_err());
    }
}
