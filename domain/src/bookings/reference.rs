//! Booking references (`BK-...`) and ticket numbers (`TKT-...`): short, upper-case, sortable
//! by creation time, and parsed back into their parts.
//!
//! A booking reference is `BK-` followed by 18 Crockford base-32 characters: 10 for the
//! creation time in Unix milliseconds (good until the year 37648), then 8 for the low 40 bits
//! of a caller-chosen unique number (usually [`reference_unique`] of the command id, so a
//! redelivered command yields the same reference). Crockford's alphabet (`0-9A-Z` without
//! `I L O U`) is in ASCII order, so fixed-width text sorts as the numbers do.
//!
//! NOTE: 40 bits of the unique number, not 64: the reference stays short enough to read out
//! on the phone. Two bookings collide only if created in the same millisecond with equal
//! low 40 bits (about one in 10^12 per pair), and the unique index on `bookingReference`
//! turns even that into a refused insert, never a shared reference.
//!
//! A ticket number is `TKT-<the booking reference's 18 characters>-<NNN>`, where `NNN` is
//! the seat's 1-based position in the booking.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::DomainError;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const TIME_CHARS: usize = 10;
const UNIQUE_CHARS: usize = 8;
const BODY_CHARS: usize = TIME_CHARS + UNIQUE_CHARS;
const BOOKING_PREFIX: &str = "BK-";
const TICKET_PREFIX: &str = "TKT-";

/// Largest time a reference can carry (2^50 - 1 ms); later times are clamped to it.
pub const MAX_REFERENCE_MILLIS: i64 = (1 << (5 * TIME_CHARS)) - 1;
/// A booking has at most this many tickets (the position is three digits).
pub const MAX_TICKETS_PER_BOOKING: u32 = 999;

fn encode(mut v: u64, width: usize, out: &mut String) {
    let mut buf = [0u8; 16];
    for slot in buf[..width].iter_mut().rev() {
        *slot = ALPHABET[(v & 31) as usize];
        v >>= 5;
    }
    // Every byte comes from ALPHABET, which is ASCII.
    out.extend(buf[..width].iter().map(|b| *b as char));
}

fn decode(s: &str) -> Option<u64> {
    s.bytes().try_fold(0u64, |acc, b| {
        let d = ALPHABET.iter().position(|a| *a == b)? as u64;
        acc.checked_mul(32)?.checked_add(d)
    })
}

