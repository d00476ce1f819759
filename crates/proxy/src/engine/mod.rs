//! The engine: one task that owns the transaction table, the calls and their dialogs, so none
//! of them needs a lock. Transports hand it whole messages; it parses, runs sanity, matches
//! transactions, admits and routes new calls, relays responses and in-dialog requests, and
//! reports every call state change as a [`CallEvent`].
//!
//! Files: `mod.rs` (the engine's state, timers, dispatch of timeouts), `switch.rs` (the
//! running switch: its loop, output, drain on shutdown), `requests.rs` (a message in:
//! sanity, matching, new requests, replies), `blocks.rs` (the block list, the drop list,
//! automatic blocks), `responses.rs` (responses and transaction events to calls, rewritten
//! and relayed), `call.rs` (a call's state), `setup.rs` (a new INVITE: admission),
//! `attempts.rs` (attempts to carriers, failover, their timers), `cancel.rs`, `end.rs`
//! (failed, ended, forgotten calls), `dialog/` (answered calls: the dialog state in
//! `mod.rs`, in-dialog relay in `relay.rs`, BYE and the switch's hang-ups in
//! `hangup.rs`), `money.rs` (balances of calls in progress), `probe.rs` (OPTIONS to
//! carriers), `wire.rs` (messages the engine writes, addresses).

mod attempts;
mod blocks;
mod call;
mod cancel;
mod dialog;
mod end;
mod money;
mod probe;
mod requests;
mod responses;
mod setup;
mod switch;
mod wire;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use domain::{CallEvent, CallRef, Cap, Reject, SwitchEvent, Transport};
use sip_message::sanity::{self, Reject as Sanity};
use sip_message::{Message, Method, build, parse_datagram, parse_stream_message};
use sip_transaction::{ClientTxnId, RequestOutcome, ServerTxnId, Transactions, TxnId};
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

use crate::config::ProxyConfig;
use crate::guard::Counter;
use crate::transport::{Inbound, ListenerSpec, Peer, Transports};
use cluster::DirectorySource;
use cluster::status::Status;
use telemetry::latency::{Kind, Latency};
use telemetry::{CpsMeter, SipMetrics};

use call::Call;
pub use switch::{Shared, Switch};

/// Methods the switch handles, for Allow headers.
const ALLOW: &[u8] = b"INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, INFO, PRACK";

/// What a client transaction is for.
#[derive(Debug, Clone, Copy)]
enum ClientRole {
    /// Attempt `number` of a call's INVITE to a carrier.
    Attempt { call: CallRef, number: u32 },
    /// An in-dialog request of `call` relayed for a server transaction, sent by side
    /// `from`; `bye` when it is a BYE (its final response settles the far side).
    Relay {
        server: ServerTxnId,
        call: CallRef,
        from: dialog::Side,
        bye: bool,
    },
    /// Try `try_n` of the switch's own BYE of `call` to side `to`.
    Bye {
        call: CallRef,
        to: dialog::Side,
        try_n: u32,
    },
    /// A request the switch sends itself (CANCEL, BYE): its responses are not relayed.
    Local,
    /// OPTIONS probe `seq` of a carrier.
    Probe {
        carrier: domain::CarrierId,
        seq: u64,
    },
}

/// Timers the engine runs beside the transaction timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum CallTimer {
    /// No response from attempt `number` yet: fail over.
    FirstResponse { call: CallRef, number: u32 },
    /// Attempt `number` has been proceeding (ringing) too long: end the call, no failover.
    Ringing { call: CallRef, number: u32 },
    /// The confirmed call reached the maximum duration.
    MaxDuration { call: CallRef },
    /// Forget an ended call (late responses to its attempts have been handled).
    Forget { call: CallRef },
    /// A confirmed call's session interval (and grace) passed: reap it unless refreshed.
    SessionExpiry { call: CallRef },
    /// A customer's calls in progress have spent what it has left: end them (unless the
    /// moment moved since; see `Engine::cuts`).
    BalanceCut { customer: domain::CustomerId },
    /// Probe `seq` of a carrier got no final response in time: a failure.
    ProbeTimeout {
        carrier: domain::CarrierId,
        seq: u64,
    },
    /// 64×T1 after the 2xx: end the call unless the caller's ACK came.
    AckWait { call: CallRef },
    /// Send try `try_n` of the switch's BYE of `call` to side `to`.
    ByeRetry {
        call: CallRef,
        to: dialog::Side,
        try_n: u32,
    },
    /// Timer C of a relayed re-INVITE.
    TimerC { client: ClientTxnId },
}

