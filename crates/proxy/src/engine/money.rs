//! Money while calls are up: each answered call of a billed customer is charged as it runs
//! (`domain::Spending`), the customer's calls are cut together with BYE when they have
//! spent what is left, and admission sees the same running balance. What is left is the
//! polled balance less the charges of ended calls not in it yet (`BalanceSource`), plus the
//! credit limit when postpaid.

use std::time::{Duration, Instant};

use domain::{CallRef, CustomerId, LiveCall, Money};

use super::dialog::Phase;
use super::{CallTimer, Engine};

/// How often the balances are looked at again while calls are being charged (they are
/// polled from the store once a second).
const BALANCE_CHECK: Duration = Duration::from_secs(1);

/// Calls are cut this long before the last paid millisecond, so that the BYE leaves inside
/// the paid time and the CDR never bills an increment the balance cannot pay.
const CUT_MARGIN: Duration = Duration::from_millis(200);

/// An answered or ended call changes when its customer's money runs out; the moment is
/// computed again this long after (once for all the changes in between: a customer with
/// thousands of calls answering hundreds a second is not searched hundreds of times).
/// Well inside `CUT_MARGIN`, so a cut moved earlier still lands in the paid time.
const REVIEW_DELAY: Duration = Duration::from_millis(100);

/// The reason on the CDRs of calls cut for want of money.
pub(super) const BALANCE_REASON: &str = "Balance Exhausted";

impl Engine {
    /// The customer's balance as admission sees it: polled, less ended calls' charges not
    /// in it yet, less what its calls in progress have cost so far.
    pub(super) fn balance_now(&self, customer: CustomerId, now_ms: i64) -> Money {
        let held = self.balances.get(customer);
        let first_increments = self.holds.get(&customer).map_or(0, |(sum, _)| *sum);
        Money(
            held.0
                .saturating_sub(self.spending.accrued(customer, now_ms).0)
                .saturating_sub(first_increments),
        )
    }

    /// An admitted call of a billed customer holds its first increment (minimum and
    /// connection fee) against the balance until it is answered or ends: simultaneous
    /// INVITEs each see the others' holds, so together they cannot take a prepaid balance
    /// below zero.
    pub(super) fn hold_first(&mut self, customer: CustomerId, cref: CallRef, amount: Money) {
        if amount.0 <= 0 || self.held.contains_key(&cref) {
            return;
        }
        self.held.insert(cref, (customer, amount));
        let (sum, n) = self.holds.entry(customer).or_insert((0, 0));
        *sum = sum.saturating_add(amount.0);
        *n += 1;
    }

    /// The call's hold goes (answered: its charge counts from now; or ended).
    pub(super) fn release_hold(&mut self, cref: CallRef) {
        let Some((customer, amount)) = self.held.remove(&cref) else {
            return;
        };
        if let Some((sum, n)) = self.holds.get_mut(&customer) {
            *sum = sum.saturating_sub(amount.0);
            *n -= 1;
            if *n == 0 {
                self.holds.remove(&customer);
            }
        }
    }

    /// A billed customer's call was answered: it costs from now on at its tariff.
    pub(super) fn charge_answered(&mut self, now: Instant, cref: CallRef) {
        let directory = self.directory.load();
        let Some(call) = self.calls.get(&cref) else {
            return;
        };
        let billed = directory
            .customer(call.customer)
            .is_some_and(|c| c.spendable(Money(0)).is_some());
        if !billed || !matches!(call.phase, Phase::Confirmed(_)) {
            return;
        }
        let Some(tariff) = domain::rating::tariff(
            &directory,
            call.customer,
            call.carrier(),
            &call.destination,
            call.started_ms,
        ) else {
            return;
        };
        let customer = call.customer;
        let live = LiveCall {
            cdr_id: call.cdr_id.clone(),
            answered_ms: self.clock.epoch_ms(now),
            tariff,
        };
        self.spending.answered(customer, cref, live);
        if self.balance_check.is_none() {
            self.balance_check = Some(now + BALANCE_CHECK);
        }
        self.review_soon(now, customer);
    }

    /// The customer's cut moment is to be computed again shortly.
    fn review_soon(&mut self, now: Instant, customer: CustomerId) {
        self.to_review.insert(customer);
        if self.review_at.is_none() {
            self.review_at = Some(now + REVIEW_DELAY);
        }
    }

    /// The delayed reviews are due.
    pub(super) fn review_balances(&mut self, now: Instant) {
        self.review_at = None;
        for customer in std::mem::take(&mut self.to_review) {
            self.review_balance(now, customer);
        }
    }

    /// A call ended: what it cost is held against the balance until the store has it.
    pub(super) fn charge_ended(
        &mut self,
        now: Instant,
        customer: CustomerId,
        cref: CallRef,
        end_ms: i64,
    ) {
        if let Some((cdr_id, amount)) = self.spending.ended(customer, cref, end_ms) {
            self.balances.charge_pending(cdr_id, customer, amount);
            // The customer's other calls share what is left among fewer now.
            self.review_soon(now, customer);
        }
    }

    /// Computes when the customer's calls have spent what is left and schedules the cut.
    fn review_balance(&mut self, now: Instant, customer: CustomerId) {
        let directory = self.directory.load();
        let now_ms = self.clock.epoch_ms(now);
        let left = directory
            .customer(customer)
            .and_then(|c| c.spendable(self.balances.get(customer)));
        let until_ms = now_ms + self.cfg.max_call_duration.as_millis() as i64;
        let last_paid =
            left.and_then(|left| self.spending.exhausted_at(customer, left, now_ms, until_ms));
        let Some(last_paid) = last_paid else {
            // Billing off now, or money for longer than any call may last.
            self.cuts.remove(&customer);
            return;
        };
        // From the clock's base, so that the same moment is the same instant every time.
        let at = self
            .clock
            .instant(last_paid)
            .checked_sub(CUT_MARGIN)
            .unwrap_or(now)
            .max(now);
        if self.cuts.get(&customer) != Some(&at) {
            self.cuts.insert(customer, at);
            self.schedule(at, CallTimer::BalanceCut { customer });
        }
    }

    /// A `BalanceCut` timer set for `at`: ends the customer's charged calls, unless the
    /// moment has moved since (a credit, an ended call).
    pub(super) fn balance_cut(&mut self, now: Instant, at: Instant, customer: CustomerId) {
        if self.cuts.get(&customer) != Some(&at) {
            return;
        }
        self.cuts.remove(&customer);
        let calls = self.spending.calls(customer);
        tracing::info!(
            target: "vts::billing",
            "BALANCE_CUT customer={} calls={}",
            customer.0,
            calls.len()
        );
        for cref in calls {
            self.hang_up(now, cref, BALANCE_REASON);
        }
    }

    /// The periodic look at the balances while calls are being charged.
    pub(super) fn check_balances(&mut self, now: Instant) {
        for customer in self.spending.customers() {
            self.review_balance(now, customer);
        }
        self.balance_check = (!self.spending.is_empty()).then(|| now + BALANCE_CHECK);
    }
}
