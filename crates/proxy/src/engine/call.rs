//! A new call: admission, attempts to carriers in order, failover, CANCEL, and the end of a
//! call that never got answered. Every attempt's INVITE is built from the pristine inbound
//! INVITE, so nothing leaks from one attempt to the next.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use domain::{
    CallEvent, CallRef, Carrier, CarrierId, Customer, CustomerId, Directory, HangupSide, LimitKind,
    SecurityEvent, SwitchEvent,
};
use sip_message::{Message, build, parse_datagram, uri::unescape};
use sip_transaction::{ClientTxnId, ServerTxnId};
use tracing::{debug, info, warn};

use super::dialog::Phase;
use super::{CallTimer, ClientRole, Engine, wire};
use crate::latency::Kind;
use crate::pipeline::{self, Reject};
use crate::sdp;
use crate::transport::Peer;
use cluster::{ChannelScope, Lease, Period, Scope};

/// One INVITE sent to one carrier.
#[derive(Debug)]
pub(super) struct Attempt {
    pub(super) number: u32,
    pub(super) client: ClientTxnId,
    pub(super) carrier: CarrierId,
    pub(super) peer: Peer,
    /// The INVITE as sent (CANCEL and ACK are built from it); dropped once the attempt has
    /// its final response, so that answered and ended calls keep little memory.
    pub(super) request: Option<Message>,
    /// Any response arrived (stops the first-response timer; allows CANCEL).
    responded: bool,
    /// An 18x arrived.
    progressed: bool,
    /// A final response arrived.
    pub(super) finished: bool,
    /// This carrier's ring timeout (or the switch's).
    ring_timeout: Duration,
    /// CANCEL wanted (the call was cancelled or the attempt abandoned) and whether it went.
    cancel: Cancel,
    /// The carrier hides its topology from customers.
    pub(super) hide: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cancel {
    No,
    /// Send CANCEL as soon as a provisional response allows it (RFC 3261 §9.1).
    Wanted,
    Sent,
}

/// Why the last attempt failed, to tell the customer when no carrier is left.
#[derive(Debug)]
enum Failure {
    /// A carrier's final response: relayed as it is.
    Response(Message),
    /// A timeout or transport error the switch saw.
    Local(u16, &'static str),
}

impl Failure {
    /// The switch's own failure, as the reply table says.
    fn local(reject: Reject) -> Failure {
        let (status, reason) = reject.reply();
        Failure::Local(status, reason)
    }
}

#[derive(Debug)]
pub(super) struct Call {
    pub(super) server: ServerTxnId,
    /// Where the INVITE came from.
    pub(super) source: Peer,
    /// The INVITE as received; dropped once the call is answered or ended.
    pub(super) invite: Option<Message>,
    pub(super) customer: CustomerId,
    /// The CDR's id (a charge held for the balance is keyed by it).
    pub(super) cdr_id: String,
    /// When the INVITE arrived (epoch ms): rates in force then apply.
    pub(super) started_ms: i64,
    /// The To tag of responses the switch writes itself for this call.
    pub(super) to_tag: String,
    routes: Vec<Carrier>,
    next_route: usize,
    pub(super) attempt: Option<Box<Attempt>>,
    /// Attempts given up for a later one; their late responses get CANCEL or ACK+BYE.
    abandoned: Vec<Attempt>,
    last_failure: Option<Box<Failure>>,
    /// The attempt whose 2xx answered the call.
    pub(super) answered_by: Option<u32>,
    /// INVITEs sent to carriers (the attempt cap counts these, not skipped carriers).
    sent: u32,
    /// The dialled number in E.164 (normalised), for carriers' prefix rules and profiles.
    pub(super) destination: String,
    /// The CLI in E.164 (normalised or forced), or as received when it is not a number.
    caller: String,
    /// The switch's and the customer's channels, held until the call ends.
    leases: Vec<Lease>,
    /// The current attempt's carrier channel.
    carrier_lease: Option<Lease>,
    /// The call's timers, removed when it is forgotten.
    pub(super) timers: Vec<super::TimerKey>,
    /// The customer's identity headers go to carriers.
    trusted: bool,
    /// The customer hides its topology: its Via values, put back on the responses it gets.
    pub(super) hidden_vias: Option<Vec<Bytes>>,
    pub(super) phase: Phase,
}

impl Call {
    pub(super) fn is_ended(&self) -> bool {
        matches!(self.phase, Phase::Ended(_))
    }

    pub(super) fn carrier(&self) -> Option<CarrierId> {
        self.attempt.as_ref().map(|a| a.carrier)
    }

    /// Drops what an answered or ended call no longer needs: the INVITE, the route list, and
    /// the requests of attempts that have their final response.
    pub(super) fn shed(&mut self) {
        self.invite = None;
        self.routes = Vec::new();
        for a in self
            .attempt
            .as_deref_mut()
            .into_iter()
            .chain(self.abandoned.iter_mut())
        {
            if a.finished {
                a.request = None;
            }
        }
    }