impl CallTimer {
    /// The call a timer belongs to (removed with it when the call is forgotten).
    fn call(&self) -> Option<CallRef> {
        match *self {
            CallTimer::FirstResponse { call, .. }
            | CallTimer::Ringing { call, .. }
            | CallTimer::MaxDuration { call }
            | CallTimer::SessionExpiry { call }
            | CallTimer::AckWait { call }
            | CallTimer::ByeRetry { call, .. } => Some(call),
            CallTimer::Forget { .. }
            | CallTimer::BalanceCut { .. }
            | CallTimer::ProbeTimeout { .. }
            | CallTimer::TimerC { .. } => None,
        }
    }
}

/// The engine's timers by deadline, each removable: a call's timers go when the call is
/// forgotten, so a 4-hour max-duration timer of a call that lasted a second does not stay
/// in memory for 4 hours.
#[derive(Debug, Default)]
struct Timers {
    by_deadline: std::collections::BTreeMap<(Instant, u64), CallTimer>,
    seq: u64,
}

/// A scheduled timer, to remove it.
type TimerKey = (Instant, u64);

impl Timers {
    fn insert(&mut self, at: Instant, timer: CallTimer) -> TimerKey {
        self.seq += 1;
        let key = (at, self.seq);
        self.by_deadline.insert(key, timer);
        key
    }

    fn remove(&mut self, key: TimerKey) {
        self.by_deadline.remove(&key);
    }

    fn next_at(&self) -> Option<Instant> {
        self.by_deadline.first_key_value().map(|((at, _), _)| *at)
    }

    fn pop_due(&mut self, now: Instant) -> Option<(Instant, CallTimer)> {
        let entry = self.by_deadline.first_entry()?;
        if entry.key().0 > now {
            return None;
        }
        let ((at, _), timer) = entry.remove_entry();
        Some((at, timer))
    }
}

/// Epoch milliseconds from a monotonic clock: wall time read once at start, then
/// advanced by `Instant` differences (a wall-clock step never bends a CDR).
#[derive(Debug, Clone, Copy)]
struct Clock {
    base: Instant,
    base_ms: i64,
}

impl Clock {
    fn new(now: Instant) -> Self {
        let base_ms = domain::now_ms();
        Clock { base: now, base_ms }
    }

    fn epoch_ms(&self, now: Instant) -> i64 {
        self.base_ms + now.saturating_duration_since(self.base).as_millis() as i64
    }

    /// The instant of epoch millisecond `ms` (not before the clock's start).
    fn instant(&self, ms: i64) -> Instant {
        self.base + Duration::from_millis(u64::try_from(ms - self.base_ms).unwrap_or(0))
    }
}

/// A reply the switch sends without a transaction: status, reason, extra headers.
type StatelessReply<'a> = (u16, &'a str, &'a [(&'a str, &'a [u8])]);

/// How a relayed response is rewritten on its way back (`Engine::relay_response`).
#[derive(Debug, Default)]
struct Back {
    /// Rewrite its Contact to the switch on this transport (the receiver's leg).
    contact: Option<Transport>,
    /// The receiver's own Via values, put back in place of ours (they were hidden from
    /// the responder).
    vias: Option<Vec<Bytes>>,
    /// The responder hides its topology: drop its Server, User-Agent and Warning headers
    /// and its Record-Route entries (those before ours, which is this value).
    strip: Option<Bytes>,
}

/// After the drain deadline, the switch's BYEs (and requests relayed before it) get this
/// long to be answered before the process exits; the calls themselves end at once.
const SHUTDOWN_BYE_GRACE: Duration = Duration::from_secs(4);

/// While sources are dropped unread, how often the directory is looked at for a change of
/// the block list.
const DROPS_CHECK: Duration = Duration::from_millis(250);

/// How often pending automatic blocks are checked against the directory.
const PENDING_BLOCK_CHECK: Duration = Duration::from_millis(200);

