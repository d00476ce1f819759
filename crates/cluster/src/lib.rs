//! # cluster
//!
//! Runtime state that several switch nodes will share: rate limits ([`Limiter`]), channel
//! reservations held as leases keyed by call ([`Channels`], [`Lease`]) and minutes used
//! ([`Minutes`]); and the state the parts of one node share without importing each other:
//! the configuration and block-list snapshots ([`DirectorySource`]), balances
//! ([`BalanceSource`]), the accounting gate ([`AccountingGate`]) and the live status
//! ([`Status`]). The SIP engine sees them only through these traits, so that Redis
//! implementations (a Lua GCRA per key; sorted sets of leases renewed while calls live)
//! can take the place of the in-process ones without touching the proxy.
//!
//! Time is passed in (`now`), never read here: the engine's clock drives it, and tests use a
//! virtual one.

mod channels;
mod live;
mod minutes;
mod snapshots;
pub mod status;

pub use channels::{ChannelScope, Channels, Lease, LocalChannels};
pub use live::{LiveCalls, LiveQuery};
pub use minutes::{LocalMinutes, Minutes, Period, RESERVED_MS};
pub use snapshots::{AccountingGate, BalanceSource, DirectorySource};
pub use status::{Status, StatusHandle};

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// What a rate limit counts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// One customer's new calls (SPEC.md "customer CPS").
    Customer(i64),
    /// One carrier's new attempts.
    Carrier(i64),
    /// Every identified call of the switch ("global limits").
    Global,
    /// INVITEs from one source address, before identification ("flood").
    Source(IpAddr),
}

/// Decides whether one more event fits a per-second rate.
pub trait Limiter: Send {
    /// Takes one token from `scope`'s bucket of `per_second` tokens a second (burst: one
    /// second's worth). `false`: over the rate; nothing was taken.
    fn take(&mut self, scope: Scope, per_second: u32, now: Instant) -> bool;

    /// How full `scope`'s bucket is used, 0.0 (idle) to 1.0 (no token left), for 80 %
    /// warnings. Unknown scopes are idle.
    fn usage(&self, scope: Scope, per_second: u32, now: Instant) -> f64;
}

/// A token bucket (the continuous form of the GCRA): `rate` tokens a second, at most `rate`
/// stored. Unlike a counter whose expiry is re-armed on every hit, it never stops refilling
/// under steady traffic.
#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: u32, now: Instant) -> Self {
        TokenBucket {
            tokens: f64::from(rate),
            at: now,
        }
    }

    fn refill(&mut self, rate: u32, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * f64::from(rate)).min(f64::from(rate));
        self.at = self.at.max(now);
    }

    /// Takes one token if there is one.
    pub fn take(&mut self, rate: u32, now: Instant) -> bool {
        self.refill(rate, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Fraction of the bucket in use at `now`.
    pub fn usage(&self, rate: u32, now: Instant) -> f64 {
        let mut b = *self;
        b.refill(rate, now);
        if rate == 0 {
            return 1.0;
        }
        1.0 - b.tokens / f64::from(rate)
    }
}

/// The in-process [`Limiter`]: one token bucket per scope, in this process only. Buckets
/// idle for a minute are forgotten (they would be full again anyway).
#[derive(Debug, Default)]
pub struct LocalLimiter {
    buckets: HashMap<Scope, TokenBucket>,
    last_sweep: Option<Instant>,
}

const IDLE: Duration = Duration::from_secs(60);

impl LocalLimiter {
    pub fn new() -> Self {
        Self::default()
    }

    fn sweep(&mut self, now: Instant) {
        if self
            .last_sweep
            .is_some_and(|t| now.saturating_duration_since(t) < IDLE)
        {
            return;
        }
        self.last_sweep = Some(now);
        self.buckets
            .retain(|_, b| now.saturating_duration_since(b.at) < IDLE);
    }

    /// Buckets held (for tests and status).
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

impl Limiter for LocalLimiter {
    fn take(&mut self, scope: Scope, per_second: u32, now: Instant) -> bool {
        self.sweep(now);
        self.buckets
            .entry(scope)
            .or_insert_with(|| TokenBucket::new(per_second, now))
            .take(per_second, now)
    }

    fn usage(&self, scope: Scope, per_second: u32, now: Instant) -> f64 {
        self.buckets
            .get(&scope)
            .map_or(0.0, |b| b.usage(per_second, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Steady traffic at `offered` per second for `seconds`, against a limit of `rate`.
    fn accepted(rate: u32, offered: u32, seconds: u32) -> u32 {
        let t0 = Instant::now();
        let mut l = LocalLimiter::new();
        let gap = Duration::from_secs(1) / offered;
        (0..offered * seconds)
            .filter(|i| l.take(Scope::Customer(1), rate, t0 + gap * *i))
            .count() as u32
    }

    #[test]
    fn a_rate_holds_under_steady_traffic() {
        // 20 cps offered against 10 cps for 10 s: one second's burst, then 10 a second.
        let n = accepted(10, 20, 10);
        assert!((100..=111).contains(&n), "{n}");
        // Offered below the rate: everything passes.
        assert_eq!(accepted(10, 5, 10), 50);
        // A re-armed-expiry counter would let only the first second through under steady
        // traffic; a bucket keeps refilling.
        assert!(accepted(50, 100, 60) > 50 * 59);
    }

    #[test]
    fn a_burst_is_one_second_worth() {
        let t0 = Instant::now();
        let mut l = LocalLimiter::new();
        let taken = (0..100).filter(|_| l.take(Scope::Global, 30, t0)).count();
        assert_eq!(taken, 30);
        assert!(!l.take(Scope::Global, 30, t0 + Duration::from_millis(10)));
        assert!(l.take(Scope::Global, 30, t0 + Duration::from_millis(40)));
        assert!((l.usage(Scope::Global, 30, t0 + Duration::from_millis(40)) - 1.0).abs() < 0.05);
        assert_eq!(l.usage(Scope::Customer(9), 30, t0), 0.0);
    }

    #[test]
    fn scopes_are_separate_and_idle_buckets_go() {
        let t0 = Instant::now();
        let mut l = LocalLimiter::new();
        assert!(l.take(Scope::Customer(1), 1, t0));
        assert!(!l.take(Scope::Customer(1), 1, t0));
        assert!(l.take(Scope::Customer(2), 1, t0));
        assert!(l.take(Scope::Source("192.0.2.1".parse().unwrap()), 1, t0));
        assert_eq!(l.len(), 3);
        assert!(l.take(Scope::Carrier(7), 1, t0 + Duration::from_secs(61)));
        assert_eq!(l.len(), 1, "buckets idle for a minute are dropped");
    }
}