    fn attempt_mut(&mut self, number: u32) -> Option<&mut Attempt> {
        if self.attempt.as_ref().is_some_and(|a| a.number == number) {
            return self.attempt.as_deref_mut();
        }
        self.abandoned.iter_mut().find(|a| a.number == number)
    }
}

/// Headers that assert who is calling: from a customer that is not trusted they are
/// dropped, or a forced CLI is bypassed through them.
const IDENTITY_HEADERS: &[&str] = &[
    "P-Asserted-Identity",
    "P-Preferred-Identity",
    "Remote-Party-ID",
    "Privacy",
    "Diversion",
    "History-Info",
];

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// What admission gives a call it lets through.
struct Admitted {
    leases: Vec<Lease>,
    numbers: pipeline::Numbers,
    routes: Vec<Carrier>,
    /// The first increment (minimum and connection fee) a billed customer's call holds
    /// against the balance until it is answered or ends.
    first: Option<domain::Money>,
}

/// Why an attempt's INVITE could not be built for a carrier.
#[derive(Debug)]
enum Unsendable {
    /// The offer has no codec the carrier takes (SDP allow-list).
    NoCodec,
    /// The inbound INVITE cannot take the edits (already checked by sanity: not expected).
    Edit,
}

impl From<sip_message::edit::EditError> for Unsendable {
    fn from(_: sip_message::edit::EditError) -> Self {
        Unsendable::Edit
    }
}

/// Failover-class final responses: 408, 5xx, 6xx. Other 4xx (486, 480, 487...) go back to
/// the customer.
fn fails_over(status: u16) -> bool {
    status == 408 || status >= 500
}

impl Engine {
    /// How a response to the INVITE of `cref` (attempt `number`) is rewritten for the
    /// customer: Contact to us (`contact`), its hidden Vias back, the carrier's topology
    /// stripped when it hides it.
    pub(super) fn back_for_invite(&self, cref: CallRef, number: u32, contact: bool) -> super::Back {
        let Some(call) = self.calls.get(&cref) else {
            return super::Back::default();
        };
        let hides = call
            .attempt
            .as_deref()
            .filter(|a| a.number == number)
            .or_else(|| call.abandoned.iter().find(|a| a.number == number))
            .filter(|a| a.hide)
            .map(|a| {
                Bytes::from(wire::record_route(
                    self.advertised(a.peer.transport),
                    a.peer.transport,
                ))
            });
        super::Back {
            contact: contact.then_some(call.source.transport),
            vias: call.hidden_vias.clone(),
            strip: hides,
        }
    }

    /// Counts a refused INVITE from an unknown source address; one more than
    /// `security.auth_fail_threshold` within the window blocks it (never a whitelisted one).
    fn count_auth_failure(&mut self, now: Instant, ip: IpAddr, directory: &Directory) {
        let settings = &directory.settings;
        let Some(threshold) = settings.auth_fail_threshold else {
            return;
        };
        // A carrier's address sending an INVITE is refused, never blocked.
        if directory.whitelisted(ip) || directory.is_known(ip) {
            return;
        }
        let window = Duration::from_secs(settings.auth_fail_window_s.into());
        if !self.auth_failures.exceeded(ip, now, threshold, window) {
            return;
        }
        let until = self.clock.epoch_ms(now) + i64::from(settings.block_s) * 1000;
        let event = SecurityEvent::AuthFailures {
            source: pipeline::aggregate(ip),
            threshold,
            window_s: settings.auth_fail_window_s,
            blocked_until_ms: until,
        };
        self.auto_block(now, ip, event);
    }

