//! Events and their seat maps: the admin's creation request, parsed into seats.

use bson::oid::ObjectId;
use bson::DateTime;
use chrono::{NaiveDate, NaiveTime};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::shared::money::{Currency, Money};
use crate::DomainError;

/// Upper bound on seats per event, so one request cannot ask for millions of documents.
pub const MAX_SEATS_PER_EVENT: usize = 100_000;
pub const MAX_SEATS_PER_ROW: u32 = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Concert,
    Theater,
    Sports,
    Comedy,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    #[default]
    Draft,
    Published,
    Cancelled,
    Completed,
}

impl EventStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Draft => "draft",
            EventStatus::Published => "published",
            EventStatus::Cancelled => "cancelled",
            EventStatus::Completed => "completed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            EventStatus::Draft,
            EventStatus::Published,
            EventStatus::Cancelled,
            EventStatus::Completed,
        ]
        .into_iter()
        .find(|e| e.as_str() == s)
    }

    /// `draft -> published | cancelled`, `published -> cancelled | completed`; cancelled
    /// and completed events never change again.
    pub fn can_become(self, next: EventStatus) -> bool {
        use EventStatus::*;
        matches!(
            (self, next),
            (Draft, Published)
                | (Draft, Cancelled)
                | (Published, Cancelled)
                | (Published, Completed)
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CancellationPolicy {
    pub days_before_cancellation: u32,
    pub refund_percentage: u32,
}

impl Default for CancellationPolicy {
    fn default() -> Self {
        CancellationPolicy {
            days_before_cancellation: 14,
            refund_percentage: 100,
        }
    }
}

impl CancellationPolicy {
    pub fn check(self) -> Result<Self, DomainError> {
        if self.refund_percentage > 100 {
            return Err(DomainError::invalid(
                "cancellationPolicy.refundPercentage",
                "must be 0 to 100",
            ));
        }
        if self.days_before_cancellation > 3650 {
            return Err(DomainError::invalid(
                "cancellationPolicy.daysBeforeCancellation",
                "must be at most 3650",
            ));
        }
        Ok(self)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pricing {
    pub min_price: Money,
    pub max_price: Money,
    pub currency: Currency,
}

/// The `events` collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub name: String,
    pub description: String,
    pub event_date: DateTime,
    pub event_time: String,
    pub venue: String,
    pub city: String,
    pub country: String,
    pub category: Category,
    pub total_capacity: i64,
    pub available_seats: i64,
    pub image_url: Option<String>,
    pub pricing: Pricing,
    pub sections: Vec<SectionSummary>,
    pub status: EventStatus,
    pub visibility: String,
    pub cancellation_policy: CancellationPolicy,
    pub created_by: ObjectId,
    pub published_at: Option<DateTime>,
    pub cancelled_at: Option<DateTime>,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SectionSummary {
    pub name: String,
    pub price: Money,
    pub rows: String,
    pub seats_per_row: u32,
}

/// One section as the admin sends it: `rows` is a letter range such as `"A-J"` or a
/// single letter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SectionSpec {
    pub name: String,
    /// A decimal string, such as "49.90".
    #[schemars(with = "String")]
    pub price: Decimal,
    pub rows: String,
    pub seats_per_row: u32,
}

/// A seat to create, before ids are given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatPlan {
    pub section: String,
    pub row: char,
    pub number: u32,
    pub price: Money,
}

/// Parses `"A-J"` or `"C"` into the letters it covers.
pub fn parse_rows(rows: &str) -> Result<Vec<char>, DomainError> {
    let bad = || {
        DomainError::invalid(
            "sections.rows",
            "must be a letter or a range of letters like A-J",
        )
    };
    let r = rows.trim();
    let (a, b) = match r.split_once('-') {
        Some((a, b)) => (a.trim(), b.trim()),
        None => (r, r),
    };
    let one = |s: &str| -> Result<char, DomainError> {
        let mut cs = s.chars();
        match (cs.next(), cs.next()) {
            (Some(c), None) if c.is_ascii_uppercase() => Ok(c),
            _ => Err(bad()),
        }
    };
    let (a, b) = (one(a)?, one(b)?);
    if a > b {
        return Err(bad());
    }
    Ok((a..=b).collect())
}

/// Turns the sections of a creation request into the seats to create, checking names,
/// prices, rows, counts and that no (row, number) appears twice.
pub fn plan_seats(
    sections: &[SectionSpec],
    currency: Currency,
) -> Result<Vec<SeatPlan>, DomainError> {
    if sections.is_empty() {
        return Err(DomainError::invalid(
            "sections",
            "must name at least one section",
        ));
    }
    let mut seats = Vec::new();
    let mut used = std::collections::HashSet::new();
    for s in sections {
        let name = s.name.trim();
        if name.is_empty() || name.chars().count() > 50 {
            return Err(DomainError::invalid(
                "sections.name",
                "must be 1 to 50 characters",
            ));
        }
        let price = Money::from_decimal(s.price, currency)?;
        if s.seats_per_row == 0 || s.seats_per_row > MAX_SEATS_PER_ROW {
            return Err(DomainError::invalid(
                "sections.seatsPerRow",
                format!("must be 1 to {MAX_SEATS_PER_ROW}"),
            ));
        }
        for row in parse_rows(&s.rows)? {
            if !used.insert(row) {
                return Err(DomainError::invalid(
                    "sections.rows",
                    format!("row {row} is in two sections"),
                ));
            }
            for number in 1..=s.seats_per_row {
                seats.push(SeatPlan {
                    section: name.to_string(),
                    row,
                    number,
                    price,
                });
                if seats.len() > MAX_SEATS_PER_EVENT {
                    return Err(DomainError::invalid(
                        "sections",
                        format!("at most {MAX_SEATS_PER_EVENT} seats per event"),
                    ));
                }
            }
        }
    }
    Ok(seats)
}

/// Parses the event's date (`YYYY-MM-DD`) and time (`HH:MM`).
pub fn parse_date_time(date: &str, time: &str) -> Result<(NaiveDate, NaiveTime), DomainError> {
    let d = NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d")
        .map_err(|_| DomainError::invalid("eventDate", "must be a date like 2027-03-14"))?;
    let t = NaiveTime::parse_from_str(time.trim(), "%H:%M")
        .map_err(|_| DomainError::invalid("eventTime", "must be a time like 19:30"))?;
    Ok((d, t))
}

/// A required text field: trimmed, 1 to `max` characters.
pub fn required_text(field: &'static str, v: &str, max: usize) -> Result<String, DomainError> {
    let t = v.trim();
    if t.is_empty() || t.chars().count() > max {
        return Err(DomainError::invalid(
            field,
            format!("must be 1 to {max} characters"),
        ));
    }
    Ok(t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn spec(rows: &str, per_row: u32, price: &str) -> SectionSpec {
        SectionSpec {
            name: "Standard".into(),
            price: Decimal::from_str(price).unwrap(),
            rows: rows.into(),
            seats_per_row: per_row,
        }
    }

    #[test]
    fn row_ranges_expand_to_letters() {
        assert_eq!(parse_rows("A-C").unwrap(), vec!['A', 'B', 'C']);
        assert_eq!(parse_rows("F").unwrap(), vec!['F']);
        for bad in ["", "a-c", "C-A", "AA", "1-3", "A-"] {
            assert!(parse_rows(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_seat_map_has_one_seat_per_row_and_number() {
        let seats =
            plan_seats(&[spec("A-B", 3, "10"), spec("C", 2, "5.50")], Currency::USD).unwrap();
        assert_eq!(seats.len(), 8);
        assert_eq!(seats.last().unwrap().price.minor(), 550);
    }

    #[test]
    fn overlapping_rows_bad_prices_and_empty_maps_are_refused() {
        assert!(plan_seats(&[spec("A-B", 3, "10"), spec("B", 2, "5")], Currency::USD).is_err());
        assert!(plan_seats(&[spec("A", 3, "-1")], Currency::USD).is_err());
        assert!(plan_seats(&[spec("A", 0, "1")], Currency::USD).is_err());
        assert!(plan_seats(&[spec("A", 501, "1")], Currency::USD).is_err());
        assert!(plan_seats(&[], Currency::USD).is_err());
    }
}
