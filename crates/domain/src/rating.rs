//! Rating a call when its CDR is written (SPEC.md "Accounting and billing"; the rules are in
//! docs/CDR.md): cost from the carrier's rate, price from the customer's own rate, else its
//! rate plan's rate, else the plan's markup on cost. Integer money only.

use crate::cdr::Cdr;
use crate::directory::Directory;
use crate::party::{CarrierId, CustomerId};
use crate::rates::{Money, Rate};

/// Seconds billed for a call with `billable_ms` of talk under `rate`: whole seconds rounded
/// up, at least the minimum, then rounded up to the increment. An unanswered call bills
/// nothing.
pub fn billed_secs(rate: &Rate, answered: bool, billable_ms: i64) -> i64 {
    if !answered {
        return 0;
    }
    let secs = (billable_ms.max(0) + 999) / 1000;
    let secs = secs.max(i64::from(rate.minimum_s));
    let inc = i64::from(rate.increment_s.max(1));
    (secs + inc - 1) / inc * inc
}

/// What a call costs under `rate`: the billed seconds at the per-minute rate (rounded up to
/// the millionth) plus the connection fee; nothing for an unanswered call.
pub fn charge(rate: &Rate, answered: bool, billable_ms: i64) -> Money {
    if !answered {
        return Money(0);
    }
    let secs = i128::from(billed_secs(rate, answered, billable_ms));
    let talk = (i128::from(rate.per_minute.0) * secs + 59) / 60;
    Money(
        i64::try_from(talk)
            .unwrap_or(i64::MAX)
            .saturating_add(rate.connection_fee.0),
    )
}

/// `cost` with a markup of `ppm` millionths, rounded up.
pub fn marked_up(cost: Money, ppm: u32) -> Money {
    let v = (i128::from(cost.0) * (1_000_000 + i128::from(ppm)) + 999_999) / 1_000_000;
    Money(i64::try_from(v).unwrap_or(i64::MAX))
}

/// How a call's price grows with its talk time: the customer's rate (its own or its rate
/// plan's), or the plan's markup on the carrier's cost.
#[derive(Debug, Clone, PartialEq)]
pub enum Tariff {
    Rate(Rate),
    Markup { cost: Rate, ppm: u32 },
}

impl Tariff {
    /// The price of a call with `billable_ms` of talk (nothing when unanswered).
    pub fn price(&self, answered: bool, billable_ms: i64) -> Money {
        match self {
            Tariff::Rate(r) => charge(r, answered, billable_ms),
            Tariff::Markup { cost, ppm } => marked_up(charge(cost, answered, billable_ms), *ppm),
        }
    }
}

/// The price rule of a call to `number` (E.164) started at `at_ms`, carried by `carrier`:
/// the customer's own rate, else its rate plan's rate, else the plan's markup on the
/// carrier's rate; `None` when the call has no price.
pub fn tariff(
    directory: &Directory,
    customer: CustomerId,
    carrier: Option<CarrierId>,
    number: &str,
    at_ms: i64,
) -> Option<Tariff> {
    if let Some(r) = directory
        .customer_rates(customer)
        .and_then(|t| t.lookup(number, at_ms))
    {
        return Some(Tariff::Rate(r.clone()));
    }
    let plan = directory
        .customer(customer)
        .and_then(|c| c.rate_plan)
        .and_then(|id| directory.rate_plan(id))?;
    if let Some(r) = plan.rates.lookup(number, at_ms) {
        return Some(Tariff::Rate(r.clone()));
    }
    let cost = carrier
        .and_then(|c| directory.carrier_rates(c))
        .and_then(|t| t.lookup(number, at_ms))?;
    Some(Tariff::Markup {
        cost: cost.clone(),
        ppm: plan.markup_ppm,
    })
}

/// Fills the CDR's cost and price from the directory's rates in force at the call's start
/// (the E.164 destination; a call refused before its number was read is not rated).
pub fn rate_cdr(cdr: &mut Cdr, directory: &Directory) {
    let Some(number) = cdr.callee_e164.as_deref() else {
        return;
    };
    let answered = cdr.answer_ms.is_some();
    let at = cdr.invite_ms;
    cdr.cost = cdr
        .carrier_id
        .and_then(|c| directory.carrier_rates(c))
        .and_then(|t| t.lookup(number, at))
        .map(|r| charge(r, answered, cdr.billable_ms));
    cdr.price = tariff(directory, cdr.customer_id, cdr.carrier_id, number, at)
        .map(|t| t.price(answered, cdr.billable_ms));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(per_minute: &str, fee: &str, increment_s: u32, minimum_s: u32) -> Rate {
        Rate {
            prefix: "44".into(),
            per_minute: Money::parse(per_minute).unwrap(),
            connection_fee: Money::parse(fee).unwrap(),
            increment_s,
            minimum_s,
            effective_ms: 0,
        }
    }

    /// A hand-computed table: (increment/minimum, talk ms) → billed seconds and amount at
    /// 0.060000 a minute (0.001 a second).
    #[test]
    fn increments_minimums_and_fees() {
        let cases = [
            // 60/60: any talk up to a minute bills a minute; 61 s bills two.
            ((60, 60), 1, 60, "0.060000"),
            ((60, 60), 60_000, 60, "0.060000"),
            ((60, 60), 60_001, 120, "0.120000"),
            // 1/1: per second, rounded up.
            ((1, 1), 1, 1, "0.001000"),
            ((1, 1), 45_200, 46, "0.046000"),
            // 30/6: at least 30 s, then 6-second steps.
            ((6, 30), 12_000, 30, "0.030000"),
            ((6, 30), 30_001, 36, "0.036000"),
            ((6, 30), 95_000, 96, "0.096000"),
            // Answered with no talk still bills the minimum.
            ((6, 30), 0, 30, "0.030000"),
            ((1, 0), 0, 0, "0.000000"),
        ];
        for ((inc, min), ms, secs, amount) in cases {
            let r = rate("0.06", "0", inc, min);
            assert_eq!(billed_secs(&r, true, ms), secs, "{inc}/{min} {ms} ms");
            assert_eq!(
                charge(&r, true, ms).to_string(),
                amount,
                "{inc}/{min} {ms} ms"
            );
        }
        // The connection fee is added to answered calls only.
        let r = rate("0.06", "0.015", 60, 60);
        assert_eq!(charge(&r, true, 10_000).to_string(), "0.075000");
        assert_eq!(charge(&r, false, 0), Money(0));
        // Rounding up to the millionth: 0.0125 a minute for 7 s = 0.00145833…
        let r = rate("0.0125", "0", 1, 0);
        assert_eq!(charge(&r, true, 7_000).to_string(), "0.001459");
        // Markup: 25 % on 0.001459 = 0.00182375 → 0.001824.
        assert_eq!(marked_up(Money(1_459), 250_000).to_string(), "0.001824");
        assert_eq!(marked_up(Money(1_000), 0), Money(1_000));
    }
}