    /// An out-of-dialog INVITE opened server transaction `server`.
    pub(super) fn new_call(
        &mut self,
        now: Instant,
        server: ServerTxnId,
        invite: Message,
        peer: Peer,
    ) {
        self.reply(now, server, &invite, 100, "Trying", &[]);
        if self.draining {
            let (status, reason) = Reject::ShuttingDown.reply();
            self.reply(now, server, &invite, status, reason, &[]);
            return;
        }
        if self.accounting.is_full() {
            let (status, reason) = Reject::CdrLogFull.reply();
            self.reply(now, server, &invite, status, reason, &[]);
            return;
        }
        let directory = self.directory.load();
        let customer = match pipeline::identify(&directory, peer.addr.ip()) {
            Ok(c) => c.clone(),
            Err(reject) => {
                let (status, reason) = reject.reply();
                info!(
                    target: "vts::security",
                    "AUTH unauthorized source={} ruri={}",
                    peer.addr.ip(),
                    lossy(invite.request_uri_bytes().unwrap_or_default())
                );
                self.reply(now, server, &invite, status, reason, &[]);
                let _ = self.notices.send(SwitchEvent::Refused {
                    customer: None,
                    source: peer.addr.ip(),
                    code: status,
                    reason,
                });
                self.count_auth_failure(now, peer.addr.ip(), &directory);
                return;
            }
        };
        let cref = CallRef(self.next_call);
        self.next_call += 1;
        let h = invite.headers();
        let caller = h
            .from()
            .ok()
            .and_then(|f| f.uri().ok())
            .and_then(|u| u.user().map(|u| lossy(&unescape(u))))
            .unwrap_or_default();
        let callee = invite
            .request_uri_bytes()
            .and_then(|u| sip_message::uri::Uri::parse(u).ok())
            .and_then(|u| u.user().map(|u| lossy(&unescape(u))))
            .unwrap_or_default();
        let (callee_raw, caller_raw) = (callee.clone(), caller.clone());
        let cdr_id = uuid::Uuid::now_v7().to_string();
        let started_ms = self.clock.epoch_ms(now);
        self.emit(CallEvent::Started {
            call: cref,
            cdr_id: cdr_id.clone(),
            at_ms: started_ms,
            call_id: lossy(h.call_id().unwrap_or_default()),
            customer: customer.id,
            source: peer.addr.to_string(),
            caller,
            callee,
            user_agent: h.user_agent().map(lossy),
            codecs: sdp::audio_codecs(invite.body()),
        });
        self.status.send_modify(|s| s.call_started(customer.id));
        let now_ms = self.clock.epoch_ms(now);
        let admitted = self.admit(now, cref, &customer, &directory, &callee_raw, &caller_raw);
        let (numbers, leases, routes) = match admitted {
            Ok(a) => {
                self.emit(CallEvent::Numbers {
                    call: cref,
                    caller: a.numbers.caller.clone(),
                    callee: a.numbers.callee.clone(),
                });
                self.minutes
                    .start(customer.id.0, cref.0, customer.local_ms(now_ms));
                self.warn_limits(now, &customer);
                if let Some(first) = a.first {
                    self.hold_first(customer.id, cref, first);
                }
                (a.numbers, a.leases, Ok(a.routes))
            }
            Err(reject) => {
                let (code, reason) = reject.reply();
                debug!(target: "vts::admission", customer = customer.id.0, code, reason, "refused");
                let _ = self.notices.send(SwitchEvent::Refused {
                    customer: Some(customer.id),
                    source: peer.addr.ip(),
                    code,
                    reason,
                });
                let numbers = pipeline::Numbers {
                    callee: callee_raw,
                    caller: caller_raw,
                };
                (numbers, Vec::new(), Err(reject))
            }
        };
        let hidden_vias = customer.hide_topology.then(|| wire::via_values(&invite));
        self.calls.insert(
            cref,
            Call {
                server,
                source: peer,
                invite: Some(invite),
                customer: customer.id,
                cdr_id,
                started_ms,
                to_tag: wire::tag(),
                routes: routes.clone().unwrap_or_default(),
                next_route: 0,
                attempt: None,
                abandoned: Vec::new(),
                last_failure: None,
                answered_by: None,
                sent: 0,
                destination: numbers.callee,
                caller: numbers.caller,
                leases,
                carrier_lease: None,
                timers: Vec::new(),
                trusted: customer.trusted,
                hidden_vias,
                phase: Phase::Setup,
            },
        );
        self.by_server.insert(server, cref);
        self.in_setup += 1;
        match routes {
            Ok(_) => self.next_attempt(now, cref),
            Err(reject) => {
                let (status, reason) = reject.reply();
                self.fail_call(
                    now,
                    cref,
                    Failure::Local(status, reason),
                    HangupSide::Switch,
                );
            }
        }
    }

    /// The admission stages after identification, in SPEC.md's order; the channels the call
    /// reserves are leases it holds until it ends.
    fn admit(
        &mut self,
        now: Instant,
        cref: CallRef,
        customer: &Customer,
        directory: &Directory,
        callee: &str,
        caller: &str,
    ) -> Result<Admitted, Reject> {
        let now_ms = self.clock.epoch_ms(now);
        let settings = &directory.settings;
        pipeline::status(customer)?;
        let global = Lease::acquire(
            &self.channels,
            ChannelScope::Global,
            cref.0,
            settings.global_max_channels,
            now,
        )
        .ok_or(Reject::SystemCapacity)?;
        pipeline::global_cps(&mut *self.limiter, settings, now)?;
        pipeline::customer_cps(&mut *self.limiter, customer, now)?;
        let own = Lease::acquire(
            &self.channels,
            ChannelScope::Customer(customer.id.0),
            cref.0,
            customer.max_channels,
            now,
        )
        .ok_or(Reject::ChannelLimit)?;
        pipeline::minutes(&*self.minutes, customer, now_ms)?;
        // (Billing off: no balance to read.)
        let balance = match customer.billing {
            domain::BillingMode::Off => domain::Money(0),
            _ => self.balance_now(customer.id, now_ms),
        };
        pipeline::balance(customer, balance, settings)?;
        let numbers = pipeline::numbers(customer, callee, caller)?;
        let first = match customer.spendable(balance) {
            Some(_) => {
                domain::rating::tariff(directory, customer.id, None, &numbers.callee, now_ms)
                    .filter(|t| matches!(t, domain::rating::Tariff::Rate(_)))
                    .map(|t| t.price(true, 0))
            }
            None => None,
        };
        pipeline::first_increment(customer, balance, first, settings)?;
        pipeline::dial_plan(directory, customer, &numbers.callee)?;
        let probes = &self.probes;
        let health = |c: &Carrier| probes.state(c.id, directory);
        let routes = pipeline::route(
            directory,
            customer,
            &numbers.callee,
            now_ms,
            &health,
            &mut self.rng,
        )?;
        Ok(Admitted {
            leases: vec![global, own],
            numbers,
            routes,
            first,
        })
    }

