//! Time spent inside the switch: from the moment a transport read a message to the moment
//! the engine handed what it produced to a socket. Two histograms: initial INVITEs (arrival
//! to the INVITE leaving for the carrier) and responses (arrival to the relayed response
//! leaving for the customer). Read through the control socket (`vts status --format json`)
//! and `GET /metrics` ([`crate::text::histogram`]). The same [`Histogram`] also times the
//! store's CDR writes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A log-linear histogram: eight buckets per power of two (relative error under 12.5 %).
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max_ns: u64,
    sum_ns: u128,
}

const SUB: u32 = 8;

fn bucket(ns: u64) -> usize {
    if ns < u64::from(SUB) {
        return ns as usize;
    }
    let e = 63 - ns.leading_zeros();
    let shift = e - 3;
    let sub = (ns >> shift) & u64::from(SUB - 1);
    ((e - 2) * SUB) as usize + sub as usize
}

/// The largest value that falls in bucket `i`.
fn upper(i: usize) -> u64 {
    if i < SUB as usize {
        return i as u64;
    }
    let e = i as u32 / SUB + 2;
    let sub = i as u64 % u64::from(SUB);
    let shift = e - 3;
    (((u64::from(SUB) | sub) + 1) << shift) - 1
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; 64 * SUB as usize],
            total: 0,
            max_ns: 0,
            sum_ns: 0,
        }
    }
}

impl Histogram {
    pub fn record(&mut self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.counts[bucket(ns)] += 1;
        self.total += 1;
        self.max_ns = self.max_ns.max(ns);
        self.sum_ns += u128::from(ns);
    }

    /// The sum of every sample.
    pub fn sum(&self) -> Duration {
        Duration::from_nanos(u64::try_from(self.sum_ns).unwrap_or(u64::MAX))
    }

    /// Samples at or below `bound` (counted by bucket: a bucket counts when its upper edge
    /// is at or below `bound`, so the count is exact to within one bucket, 12.5 %).
    pub fn count_le(&self, bound: Duration) -> u64 {
        let ns = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
        self.counts
            .iter()
            .enumerate()
            .take_while(|&(i, _)| upper(i) <= ns)
            .map(|(_, c)| c)
            .sum()
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// The value below which a fraction `q` of the samples fall (bucket upper bound).
    pub fn quantile(&self, q: f64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Duration::from_nanos(upper(i).min(self.max_ns));
            }
        }
        Duration::from_nanos(self.max_ns)
    }

    pub fn max(&self) -> Duration {
        Duration::from_nanos(self.max_ns)
    }
}

/// What a histogram says, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

impl Histogram {
    pub fn summary(&self) -> Summary {
        let us = |d: Duration| d.as_nanos() as f64 / 1000.0;
        Summary {
            count: self.total,
            p50_us: us(self.quantile(0.5)),
            p90_us: us(self.quantile(0.9)),
            p99_us: us(self.quantile(0.99)),
            p999_us: us(self.quantile(0.999)),
            max_us: us(self.max()),
        }
    }
}

/// Both histograms, shared between the engine (writer, once per batch) and the control
/// socket (reader).
#[derive(Debug, Clone, Default)]
pub struct Latency(Arc<Mutex<(Histogram, Histogram)>>);

/// Which histogram a sample belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Invite,
    Reply,
}

impl Latency {
    pub fn record(&self, samples: &[(Kind, Duration)]) {
        let mut h = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for (kind, d) in samples {
            match kind {
                Kind::Invite => h.0.record(*d),
                Kind::Reply => h.1.record(*d),
            }
        }
    }

    /// (INVITE, reply) summaries.
    pub fn summaries(&self) -> (Summary, Summary) {
        let h = self.0.lock().unwrap_or_else(|p| p.into_inner());
        (h.0.summary(), h.1.summary())
    }

    /// Copies of (INVITE, reply) histograms, for `/metrics`.
    pub fn histograms(&self) -> (Histogram, Histogram) {
        let h = self.0.lock().unwrap_or_else(|p| p.into_inner());
        (h.0.clone(), h.1.clone())
    }

    /// Starts both histograms again (the bench resets between steps; Prometheus sees a
    /// counter reset, which `rate()` handles).
    pub fn reset(&self) {
        let mut h = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *h = (Histogram::default(), Histogram::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_values_within_an_eighth() {
        for ns in [
            0u64,
            1,
            7,
            8,
            9,
            15,
            16,
            100,
            1_000,
            12_345,
            999_999,
            1 << 40,
        ] {
            let b = bucket(ns);
            assert!(upper(b) >= ns, "{ns}: upper {}", upper(b));
            if b > 0 {
                assert!(upper(b - 1) < ns, "{ns} would fit a lower bucket");
            }
            assert!(
                upper(b) - ns <= ns / 8 + 1,
                "{ns}: bucket too wide ({})",
                upper(b)
            );
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::default();
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us));
        }
        let p50 = h.quantile(0.5).as_micros() as i64;
        let p99 = h.quantile(0.99).as_micros() as i64;
        assert!((p50 - 500).abs() <= 500 / 8 + 1, "{p50}");
        assert!((p99 - 990).abs() <= 990 / 8 + 1, "{p99}");
        assert_eq!(h.max(), Duration::from_micros(1000));
        assert_eq!(h.count(), 1000);
        assert_eq!(h.sum(), Duration::from_micros(500_500));
        assert_eq!(h.count_le(Duration::from_secs(1)), 1000);
        let le_100 = h.count_le(Duration::from_micros(100));
        assert!((88..=100).contains(&le_100), "{le_100}");
        assert_eq!(h.count_le(Duration::ZERO), 0);
        assert_eq!(Histogram::default().quantile(0.99), Duration::ZERO);
    }
}
