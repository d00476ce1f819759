//! Carrier health by OPTIONS probes (SPEC.md "Routing"): every active carrier is probed every
//! `health.probe_interval_seconds`, whatever its state, so a down carrier always has a way
//! back. A probe counts as answered on 2xx, 404 or 480, and as failed on any other final
//! response, a transport error or no final response within the probe timeout. The
//! thresholds live in `domain::HealthTracker`; calls never change health. A carrier's first
//! probe goes one interval after the switch starts or the carrier appears; until then the
//! health stored by the last run holds (up for a new carrier).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use domain::{Carrier, CarrierId, Directory, Health, HealthTracker, SwitchEvent, probe_alive};
use sip_message::parse_datagram;
use tracing::{debug, warn};

use super::{CallTimer, ClientRole, Engine, wire};

/// Longest wait for a probe's final response (or the interval, when shorter).
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug)]
struct Probe {
    tracker: HealthTracker,
    next_at: Instant,
    /// The sequence number of the probe waiting for its answer.
    in_flight: Option<u64>,
}

/// Every probed carrier's state.
#[derive(Debug, Default)]
pub(super) struct Probes {
    carriers: HashMap<CarrierId, Probe>,
    /// When to look for due probes next.
    pub(super) next_check: Option<Instant>,
    seq: u64,
}

impl Probes {
    /// The first probes go out at `now`.
    pub(super) fn starting(now: Instant) -> Self {
        Probes {
            next_check: Some(now),
            ..Probes::default()
        }
    }

    /// A carrier's health: the probes' verdict, else the stored one (a restart starts from
    /// it), else up.
    pub(crate) fn state(&self, id: CarrierId, directory: &Directory) -> Health {
        self.carriers.get(&id).map_or_else(
            || directory.health.get(&id).copied().unwrap_or_default(),
            |p| p.tracker.state,
        )
    }
}

impl Engine {
    /// Sends the probes that are due, forgets carriers no longer active, and sets the next
    /// check.
    pub(super) fn run_probes(&mut self, now: Instant) {
        let directory = self.directory.load();
        let interval = Duration::from_secs(directory.settings.probe_interval_s.max(1).into());
        let active: Vec<&Carrier> = directory.routes().iter().collect();
        self.probes
            .carriers
            .retain(|id, _| active.iter().any(|c| c.id == *id));
        let mut next = now + interval;
        for carrier in active {
            let stored = directory
                .health
                .get(&carrier.id)
                .copied()
                .unwrap_or_default();
            let probe = self.probes.carriers.entry(carrier.id).or_insert(Probe {
                tracker: HealthTracker::new(stored),
                // The first probe one interval after the switch starts or the carrier is
                // added (until then the stored health holds).
                next_at: now + interval,
                in_flight: None,
            });
            if probe.in_flight.is_none() && probe.next_at <= now {
                probe.next_at = now + interval;
                self.probes.seq += 1;
                let seq = self.probes.seq;
                if let Some(p) = self.probes.carriers.get_mut(&carrier.id) {
                    p.in_flight = Some(seq);
                }
                self.send_probe(now, carrier, seq, interval.min(PROBE_TIMEOUT));
            }
            if let Some(p) = self.probes.carriers.get(&carrier.id)
                && p.in_flight.is_none()
            {
                next = next.min(p.next_at);
            }
        }
        self.probes.next_check = Some(next);
        let states: Vec<(CarrierId, Health)> = self
            .probes
            .carriers
            .iter()
            .map(|(id, p)| (*id, p.tracker.state))
            .collect();
        self.status.send_if_modified(|s| {
            let before = s.health.clone();
            s.health = states.into_iter().collect();
            s.health != before
        });
    }

    fn send_probe(&mut self, now: Instant, carrier: &Carrier, seq: u64, timeout: Duration) {
        let Some(peer) = wire::carrier_peer(carrier) else {
            self.probe_result(now, carrier.id, seq, false);
            return;
        };
        let host = match peer.addr {
            std::net::SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
            std::net::SocketAddr::V4(a) => a.to_string(),
        };
        let tparam = if peer.transport == domain::Transport::Tcp {
            ";transport=tcp"
        } else {
            ""
        };
        let target = format!("sip:{host}{tparam}");
        let me = self.advertised(peer.transport).to_string();
        let call_id = format!("{}@vts-probe", wire::tag());
        let via = format!(
            "SIP/2.0/{} {me};branch={};rport",
            wire::via_transport(peer.transport),
            self.branches.new_branch(call_id.as_bytes())
        );
        let from = format!("<sip:vts@{me}>;tag={}", wire::tag());
        let to = format!("<{target}>");
        let bytes = wire::InDialog {
            method: "OPTIONS",
            target: target.as_bytes(),
            via: &via,
            routes: &[],
            from: from.as_bytes(),
            to: to.as_bytes(),
            call_id: call_id.as_bytes(),
            cseq: 1,
            user_agent: &self.cfg.user_agent,
            reason: None,
        }
        .write();
        let Ok(request) = parse_datagram(bytes) else {
            return;
        };
        match self.txns.send_request(now, request, peer, peer.reliable()) {
            Ok(id) => {
                self.track(
                    id,
                    ClientRole::Probe {
                        carrier: carrier.id,
                        seq,
                    },
                );
                self.schedule(
                    now + timeout,
                    CallTimer::ProbeTimeout {
                        carrier: carrier.id,
                        seq,
                    },
                );
            }
            Err(e) => {
                debug!(carrier = carrier.id.0, error = %e, "probe not sent");
                self.probe_result(now, carrier.id, seq, false);
            }
        }
    }

    /// The outcome of probe `seq` of `carrier` (a stale one, already timed out, is ignored).
    pub(super) fn probe_result(&mut self, now: Instant, carrier: CarrierId, seq: u64, alive: bool) {
        let directory = self.directory.load();
        let settings = &directory.settings;
        let Some(probe) = self.probes.carriers.get_mut(&carrier) else {
            return;
        };
        if probe.in_flight != Some(seq) {
            return;
        }
        probe.in_flight = None;
        let from = probe.tracker.state;
        let changed = probe.tracker.record(
            alive,
            settings.probe_fail_threshold,
            settings.probe_recover_threshold,
        );
        let next_at = probe.next_at;
        self.probes.next_check = Some(self.probes.next_check.map_or(next_at, |t| t.min(next_at)));
        let Some(to) = changed else { return };
        let name = directory
            .routes()
            .iter()
            .find(|c| c.id == carrier)
            .map(|c| c.name.clone())
            .unwrap_or_default();
        warn!(
            target: "vts::health",
            "HEALTH carrier={} name={name:?} from={from} to={to}",
            carrier.0
        );
        self.status.send_modify(|s| {
            s.health.insert(carrier, to);
        });
        let _ = self.notices.send(SwitchEvent::HealthChanged {
            carrier,
            name,
            from,
            to,
            at_ms: self.clock.epoch_ms(now),
        });
    }

    /// A probe's response.
    pub(super) fn probe_response(
        &mut self,
        now: Instant,
        carrier: CarrierId,
        seq: u64,
        status: u16,
    ) {
        if status >= 200 {
            self.probe_result(now, carrier, seq, probe_alive(status));
        }
    }
}