    /// 80 % of a customer's CPS, channels or minutes: one warning per window (the second,
    /// the day, the month; channels again after falling below 80 %).
    fn warn_limits(&mut self, now: Instant, customer: &Customer) {
        let now_ms = self.clock.epoch_ms(now);
        let id = customer.id;
        let mut due: Vec<(LimitKind, u64, u64)> = Vec::new();
        if let Some(rate) = customer.max_cps
            && self.limiter.usage(Scope::Customer(id.0), rate, now) >= 0.8
            && self.warnings.once(id, LimitKind::Cps, now_ms / 1000)
        {
            let used =
                (self.limiter.usage(Scope::Customer(id.0), rate, now) * f64::from(rate)) as u64;
            due.push((LimitKind::Cps, used, rate.into()));
        }
        if let Some(max) = customer.max_channels {
            let used = self.channels.in_use(ChannelScope::Customer(id.0));
            if used * 5 >= max * 4 {
                if self.warnings.once(id, LimitKind::Channels, 0) {
                    due.push((LimitKind::Channels, used.into(), max.into()));
                }
            } else {
                self.warnings.rearm(id, LimitKind::Channels);
            }
        }
        for (kind, cap, period) in [
            (
                LimitKind::DailyMinutes,
                customer.daily_minutes,
                Period::day_of(customer.local_ms(now_ms)),
            ),
            (
                LimitKind::MonthlyMinutes,
                customer.monthly_minutes,
                Period::month_of(customer.local_ms(now_ms)),
            ),
        ] {
            let Some(cap) = cap else { continue };
            let used_min = self.minutes.used(id.0, period, now_ms) / 60_000;
            let window = match period {
                Period::Day(n) | Period::Month(n) => n,
            };
            if used_min * 5 >= i64::from(cap) * 4 && self.warnings.once(id, kind, window) {
                due.push((kind, used_min.max(0) as u64, cap.into()));
            }
        }
        for (limit, used, max) in due {
            warn!(
                target: "vts::limits",
                "LIMIT_WARNING customer={} limit={} used={used} max={max}",
                id.0,
                limit.as_str()
            );
            let _ = self.notices.send(SwitchEvent::LimitWarning {
                customer: id,
                limit,
                used,
                max,
            });
        }
    }

