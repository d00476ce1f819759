//! Rates per destination prefix with effective dates: what a carrier costs (LCR) and what a
//! customer pays (the cap LCR never exceeds). Money is integer fixed point.

use crate::invalid::Invalid;
use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// An amount of money in millionths of the currency unit (integer fixed point: no float
/// ever touches a price).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Money(pub i64);

impl Money {
    pub const SCALE: i64 = 1_000_000;

    /// Parses a decimal amount (`0.0125`, `1`, `.5`) exactly; at most 6 decimals, not
    /// negative.
    pub fn parse(text: &str) -> Result<Money, Invalid> {
        let t = text.trim();
        let bad = || {
            Invalid::new(format!(
                "{text:?} is not an amount (digits, up to 6 decimals, e.g. 0.0125)"
            ))
        };
        let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
        if (whole.is_empty() && frac.is_empty())
            || frac.len() > 6
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let whole: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad())?
        };
        let frac_value: i64 = if frac.is_empty() {
            0
        } else {
            frac.parse::<i64>().map_err(|_| bad())? * 10_i64.pow(6 - frac.len() as u32)
        };
        whole
            .checked_mul(Self::SCALE)
            .and_then(|w| w.checked_add(frac_value))
            .map(Money)
            .ok_or_else(bad)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let v = self.0.unsigned_abs();
        let scale = Self::SCALE as u64;
        write!(f, "{sign}{}.{:06}", v / scale, v % scale)
    }
}

/// One rate row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rate {
    /// E.164 digits.
    pub prefix: String,
    /// Per minute.
    pub per_minute: Money,
    pub connection_fee: Money,
    /// Billing increment, seconds (at least 1).
    pub increment_s: u32,
    /// Minimum billed duration, seconds.
    pub minimum_s: u32,
    /// In force from this moment (epoch ms).
    pub effective_ms: i64,
}

/// Rates by prefix; the longest matching prefix wins, and of its rows the latest one already
/// in force.
#[derive(Debug, Clone, Default)]
pub struct RateTable {
    /// Rows of each prefix, latest effective first.
    by_prefix: HashMap<String, Vec<Rate>>,
    longest: usize,
}

impl RateTable {
    pub fn new(rates: Vec<Rate>) -> Self {
        let mut by_prefix: HashMap<String, Vec<Rate>> = HashMap::new();
        let mut longest = 0;
        for r in rates {
            longest = longest.max(r.prefix.len());
            by_prefix.entry(r.prefix.clone()).or_default().push(r);
        }
        for rows in by_prefix.values_mut() {
            rows.sort_by_key(|r| std::cmp::Reverse(r.effective_ms));
        }
        RateTable { by_prefix, longest }
    }

    pub fn is_empty(&self) -> bool {
        self.by_prefix.is_empty()
    }

    /// Prefixes with at least one row.
    pub fn prefixes(&self) -> usize {
        self.by_prefix.len()
    }

    /// The rate for `number` at `at_ms`: the longest prefix with a row in force. A longer
    /// prefix whose rows all start later does not hide a shorter one in force.
    pub fn lookup(&self, number: &str, at_ms: i64) -> Option<&Rate> {
        (1..=self.longest.min(number.len())).rev().find_map(|len| {
            self.by_prefix
                .get(&number[..len])?
                .iter()
                .find(|r| r.effective_ms <= at_ms)
        })
    }
}

/// A rate plan's id in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RatePlanId(pub i64);

/// Sell rates shared by customers, with a markup for destinations it has no rate for.
#[derive(Debug, Clone)]
pub struct RatePlan {
    pub id: RatePlanId,
    pub name: String,
    /// Price = cost × (1 + markup_ppm / 1,000,000) where the plan has no rate.
    pub markup_ppm: u32,
    pub rates: RateTable,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(prefix: &str, per_minute: &str, effective_ms: i64) -> Rate {
        Rate {
            prefix: prefix.into(),
            per_minute: Money::parse(per_minute).unwrap(),
            connection_fee: Money(0),
            increment_s: 1,
            minimum_s: 0,
            effective_ms,
        }
    }

    #[test]
    fn money_is_exact() {
        assert_eq!(Money::parse("0.0125").unwrap(), Money(12_500));
        assert_eq!(Money::parse("1").unwrap(), Money(1_000_000));
        assert_eq!(Money::parse(".5").unwrap(), Money(500_000));
        assert_eq!(Money(12_500).to_string(), "0.012500");
        for bad in ["", ".", "-1", "0.1234567", "1e3", "1,5"] {
            assert!(Money::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn longest_prefix_in_force() {
        let t = RateTable::new(vec![
            rate("44", "0.01", 0),
            rate("447", "0.05", 0),
            rate("447", "0.04", 1_000),
            rate("4479", "0.09", 5_000),
        ]);
        let per = |n: &str, at| t.lookup(n, at).map(|r| r.per_minute.to_string());
        assert_eq!(per("442079460018", 0).as_deref(), Some("0.010000"));
        assert_eq!(per("447700900123", 500).as_deref(), Some("0.050000"));
        assert_eq!(per("447700900123", 1_000).as_deref(), Some("0.040000"));
        assert_eq!(
            per("447900900123", 1_000).as_deref(),
            Some("0.040000"),
            "4479 not yet"
        );
        assert_eq!(per("447900900123", 5_000).as_deref(), Some("0.090000"));
        assert_eq!(per("33142685300", 0), None);
    }
}
