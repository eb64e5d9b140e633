//! Card numbers and the simulated payment gateway of DESIGN.md: a Luhn-checked number
//! newtype, its brand and last four digits (the only parts ever stored), and the table of
//! test cards and their outcomes.
//!
//! | card number      | outcome                                                  |
//! |------------------|----------------------------------------------------------|
//! | 4242424242424242 | approved                                                 |
//! | 4000000000000002 | declined `card_declined`, not retried                    |
//! | 4000000000009995 | declined `insufficient_funds`, not retried               |
//! | 4000000000000119 | transient `processing_error` on every attempt            |
//! | 4000000000000259 | transient `processing_error` on attempts 1 and 2, then approved |
//! | any other valid  | approved                                                 |

use std::fmt;

use crate::DomainError;

pub const CARD_DECLINED: &str = "card_declined";
pub const INSUFFICIENT_FUNDS: &str = "insufficient_funds";
pub const PROCESSING_ERROR: &str = "processing_error";

/// A card number that passed the checks: 12 to 19 digits with a valid Luhn check digit.
///
/// It is never serialized, and its `Debug` shows only the last four digits, so it cannot
/// end up in a log or a document by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct CardNumber(String);

/// Parses a card number. Spaces and dashes between digit groups are dropped; anything else
/// but digits is refused, as are lengths outside 12 to 19 and a failed Luhn check.
pub fn parse_card_number(s: &str) -> Result<CardNumber, DomainError> {
    let digits: String = s
        .trim()
        .chars()
        .filter(|c| *c != ' ' && *c != '-')
        .collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DomainError::invalid(
            "cardNumber",
            "must contain only digits",
        ));
    }
    if !(12..=19).contains(&digits.len()) {
        return Err(DomainError::invalid(
            "cardNumber",
            "must be 12 to 19 digits",
        ));
    }
    if !luhn_ok(&digits) {
        return Err(DomainError::invalid(
            "cardNumber",
            "is not a valid card number",
        ));
    }
    Ok(CardNumber(digits))
}

/// The Luhn check over ASCII digits.
fn luhn_ok(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 {
                    d2 - 9
                } else {
                    d2
                }
            } else {
                d
            }
        })
        .sum();
    // NOTE: not `is_multiple_of`, which needs Rust 1.87; the workspace allows 1.85.
    let check_digit_error = sum % 10;
    check_digit_error == 0
}

impl CardNumber {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        parse_card_number(s)
    }

    /// The full digits, for the gateway call only.
    pub fn digits(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardNumber(****{})", last4(self))
    }
}

/// The last four digits, as stored in `payments.cardLast4`.
pub fn last4(number: &CardNumber) -> &str {
    &number.0[number.0.len() - 4..]
}

string_enum! {
    /// The card network, as stored in `payments.cardBrand`.
    pub enum CardBrand {
        Visa => "Visa",
        Mastercard => "Mastercard",
        Amex => "Amex",
        Unknown => "Unknown",
    }
}

/// The brand from the number's prefix: Visa 4; Mastercard 51-55 and 2221-2720; Amex 34
/// and 37; anything else Unknown.
pub fn brand(number: &CardNumber) -> CardBrand {
    let d = number.0.as_bytes();
    let prefix = |n: usize| -> u32 { number.0[..n].parse().unwrap_or(0) };
    if d[0] == b'4' {
        CardBrand::Visa
    } else if (51..=55).contains(&prefix(2)) || (2221..=2720).contains(&prefix(4)) {
        CardBrand::Mastercard
    } else if matches!(prefix(2), 34 | 37) {
        CardBrand::Amex
    } else {
        CardBrand::Unknown
    }
}

/// What the gateway answered for one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardOutcome {
    Approved,
    /// A final refusal: the payment fails and is not retried.
    Declined {
        code: &'static str,
    },
    /// A passing fault: the attempt may be retried after a back-off.
    Transient {
        code: &'static str,
    },
}

impl CardOutcome {
    pub fn is_retryable(self) -> bool {
        matches!(self, CardOutcome::Transient { .. })
    }

    /// The failure code, if any (stored in `payments.failureCode`).
    pub fn code(self) -> Option<&'static str> {
        match self {
            CardOutcome::Approved => None,
            CardOutcome::Declined { code } | CardOutcome::Transient { code } => Some(code),
        }
    }
}

