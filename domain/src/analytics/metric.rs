//! Analytics (`analytics`): one metric of one event over one period, rebuilt from the
//! `EVENTS` stream, and the rule that gives the period containing an instant.
//!
//! Values are typed, never floats: counts are integers, money is [`Money`], rates are an
//! exact numerator over denominator.

use bson::oid::ObjectId;
use bson::DateTime;
use chrono::{Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::shared::money::Money;

string_enum! {
    pub enum Metric {
        TotalRevenue => "total_revenue",
        OccupancyRate => "occupancy_rate",
        BookingsCount => "bookings_count",
        CancellationsCount => "cancellations_count",
        RefundsCount => "refunds_count",
        AvgTicketPrice => "avg_ticket_price",
        RevenueBySection => "revenue_by_section",
        PopularSeats => "popular_seats",
        RefundRate => "refund_rate",
    }
}

string_enum! {
    pub enum Period {
        Hourly => "hourly",
        Daily => "daily",
        /// ISO weeks, Monday 00:00 UTC to the next Monday.
        Weekly => "weekly",
        Monthly => "monthly",
    }
}

impl Period {
    /// The period containing `at`: `[start, end)` in UTC.
    pub fn bounds(
        self,
        at: chrono::DateTime<Utc>,
    ) -> (chrono::DateTime<Utc>, chrono::DateTime<Utc>) {
        let midnight =
            |d: NaiveDate| Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default());
        match self {
            Period::Hourly => {
                let start = at
                    .with_minute(0)
                    .and_then(|t| t.with_second(0))
                    .and_then(|t| t.with_nanosecond(0))
                    .unwrap_or(at);
                (start, start + Duration::hours(1))
            }
            Period::Daily => {
                let start = midnight(at.date_naive());
                (start, start + Duration::days(1))
            }
            Period::Weekly => {
                let day = at.date_naive();
                let start =
                    midnight(day - Duration::days(i64::from(day.weekday().num_days_from_monday())));
                (start, start + Duration::weeks(1))
            }
            Period::Monthly => {
                let first = at.date_naive().with_day(1).unwrap_or(at.date_naive());
                let next = first
                    .checked_add_months(chrono::Months::new(1))
                    .unwrap_or(first);
                (midnight(first), midnight(next))
            }
        }
    }
}

/// One line of a breakdown (revenue by section, popular seats).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BreakdownItem {
    /// Section name or seat label.
    pub key: String,
    pub count: i64,
    pub amount: Option<Money>,
}

/// A metric's value, tagged with its kind: `{"kind": "count", "count": 12}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum MetricValue {
    Count {
        count: i64,
    },
    Amount {
        amount: Money,
    },
    /// An exact rate, such as booked seats over capacity.
    Ratio {
        numerator: i64,
        denominator: i64,
    },
    Breakdown {
        items: Vec<BreakdownItem>,
    },
}

impl MetricValue {
    /// A ratio in basis points (1/100 of a percent), rounded down; `None` over zero.
    pub fn basis_points(&self) -> Option<i64> {
        match *self {
            MetricValue::Ratio {
                numerator,
                denominator,
            } if denominator != 0 => {
                Some((i128::from(numerator) * 10_000 / i128::from(denominator)) as i64)
            }
            _ => None,
        }
    }
}

/// The `analytics` collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Analytics {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub event_id: ObjectId,
    pub metric: Metric,
    pub value: MetricValue,
    pub period: Period,
    pub period_start: DateTime,
    pub period_end: DateTime,
    pub calculated_at: DateTime,
    pub updated_at: DateTime,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::money::Currency;
    use proptest::prelude::*;

    fn t(y: i32, m: u32, d: u32, h: u32, mi: u32) -> chrono::DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, mi, 7).unwrap()
    }

    #[test]
    fn periods_start_on_the_hour_day_monday_and_first_of_the_month() {
        // 2027-03-14 is a Sunday.
        let at = t(2027, 3, 14, 19, 30);
        let hour = Utc.with_ymd_and_hms(2027, 3, 14, 19, 0, 0).unwrap();
        assert_eq!(Period::Hourly.bounds(at), (hour, hour + Duration::hours(1)));
        assert_eq!(
            Period::Daily.bounds(at).0,
            Utc.with_ymd_and_hms(2027, 3, 14, 0, 0, 0).unwrap()
        );
        assert_eq!(
            Period::Weekly.bounds(at).0,
            Utc.with_ymd_and_hms(2027, 3, 8, 0, 0, 0).unwrap()
        );
        assert_eq!(
            Period::Monthly.bounds(t(2027, 12, 31, 23, 59)),
            (
                Utc.with_ymd_and_hms(2027, 12, 1, 0, 0, 0).unwrap(),
                Utc.with_ymd_and_hms(2028, 1, 1, 0, 0, 0).unwrap()
            )
        );
    }

    #[test]
    fn values_are_tagged_and_round_trip_through_bson() {
        let now = DateTime::from_millis(1_700_000_000_000);
        for value in [
            MetricValue::Count { count: 3 },
            MetricValue::Amount {
                amount: Money::from_minor(12_345, Currency::USD),
            },
            MetricValue::Ratio {
                numerator: 1,
                denominator: 3,
            },
            MetricValue::Breakdown {
                items: vec![BreakdownItem {
                    key: "Premium".into(),
                    count: 2,
                    amount: Some(Money::from_minor(100, Currency::USD)),
                }],
            },
        ] {
            let a = Analytics {
                id: ObjectId::new(),
                event_id: ObjectId::new(),
                metric: Metric::TotalRevenue,
                value,
                period: Period::Daily,
                period_start: now,
                period_end: now,
                calculated_at: now,
                updated_at: now,
            };
            let doc = bson::to_document(&a).unwrap();
            assert!(doc.get_document("value").unwrap().get_str("kind").is_ok());
            assert_eq!(bson::from_document::<Analytics>(doc).unwrap(), a);
        }
        assert_eq!(
            MetricValue::Ratio {
                numerator: 1,
                denominator: 3
            }
            .basis_points(),
            Some(3333)
        );
        assert_eq!(
            MetricValue::Ratio {
                numerator: 1,
                denominator: 0
            }
            .basis_points(),
            None
        );
    }

    proptest! {
        #[test]
        fn an_instant_lies_in_its_period_and_the_period_is_stable(secs in 0i64..4_000_000_000, p in 0usize..4) {
            let period = Period::ALL[p];
            let at = Utc.timestamp_opt(secs, 0).unwrap();
            let (start, end) = period.bounds(at);
            prop_assert!(start <= at && at < end);
            prop_assert_eq!(period.bounds(start), (start, end));
            prop_assert_eq!(period.bounds(end).0, end);
        }
    }
}
