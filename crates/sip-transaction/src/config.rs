//! Timer values: T1, T2, T4 (RFC 3261 §17.1.1.1, table 4) and every timer derived from them,
//! with Timers L and M of RFC 6026.

use std::time::Duration;

/// The base timer values; every transaction timer is derived from them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// RTT estimate (default 500 ms).
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses (default 4 s).
    pub t2: Duration,
    /// Maximum time a message stays in the network (default 5 s).
    pub t4: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl Config {
    /// 64*T1: Timers B, F, H, J (unreliable), L and M.
    pub fn sixty_four_t1(&self) -> Duration {
        self.t1 * 64
    }

    /// Initial Timer A (INVITE retransmit, doubling): T1.
    pub fn timer_a(&self) -> Duration {
        self.t1
    }

    /// Timer B (INVITE transaction timeout): 64*T1.
    pub fn timer_b(&self) -> Duration {
        self.sixty_four_t1()
    }

    /// Timer D (wait for response retransmits): 32 s unreliable, 0 reliable.
    pub fn timer_d(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            Duration::from_secs(32)
        }
    }

    /// Initial Timer E (non-INVITE retransmit, doubling up to T2): T1.
    pub fn timer_e(&self) -> Duration {
        self.t1
    }

    /// Timer F (non-INVITE transaction timeout): 64*T1.
    pub fn timer_f(&self) -> Duration {
        self.sixty_four_t1()
    }

    /// Initial Timer G (INVITE response retransmit, doubling up to T2): T1.
    pub fn timer_g(&self) -> Duration {
        self.t1
    }

    /// Timer H (wait for ACK): 64*T1.
    pub fn timer_h(&self) -> Duration {
        self.sixty_four_t1()
    }

    /// Timer I (wait for ACK retransmits): T4 unreliable, 0 reliable.
    pub fn timer_i(&self, reliable: bool) -> Duration {
        if reliable { Duration::ZERO } else { self.t4 }
    }

    /// Timer J (wait for non-INVITE request retransmits): 64*T1 unreliable, 0 reliable.
    pub fn timer_j(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.sixty_four_t1()
        }
    }

    /// Timer K (wait for response retransmits): T4 unreliable, 0 reliable.
    pub fn timer_k(&self, reliable: bool) -> Duration {
        if reliable { Duration::ZERO } else { self.t4 }
    }

    /// Timer L (RFC 6026: wait for 2xx-ACK and INVITE retransmits in Accepted): 64*T1.
    pub fn timer_l(&self) -> Duration {
        self.sixty_four_t1()
    }

    /// Timer M (RFC 6026: wait for 2xx retransmits in Accepted): 64*T1.
    pub fn timer_m(&self) -> Duration {
        self.sixty_four_t1()
    }

    /// The next interval of a doubling retransmit timer (A: uncapped; E, G: capped at T2).
    pub(crate) fn double(&self, interval: Duration, capped: bool) -> Duration {
        let next = interval * 2;
        if capped { next.min(self.t2) } else { next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_derived_timers() {
        let c = Config::default();
        let s = Duration::from_secs;
        assert_eq!((c.t1, c.t2, c.t4), (Duration::from_millis(500), s(4), s(5)));
        for d in [
            c.timer_b(),
            c.timer_f(),
            c.timer_h(),
            c.timer_j(false),
            c.timer_l(),
            c.timer_m(),
        ] {
            assert_eq!(d, s(32));
        }
        assert_eq!((c.timer_d(false), c.timer_d(true)), (s(32), Duration::ZERO));
        assert_eq!((c.timer_i(false), c.timer_i(true)), (s(5), Duration::ZERO));
        assert_eq!((c.timer_k(false), c.timer_k(true)), (s(5), Duration::ZERO));
        assert_eq!(c.timer_j(true), Duration::ZERO);
        assert_eq!(c.double(s(2), false), s(4));
        assert_eq!(c.double(s(4), false), s(8));
        assert_eq!(c.double(s(4), true), s(4));
    }
}