    /// Sends the INVITE to the next carrier, or ends the call when none is left.
    fn next_attempt(&mut self, now: Instant, cref: CallRef) {
        loop {
            let Some(call) = self.calls.get_mut(&cref) else {
                return;
            };
            if !matches!(call.phase, Phase::Setup) {
                return;
            }
            let max_attempts = self.cfg.max_attempts;
            let exhausted = call.sent >= max_attempts;
            let Some(carrier) = call
                .routes
                .get(call.next_route)
                .filter(|_| !exhausted)
                .cloned()
            else {
                let failure = call
                    .last_failure
                    .take()
                    .map_or(Failure::local(Reject::NoRoutes), |f| *f);
                let side = match failure {
                    Failure::Response(_) => HangupSide::Callee,
                    Failure::Local(..) => HangupSide::Switch,
                };
                self.fail_call(now, cref, failure, side);
                return;
            };
            call.next_route += 1;
            let number = call.next_route as u32;
            // What `vts route` decides too (prefix rules, a usable address), then what
            // depends on the moment (its limits): re-checked for every attempt.
            if let Some(pass) =
                pipeline::pass_over(&carrier, &call.destination, call.sent, max_attempts)
            {
                debug!(carrier = carrier.id.0, reason = %pass.reason(), "carrier skipped");
                if call.last_failure.is_none() || pass == pipeline::PassOver::HostNotAddress {
                    let (status, reason) = pass.reply();
                    call.last_failure = Some(Box::new(Failure::Local(status, reason)));
                }
                continue;
            }
            // The previous attempt is over: its carrier channel goes back first.
            call.carrier_lease = None;
            let lease = Lease::acquire(
                &self.channels,
                ChannelScope::Carrier(carrier.id.0),
                cref.0,
                carrier.max_channels,
                now,
            );
            let full = lease.is_none()
                || carrier.max_cps.is_some_and(|rate| {
                    !self.limiter.take(Scope::Carrier(carrier.id.0), rate, now)
                });
            if full {
                debug!(carrier = carrier.id.0, "carrier at capacity: skipped");
                if call.last_failure.is_none() {
                    let (status, reason) = Reject::CarriersAtCapacity.reply();
                    call.last_failure = Some(Box::new(Failure::Local(status, reason)));
                }
                continue;
            }
            let Some(peer) = wire::carrier_peer(&carrier) else {
                continue; // not an address: passed over above
            };
            if self.is_us_addr(&peer) {
                // A carrier configured at the switch's own address would loop every call.
                warn!(carrier = %carrier.name, addr = %peer.addr, "carrier is the switch itself: skipped");
                self.guards.count(crate::guard::Counter::LoopDetected);
                if let Some(call) = self.calls.get_mut(&cref) {
                    call.last_failure = Some(Box::new(Failure::local(Reject::Loop)));
                }
                continue;
            }
            let via_host = self.advertised(peer.transport).to_string();
            let built = {
                let call = &self.calls[&cref];
                let Some(invite) = call.invite.as_ref() else {
                    return;
                };
                self.build_attempt(invite, call, &carrier, peer, &via_host)
            };
            let (bytes, caller_out, callee_out) = match built {
                Ok(b) => b,
                Err(Unsendable::NoCodec) => {
                    debug!(
                        carrier = carrier.id.0,
                        "no codec of the offer allowed: skipped"
                    );
                    if let Some(call) = self.calls.get_mut(&cref)
                        && call.last_failure.is_none()
                    {
                        call.last_failure = Some(Box::new(Failure::local(Reject::NoCodec)));
                    }
                    continue;
                }
                Err(Unsendable::Edit) => continue,
            };
            let Ok(request) = parse_datagram(bytes) else {
                continue;
            };
            let client = match self
                .txns
                .send_request(now, request.clone(), peer, peer.reliable())
            {
                Ok(id) => id,
                Err(e) => {
                    debug!(error = %e, "attempt not sent");
                    continue;
                }
            };
            let Some(call) = self.calls.get_mut(&cref) else {
                return;
            };
            call.sent += 1;
            call.carrier_lease = lease;
            let previous = call.attempt.take();
            let previous_carrier = previous.as_ref().map(|a| a.carrier);
            if let Some(p) = previous {
                call.abandoned.push(*p);
            }
            let carrier_id = carrier.id;
            call.attempt = Some(Box::new(Attempt {
                number,
                client,
                carrier: carrier_id,
                peer,
                request: Some(request),
                responded: false,
                progressed: false,
                finished: false,
                cancel: Cancel::No,
                hide: carrier.hide_topology,
                ring_timeout: carrier
                    .ring_timeout_s
                    .map_or(self.cfg.ring_timeout, |s| Duration::from_secs(s.into())),
            }));
            self.track(client, ClientRole::Attempt { call: cref, number });
            if previous_carrier.is_none()
                && let Some(at) = self.arrival
            {
                self.samples.push((Kind::Invite, at));
            }
            self.status
                .send_modify(|s| s.carrier_changed(previous_carrier, Some(carrier_id)));
            self.emit(CallEvent::AttemptStarted {
                call: cref,
                carrier: carrier_id,
                carrier_addr: peer.addr.to_string(),
                caller_out,
                callee_out,
                at_ms: self.clock.epoch_ms(now),
            });
            let first_response = carrier
                .first_response_ms
                .map_or(self.cfg.first_response_timeout, |ms| {
                    Duration::from_millis(ms.into())
                });
            self.schedule(
                now + first_response,
                CallTimer::FirstResponse { call: cref, number },
            );
            return;
        }
    }

    /// The INVITE for one carrier, from the pristine one: our Via on top (with received and
    /// rport filled on the customer's), Record-Route, our own Route removed, Max-Forwards
    /// decremented, the Request-URI pointed at the carrier; the destination (Request-URI and
    /// To) and the CLI (From) as the carrier's profile writes them from the call's E.164
    /// numbers, and the SDP offer cut to the carrier's codecs. Returns the bytes, the CLI
    /// and the destination sent.
    fn build_attempt(
        &self,
        invite: &Message,
        call: &Call,
        carrier: &Carrier,
        peer: Peer,
        via_host: &str,
    ) -> Result<(Bytes, String, String), Unsendable> {
        let source = call.source;
        let h = invite.headers();
        let mut e = invite.edit();
        let transport = wire::via_transport(peer.transport);
        let branch = self.branches.new_branch(h.call_id().unwrap_or_default());
        let our_via = format!("SIP/2.0/{transport} {via_host};branch={branch};rport");
        if call.hidden_vias.is_some() {
            // The carrier sees the switch as the origin: the customer's Vias and
            // User-Agent stay here (its Vias are put back on the responses it gets).
            e.remove_header(sip_message::HeaderName::Via)?;
            e.add_header("Via", our_via.as_bytes())?;
            e.remove_header(sip_message::HeaderName::UserAgent)?;
        } else {
            e.prepend_via(our_via.as_bytes())?;
            let source_ip = source.addr.ip().to_string();
            e.set_via_received(Some(source_ip.as_bytes()), source.addr.port())?;
        }
        if !call.trusted {
            for name in IDENTITY_HEADERS {
                e.remove_other(name)?;
            }
        }
        let rr = wire::record_route(via_host, peer.transport);
        e.prepend_record_route(rr.as_bytes())?;
        // The path to the carrier is the switch's alone: our own Route and any the customer
        // wrote after it go (the next hop is the carrier's configured address).
        e.remove_header(sip_message::HeaderName::Route)?;
        // The carrier sends its in-dialog requests to the switch whatever it does with
        // Record-Route: billing never depends on the far end honouring it.
        if h.get(sip_message::HeaderName::Contact).is_some() {
            e.remove_header(sip_message::HeaderName::Contact)?;
            e.add_header("Contact", self.our_contact(peer.transport).as_bytes())?;
        }
        e.decrement_max_forwards()?;
        let destination = carrier.numbers.destination(&call.destination);
        let cli = carrier.numbers.cli(&call.caller);
        let tparam = if peer.transport == domain::Transport::Tcp {
            ";transport=tcp"
        } else {
            ""
        };
        let host = match peer.addr {
            std::net::SocketAddr::V6(a) => format!("[{}]", a.ip()),
            std::net::SocketAddr::V4(a) => a.ip().to_string(),
        };
        let user = wire::escape_user(&destination);
        let new_uri = format!("sip:{user}@{host}:{}{tparam}", carrier.port);
        e.set_request_uri(new_uri.as_bytes())?;
        // Rewritten only where the carrier's rendering differs from what the customer sent
        // (the common e164-in, international-out case edits neither).
        fn needs<E>(na: Result<sip_message::headers::NameAddr<'_>, E>, want: &str) -> bool {
            na.ok()
                .and_then(|n| n.uri().ok())
                .and_then(|u| u.user().map(|have| have != want.as_bytes()))
                .unwrap_or(false)
        }
        if needs(h.to(), &user) {
            e.set_to_user(user.as_bytes())?;
        }
        let cli_user = wire::escape_user(&cli);
        if needs(h.from(), &cli_user) {
            e.set_from_user(cli_user.as_bytes())?;
        }
        if !carrier.codecs.is_empty()
            && let Some(body) = sdp::filter_codecs(invite.body(), &carrier.codecs)
                .map_err(|_| Unsendable::NoCodec)?
        {
            e.set_body(None, &body)?;
        }
        Ok((e.finish(), cli, destination))
    }

