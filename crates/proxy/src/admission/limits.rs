//! Admission's limits, in the order of SPEC.md: the switch's CPS, the customer's CPS and
//! minutes (its channels are `cluster` leases the engine takes), its balance before and
//! after the number is read, and the 80 % warnings given once per window.

use std::collections::HashMap;
use std::time::Instant;

use cluster::{Limiter, Minutes, Period, RESERVED_MS, Scope};
use domain::{Customer, CustomerId, LimitKind, Money, Reject, Settings};

/// Stage "global limits", CPS part: the switch's new calls per second, counted after
/// identification so that unknown sources cannot use up the budget (the channel part is a
/// `cluster` lease taken by the engine).
pub(crate) fn global_cps(
    limiter: &mut dyn Limiter,
    settings: &Settings,
    now: Instant,
) -> Result<(), Reject> {
    match settings.global_max_cps {
        Some(rate) if !limiter.take(Scope::Global, rate, now) => Err(Reject::SystemCps),
        _ => Ok(()),
    }
}

/// Stage "customer CPS": a token bucket per customer (`cluster`), refilled continuously.
pub(crate) fn customer_cps(
    limiter: &mut dyn Limiter,
    customer: &Customer,
    now: Instant,
) -> Result<(), Reject> {
    match customer.max_cps {
        Some(rate) if !limiter.take(Scope::Customer(customer.id.0), rate, now) => {
            Err(Reject::CpsLimit)
        }
        _ => Ok(()),
    }
}

/// Stage "minutes": the customer's daily and monthly caps, with its calls in progress
/// counted (`cluster::Minutes`: each at least a reserved minute); this call would reserve
/// one more minute.
pub(crate) fn minutes(
    minutes: &dyn Minutes,
    customer: &Customer,
    now_ms: i64,
) -> Result<(), Reject> {
    for (cap, period, reject) in [
        (
            customer.daily_minutes,
            Period::day_of(customer.local_ms(now_ms)),
            Reject::DailyMinutes,
        ),
        (
            customer.monthly_minutes,
            Period::month_of(customer.local_ms(now_ms)),
            Reject::MonthlyMinutes,
        ),
    ] {
        if let Some(cap) = cap
            && minutes.used(customer.id.0, period, now_ms) + RESERVED_MS > i64::from(cap) * 60_000
        {
            return Err(reject);
        }
    }
    Ok(())
}

/// Stage "balance": a prepaid customer needs a balance above zero, a postpaid one above
/// minus its credit limit (`billing.refuse_code` picks 402 or 403).
pub(crate) fn balance(
    customer: &Customer,
    balance: Money,
    settings: &Settings,
) -> Result<(), Reject> {
    if customer.may_spend(balance) {
        Ok(())
    } else {
        Err(no_money(settings))
    }
}

/// Stage "balance", once the number is read: what is left must pay the call's first
/// increment (its minimum and connection fee) at the customer's price for the number, or
/// the call would be cut as soon as it is answered. (A price that is a rate plan's markup
/// on the carrier's cost is known only per carrier; it is checked when the call is up.)
pub(crate) fn first_increment(
    customer: &Customer,
    balance: Money,
    first: Option<Money>,
    settings: &Settings,
) -> Result<(), Reject> {
    match (customer.spendable(balance), first) {
        (Some(left), Some(first)) if left < first => Err(no_money(settings)),
        _ => Ok(()),
    }
}

/// The refusal for want of money (`billing.refuse_code` picks 402 or 403).
fn no_money(settings: &Settings) -> Reject {
    if settings.balance_refuse_code == 403 {
        Reject::InsufficientBalance
    } else {
        Reject::PaymentRequired
    }
}

/// Limit warnings already given, per customer and limit, with the window they were given
/// in: one per window, not one per call.
#[derive(Debug, Default)]
pub(crate) struct Warnings {
    given: HashMap<(CustomerId, LimitKind), i64>,
}

impl Warnings {
    /// `true` the first time in `window`.
    pub(crate) fn once(&mut self, customer: CustomerId, kind: LimitKind, window: i64) -> bool {
        self.given.insert((customer, kind), window) != Some(window)
    }

    /// Lets the next [`once`](Self::once) warn again.
    pub(crate) fn rearm(&mut self, customer: CustomerId, kind: LimitKind) {
        self.given.remove(&(customer, kind));
    }
}
