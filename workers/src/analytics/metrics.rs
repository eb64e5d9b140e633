//! The analytics metrics: the nine values of one period bucket, computed from every
//! fact of a show (see the module above for their definitions).

use std::collections::{BTreeMap, HashMap};

use chrono::Utc;
use domain::entities::analytics::{BreakdownItem, Metric, MetricValue};
use domain::{Currency, Money};

use super::facts::Fact;

/// Seats listed in `popular_seats`.
const TOP_SEATS: usize = 10;

/// Per section: seats sold and their prices.
type Sections = BTreeMap<String, (i64, i64)>;

/// What the facts of one period bucket add up to.
struct Tally {
    bookings: i64,
    refunds: i64,
    cancellations: i64,
    gross: i64,
    refunded: i64,
    tickets: i64,
    seat_revenue: i64,
    sections: Sections,
    /// The most sold seats, most first, then by label.
    popular: Vec<(String, i64)>,
    sold_by_end: i64,
}

impl Tally {
    fn of(facts: &[Fact], start: chrono::DateTime<Utc>, end: chrono::DateTime<Utc>) -> Self {
        let inside = |f: &&Fact| f.at >= start && f.at < end;
        let sales: Vec<&Fact> = facts
            .iter()
            .filter(|f| f.kind == "sale")
            .filter(inside)
            .collect();
        let refunds: Vec<&Fact> = facts
            .iter()
            .filter(|f| f.kind == "refund")
            .filter(inside)
            .collect();
        let cancellations = facts
            .iter()
            .filter(|f| f.kind == "cancellation")
            .filter(inside)
            .count() as i64;
        let (sections, popular) = seat_breakdowns(&sales);
        Tally {
            bookings: sales.len() as i64,
            refunds: refunds.len() as i64,
            cancellations,
            gross: sales.iter().map(|f| f.amount_minor).sum(),
            refunded: refunds.iter().map(|f| f.amount_minor).sum(),
            tickets: sales.iter().map(|f| f.seats.len() as i64).sum(),
            seat_revenue: sales.iter().flat_map(|f| f.seats.iter().map(|s| s.2)).sum(),
            sections,
            popular,
            sold_by_end: sold_by_end(facts, end),
        }
    }
}

/// The seats of `sales` per section (count, revenue), and the most sold seats.
fn seat_breakdowns(sales: &[&Fact]) -> (Sections, Vec<(String, i64)>) {
    let mut sections: Sections = BTreeMap::new();
    let mut seat_counts: HashMap<String, i64> = HashMap::new();
    for s in sales.iter().flat_map(|f| f.seats.iter()) {
        let e = sections.entry(s.1.clone()).or_default();
        e.0 += 1;
        e.1 += s.2;
        *seat_counts.entry(s.0.clone()).or_default() += 1;
    }
    let mut popular: Vec<(String, i64)> = seat_counts.into_iter().collect();
    popular.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    popular.truncate(TOP_SEATS);
    (sections, popular)
}

/// Occupancy at the end of the period: seats sold so far less those given back.
fn sold_by_end(facts: &[Fact], end: chrono::DateTime<Utc>) -> i64 {
    facts
        .iter()
        .filter(|f| f.at < end)
        .map(|f| match f.kind.as_str() {
            "sale" => f.seats.len() as i64,
            "cancellation" if f.was_confirmed => -f.seat_count,
            _ => 0,
        })
        .sum()
}

/// The nine metrics of one period bucket, from every fact of the show.
pub(super) fn metrics_of(
    facts: &[Fact],
    start: chrono::DateTime<Utc>,
    end: chrono::DateTime<Utc>,
    capacity: i64,
    currency: Currency,
) -> Vec<(Metric, MetricValue)> {
    let t = Tally::of(facts, start, end);
    let money = |m: i64| Money::from_minor(m, currency);
    let amount = |m: i64| MetricValue::Amount { amount: money(m) };
    let count = |count: i64| MetricValue::Count { count };
    let ratio = |numerator: i64, denominator: i64| MetricValue::Ratio {
        numerator,
        denominator,
    };
    let avg_ticket = if t.tickets > 0 {
        t.seat_revenue / t.tickets
    } else {
        0
    };
    let by_section = t
        .sections
        .into_iter()
        .map(|(key, (count, amount))| BreakdownItem {
            key,
            count,
            amount: Some(money(amount)),
        })
        .collect();
    let popular = t
        .popular
        .into_iter()
        .map(|(key, count)| BreakdownItem {
            key,
            count,
            amount: None,
        })
        .collect();
    vec![
        (Metric::TotalRevenue, amount(t.gross - t.refunded)),
        (Metric::OccupancyRate, ratio(t.sold_by_end.max(0), capacity)),
        (Metric::BookingsCount, count(t.bookings)),
        (Metric::CancellationsCount, count(t.cancellations)),
        (Metric::RefundsCount, count(t.refunds)),
        (Metric::AvgTicketPrice, amount(avg_ticket)),
        (
            Metric::RevenueBySection,
            MetricValue::Breakdown { items: by_section },
        ),
        (
            Metric::PopularSeats,
            MetricValue::Breakdown { items: popular },
        ),
        (Metric::RefundRate, ratio(t.refunds, t.bookings)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use domain::entities::analytics::Period;

    fn sale(at: i64, seats: &[(&str, &str, i64)]) -> Fact {
        Fact {
            kind: "sale".into(),
            at: Utc.timestamp_opt(at, 0).unwrap(),
            amount_minor: seats.iter().map(|s| s.2).sum(),
            currency: "USD".into(),
            seats: seats
                .iter()
                .map(|s| (s.0.into(), s.1.into(), s.2))
                .collect(),
            was_confirmed: false,
            seat_count: 0,
        }
    }

    #[test]
    fn metrics_net_refunds_and_count_occupancy_to_the_end_of_the_period() {
        let t0 = 1_900_000_000;
        let mut facts = vec![
            sale(t0, &[("A1", "Standard", 2500), ("A2", "Standard", 2500)]),
            sale(t0 + 60, &[("B1", "Premium", 5000)]),
        ];
        facts.push(Fact {
            kind: "cancellation".into(),
            was_confirmed: true,
            seat_count: 1,
            ..sale(t0 + 120, &[])
        });
        facts.push(Fact {
            kind: "refund".into(),
            amount_minor: 5000,
            ..sale(t0 + 120, &[])
        });
        let at = Utc.timestamp_opt(t0, 0).unwrap();
        let (s, e) = Period::Monthly.bounds(at);
        let m: HashMap<_, _> = metrics_of(&facts, s, e, 10, Currency::USD)
            .into_iter()
            .collect();
        assert_eq!(
            m[&Metric::TotalRevenue],
            MetricValue::Amount {
                amount: Money::from_minor(5000, Currency::USD)
            }
        );
        assert_eq!(m[&Metric::BookingsCount], MetricValue::Count { count: 2 });
        assert_eq!(
            m[&Metric::OccupancyRate],
            MetricValue::Ratio {
                numerator: 2,
                denominator: 10
            }
        );
        assert_eq!(
            m[&Metric::RefundRate],
            MetricValue::Ratio {
                numerator: 1,
                denominator: 2
            }
        );
        assert_eq!(
            m[&Metric::AvgTicketPrice],
            MetricValue::Amount {
                amount: Money::from_minor(3333, Currency::USD)
            }
        );
    }
}
