//! Minutes per customer per day and month, counting calls in progress (SPEC.md "minutes").
//!
//! A call in progress counts as one reserved minute plus the time since it was answered;
//! when it ends, that is replaced by its billable time. So a burst of new calls sees every
//! call already admitted (each at least a minute) and stops at the cap, instead of all
//! passing on the minutes of calls that have ended; a long call counts minute by minute as
//! it runs. Calls already up when the cap is reached run on (the overshoot is bounded by
//! what they run past their reserved minute). A call counts in the day and month it started,
//! of the customer's own zone (the caller passes its local clock). An ended call counts its
//! billable time rounded up to whole seconds, as usage does (docs/CDR.md "Usage").

use std::collections::HashMap;

/// One minute, the reservation of a call in progress.
pub const RESERVED_MS: i64 = 60_000;

/// A counting period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    /// Days since 1970-01-01 (of a local clock: `day_of` a customer's local ms).
    Day(i64),
    /// Months since 1970-01 (of a local clock).
    Month(i64),
}

impl Period {
    pub fn day_of(epoch_ms: i64) -> Period {
        Period::Day(epoch_ms.div_euclid(86_400_000))
    }

    pub fn month_of(epoch_ms: i64) -> Period {
        let (y, m) = civil(epoch_ms.div_euclid(86_400_000));
        Period::Month((y - 1970) * 12 + i64::from(m) - 1)
    }

    /// The first millisecond of the period.
    pub fn start_ms(self) -> i64 {
        match self {
            Period::Day(d) => d * 86_400_000,
            Period::Month(m) => {
                let (y, mo) = (1970 + m.div_euclid(12), (m.rem_euclid(12) + 1) as u32);
                days_from_civil(y, mo) * 86_400_000
            }
        }
    }
}

/// Year and month of a day number (H. Hinnant's civil-from-days).
fn civil(days: i64) -> (i64, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m)
}

/// Day number of the first of a month.
fn days_from_civil(y: i64, m: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Minutes used, shared by the switch's calls (and, with Redis, the cluster's).
pub trait Minutes: Send {
    /// Counts ended calls' time from before the switch started (the store's CDRs).
    fn seed(&mut self, customer: i64, period: Period, ms: i64);
    /// A call of `customer` admitted when the customer's local clock read `local_ms` (epoch
    /// ms plus its zone's offset: it picks the day and month): it reserves a minute.
    fn start(&mut self, customer: i64, call: u64, local_ms: i64);
    /// The call was answered at `at_ms`: from then on it counts as it runs.
    fn answer(&mut self, call: u64, at_ms: i64);
    /// The call ended at `at_ms`; its talk time (from the answer) replaces its reservation.
    fn end(&mut self, call: u64, at_ms: i64);
    /// Milliseconds used in `period` at `now_ms`, calls in progress included.
    fn used(&self, customer: i64, period: Period, now_ms: i64) -> i64;
}

#[derive(Debug, Clone, Copy)]
struct Live {
    customer: i64,
    day: Period,
    month: Period,
    answered_ms: Option<i64>,
}

/// The in-process [`Minutes`].
#[derive(Debug, Default)]
pub struct LocalMinutes {
    ended: HashMap<(i64, Period), i64>,
    live: HashMap<u64, Live>,
    /// Per customer and period: calls in progress, how many are answered, and the sum of
    /// their answer times (so the running total is O(1)).
    running: HashMap<(i64, Period), (i64, i64, i64)>,
}

impl LocalMinutes {
    pub fn new() -> Self {
        Self::default()
    }

    fn running(&mut self, customer: i64, period: Period) -> &mut (i64, i64, i64) {
        self.running.entry((customer, period)).or_insert((0, 0, 0))
    }
}

impl Minutes for LocalMinutes {
    fn seed(&mut self, customer: i64, period: Period, ms: i64) {
        *self.ended.entry((customer, period)).or_insert(0) += ms;
    }