/// A unique number derived from a key (such as a command id): the first eight bytes of
/// its SHA-256.
pub fn reference_unique(key: &str) -> u64 {
    let digest = Sha256::digest(key.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(b)
}

/// A booking's public reference, such as `BK-01HV5QZ8K2X4M9PTAB`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BookingReference(String);

/// The reference of a booking created at `unix_millis` (clamped to
/// `0..=MAX_REFERENCE_MILLIS`) with the low 40 bits of `unique`.
pub fn booking_reference(unix_millis: i64, unique: u64) -> BookingReference {
    let millis = unix_millis.clamp(0, MAX_REFERENCE_MILLIS) as u64;
    let mut s = String::with_capacity(BOOKING_PREFIX.len() + BODY_CHARS);
    s.push_str(BOOKING_PREFIX);
    encode(millis, TIME_CHARS, &mut s);
    encode(
        unique & ((1 << (5 * UNIQUE_CHARS)) - 1),
        UNIQUE_CHARS,
        &mut s,
    );
    BookingReference(s)
}

fn check_body(body: &str) -> bool {
    body.len() == BODY_CHARS && body.bytes().all(|b| ALPHABET.contains(&b))
}

impl BookingReference {
    /// Parses a reference as a person may type it: surrounding spaces and lower case are
    /// accepted, anything else must be exact.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let s = s.trim().to_ascii_uppercase();
        match s.strip_prefix(BOOKING_PREFIX) {
            Some(body) if check_body(body) => Ok(BookingReference(s)),
            _ => Err(DomainError::invalid(
                "bookingReference",
                "must be BK- followed by 18 letters and digits",
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn body(&self) -> &str {
        &self.0[BOOKING_PREFIX.len()..]
    }

    /// The creation time carried in the reference, in Unix milliseconds.
    pub fn unix_millis(&self) -> i64 {
        // Checked at construction: 10 base-32 digits fit in 50 bits.
        decode(&self.body()[..TIME_CHARS]).unwrap_or(0) as i64
    }

    /// The 40 bits of the unique number carried in the reference.
    pub fn unique_bits(&self) -> u64 {
        decode(&self.body()[TIME_CHARS..]).unwrap_or(0)
    }
}

impl fmt::Display for BookingReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for BookingReference {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        BookingReference::parse(&s)
    }
}

impl From<BookingReference> for String {
    fn from(r: BookingReference) -> String {
        r.0
    }
}

/// A ticket's number, such as `TKT-01HV5QZ8K2X4M9PTAB-001`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TicketNumber(String);

/// The number of the ticket for the seat at `seat_index` (counted from 0) of a booking.
/// Fails when `seat_index >= MAX_TICKETS_PER_BOOKING`.
pub fn ticket_number(
    booking_ref: &BookingReference,
    seat_index: u32,
) -> Result<TicketNumber, DomainError> {
    if seat_index >= MAX_TICKETS_PER_BOOKING {
        return Err(DomainError::invalid(
            "seatIds",
            format!("a booking has at most {MAX_TICKETS_PER_BOOKING} tickets"),
        ));
    }
    Ok(TicketNumber(format!(
        "{TICKET_PREFIX}{}-{:03}",
        booking_ref.body(),
        seat_index + 1
    )))
}

impl TicketNumber {
    /// Parses a ticket number (surrounding spaces and lower case accepted).
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let s = s.trim().to_ascii_uppercase();
        let ok = s
            .strip_prefix(TICKET_PREFIX)
            .and_then(|rest| rest.split_once('-'))
            .is_some_and(|(body, pos)| {
                check_body(body)
                    && pos.len() == 3
                    && pos.bytes().all(|b| b.is_ascii_digit())
                    && pos != "000"
            });
        if ok {
            Ok(TicketNumber(s))
        } else {
            Err(DomainError::invalid(
                "ticketNumber",
                "must be TKT-, 18 letters and digits, a dash and three digits",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The reference of the booking the ticket belongs to.
    pub fn booking_reference(&self) -> BookingReference {
        let body = &self.0[TICKET_PREFIX.len()..TICKET_PREFIX.len() + BODY_CHARS];
        BookingReference(format!("{BOOKING_PREFIX}{body}"))
    }

    /// The seat's position in the booking, counted from 0.
    pub fn seat_index(&self) -> u32 {
        // Checked at construction: three digits, not 000.
        self.0[self.0.len() - 3..].parse::<u32>().unwrap_or(1) - 1
    }
}

impl fmt::Display for TicketNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for TicketNumber {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        TicketNumber::parse(&s)
    }
}

impl From<TicketNumber> for String {
    fn from(t: TicketNumber) -> String {
        t.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAX_UNIQUE: u64 = (1 << 40) - 1;

    #[test]
    fn a_reference_looks_like_bk_and_18_characters() {
        let r = booking_reference(1_700_000_000_000, 42);
        assert_eq!(r.as_str().len(), 21);
        assert!(r.as_str().starts_with("BK-"));
        assert_eq!(r.unix_millis(), 1_700_000_000_000);
        assert_eq!(r.unique_bits(), 42);
        assert_eq!(
            BookingReference::parse(&r.as_str().to_lowercase()).unwrap(),
            r
        );
    }

    #[test]
    fn malformed_references_are_refused() {
        for bad in [
            "",
            "BK-",
            "BK-123",
            "XX-01HV5QZ8K2X4M9PTAB",
            "BK-01HV5QZ8K2X4M9PTA",
            "BK-01HV5QZ8K2X4M9PTABC",
            "BK-01HV5QZ8K2X4M9PTAI",
            "BK-01HV5QZ8K2X4M9PTA!",
        ] {
            assert!(BookingReference::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn out_of_range_times_are_clamped() {
        assert_eq!(booking_reference(-5, 1).unix_millis(), 0);
        assert_eq!(
            booking_reference(i64::MAX, 1).unix_millis(),
            MAX_REFERENCE_MILLIS
        );
    }

    #[test]
    fn ticket_numbers_carry_their_booking_and_position() {
        let r = booking_reference(1_700_000_000_000, 7);
        let t = ticket_number(&r, 0).unwrap();
        assert!(t.as_str().starts_with("TKT-") && t.as_str().ends_with("-001"));
        assert_eq!(t.booking_reference(), r);
        assert_eq!(t.seat_index(), 0);
        assert_eq!(ticket_number(&r, 998).unwrap().seat_index(), 998);
        assert!(ticket_number(&r, 999).is_err());
        assert!(TicketNumber::parse(&t.as_str().replace("-001", "-000")).is_err());
        assert!(TicketNumber::parse("TKT-01HV5QZ8K2X4M9PTAB-01").is_err());
        assert!(TicketNumber::parse(r.as_str()).is_err());
    }

    #[test]
    fn references_and_ticket_numbers_are_stored_as_text_and_checked_when_read() {
        let r = booking_reference(1_700_000_000_000, 7);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v, serde_json::json!(r.as_str()));
        assert_eq!(serde_json::from_value::<BookingReference>(v).unwrap(), r);
        assert!(serde_json::from_value::<BookingReference>(serde_json::json!("BK-1")).is_err());
        let t = ticket_number(&r, 3).unwrap();
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(serde_json::from_value::<TicketNumber>(v).unwrap(), t);
    }

    #[test]
    fn the_unique_part_comes_from_the_key() {
        assert_eq!(reference_unique("cmd-1"), reference_unique("cmd-1"));
        assert_ne!(reference_unique("cmd-1"), reference_unique("cmd-2"));
    }

    proptest! {
        #[test]
        fn references_sort_by_time(
            a in 0..=MAX_REFERENCE_MILLIS, b in 0..=MAX_REFERENCE_MILLIS,
            ua in any::<u64>(), ub in any::<u64>(),
        ) {
            prop_assume!(a != b);
            let (ra, rb) = (booking_reference(a, ua), booking_reference(b, ub));
            prop_assert_eq!(a < b, ra < rb);
        }

        #[test]
        fn distinct_inputs_give_distinct_references(
            a in 0..=MAX_REFERENCE_MILLIS, b in 0..=MAX_REFERENCE_MILLIS,
            ua in 0..=MAX_UNIQUE, ub in 0..=MAX_UNIQUE,
        ) {
            prop_assume!((a, ua) != (b, ub));
            prop_assert_ne!(booking_reference(a, ua), booking_reference(b, ub));
        }

        #[test]
        fn references_parse_back_to_their_parts(m in 0..=MAX_REFERENCE_MILLIS, u in any::<u64>()) {
            let r = booking_reference(m, u);
            let back = BookingReference::parse(r.as_str()).unwrap();
            prop_assert_eq!(back.unix_millis(), m);
            prop_assert_eq!(back.unique_bits(), u & MAX_UNIQUE);
        }

        #[test]
        fn ticket_numbers_are_distinct_sortable_and_parse_back(
            a in 0..=MAX_REFERENCE_MILLIS, b in 0..=MAX_REFERENCE_MILLIS,
            u in 0..=MAX_UNIQUE, i in 0u32..999, j in 0u32..999,
        ) {
            let (ra, rb) = (booking_reference(a, u), booking_reference(b, u));
            let (ta, tb) = (ticket_number(&ra, i).unwrap(), ticket_number(&rb, j).unwrap());
            prop_assert_eq!(ta == tb, (a, i) == (b, j));
            prop_assert_eq!(ta < tb, (a, i) < (b, j));
            let back = TicketNumber::parse(ta.as_str()).unwrap();
            prop_assert_eq!(back.booking_reference(), ra);
            prop_assert_eq!(back.seat_index(), i);
        }
    }
}
