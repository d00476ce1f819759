//! The switch's protective bounds, as numbers an operator can read: how often each [`Cap`]
//! was reached, what was dropped or refused and why ([`Counter`]), and how much of each
//! bounded resource is in use ([`Gauge`]). Shared (atomics) between the engine, the
//! transport tasks and whoever reports them (`vts status`, later the metrics endpoint).
//!
//! Reaching a cap also raises [`SwitchEvent::CapReached`] and a `CAP_REACHED` log line, at
//! most once per cap every [`EVENT_INTERVAL`]: a flood that hits a cap a million times
//! costs a counter increment each time, not a million log lines.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use domain::{Cap, SwitchEvent};
use tokio::sync::mpsc;
use tracing::warn;

/// At most one event and log line per cap this often.
pub const EVENT_INTERVAL: Duration = Duration::from_secs(10);

/// What the switch dropped or refused to protect itself, counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Counter {
    /// Datagrams or requests from a blocked source dropped before parsing.
    BlockedDropped,
    /// Replies (403) sent to blocked sources (at most one per source per interval).
    BlockedReplies,
    /// Responses whose top Via branch the switch did not issue (no valid MAC): dropped.
    ForgedBranch,
    /// Stray ACKs and 2xx not relayed: no call the switch holds, or not from its parties.
    StrayDropped,
    /// In-dialog requests refused: tags or source do not match a dialog the switch holds.
    InDialogRefused,
    /// Requests that carried the switch's own Via: 482 Loop Detected.
    LoopDetected,
    /// Requests answered without a transaction (OPTIONS, 405, 481 and such).
    StatelessReplies,
    /// Messages over `sip.max_message_size` (513 or dropped).
    Oversize,
    /// The switch's own BYEs sent again after a failure response or timeout.
    ByeRetried,
    /// Calls whose far side never confirmed the switch's BYE after every retry.
    ByeUnconfirmed,
    /// Answered calls ended because the caller never ACKed the 2xx.
    NoAck,
    /// Sources blocked automatically (flood, auth failures).
    AutoBlocks,
    /// Responses and stateless messages for a TCP peer whose connection is gone: dropped
    /// (the switch never opens a connection to an address a request named).
    TcpNoConnection,
}

impl Counter {
    pub const ALL: [Counter; 13] = [
        Counter::BlockedDropped,
        Counter::BlockedReplies,
        Counter::ForgedBranch,
        Counter::StrayDropped,
        Counter::InDialogRefused,
        Counter::LoopDetected,
        Counter::StatelessReplies,
        Counter::Oversize,
        Counter::ByeRetried,
        Counter::ByeUnconfirmed,
        Counter::NoAck,
        Counter::AutoBlocks,
        Counter::TcpNoConnection,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Counter::BlockedDropped => "blocked_dropped",
            Counter::BlockedReplies => "blocked_replies",
            Counter::ForgedBranch => "forged_branch",
            Counter::StrayDropped => "stray_dropped",
            Counter::InDialogRefused => "in_dialog_refused",
            Counter::LoopDetected => "loop_detected",
            Counter::StatelessReplies => "stateless_replies",
            Counter::Oversize => "oversize",
            Counter::ByeRetried => "bye_retried",
            Counter::ByeUnconfirmed => "bye_unconfirmed",
            Counter::NoAck => "no_ack",
            Counter::AutoBlocks => "auto_blocks",
            Counter::TcpNoConnection => "tcp_no_connection",
        }
    }
}

/// How much of a bounded resource is in use now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Gauge {
    Transactions,
    CallsInSetup,
    TcpConnections,
    OutboundConnects,
    SendTasks,
    /// The engine's call timers (a call's go with it).
    Timers,
    /// Calls the engine holds: in progress, and ended ones kept for late messages.
    Calls,
}

impl Gauge {
    pub const ALL: [Gauge; 7] = [
        Gauge::Transactions,
        Gauge::CallsInSetup,
        Gauge::TcpConnections,
        Gauge::OutboundConnects,
        Gauge::SendTasks,
        Gauge::Timers,
        Gauge::Calls,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Gauge::Transactions => "transactions",
            Gauge::CallsInSetup => "calls_in_setup",
            Gauge::TcpConnections => "tcp_connections",
            Gauge::OutboundConnects => "outbound_connects",
            Gauge::SendTasks => "send_tasks",
            Gauge::Timers => "timers",
            Gauge::Calls => "calls",
        }
    }
}

fn cap_index(cap: Cap) -> usize {
    Cap::ALL.iter().position(|c| *c == cap).unwrap_or(0)
}

fn counter_index(c: Counter) -> usize {
    Counter::ALL.iter().position(|x| *x == c).unwrap_or(0)
}

fn gauge_index(g: Gauge) -> usize {
    Gauge::ALL.iter().position(|x| *x == g).unwrap_or(0)
}

/// The shared numbers. Cheap to clone (one `Arc`).
#[derive(Debug, Clone)]
pub struct Guards(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    hits: [AtomicU64; Cap::ALL.len()],
    /// Hits already reported in an event.
    reported: [AtomicU64; Cap::ALL.len()],
    /// Milliseconds since `start` of the last event (+1; 0: never).
    last_event: [AtomicU64; Cap::ALL.len()],
    counters: [AtomicU64; Counter::ALL.len()],
    gauges: [AtomicU64; Gauge::ALL.len()],
    notices: Option<mpsc::UnboundedSender<SwitchEvent>>,
    start: Instant,
}