    /// A response to attempt `number` of a call: the attempt has responded (no failover on
    /// the first-response timeout, CANCEL allowed), and its first provisional starts the
    /// ring timer.
    pub(super) fn attempt_response(
        &mut self,
        now: Instant,
        cref: CallRef,
        number: u32,
        msg: Message,
    ) {
        let Some(status) = msg.status() else { return };
        let ring_at = self.calls.get_mut(&cref).and_then(|call| {
            let current = call.attempt.as_ref().is_some_and(|a| a.number == number);
            let setup = matches!(call.phase, Phase::Setup);
            let attempt = call.attempt_mut(number)?;
            let first = !attempt.responded;
            attempt.responded = true;
            (first && current && setup && status < 200).then(|| now + attempt.ring_timeout)
        });
        if let Some(at) = ring_at {
            self.schedule(at, CallTimer::Ringing { call: cref, number });
        }
        self.attempt_response_after_timer(now, cref, number, msg)
    }

    /// [`Self::attempt_response`] once the ring timer is set.
    fn attempt_response_after_timer(
        &mut self,
        now: Instant,
        cref: CallRef,
        number: u32,
        msg: Message,
    ) {
        let Some(status) = msg.status() else { return };
        let Some(call) = self.calls.get_mut(&cref) else {
            return;
        };
        let current = call.attempt.as_ref().is_some_and(|a| a.number == number);
        let setup = matches!(call.phase, Phase::Setup);
        let confirmed = matches!(call.phase, Phase::Confirmed(_));
        let server = call.server;
        let Some(attempt) = call.attempt_mut(number) else {
            return;
        };
        if !current || !(setup || confirmed) {
            // An abandoned attempt, or a call already ended: never let it ring on.
            self.unwanted_response(now, cref, number, &msg);
            return;
        }
        if confirmed {
            // A retransmitted 2xx of the answered INVITE is relayed end to end; a 2xx of
            // another dialog (a fork) is not wanted: ACK and BYE.
            if (200..300).contains(&status) {
                let same = match (&call.phase, msg.headers().to().ok().and_then(|t| t.tag())) {
                    (Phase::Confirmed(d), Some(tag)) => {
                        d.key()
                            == super::dialog::DialogKey::new(
                                &d.call_id(),
                                msg.headers()
                                    .from()
                                    .ok()
                                    .and_then(|f| f.tag())
                                    .unwrap_or_default(),
                                tag,
                            )
                    }
                    _ => false,
                };
                if same {
                    let back = self.back_for_invite(cref, number, true);
                    self.relay_response(now, server, &msg, back);
                } else {
                    self.unwanted_response(now, cref, number, &msg);
                }
            }
            return;
        }
        match status {
            100 => {}
            101..=199 => {
                let first = !attempt.progressed;
                attempt.progressed = true;
                if attempt.cancel == Cancel::Wanted {
                    self.send_cancel(now, cref, number);
                    return;
                }
                if first {
                    self.emit(CallEvent::Progress {
                        call: cref,
                        at_ms: self.clock.epoch_ms(now),
                    });
                }
                let back = self.back_for_invite(cref, number, true);
                self.relay_response(now, server, &msg, back);
            }
            200..=299 => {
                self.emit(CallEvent::AttemptEnded {
                    call: cref,
                    code: status,
                });
                self.answered(now, cref, msg);
            }
            _ => {
                self.emit(CallEvent::AttemptEnded {
                    call: cref,
                    code: status,
                });
                if fails_over(status) {
                    debug!(status, carrier = number, "failover");
                    if let Some(call) = self.calls.get_mut(&cref) {
                        call.last_failure = Some(Box::new(Failure::Response(msg)));
                    }
                    self.next_attempt(now, cref);
                } else {
                    self.fail_call(now, cref, Failure::Response(msg), HangupSide::Callee);
                }
            }
        }
    }

