//! Money spent by calls in progress (SPEC.md "Accounting and billing"): what each answered
//! call of a billed customer costs so far at its tariff, and the moment the customer's
//! calls together exhaust what it has left. The engine cuts all of them at that moment, so
//! the balance is shared by the calls in progress: none runs on another's money, and the
//! balance never goes below what the customer may spend. No I/O; the engine owns one.

use std::collections::HashMap;

use crate::call::CallRef;
use crate::party::CustomerId;
use crate::rates::Money;
use crate::rating::Tariff;

/// An answered call being charged.
#[derive(Debug, Clone)]
pub struct LiveCall {
    /// The CDR the call's charge is posted with.
    pub cdr_id: String,
    pub answered_ms: i64,
    pub tariff: Tariff,
}

impl LiveCall {
    /// The call's price if it ended at `at_ms`.
    pub fn price_at(&self, at_ms: i64) -> Money {
        self.tariff.price(true, at_ms - self.answered_ms)
    }
}

/// Answered calls of billed customers, grouped by customer.
#[derive(Debug, Default)]
pub struct Spending {
    customers: HashMap<CustomerId, HashMap<CallRef, LiveCall>>,
}

impl Spending {
    /// An answered call starts costing its customer.
    pub fn answered(&mut self, customer: CustomerId, call: CallRef, live: LiveCall) {
        self.customers
            .entry(customer)
            .or_default()
            .insert(call, live);
    }

    /// The call ended at `at_ms`: its CDR id and what it cost (`None` when it was not
    /// being charged).
    pub fn ended(
        &mut self,
        customer: CustomerId,
        call: CallRef,
        at_ms: i64,
    ) -> Option<(String, Money)> {
        let calls = self.customers.get_mut(&customer)?;
        let live = calls.remove(&call)?;
        if calls.is_empty() {
            self.customers.remove(&customer);
        }
        let price = live.price_at(at_ms);
        Some((live.cdr_id, price))
    }

    /// What the customer's calls in progress cost if they ended at `at_ms`.
    pub fn accrued(&self, customer: CustomerId, at_ms: i64) -> Money {
        self.customers.get(&customer).map_or(Money(0), |calls| {
            Money(
                calls
                    .values()
                    .map(|c| c.price_at(at_ms).0)
                    .fold(0i64, i64::saturating_add),
            )
        })
    }

    /// The last millisecond (at or after `from_ms`, before `until_ms`) at which the
    /// customer's calls in progress together cost no more than `left`: the moment to end
    /// them. `from_ms` itself when they already cost more; `None` when they never exceed
    /// it before `until_ms` (or the customer has no call being charged).
    ///
    /// Prices only grow with time (a step function per call), so the first millisecond
    /// that costs too much is found by doubling then halving: about 50 evaluations of the
    /// customer's calls.
    pub fn exhausted_at(
        &self,
        customer: CustomerId,
        left: Money,
        from_ms: i64,
        until_ms: i64,
    ) -> Option<i64> {
        if !self.customers.contains_key(&customer) {
            return None;
        }
        let over = |t: i64| self.accrued(customer, t) > left;
        if over(from_ms) {
            return Some(from_ms);
        }
        // Invariant: `lo` is affordable; `hi`, once found, is not.
        let (mut lo, mut step) = (from_ms, 1_000i64);
        let mut hi = loop {
            let t = lo.saturating_add(step).min(until_ms);
            if over(t) {
                break t;
            }
            if t >= until_ms {
                return None;
            }
            lo = t;
            step = step.saturating_mul(2);
        };
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if over(mid) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Some(lo)
    }