    fn start(&mut self, customer: i64, call: u64, local_ms: i64) {
        let live = Live {
            customer,
            day: Period::day_of(local_ms),
            month: Period::month_of(local_ms),
            answered_ms: None,
        };
        for p in [live.day, live.month] {
            self.running(customer, p).0 += 1;
        }
        self.live.insert(call, live);
    }

    fn answer(&mut self, call: u64, at_ms: i64) {
        let Some(live) = self.live.get_mut(&call) else {
            return;
        };
        if live.answered_ms.is_some() {
            return;
        }
        live.answered_ms = Some(at_ms);
        let live = *live;
        for p in [live.day, live.month] {
            let r = self.running(live.customer, p);
            r.1 += 1;
            r.2 += at_ms;
        }
    }

    fn end(&mut self, call: u64, at_ms: i64) {
        let Some(live) = self.live.remove(&call) else {
            return;
        };
        // Whole seconds, rounded up: the rule of usage and of the CDR's billable seconds.
        let billable_ms = live
            .answered_ms
            .map_or(0, |a| ((at_ms - a).max(0) + 999) / 1000 * 1000);
        for p in [live.day, live.month] {
            let r = self.running(live.customer, p);
            r.0 -= 1;
            if let Some(at) = live.answered_ms {
                r.1 -= 1;
                r.2 -= at;
            }
            if r.0 == 0 {
                self.running.remove(&(live.customer, p));
            }
            *self.ended.entry((live.customer, p)).or_insert(0) += billable_ms.max(0);
        }
    }

    fn used(&self, customer: i64, period: Period, now_ms: i64) -> i64 {
        let ended = self.ended.get(&(customer, period)).copied().unwrap_or(0);
        let running = self
            .running
            .get(&(customer, period))
            .map_or(0, |(calls, answered, sum)| {
                calls * RESERVED_MS + (answered * now_ms - sum).max(0)
            });
        ended + running
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_utc_days_and_months() {
        // 2026-11-26T10:00:00Z
        let t = 1_795_687_200_000;
        let day = Period::day_of(t);
        assert_eq!(day.start_ms(), 1_795_651_200_000);
        let month = Period::month_of(t);
        assert_eq!(month, Period::Month((2026 - 1970) * 12 + 10));
        assert_eq!(month.start_ms(), 1_793_491_200_000, "2026-11-01");
        assert_eq!(
            Period::month_of(month.start_ms() - 1),
            Period::Month((2026 - 1970) * 12 + 9)
        );
        assert_eq!(
            Period::month_of(951_782_400_000),
            Period::Month(30 * 12 + 1),
            "2000-02-29"
        );
    }

    #[test]
    fn calls_in_progress_count_a_reserved_minute_then_as_they_run() {
        let t0 = 1_795_687_200_000;
        let day = Period::day_of(t0);
        let mut m = LocalMinutes::new();
        m.seed(1, day, 120_000);
        assert_eq!(m.used(1, day, t0), 120_000);
        m.start(1, 10, t0);
        m.start(1, 11, t0);
        assert_eq!(m.used(1, day, t0), 120_000 + 2 * RESERVED_MS);
        m.answer(10, t0 + 1_000);
        assert_eq!(
            m.used(1, day, t0 + 31_000),
            120_000 + 2 * RESERVED_MS + 30_000
        );
        m.end(11, t0 + 50_000);
        m.end(10, t0 + 46_000);
        assert_eq!(m.used(1, day, t0 + 99_000), 120_000 + 45_000);
        // An ended call counts whole seconds, rounded up.
        m.start(1, 12, t0);
        m.answer(12, t0);
        m.end(12, t0 + 1_200);
        assert_eq!(m.used(1, day, t0 + 99_000), 120_000 + 45_000 + 2_000);
        assert_eq!(m.used(2, day, t0), 0);
        assert_eq!(
            m.used(1, Period::month_of(t0), t0 + 99_000),
            45_000 + 2_000,
            "seeded the day only"
        );
    }
}
