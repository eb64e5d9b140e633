//! Money: `rust_decimal` for arithmetic, integer minor units beside an ISO 4217 code for
//! storage (FerretDB has no Decimal128, and integers sum exactly in aggregations).

use std::fmt;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::DomainError;

/// Largest price accepted for one seat, in major units.
pub const MAX_SEAT_PRICE: i64 = 1_000_000;

/// Three upper-case ASCII letters. Every supported currency has two minor digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    pub const USD: Currency = Currency(*b"USD");

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let b = s.as_bytes();
        if b.len() != 3 || !b.iter().all(u8::is_ascii_uppercase) {
            return Err(DomainError::invalid(
                "currency",
                "must be a three-letter ISO 4217 code such as USD",
            ));
        }
        Ok(Currency([b[0], b[1], b[2]]))
    }

    pub fn as_str(&self) -> &str {
        // Constructed only from ASCII upper-case letters.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }

    /// Minor digits per major unit (2 for every currency we accept).
    pub fn minor_digits(&self) -> u32 {
        2
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Currency::parse(&s).map_err(serde::de::Error::custom)
    }
}

// NOTE: any three upper-case letters parse (there is no list of supported currencies),
// so the schema is a pattern, not an enum.
impl schemars::JsonSchema for Currency {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Currency".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[A-Z]{3}$",
            "description": "An ISO 4217 code in upper case, such as USD."
        })
    }
}

/// An exact amount: integer minor units (cents) and a currency.
///
/// Stored and sent as `{"amountMinor": 5000, "currency": "USD", "amount": "50.00"}`; the
/// `amount` string is for people and is ignored when read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    pub fn from_minor(minor: i64, currency: Currency) -> Self {
        Money { minor, currency }
    }

    pub fn zero(currency: Currency) -> Self {
        Money { minor: 0, currency }
    }

    /// Parses a major-unit decimal (such as `49.99`): non-negative, at most two decimal
    /// places, at most [`MAX_SEAT_PRICE`].
    pub fn from_decimal(amount: Decimal, currency: Currency) -> Result<Self, DomainError> {
        if amount.is_sign_negative() && !amount.is_zero() {
            return Err(DomainError::invalid("price", "must not be negative"));
        }
        if amount > Decimal::from(MAX_SEAT_PRICE) {
            return Err(DomainError::invalid(
                "price",
                format!("must be at most {MAX_SEAT_PRICE}"),
            ));
        }
        let scaled = amount * Decimal::from(10i64.pow(currency.minor_digits()));
        if scaled.fract() != Decimal::ZERO {
            return Err(DomainError::invalid(
                "price",
                "must have at most two decimal places",
            ));
        }
        let minor = scaled
            .to_i64()
            .ok_or_else(|| DomainError::invalid("price", "out of range"))?;
        Ok(Money { minor, currency })
    }

    pub fn minor(&self) -> i64 {
        self.minor
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    pub fn to_decimal(&self) -> Decimal {
        Decimal::new(self.minor, self.currency.minor_digits())
    }

    /// Sum of amounts of one currency; `None` on a currency mismatch or overflow.
    pub fn checked_add(&self, other: Money) -> Option<Money> {
        if self.currency != other.currency {
            return None;
        }
        Some(Money {
            minor: self.minor.checked_add(other.minor)?,
            currency: self.currency,
        })
    }

    pub fn sum<'a>(
        currency: Currency,
        items: impl IntoIterator<Item = &'a Money>,
    ) -> Option<Money> {
        items
            .into_iter()
            .try_fold(Money::zero(currency), |acc, m| acc.checked_add(*m))
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal(), self.currency)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MoneyRepr {
    amount_minor: i64,
    currency: Currency,
    #[serde(default, skip_deserializing)]
    amount: String,
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        MoneyRepr {
            amount_minor: self.minor,
            currency: self.currency,
            amount: self.to_decimal().to_string(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = MoneyRepr::deserialize(d)?;
        Ok(Money {
            minor: r.amount_minor,
            currency: r.currency,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    #[test]
    fn decimals_become_exact_minor_units() {
        let m = Money::from_decimal(Decimal::from_str("49.99").unwrap(), Currency::USD).unwrap();
        assert_eq!(m.minor(), 4999);
        assert_eq!(m.to_decimal().to_string(), "49.99");
    }

    #[test]
    fn negative_fractional_cents_and_huge_prices_are_refused() {
        for s in ["-1", "0.001", "1000000.01"] {
            assert!(
                Money::from_decimal(Decimal::from_str(s).unwrap(), Currency::USD).is_err(),
                "{s}"
            );
        }
    }

    #[test]
    fn currencies_must_match_to_add() {
        let eur = Currency::parse("EUR").unwrap();
        assert!(Money::from_minor(1, Currency::USD)
            .checked_add(Money::from_minor(1, eur))
            .is_none());
        assert!(Currency::parse("usd").is_err());
    }

    #[test]
    fn money_round_trips_through_json() {
        let m = Money::from_minor(12345, Currency::USD);
        let v = serde_json::to_value(m).unwrap();
        assert_eq!(v["amount"], "123.45");
        assert_eq!(serde_json::from_value::<Money>(v).unwrap(), m);
    }

    proptest! {
        #[test]
        fn minor_units_round_trip(minor in 0i64..100_000_000) {
            let m = Money::from_minor(minor, Currency::USD);
            prop_assert_eq!(Money::from_decimal(m.to_decimal(), Currency::USD).unwrap(), m);
        }

        #[test]
        fn a_sum_equals_the_sum_of_minor_units(xs in proptest::collection::vec(0i64..1_000_000, 0..50)) {
            let ms: Vec<Money> = xs.iter().map(|x| Money::from_minor(*x, Currency::USD)).collect();
            prop_assert_eq!(Money::sum(Currency::USD, &ms).unwrap().minor(), xs.iter().sum::<i64>());
        }
    }
}