/// The simulated gateway's answer for `number` on attempt `attempt` (counted from 1; 0 is
/// taken as 1).
pub fn simulate(number: &CardNumber, attempt: u32) -> CardOutcome {
    let attempt = attempt.max(1);
    match number.digits() {
        "4000000000000002" => CardOutcome::Declined {
            code: CARD_DECLINED,
        },
        "4000000000009995" => CardOutcome::Declined {
            code: INSUFFICIENT_FUNDS,
        },
        "4000000000000119" => CardOutcome::Transient {
            code: PROCESSING_ERROR,
        },
        "4000000000000259" if attempt <= 2 => CardOutcome::Transient {
            code: PROCESSING_ERROR,
        },
        _ => CardOutcome::Approved,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn card(s: &str) -> CardNumber {
        parse_card_number(s).unwrap()
    }

    #[test]
    fn the_test_cards_behave_as_the_design_says() {
        let ok = card("4242424242424242");
        assert_eq!(simulate(&ok, 1), CardOutcome::Approved);
        assert_eq!(
            simulate(&card("4000000000000002"), 1),
            CardOutcome::Declined {
                code: "card_declined"
            }
        );
        assert_eq!(
            simulate(&card("4000000000009995"), 1),
            CardOutcome::Declined {
                code: "insufficient_funds"
            }
        );
        let always = card("4000000000000119");
        for attempt in 1..10 {
            assert_eq!(
                simulate(&always, attempt),
                CardOutcome::Transient {
                    code: "processing_error"
                }
            );
        }
        let flaky = card("4000000000000259");
        assert!(simulate(&flaky, 1).is_retryable() && simulate(&flaky, 2).is_retryable());
        assert_eq!(simulate(&flaky, 3), CardOutcome::Approved);
        assert!(!simulate(&card("4000000000000002"), 1).is_retryable());
        assert_eq!(
            simulate(&card("5555555555554444"), 1),
            CardOutcome::Approved
        );
    }

    #[test]
    fn numbers_must_be_digits_of_the_right_length_with_a_good_check_digit() {
        assert_eq!(card("4242 4242 4242 4242").digits(), "4242424242424242");
        assert_eq!(card("4242-4242-4242-4242").digits(), "4242424242424242");
        let too_long = "4".repeat(20);
        for bad in [
            "",
            "4242424242424241",
            "4242x42424242424",
            "42424242424",
            too_long.as_str(),
            "４２４２",
        ] {
            assert!(parse_card_number(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn brands_come_from_the_prefix() {
        assert_eq!(brand(&card("4242424242424242")), CardBrand::Visa);
        assert_eq!(brand(&card("5555555555554444")), CardBrand::Mastercard);
        assert_eq!(brand(&card("2223003122003222")), CardBrand::Mastercard);
        assert_eq!(brand(&card("378282246310005")), CardBrand::Amex);
        assert_eq!(brand(&card("371449635398431")), CardBrand::Amex);
        assert_eq!(brand(&card("6011111111111117")), CardBrand::Unknown);
        assert_eq!(brand(&card("2720990000000007")), CardBrand::Mastercard);
        assert_eq!(brand(&card("2721000000000004")), CardBrand::Unknown);
    }

    #[test]
    fn only_the_last_four_digits_show() {
        let c = card("4242424242424242");
        assert_eq!(last4(&c), "4242");
        assert_eq!(format!("{c:?}"), "CardNumber(****4242)");
    }

    /// Appends the Luhn check digit to `body`.
    fn with_check_digit(body: &str) -> String {
        (0..10)
            .map(|d| format!("{body}{d}"))
            .find(|s| luhn_ok(s))
            .unwrap()
    }

    proptest! {
        #[test]
        fn exactly_one_check_digit_makes_a_number_valid(body in "[0-9]{11,18}") {
            let valid = (0..10).filter(|d| luhn_ok(&format!("{body}{d}"))).count();
            prop_assert_eq!(valid, 1);
            let n = with_check_digit(&body);
            let parsed = card(&n);
            prop_assert_eq!(parsed.digits(), n.as_str());
        }

        #[test]
        fn changing_one_digit_breaks_the_check(body in "[0-9]{11,18}", pos in any::<prop::sample::Index>(), delta in 1u8..10) {
            let n = with_check_digit(&body);
            let mut bytes = n.into_bytes();
            let i = pos.index(bytes.len());
            bytes[i] = b'0' + (bytes[i] - b'0' + delta) % 10;
            prop_assert!(parse_card_number(std::str::from_utf8(&bytes).unwrap()).is_err());
        }
    }
}