    /// A response to an attempt the call no longer wants: CANCEL what rings, ACK and BYE what
    /// answered.
    fn unwanted_response(&mut self, now: Instant, cref: CallRef, number: u32, msg: &Message) {
        match msg.status() {
            Some(101..=199) => self.send_cancel(now, cref, number),
            Some(200..=299) => {
                let Some(call) = self.calls.get(&cref) else {
                    return;
                };
                let Some(attempt) = call
                    .attempt
                    .as_deref()
                    .filter(|a| a.number == number)
                    .or_else(|| call.abandoned.iter().find(|a| a.number == number))
                else {
                    return;
                };
                let (Some(request), peer) = (attempt.request.clone(), attempt.peer) else {
                    return;
                };
                self.ack_and_bye(now, &request, msg, peer);
            }
            _ => {}
        }
    }

    /// The current attempt got no response at all within the first-response timeout.
    pub(super) fn first_response_timeout(&mut self, now: Instant, cref: CallRef, number: u32) {
        let Some(call) = self.calls.get_mut(&cref) else {
            return;
        };
        let Some(attempt) = call.attempt.as_mut().filter(|a| a.number == number) else {
            return;
        };
        if attempt.responded || !matches!(call.phase, Phase::Setup) {
            return;
        }
        info!(carrier = %attempt.carrier, "no response within the first-response timeout: failover");
        attempt.cancel = Cancel::Wanted;
        call.last_failure = Some(Box::new(Failure::local(Reject::NoResponse)));
        self.emit(CallEvent::AttemptEnded {
            call: cref,
            code: 408,
        });
        self.next_attempt(now, cref);
    }

    /// The current attempt proceeds (rings) past the ring timeout: 408 to the customer, CANCEL
    /// to the carrier, no failover.
    pub(super) fn ring_timeout(&mut self, now: Instant, cref: CallRef, number: u32) {
        let Some(call) = self.calls.get(&cref) else {
            return;
        };
        let current = call
            .attempt
            .as_ref()
            .is_some_and(|a| a.number == number && !a.finished);
        if !current || !matches!(call.phase, Phase::Setup) {
            return;
        }
        info!(
            call = cref.0,
            "ring timeout: 408 to the customer, CANCEL to the carrier"
        );
        self.fail_call(
            now,
            cref,
            Failure::local(Reject::RingTimeout),
            HangupSide::Switch,
        );
        self.send_cancel(now, cref, number);
    }

    /// Timer B or a transport error on an attempt.
    pub(super) fn attempt_failed(
        &mut self,
        now: Instant,
        cref: CallRef,
        number: u32,
        status: u16,
        reason: &'static str,
    ) {
        let Some(call) = self.calls.get_mut(&cref) else {
            return;
        };
        if call.attempt.as_ref().is_none_or(|a| a.number != number)
            || !matches!(call.phase, Phase::Setup)
        {
            return;
        }
        call.last_failure = Some(Box::new(Failure::Local(status, reason)));
        self.emit(CallEvent::AttemptEnded {
            call: cref,
            code: status,
        });
        self.next_attempt(now, cref);
    }

    /// CANCEL from the customer: 200 to the CANCEL, 487 to the INVITE, CANCEL to the carrier.
    pub(super) fn handle_cancel(
        &mut self,
        now: Instant,
        invite: Option<ServerTxnId>,
        cancel: ServerTxnId,
        msg: &Message,
    ) {
        let cref = invite.and_then(|id| self.by_server.get(&id).copied());
        let tag = cref
            .and_then(|c| self.calls.get(&c))
            .map(|c| c.to_tag.clone())
            .unwrap_or_else(wire::tag);
        let source = self.txns.server_peer(cancel).map(|p| p.addr.into());
        let ok = build::response_from(msg.headers(), source, 200, "OK", Some(tag.as_bytes()), &[]);
        let _ = self.txns.respond(now, cancel, ok);
        let Some(cref) = cref else { return };
        let Some(call) = self.calls.get_mut(&cref) else {
            return;
        };
        if !matches!(call.phase, Phase::Setup) {
            return;
        }
        if let Some(a) = call.attempt.as_mut() {
            a.cancel = Cancel::Wanted;
        }
        let number = call.attempt.as_ref().map(|a| a.number);
        self.fail_call(
            now,
            cref,
            Failure::local(Reject::Cancelled),
            HangupSide::Caller,
        );
        if let Some(number) = number {
            self.send_cancel(now, cref, number);
        }
    }

