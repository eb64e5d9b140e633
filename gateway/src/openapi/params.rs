//! Schemas of the parameters every route shares: ids in the path, `Idempotency-Key`,
//! page and limit, dates. Each states exactly what its extractor accepts (see
//! `crate::extract` and `crate::routes::page_and_limit`), so a request the document
//! allows is never refused for its shape, and one it forbids is refused.
//!
//! NOTE: patterns are anchored at the start only and bounded by `minLength`/`maxLength`:
//! a `$` would let Python-flavoured generators add a trailing newline the gateway refuses.

use utoipa::openapi::schema::{AnyOfBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

/// The largest page number accepted.
pub const MAX_PAGE: u32 = 1_000_000;
/// The largest page size accepted.
pub const MAX_LIMIT: u32 = 100;

/// A string schema with a pattern and length bounds.
fn string(
    description: &str,
    pattern: &str,
    min: usize,
    max: usize,
    example: &str,
) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .pattern(Some(pattern))
        .min_length(Some(min))
        .max_length(Some(max))
        .examples([example])
        .into()
}

/// Declares a named string schema (a component) for a parameter type.
macro_rules! string_schema {
    ($name:ident, $doc:literal, $pattern:literal, $min:literal, $max:literal, $example:literal) => {
        #[doc = $doc]
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                string($doc, $pattern, $min, $max, $example)
            }
        }

        impl ToSchema for $name {}
    };
}

string_schema!(
    ObjectId,
    "A resource id: a MongoDB ObjectId, 24 hex digits.",
    "^[0-9a-fA-F]{24}",
    24,
    24,
    "65f0a0a0a0a0a0a0a0a0a0a0"
);

string_schema!(
    CommandId,
    "A command id from `Ticketing-Command-Id`: a UUID, or `idem-` and 32 hex digits.",
    "^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|idem-[0-9a-fA-F]{32})",
    36,
    37,
    "0193b3d0-5d8e-7c3a-9f00-1a2b3c4d5e6f"
);

string_schema!(
    IdempotencyKey,
    "`Idempotency-Key`: 1 to 200 visible ASCII characters, no spaces. Retries of a command with the same key answer the first result.",
    "^[!-~]+",
    1,
    200,
    "checkout-7f3a"
);

/// A date query parameter: an RFC 3339 time (`2027-01-01T18:00:00Z`, any offset) or a
/// plain date (`2027-01-01`), which means that whole day in UTC: from its start for a
/// lower bound, to its end for an upper bound.
pub struct DateOrTime;

impl PartialSchema for DateOrTime {
    fn schema() -> RefOr<Schema> {
        let string = |f: KnownFormat| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(f)))
        };
        AnyOfBuilder::new()
            .item(string(KnownFormat::Date).examples(["2027-01-01"]))
            .item(string(KnownFormat::DateTime).examples(["2027-01-01T18:00:00Z"]))
            .description(Some(
                "An RFC 3339 time, or a plain date meaning that whole day in UTC (see docs/api.md).",
            ))
            .into()
    }
}

impl ToSchema for DateOrTime {}

/// An event's category.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum Category {
    Concert,
    Theater,
    Sports,
    Comedy,
    Other,
}

/// Which events a list shows.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum ListStatus {
    Published,
    Draft,
}

/// A seat's status.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum SeatStatus {
    Available,
    Held,
    Booked,
    Blocked,
}

/// An audit entry's outcome.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum AuditStatus {
    Success,
    Failure,
}

/// An analytics period.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum Period {
    Hourly,
    Daily,
    Weekly,
    Monthly,
}

/// `page` and `limit` of a paged list.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// From 1 (default 1).
    #[param(minimum = 1, maximum = 1_000_000)]
    pub page: Option<u32>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}