    /// The customer's calls being charged.
    pub fn calls(&self, customer: CustomerId) -> Vec<CallRef> {
        self.customers
            .get(&customer)
            .map(|c| c.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Customers with calls being charged.
    pub fn customers(&self) -> Vec<CustomerId> {
        self.customers.keys().copied().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.customers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rates::Rate;

    fn tariff(per_minute: &str, fee: &str, increment_s: u32, minimum_s: u32) -> Tariff {
        Tariff::Rate(Rate {
            prefix: "34".into(),
            per_minute: Money::parse(per_minute).unwrap(),
            connection_fee: Money::parse(fee).unwrap(),
            increment_s,
            minimum_s,
            effective_ms: 0,
        })
    }

    fn live(answered_ms: i64, t: &Tariff) -> LiveCall {
        LiveCall {
            cdr_id: format!("cdr-{answered_ms}"),
            answered_ms,
            tariff: t.clone(),
        }
    }

    const C: CustomerId = CustomerId(7);
    const DAY: i64 = 86_400_000;

    #[test]
    fn one_call_per_second_billing_ends_at_the_last_paid_second() {
        // 0.60 a minute = 0.01 a second; 0.25 pays 25 seconds.
        let t = tariff("0.60", "0", 1, 1);
        let mut s = Spending::default();
        s.answered(C, CallRef(1), live(10_000, &t));
        let end = s.exhausted_at(C, Money::parse("0.25").unwrap(), 10_000, DAY);
        assert_eq!(end, Some(35_000));
        assert_eq!(s.accrued(C, 35_000).to_string(), "0.250000");
        assert_eq!(s.accrued(C, 35_001).to_string(), "0.260000");
    }

    #[test]
    fn increments_minimums_and_fees_move_the_end() {
        // 60/60 at 0.06 with a fee of 0.01: 0.10 pays the fee and one minute only.
        let t = tariff("0.06", "0.01", 60, 60);
        let mut s = Spending::default();
        s.answered(C, CallRef(1), live(0, &t));
        assert_eq!(
            s.exhausted_at(C, Money::parse("0.10").unwrap(), 0, DAY),
            Some(60_000)
        );
        // Less than the fee and the minimum: over at once.
        assert_eq!(
            s.exhausted_at(C, Money::parse("0.05").unwrap(), 5_000, DAY),
            Some(5_000)
        );
        // 30/6 at 0.06 (0.001 a second): 0.047 pays 42 s (30, then 6-second steps).
        let t = tariff("0.06", "0", 6, 30);
        let mut s = Spending::default();
        s.answered(C, CallRef(1), live(0, &t));
        assert_eq!(
            s.exhausted_at(C, Money::parse("0.047").unwrap(), 0, DAY),
            Some(42_000)
        );
    }

    #[test]
    fn concurrent_calls_share_the_balance_and_end_together() {
        // 50 calls answered 20 ms apart at 0.01 a second share 10.00: about 20 s each.
        let t = tariff("0.60", "0", 1, 1);
        let mut s = Spending::default();
        for i in 0..50 {
            s.answered(C, CallRef(i), live(i as i64 * 20, &t));
        }
        let left = Money::parse("10").unwrap();
        let end = s.exhausted_at(C, left, 1_000, DAY).unwrap();
        assert!(s.accrued(C, end) <= left);
        assert!(s.accrued(C, end + 1) > left);
        assert!((19_000..=21_000).contains(&end), "{end}");
        // Ending the calls at that moment costs exactly what was accrued, within the balance.
        let total: i64 = (0..50)
            .map(|i| s.ended(C, CallRef(i), end).unwrap().1.0)
            .sum();
        assert!(total <= left.0);
        assert!(s.is_empty());
    }

    #[test]
    fn more_money_or_fewer_calls_move_the_end_later() {
        let t = tariff("0.60", "0", 1, 1);
        let mut s = Spending::default();
        s.answered(C, CallRef(1), live(0, &t));
        s.answered(C, CallRef(2), live(0, &t));
        let two = s.exhausted_at(C, Money::parse("0.40").unwrap(), 0, DAY);
        assert_eq!(two, Some(20_000));
        let credited = s.exhausted_at(C, Money::parse("0.80").unwrap(), 0, DAY);
        assert_eq!(credited, Some(40_000));
        // One call ends at 10 s (0.10): the other may use the 0.30 left.
        let (_, cost) = s.ended(C, CallRef(1), 10_000).unwrap();
        assert_eq!(cost.to_string(), "0.100000");
        let left = Money(Money::parse("0.40").unwrap().0 - cost.0);
        assert_eq!(s.exhausted_at(C, left, 10_000, DAY), Some(30_000));
        // Nothing to cut within the horizon, or no call at all.
        assert_eq!(
            s.exhausted_at(C, Money::parse("1000").unwrap(), 0, DAY),
            None
        );
        assert_eq!(s.exhausted_at(CustomerId(8), Money(0), 0, DAY), None);
    }
}