    /// Sends CANCEL for an attempt once a provisional response allows it.
    fn send_cancel(&mut self, now: Instant, cref: CallRef, number: u32) {
        let Some(call) = self.calls.get_mut(&cref) else {
            return;
        };
        let Some(attempt) = call.attempt_mut(number) else {
            return;
        };
        if attempt.cancel == Cancel::Sent {
            return;
        }
        if !attempt.responded {
            attempt.cancel = Cancel::Wanted;
            return;
        }
        attempt.cancel = Cancel::Sent;
        let Some(request) = attempt.request.as_ref() else {
            return;
        };
        let (peer, cancel) = (attempt.peer, build::cancel(request, None));
        if let Ok(bytes) = cancel
            && let Ok(msg) = parse_datagram(bytes)
            && let Ok(id) = self.txns.send_request(now, msg, peer, peer.reliable())
        {
            self.track(id, ClientRole::Local);
        }
    }

    /// Shutdown of a call still being set up: CANCEL to the carrier, 503 to the customer.
    pub(super) fn abort_setup(&mut self, now: Instant, cref: CallRef) {
        let number = self
            .calls
            .get(&cref)
            .and_then(|c| c.attempt.as_ref())
            .map(|a| a.number);
        let (status, reason) = Reject::ShuttingDown.reply();
        self.fail_call(
            now,
            cref,
            Failure::Local(status, reason),
            HangupSide::Switch,
        );
        if let Some(number) = number {
            self.send_cancel(now, cref, number);
        }
    }

    /// Ends an unanswered call with a final response to the customer.
    fn fail_call(&mut self, now: Instant, cref: CallRef, failure: Failure, hangup: HangupSide) {
        let Some(call) = self.calls.get(&cref) else {
            return;
        };
        let server = call.server;
        let (code, reason, q850) = match &failure {
            Failure::Response(m) => (
                m.status().unwrap_or(500),
                lossy(m.reason_phrase().unwrap_or_default()),
                m.headers().q850_cause(),
            ),
            Failure::Local(code, reason) => (*code, (*reason).to_string(), None),
        };
        match failure {
            Failure::Response(m) => {
                let number = call.attempt.as_ref().map_or(0, |a| a.number);
                let back = self.back_for_invite(cref, number, false);
                self.relay_response(now, server, &m, back)
            }
            Failure::Local(code, reason) => {
                if let Some(invite) = call.invite.as_ref() {
                    let tag = call.to_tag.as_bytes();
                    let source = self.txns.server_peer(server).map(|p| p.addr.into());
                    let bytes = build::response_from(
                        invite.headers(),
                        source,
                        code,
                        reason,
                        Some(tag),
                        &[],
                    );
                    let _ = self.txns.respond(now, server, bytes);
                }
            }
        }
        self.end_call(now, cref, (code, reason, q850), hangup);
    }

    /// Marks a call ended at `now` (the CDR's end: for a hang-up, when it began), with its
    /// final code, reason and Q.850 cause; sends its `Ended` event and frees its place in
    /// the status and its channels.
    pub(super) fn end_call(
        &mut self,
        now: Instant,
        cref: CallRef,
        (code, reason, q850): (u16, String, Option<u16>),
        hangup: HangupSide,
    ) {
        let Some(call) = self.calls.get_mut(&cref) else {
            return;
        };
        if call.is_ended() {
            return;
        }
        let phase = std::mem::replace(&mut call.phase, Phase::Ended(None));
        match phase {
            Phase::Confirmed(d) => call.phase = Phase::Ended(Some(d)),
            Phase::Setup => self.in_setup = self.in_setup.saturating_sub(1),
            Phase::Ended(_) => {}
        }
        call.shed();
        // Every channel goes back, whatever ended the call.
        call.leases.clear();
        call.carrier_lease = None;
        let (customer, carrier) = (call.customer, call.carrier());
        let end_ms = self.clock.epoch_ms(now);
        self.release_hold(cref);
        self.minutes.end(cref.0, end_ms);
        // Before the end event: accounting's commit of the CDR must find the charge.
        self.charge_ended(now, customer, cref, end_ms);
        self.status.send_modify(|s| {
            s.call_ended(customer);
            s.carrier_changed(carrier, None);
        });
        self.emit(CallEvent::Ended {
            call: cref,
            at_ms: self.clock.epoch_ms(now),
            code,
            reason,
            hangup,
            q850,
        });
        let linger = self.txns.config().sixty_four_t1() + Duration::from_secs(1);
        self.schedule(now + linger, CallTimer::Forget { call: cref });
    }

    pub(super) fn forget(&mut self, cref: CallRef) {
        if let Some(call) = self.calls.remove(&cref) {
            self.by_server.remove(&call.server);
            for key in &call.timers {
                self.timers.remove(*key);
            }
            if let Phase::Ended(Some(d)) = &call.phase {
                self.dialogs.remove(&d.key());
            }
            for a in call
                .attempt
                .as_deref()
                .into_iter()
                .chain(call.abandoned.iter())
            {
                self.by_client.remove(&a.client);
                // Timer C: an attempt still in Proceeding this long after its call ended
                // (a carrier that never answered the CANCEL) is dropped.
                self.txns
                    .terminate(sip_transaction::TxnId::Client(a.client));
            }
        }
    }
}