pub(crate) struct Engine {
    cfg: ProxyConfig,
    txns: Transactions<Peer>,
    directory: DirectorySource,
    events: mpsc::UnboundedSender<CallEvent>,
    /// Events for operators (blocks, refusals, warnings, health), for `vts` to record and log.
    notices: mpsc::UnboundedSender<SwitchEvent>,
    /// Automatic blocks not yet in the directory's block list (see `PendingBlocks`).
    pending_blocks: crate::admission::security::PendingBlocks,
    /// While blocks are pending: when to check the directory for them again (so that they
    /// go as soon as the store's entries arrive, even with no traffic).
    pending_check: Option<Instant>,
    /// Refused INVITEs of unknown source addresses ("auth failures").
    auth_failures: crate::admission::security::FailureCounter,
    /// Weighted shares among carriers of equal priority.
    rng: fastrand::Rng,
    status: watch::Sender<Status>,
    /// Our addresses as written in Via and Record-Route, per transport.
    advertised: HashMap<Transport, String>,
    /// Every bound address, to recognise our own address.
    local: Vec<ListenerSpec>,
    /// The addresses in `advertised` (what a listener on 0.0.0.0 answers to).
    advertised_ips: Vec<IpAddr>,
    calls: HashMap<CallRef, Call>,
    by_server: HashMap<ServerTxnId, CallRef>,
    by_client: HashMap<ClientTxnId, ClientRole>,
    /// Relayed and own requests still waiting for a final response (shutdown waits for them).
    awaiting_final: HashSet<ClientTxnId>,
    /// Dialogs of answered calls by Call-ID and tags (kept until the call is forgotten,
    /// so that late ACKs and 2xx retransmissions of a call just ended are still relayed).
    dialogs: HashMap<dialog::DialogKey, CallRef>,
    /// Keyed MACs in the branches the switch issues.
    branches: wire::Branches,
    /// Past the drain deadline of a shutdown: BYEs are not retried.
    draining_past_deadline: bool,
    /// Requests relayed in a dialog, by their server transaction (to answer a failure).
    relayed: HashMap<ServerTxnId, Message>,
    timers: Timers,
    next_call: u64,
    draining: bool,
    clock: Clock,
    /// Stateless sends (relayed 2xx ACKs, stray 2xx, stateless replies).
    out: Vec<(Peer, Bytes)>,
    /// When the message being handled was read (None while handling a timer).
    arrival: Option<Instant>,
    /// Latency samples of this batch, recorded once the batch is on the sockets.
    samples: Vec<(Kind, Instant)>,
    latency: Latency,
    /// The SIP path's counters (handles registered once) and the CPS meter `/metrics` reads.
    metrics: SipMetrics,
    cps: CpsMeter,
    /// Where copies of every message go (HEP, traces), and the switch's own address per
    /// transport for them; `None`: no capture.
    capture: Option<(
        telemetry::capture::Tap,
        HashMap<Transport, std::net::SocketAddr>,
    )>,
    /// Rate limits (CPS of customers, carriers, the switch, source addresses).
    limiter: Box<dyn cluster::Limiter>,
    /// Channel reservations (leases held by calls).
    channels: Arc<dyn cluster::Channels>,
    /// Minutes used per customer, calls in progress counted.
    minutes: Box<dyn cluster::Minutes>,
    /// 80 % warnings already given.
    warnings: crate::admission::limits::Warnings,
    balances: cluster::BalanceSource,
    /// Closed while accounting cannot record more calls.
    accounting: cluster::AccountingGate,
    /// What billed customers' answered calls have cost so far.
    spending: domain::Spending,
    /// When each customer's calls are to be cut for want of money (the one `BalanceCut`
    /// timer that counts; earlier ones for the customer are stale).
    cuts: HashMap<domain::CustomerId, Instant>,
    /// While calls are being charged: when to look at the balances again (a credit moves
    /// the cut later, a charge earlier).
    balance_check: Option<Instant>,
    /// Customers whose cut moment is to be computed again at `review_at`.
    to_review: HashSet<domain::CustomerId>,
    review_at: Option<Instant>,
    /// Carrier health from OPTIONS probes.
    probes: probe::Probes,
    /// First increments held by calls being set up: per call, and summed per customer
    /// (with the number of calls).
    held: HashMap<CallRef, (domain::CustomerId, domain::Money)>,
    holds: HashMap<domain::CustomerId, (i64, u32)>,
    /// Calls being set up (not answered, not ended), for `sip.max_calls_in_setup`.
    in_setup: usize,
    /// When each blocked source last got a reply.
    blocked_replies: crate::drops::ReplyOnce,
    /// Sources the UDP tasks drop unread, the directory version it was built from, when it
    /// goes stale, and whether the engine's own blocks changed since.
    drops: crate::drops::SharedDrops,
    drops_version: Option<(i64, i64)>,
    drops_valid_until: Option<Instant>,
    drops_dirty: bool,
    /// While sources are dropped unread: when to look at the directory again (a removed
    /// block must reach the UDP tasks even though they let no datagram of it through).
    drops_check: Option<Instant>,
    /// Caps reached, drops and resources in use (shared with the transports).
    guards: crate::Guards,
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl Engine {
    fn new(
        cfg: ProxyConfig,
        directory: DirectorySource,
        (events, notices): (
            mpsc::UnboundedSender<CallEvent>,
            mpsc::UnboundedSender<SwitchEvent>,
        ),
        status: watch::Sender<Status>,
        bound: &[ListenerSpec],
        transports: &Transports,
        shared: Shared,
    ) -> Engine {
        let cps = CpsMeter::default();
        let mut advertised = HashMap::new();
        for spec in bound {
            let mut addr = spec.addr;
            if addr.ip().is_unspecified() {
                // Bound to every interface: advertise the address the system would use to
                // reach the outside (no packet is sent).
                let probe = std::net::UdpSocket::bind((addr.ip(), 0))
                    .and_then(|s| s.connect(("192.0.2.1", 9)).and_then(|()| s.local_addr()));
                if let Ok(local) = probe {
                    addr.set_ip(local.ip());
                } else if let Some(local) = transports.udp_local() {
                    addr.set_ip(local.ip());
                }
            }
            advertised
                .entry(spec.transport)
                .or_insert_with(|| addr.to_string());
        }
        let txns = Transactions::new(cfg.timers);
        let branches = wire::Branches::new(&cfg.branch_key);
        let mut advertised_ips: Vec<IpAddr> = Vec::new();
        for a in advertised.values() {
            if let Ok(addr) = a.parse::<std::net::SocketAddr>()
                && !advertised_ips.contains(&addr.ip())
            {
                advertised_ips.push(addr.ip());
            }
        }
        Engine {
            cfg,
            advertised_ips,
            txns,
            directory,
            events,
            notices,
            pending_blocks: crate::admission::security::PendingBlocks::default(),
            pending_check: None,
            auth_failures: crate::admission::security::FailureCounter::default(),
            rng: fastrand::Rng::new(),
            status,
            advertised,
            local: bound.to_vec(),
            calls: HashMap::new(),
            by_server: HashMap::new(),
            by_client: HashMap::new(),
            awaiting_final: HashSet::new(),
            dialogs: HashMap::new(),
            relayed: HashMap::new(),
            branches,
            draining_past_deadline: false,
            timers: Timers::default(),
            next_call: 0,
            draining: false,
            clock: Clock::new(now()),
            out: Vec::new(),
            arrival: None,
            samples: Vec::new(),
            latency: Latency::default(),
            metrics: SipMetrics::register(cps.clone()),
            cps,
            capture: None,
            limiter: shared.limiter,
            channels: shared.channels,
            minutes: shared.minutes,
            balances: shared.balances,
            accounting: shared.accounting,
            spending: domain::Spending::default(),
            cuts: HashMap::new(),
            balance_check: None,
            to_review: HashSet::new(),
            review_at: None,
            warnings: crate::admission::limits::Warnings::default(),
            probes: probe::Probes::starting(now()),
            in_setup: 0,
            held: HashMap::new(),
            holds: HashMap::new(),
            blocked_replies: crate::drops::ReplyOnce::default(),
            drops: transports.drops.clone(),
            drops_version: None,
            drops_valid_until: None,
            drops_dirty: false,
            drops_check: None,
            guards: transports.guards.clone(),
        }
    }

    /// A copy of a message to the capture tap, when there is one: `inbound` from `peer` to
    /// us, or from us to `peer`.
    fn capture(&self, peer: Peer, bytes: &Bytes, inbound: bool) {
        let Some((tap, local)) = &self.capture else {
            return;
        };
        let us = local
            .get(&peer.transport)
            .copied()
            .unwrap_or_else(|| std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
        let (source, destination) = if inbound {
            (peer.addr, us)
        } else {
            (us, peer.addr)
        };
        tap.record(telemetry::capture::Captured {
            at_us: telemetry::capture::now_us(),
            source,
            destination,
            tcp: peer.reliable(),
            bytes: bytes.clone(),
        });
    }

    /// The switch refuses or fails a call for `reject`: counted by reason; the reply.
    fn refuse(&self, reject: Reject) -> (u16, &'static str) {
        self.metrics.refused(reject);
        reject.reply()
    }

    fn calls_in_progress(&self) -> usize {
        self.calls.values().filter(|c| !c.is_ended()).count()
    }

    /// After a shutdown, relayed requests (a last BYE) and the switch's own BYEs get until a
    /// short grace period past the drain deadline to be answered.
    fn requests_done(&self, deadline: Instant, now: Instant) -> bool {
        self.awaiting_final.is_empty() || now >= deadline + SHUTDOWN_BYE_GRACE
    }

    /// Records what a new client transaction is for.
    fn track(&mut self, id: ClientTxnId, role: ClientRole) {
        // Shutdown waits for the switch's own requests and relayed ones, not for attempts
        // (their calls end) or probes.
        if matches!(role, ClientRole::Relay { .. } | ClientRole::Local) {
            self.awaiting_final.insert(id);
        }
        self.by_client.insert(id, role);
    }

    fn emit(&self, event: CallEvent) {
        // The accounting side is gone only when the process is exiting.
        let _ = self.events.send(event);
    }

    fn schedule(&mut self, at: Instant, timer: CallTimer) {
        let key = self.timers.insert(at, timer);
        if let Some(call) = timer.call().and_then(|c| self.calls.get_mut(&c)) {
            call.timers.push(key);
        }
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        let own = self.timers.next_at();
        let own = [
            self.pending_check,
            self.drops_check,
            self.probes.next_check,
            self.balance_check,
            self.review_at,
        ]
        .into_iter()
        .flatten()
        .chain(own)
        .min();
        match (own, self.txns.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.pending_check.is_some_and(|t| t <= now) {
            let blocks = self.directory.blocklist();
            self.pending_blocks.sweep(&blocks, self.clock.epoch_ms(now));
            self.drops_dirty = true;
            self.pending_check =
                (!self.pending_blocks.is_empty()).then(|| now + PENDING_BLOCK_CHECK);
        }
        if self.drops_check.is_some_and(|t| t <= now) {
            let directory = self.directory.load();
            let blocks = self.directory.blocklist();
            self.drops_check = None;
            self.refresh_drops(&directory, &blocks, now);
            if self.drops_check.is_none() && self.drops.load().is_some() {
                self.drops_check = Some(now + DROPS_CHECK);
            }
        }
        if self.probes.next_check.is_some_and(|t| t <= now) {
            if self.draining {
                // No new probes while shutting down (and no timer left to spin on).
                self.probes.next_check = None;
            } else {
                self.run_probes(now);
            }
        }
        if self.review_at.is_some_and(|t| t <= now) {
            self.review_balances(now);
        }
        if self.balance_check.is_some_and(|t| t <= now) {
            self.check_balances(now);
        }
        self.txns.handle_timeout(now);
        self.process_events(now);
        while let Some((at, timer)) = self.timers.pop_due(now) {
            match timer {
                CallTimer::FirstResponse { call, number } => {
                    self.first_response_timeout(now, call, number)
                }
                CallTimer::Ringing { call, number } => self.ring_timeout(now, call, number),
                CallTimer::MaxDuration { call } => self.max_duration(now, call),
                CallTimer::Forget { call } => self.forget(call),
                CallTimer::SessionExpiry { call } => self.session_expiry(now, call),
                CallTimer::BalanceCut { customer } => self.balance_cut(now, at, customer),
                CallTimer::ProbeTimeout { carrier, seq } => {
                    self.probe_result(now, carrier, seq, false)
                }
                CallTimer::AckWait { call } => self.ack_wait(now, call),
                CallTimer::ByeRetry { call, to, try_n } => self.bye_retry(now, call, to, try_n),
                CallTimer::TimerC { client } => self.timer_c(now, client),
            }
            self.process_events(now);
        }
    }

    fn handle_inbound(&mut self, now: Instant, inbound: Inbound) {
        match inbound {
            Inbound::Message { data, peer, at } => {
                self.arrival = Some(at);
                self.handle_message(now, data, peer);
                // Responses reach the calls through transaction events: same arrival.
                self.process_events(now);
                self.arrival = None;
            }
            Inbound::Failed { peer } => {
                let failed: Vec<ClientTxnId> = self
                    .by_client
                    .keys()
                    .copied()
                    .filter(|id| self.client_peer(*id) == Some(peer))
                    .collect();
                for id in failed {
                    self.txns.transport_error(TxnId::Client(id));
                }
            }
        }
        self.process_events(now);
    }

    fn client_peer(&self, id: ClientTxnId) -> Option<Peer> {
        match self.by_client.get(&id)? {
            ClientRole::Attempt { call, number } => {
                let a = self.calls.get(call)?.attempt.as_ref()?;
                (a.number == *number).then_some(a.peer)
            }
            _ => None,
        }
    }
}
