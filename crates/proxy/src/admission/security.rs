//! Admission's guards against strangers: the flood bucket per source address, the sliding
//! window of failed authentications, and the automatic blocks the engine holds until the
//! store's entry reaches the block list. Sources are counted by [`aggregate`] (an IPv6 /64 as
//! one).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use cluster::{Limiter, Scope};
use domain::{BlockList, Directory, Reject};

/// Stage "flood": INVITEs a second from one source address, a token bucket per address
/// (`cluster`), before identification so that unknown sources are counted too. Whitelisted
/// addresses are never blocked automatically.
pub(crate) fn flood(
    limiter: &mut dyn Limiter,
    directory: &Directory,
    source: IpAddr,
    now: Instant,
) -> Result<(), Reject> {
    if directory.whitelisted(source) {
        return Ok(());
    }
    match directory.settings.flood_threshold {
        Some(rate) if !limiter.take(Scope::Source(aggregate(source)), rate, now) => {
            Err(Reject::RateLimited)
        }
        _ => Ok(()),
    }
}

/// The address a source counts as for floods, failures and automatic blocks: an IPv6
/// source as its /64 (one host holds a whole /64 and can send from any address of it), an
/// IPv4-mapped one as IPv4.
pub(crate) fn aggregate(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// Failures per source address in a sliding window: the times of the last `threshold + 1`
/// at most, so "more than N in W seconds" is exact (no window that resets or never does).
#[derive(Debug)]
pub(crate) struct FailureCounter {
    by_source: HashMap<IpAddr, VecDeque<Instant>>,
    /// Map size that triggers the next sweep of addresses with no failure left in the
    /// window (a scan from many addresses cannot grow the map without bound).
    sweep_at: usize,
}

impl Default for FailureCounter {
    fn default() -> Self {
        FailureCounter {
            by_source: HashMap::new(),
            sweep_at: 1024,
        }
    }
}

impl FailureCounter {
    /// Records a failure of `source` at `now`; `true` when that makes more than `threshold`
    /// within `window` (the count then starts again).
    pub(crate) fn exceeded(
        &mut self,
        source: IpAddr,
        now: Instant,
        threshold: u32,
        window: Duration,
    ) -> bool {
        let source = aggregate(source);
        let live = |t: &Instant| now.saturating_duration_since(*t) < window;
        if self.by_source.len() >= self.sweep_at {
            self.by_source
                .retain(|_, fails| fails.back().is_some_and(live));
            self.sweep_at = (self.by_source.len() * 2).max(1024);
        }
        let fails = self.by_source.entry(source).or_default();
        while fails.front().is_some_and(|t| !live(t)) {
            fails.pop_front();
        }
        fails.push_back(now);
        if fails.len() <= threshold as usize {
            return false;
        }
        self.by_source.remove(&source);
        true
    }

    #[cfg(test)]
    pub(crate) fn tracked(&self) -> usize {
        self.by_source.len()
    }
}

/// Automatic blocks (flood, auth failures) the engine holds itself until the store's entry
/// reaches the directory: from the first refused INVITE on, with no gap for the database
/// round trip. Once the directory has the entry (or after a grace of a few seconds, should a
/// reload be missed or the database write fail) the store alone decides, so `vts block
/// remove` lifts the block everywhere.
#[derive(Debug, Default)]
pub(crate) struct PendingBlocks {
    /// End (epoch ms) and kind of each pending block.
    until: HashMap<IpAddr, (i64, &'static str)>,
    /// The block-list version last swept against.
    swept: i64,
}

impl PendingBlocks {
    /// Longest a block is held here without the store's copy.
    const GRACE_MS: i64 = 5_000;

    /// Holds a block of `ip` (`kind`: `flood` or `auth_fail`); `false` when one was held.
    pub(crate) fn add(&mut self, ip: IpAddr, kind: &'static str, now_ms: i64) -> bool {
        let ip = aggregate(ip);
        self.until.retain(|_, (end, _)| *end > now_ms);
        self.until
            .insert(ip, (now_ms + Self::GRACE_MS, kind))
            .is_none()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.until.is_empty()
    }

    /// The addresses held (IPv6 ones as their /64's first address) with the end of each
    /// (epoch ms).
    pub(crate) fn held(&self) -> impl Iterator<Item = (IpAddr, i64)> + '_ {
        self.until.iter().map(|(ip, (end, _))| (*ip, *end))
    }

    /// Drops the blocks that ended and, on a new block-list version, those it holds.
    pub(crate) fn sweep(&mut self, blocks: &BlockList, now_ms: i64) {
        if self.until.is_empty() {
            return;
        }
        let new_version = blocks.version() != self.swept;
        self.swept = blocks.version();
        self.until.retain(|ip, (end, _)| {
            *end > now_ms && !(new_version && blocks.blocking(*ip, now_ms).is_some())
        });
    }

    /// The kind of pending block on `ip`, if any (after a [`sweep`](Self::sweep)).
    pub(crate) fn blocking(
        &mut self,
        blocks: &BlockList,
        ip: IpAddr,
        now_ms: i64,
    ) -> Option<&'static str> {
        self.sweep(blocks, now_ms);
        self.until
            .get(&aggregate(ip))
            .filter(|(end, _)| *end > now_ms)
            .map(|(_, kind)| *kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_than_5_failures_in_600_s_exceed_and_older_ones_expire() {
        let mut f = FailureCounter::default();
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        let other: IpAddr = "198.51.100.8".parse().unwrap();
        let w = Duration::from_secs(600);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        for s in 0..5 {
            assert!(!f.exceeded(ip, at(s * 100), 5, w), "failure {}", s + 1);
        }
        assert!(!f.exceeded(other, at(450), 5, w), "counted per address");
        // The 6th comes 600 s after the 1st: the 1st has left the window.
        assert!(!f.exceeded(ip, at(600), 5, w));
        // The 7th: six within 600 s (100..=650).
        assert!(f.exceeded(ip, at(650), 5, w));
        // Then the count starts again.
        assert!(!f.exceeded(ip, at(651), 5, w));
        // A threshold of 0: the first failure is one too many.
        assert!(f.exceeded(other, at(700), 0, w));
    }

    #[test]
    fn addresses_with_no_failure_left_in_the_window_are_swept() {
        let mut f = FailureCounter::default();
        let w = Duration::from_secs(600);
        let t0 = Instant::now();
        for i in 0..1024u32 {
            f.exceeded(IpAddr::from(i.to_be_bytes()), t0, 5, w);
        }
        assert_eq!(f.tracked(), 1024);
        let later = t0 + w;
        f.exceeded("198.51.100.7".parse().unwrap(), later, 5, w);
        assert_eq!(f.tracked(), 1, "the 1024 stale addresses are gone");
    }

    #[test]
    fn pending_blocks_hold_until_the_block_list_has_them_or_the_grace_ends() {
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        let empty = BlockList::default().at_version(1);
        let mut p = PendingBlocks::default();
        assert!(p.add(ip, "flood", 1_000));
        assert!(!p.add(ip, "flood", 1_100), "already held");
        assert_eq!(p.blocking(&empty, ip, 2_000), Some("flood"));
        // The store's entry arrives in version 2: dropped, the store decides from now on
        // (a later removal in version 3 lifts it at once).
        let with_entry = BlockList::new(vec![domain::Block {
            network: "198.51.100.7/32".parse().unwrap(),
            reason: "flood".into(),
            source: "flood".into(),
            expires_ms: None,
        }])
        .at_version(2);
        assert_eq!(p.blocking(&with_entry, ip, 2_100), None);
        let removed = BlockList::default().at_version(3);
        assert_eq!(p.blocking(&removed, ip, 2_200), None);
        // A version without the entry keeps it, until the grace ends.
        assert!(p.add(ip, "auth_fail", 10_000));
        assert_eq!(p.blocking(&removed, ip, 14_999), Some("auth_fail"));
        assert_eq!(p.blocking(&removed, ip, 15_000), None);
    }
}
