//! The timers of RFC 3261 §17 (A–K) and RFC 6026 (L, M), and the state a retransmission
//! timer carries between firings.

use std::time::{Duration, Instant};

/// A transaction timer, named as in RFC 3261 table 4 and RFC 6026.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// Client INVITE request retransmit (unreliable only), doubling from T1.
    A,
    /// Client INVITE transaction timeout, 64*T1.
    B,
    /// Client INVITE wait for response retransmits in Completed.
    D,
    /// Client non-INVITE request retransmit (unreliable only), doubling up to T2.
    E,
    /// Client non-INVITE transaction timeout, 64*T1.
    F,
    /// Server INVITE response retransmit (unreliable only), doubling up to T2.
    G,
    /// Server INVITE wait for ACK, 64*T1.
    H,
    /// Server INVITE wait for ACK retransmits in Confirmed.
    I,
    /// Server non-INVITE wait for request retransmits in Completed.
    J,
    /// Client non-INVITE wait for response retransmits in Completed.
    K,
    /// Server INVITE in Accepted (RFC 6026), 64*T1.
    L,
    /// Client INVITE in Accepted (RFC 6026), 64*T1.
    M,
}

/// A running retransmission timer: when it fires next and the interval that got it there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Retransmit {
    pub(crate) at: Instant,
    pub(crate) interval: Duration,
}

impl Retransmit {
    /// Starts a retransmission timer on an unreliable transport; none on a reliable one.
    pub(crate) fn start(now: Instant, interval: Duration, reliable: bool) -> Option<Self> {
        (!reliable).then_some(Retransmit {
            at: now + interval,
            interval,
        })
    }

    /// Re-arms after a firing with the next interval.
    pub(crate) fn next(now: Instant, interval: Duration) -> Self {
        Retransmit {
            at: now + interval,
            interval,
        }
    }
}