/// A copy of every number, for reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuardReport {
    pub caps: Vec<(Cap, u64)>,
    pub counters: Vec<(Counter, u64)>,
    pub gauges: Vec<(Gauge, u64)>,
}

impl Guards {
    /// Guards whose cap events go to `notices`.
    pub fn new(notices: mpsc::UnboundedSender<SwitchEvent>) -> Guards {
        Guards::with_notices(Some(notices))
    }

    /// Guards that only count (tests, tools).
    pub fn detached() -> Guards {
        Guards::with_notices(None)
    }

    fn with_notices(notices: Option<mpsc::UnboundedSender<SwitchEvent>>) -> Guards {
        Guards(Arc::new(Inner {
            hits: Default::default(),
            reported: Default::default(),
            last_event: Default::default(),
            counters: Default::default(),
            gauges: Default::default(),
            notices,
            start: Instant::now(),
        }))
    }

    /// `cap` (whose setting is `limit`) was reached: counted, and reported by an event and a
    /// log line unless one went out for it within [`EVENT_INTERVAL`].
    pub fn reached(&self, cap: Cap, limit: u64) {
        let i = cap_index(cap);
        let hits = self.0.hits[i].fetch_add(1, Ordering::Relaxed) + 1;
        let now = self.0.start.elapsed().as_millis() as u64 + 1;
        let last = self.0.last_event[i].load(Ordering::Relaxed);
        let interval = EVENT_INTERVAL.as_millis() as u64;
        if last != 0 && now.saturating_sub(last) < interval {
            return;
        }
        if self.0.last_event[i]
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let since = hits - self.0.reported[i].swap(hits, Ordering::Relaxed);
        warn!(
            target: "vts::guard",
            "CAP_REACHED cap={} limit={limit} hits={since}",
            cap.as_str()
        );
        if let Some(n) = &self.0.notices {
            let _ = n.send(SwitchEvent::CapReached {
                cap,
                limit,
                hits: since,
            });
        }
    }

    /// Counts one of `counter`.
    pub fn count(&self, counter: Counter) {
        self.0.counters[counter_index(counter)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn set(&self, gauge: Gauge, value: u64) {
        self.0.gauges[gauge_index(gauge)].store(value, Ordering::Relaxed);
    }

    pub fn add(&self, gauge: Gauge, delta: i64) {
        let g = &self.0.gauges[gauge_index(gauge)];
        if delta >= 0 {
            g.fetch_add(delta as u64, Ordering::Relaxed);
        } else {
            let _ = g.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(delta.unsigned_abs()))
            });
        }
    }

    pub fn hits(&self, cap: Cap) -> u64 {
        self.0.hits[cap_index(cap)].load(Ordering::Relaxed)
    }

    pub fn counter(&self, counter: Counter) -> u64 {
        self.0.counters[counter_index(counter)].load(Ordering::Relaxed)
    }

    pub fn gauge(&self, gauge: Gauge) -> u64 {
        self.0.gauges[gauge_index(gauge)].load(Ordering::Relaxed)
    }

    pub fn report(&self) -> GuardReport {
        GuardReport {
            caps: Cap::ALL.iter().map(|c| (*c, self.hits(*c))).collect(),
            counters: Counter::ALL
                .iter()
                .map(|c| (*c, self.counter(*c)))
                .collect(),
            gauges: Gauge::ALL.iter().map(|g| (*g, self.gauge(*g))).collect(),
        }
    }
}

/// Rate limit for log lines of one cause: [`Throttle::allow`] says yes at most once per
/// interval and how many were held back since (5.5 million "accept failed" lines in 11 s
/// become one line a second).
#[derive(Debug)]
pub struct Throttle {
    interval_ms: u64,
    start: Instant,
    last: AtomicU64,
    suppressed: AtomicU64,
}

impl Throttle {
    pub fn new(interval: Duration) -> Throttle {
        Throttle {
            interval_ms: interval.as_millis() as u64,
            start: Instant::now(),
            last: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(held back since the last line)` when a line may be logged now.
    pub fn allow(&self) -> Option<u64> {
        let now = self.start.elapsed().as_millis() as u64 + 1;
        let last = self.last.load(Ordering::Relaxed);
        if (last == 0 || now.saturating_sub(last) >= self.interval_ms)
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_per_interval_with_the_hits_since() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let g = Guards::new(tx);
        for _ in 0..1000 {
            g.reached(Cap::TcpConnections, 10);
        }
        assert_eq!(g.hits(Cap::TcpConnections), 1000);
        assert_eq!(
            rx.try_recv().unwrap(),
            SwitchEvent::CapReached {
                cap: Cap::TcpConnections,
                limit: 10,
                hits: 1
            }
        );
        assert!(rx.try_recv().is_err(), "one event per interval");
        g.count(Counter::ForgedBranch);
        g.add(Gauge::TcpConnections, 3);
        g.add(Gauge::TcpConnections, -5);
        assert_eq!(g.counter(Counter::ForgedBranch), 1);
        assert_eq!(g.gauge(Gauge::TcpConnections), 0, "never below zero");
    }

    #[test]
    fn throttle_counts_what_it_holds_back() {
        let t = Throttle::new(Duration::from_secs(3600));
        assert_eq!(t.allow(), Some(0));
        assert_eq!(t.allow(), None);
        assert_eq!(t.allow(), None);
        assert_eq!(t.suppressed.load(Ordering::Relaxed), 2);
    }
}
