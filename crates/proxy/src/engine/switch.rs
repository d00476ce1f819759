//! The switch as a running thing: [`Switch`] starts the transports and the engine, and
//! runs the loop that feeds the engine messages and timeouts, sends what it writes, and
//! drains calls on shutdown; [`Shared`] is the cluster state it runs with.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::{info, warn};

use super::{Engine, SHUTDOWN_BYE_GRACE, now};
use crate::config::ProxyConfig;
use crate::transport::{Inbound, Listener, ListenerSpec, Transports};
use cluster::DirectorySource;
use cluster::status::{self, StatusHandle};
use domain::{CallEvent, SwitchEvent};
use sip_transaction::TxnId;
use telemetry::latency::{Kind, Latency};

/// The state the switch shares with other nodes (`cluster`): which implementation of each
/// the switch uses. [`Shared::local`] keeps everything in this process.
pub struct Shared {
    pub limiter: Box<dyn cluster::Limiter>,
    pub channels: Arc<dyn cluster::Channels>,
    pub minutes: Box<dyn cluster::Minutes>,
    /// Balances, kept current by whoever owns the store.
    pub balances: cluster::BalanceSource,
    /// Closed by accounting when it cannot record more calls.
    pub accounting: cluster::AccountingGate,
}

impl Shared {
    /// In-process limits, channels and minutes (one node).
    pub fn local() -> Shared {
        Shared {
            limiter: Box::new(cluster::LocalLimiter::new()),
            channels: Arc::new(cluster::LocalChannels::new()),
            minutes: Box::new(cluster::LocalMinutes::new()),
            balances: cluster::BalanceSource::default(),
            accounting: cluster::AccountingGate::default(),
        }
    }
}

/// A running switch: its bound addresses and status, and [`Switch::run`] to drive it.
pub struct Switch {
    engine: Engine,
    transports: Transports,
    inbound: mpsc::Receiver<Inbound>,
    bound: Vec<ListenerSpec>,
    status: StatusHandle,
}

impl Switch {
    /// Starts the transports on `listeners`. Call [`Switch::run`] to process messages.
    pub fn start(
        cfg: ProxyConfig,
        listeners: Vec<Listener>,
        directory: DirectorySource,
        events: mpsc::UnboundedSender<CallEvent>,
        notices: mpsc::UnboundedSender<SwitchEvent>,
        shared: Shared,
    ) -> io::Result<Switch> {
        let (tx, inbound) = mpsc::channel(16 * 1024);
        let guards = crate::Guards::new(notices.clone());
        let (transports, bound) = Transports::start(
            listeners,
            tx,
            cfg.sanity.max_message_size,
            cfg.limits.clone(),
            guards,
        )?;
        let (status_tx, status) = status::channel();
        let engine = Engine::new(
            cfg,
            directory,
            (events, notices),
            status_tx,
            &bound,
            &transports,
            shared,
        );
        Ok(Switch {
            engine,
            transports,
            inbound,
            bound,
            status,
        })
    }

    /// The addresses the switch listens on (with the ports chosen for port 0).
    pub fn local_addrs(&self) -> &[ListenerSpec] {
        &self.bound
    }

    /// Calls in progress, updated as they change.
    pub fn status(&self) -> StatusHandle {
        self.status.clone()
    }

    /// The protective bounds' counters (caps reached, drops, resources in use).
    pub fn guards(&self) -> crate::Guards {
        self.engine.guards.clone()
    }

    /// Time spent inside the switch by INVITEs and responses.
    pub fn latency(&self) -> Latency {
        self.engine.latency.clone()
    }

    /// Hands a copy of every message received or sent to `tap` (HEP export, traces), with
    /// the switch's own address per transport as the advertised one.
    pub fn capture(&mut self, tap: telemetry::capture::Tap) {
        let local = self
            .engine
            .advertised
            .iter()
            .filter_map(|(t, a)| Some((*t, a.parse().ok()?)))
            .collect();
        self.engine.capture = Some((tap, local));
    }

    /// New calls a second, for `/metrics`.
    pub fn cps(&self) -> telemetry::CpsMeter {
        self.engine.cps.clone()
    }

    /// Processes messages until `shutdown` completes; then stops taking calls, lets calls in
    /// progress end for the drain period, ends the rest with BYE, and returns once every
    /// call has ended (their `CallEvent::Ended` sent).
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut drain_deadline: Option<Instant> = None;
        loop {
            let wake = self.engine.poll_timeout();
            // Past the drain deadline, the next shutdown step is the end of the BYE grace.
            let drain_wake =
                drain_deadline.map(|d| if now() < d { d } else { d + SHUTDOWN_BYE_GRACE });
            let sleep_until = match (wake, drain_wake) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let sleep = async {
                match sleep_until {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                msg = self.inbound.recv() => {
                    let Some(msg) = msg else { break };
                    // One message, then its output goes out: nothing waits behind a batch.
                    self.engine.handle_inbound(now(), msg);
                }
                () = sleep => self.engine.handle_timeout(now()),
                () = &mut shutdown, if drain_deadline.is_none() => {
                    info!(calls = self.engine.calls_in_progress(), "shutting down: draining calls");
                    self.engine.draining = true;
                    self.engine.status.send_modify(|s| s.draining = true);
                    drain_deadline = Some(now() + self.engine.cfg.drain_timeout);
                }
            }
            let now = now();
            if let Some(deadline) = drain_deadline {
                if now >= deadline && self.engine.calls_in_progress() > 0 {
                    if !self.engine.draining_past_deadline {
                        warn!(
                            calls = self.engine.calls_in_progress(),
                            "drain period over: ending calls with BYE"
                        );
                        self.engine.draining_past_deadline = true;
                    }
                    self.engine.hang_up_all(now);
                    if now >= deadline + SHUTDOWN_BYE_GRACE {
                        warn!(
                            calls = self.engine.calls_in_progress(),
                            "hang-ups not confirmed in time: calls closed"
                        );
                        self.engine.force_end_all(now);
                    }
                }
                if self.engine.calls_in_progress() == 0 && self.engine.requests_done(deadline, now)
                {
                    self.flush();
                    break;
                }
            }
            self.flush();
        }
    }

    fn flush(&mut self) {
        use crate::transport::Connect;
        // Only requests of client transactions may open a TCP connection: responses and
        // stateless messages go on the connection they belong to, or nowhere.
        while let Some(t) = self.engine.txns.poll_transmit() {
            let connect = match t.id {
                TxnId::Client(_) => Connect::Allowed,
                TxnId::Server(_) => Connect::Never,
            };
            self.engine.capture(t.to, &t.payload, false);
            self.transports.send(t.to, t.payload, connect);
        }
        // (Taken and put back: the capture reads the engine while the queue drains, and
        // the queue keeps its capacity.)
        let mut out = std::mem::take(&mut self.engine.out);
        for (peer, data) in out.drain(..) {
            self.engine.capture(peer, &data, false);
            self.transports.send(peer, data, Connect::Never);
        }
        self.engine.out = out;
        if !self.engine.samples.is_empty() {
            let sent = now();
            let samples: Vec<(Kind, Duration)> = self
                .engine
                .samples
                .drain(..)
                .map(|(kind, at)| (kind, sent.saturating_duration_since(at)))
                .collect();
            self.engine.latency.record(&samples);
        }
    }
}
