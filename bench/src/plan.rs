//! The seating plan of a generated event: three sections (Premium, Standard, Economy) at
//! different prices, rows lettered from `A`, sized to reach about the number of seats
//! asked for.

use anyhow::bail;
use serde_json::{json, Value};

/// Rows are single letters, so an event has at most 26 of them.
const MAX_ROWS: usize = 26;
/// The most seats a row may have (the domain refuses more).
const MAX_SEATS_PER_ROW: usize = 500;
/// Rows aimed at per 20 seats, so small events stay square-ish.
const SEATS_PER_ROW_HINT: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionPlan {
    pub name: &'static str,
    /// Price as a decimal string, for example `"49.00"`.
    pub price: &'static str,
    pub first_row: char,
    pub last_row: char,
    pub seats_per_row: usize,
}

impl SectionPlan {
    pub fn rows(&self) -> usize {
        (self.last_row as usize) - (self.first_row as usize) + 1
    }
    pub fn seats(&self) -> usize {
        self.rows() * self.seats_per_row
    }
}

#[derive(Debug, Clone)]
pub struct EventPlan {
    pub name: String,
    pub sections: Vec<SectionPlan>,
}

impl EventPlan {
    /// An event of at least `seats` seats (rounded up to whole rows).
    pub fn with_seats(name: &str, seats: usize) -> anyhow::Result<Self> {
        if seats == 0 {
            bail!("an event needs at least one seat");
        }
        let rows = seats.div_ceil(SEATS_PER_ROW_HINT).clamp(3, MAX_ROWS - 2);
        let per_row = seats.div_ceil(rows);
        if per_row > MAX_SEATS_PER_ROW {
            bail!("{seats} seats do not fit in {rows} rows of at most {MAX_SEATS_PER_ROW} seats");
        }
        let premium = (rows / 5).max(1);
        let standard = ((rows - premium) / 2).max(1);
        let economy = rows - premium - standard;
        let mut next = b'A';
        let mut sections = Vec::new();
        for (name, price, n) in [
            ("Premium", "149.00", premium),
            ("Standard", "79.00", standard),
            ("Economy", "39.50", economy),
        ] {
            if n == 0 {
                continue;
            }
            let first = next;
            let last = next + (n as u8) - 1;
            next = last + 1;
            sections.push(SectionPlan {
                name,
                price,
                first_row: first as char,
                last_row: last as char,
                seats_per_row: per_row,
            });
        }
        Ok(EventPlan {
            name: name.to_string(),
            sections,
        })
    }

    pub fn total_seats(&self) -> usize {
        self.sections.iter().map(SectionPlan::seats).sum()
    }

    /// The body of POST /v1/events; the event takes place 60 days from today.
    pub fn body(&self) -> Value {
        let date = (chrono::Utc::now() + chrono::Duration::days(60)).format("%Y-%m-%d");
        let sections: Vec<Value> = self
            .sections
            .iter()
            .map(|s| {
                json!({
                    "name": s.name,
                    "price": s.price,
                    "rows": if s.first_row == s.last_row {
                        s.first_row.to_string()
                    } else {
                        format!("{}-{}", s.first_row, s.last_row)
                    },
                    "seatsPerRow": s.seats_per_row,
                })
            })
            .collect();
        json!({
            "name": self.name,
            "description": "A generated event for demos and load tests.",
            "eventDate": date.to_string(),
            "eventTime": "20:00",
            "venue": "Bench Arena",
            "city": "Lisbon",
            "country": "PT",
            "category": "concert",
            "sections": sections,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_reach_the_seats_asked_for_with_three_priced_sections() {
        for asked in [1, 3, 50, 300, 1000, 5000, 10_000] {
            let p = EventPlan::with_seats("x", asked).unwrap();
            let total = p.total_seats();
            assert!(total >= asked, "{asked} -> {total}");
            assert!(total < asked + 24 + asked / 10 + 3, "{asked} -> {total}");
            let rows: usize = p.sections.iter().map(SectionPlan::rows).sum();
            assert!(rows <= MAX_ROWS);
            assert_eq!(p.sections.len(), 3);
            assert_eq!(p.sections[0].first_row, 'A');
        }
    }

    #[test]
    fn the_default_demo_event_has_300_seats_in_rows_a_to_o() {
        let p = EventPlan::with_seats("demo", 300).unwrap();
        assert_eq!(p.total_seats(), 300);
        let body = p.body();
        assert_eq!(body["sections"][0]["rows"], "A-C");
        assert_eq!(body["sections"][2]["rows"], "J-O");
        assert_eq!(body["sections"][1]["price"], "79.00");
    }

    #[test]
    fn too_many_seats_are_refused() {
        assert!(EventPlan::with_seats("x", 24 * 500 + 1).is_err());
        assert!(EventPlan::with_seats("x", 0).is_err());
    }
}
