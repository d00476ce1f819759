//! A new call: the automatic block for refused strangers, admission (SPEC.md's stages, the
//! first increment held), and the warnings of limits nearly reached.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use domain::{
    CallEvent, CallRef, Carrier, Customer, Directory, HangupSide, LimitKind, SecurityEvent,
    SwitchEvent,
};
use sip_message::{Message, uri::unescape};
use sip_transaction::ServerTxnId;
use tracing::{debug, info, warn};

use super::call::{Admitted, Call, Failure, lossy};
use super::dialog::Phase;
use super::{Engine, wire};
use domain::Reject;
use domain::routing;

use crate::admission::{limits, security};
use crate::sdp;
use crate::transport::Peer;
use cluster::{ChannelScope, Lease, Period, Scope};

impl Engine {
    /// Counts a refused INVITE from an unknown source address; one more than
    /// `security.auth_fail_threshold` within the window blocks it (never a whitelisted one).
    pub(super) fn count_auth_failure(&mut self, now: Instant, ip: IpAddr, directory: &Directory) {
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
            source: security::aggregate(ip),
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
        self.metrics
            .offered(u64::try_from(self.clock.epoch_ms(now) / 1000).unwrap_or_default());
        if self.draining {
            let (status, reason) = self.refuse(Reject::ShuttingDown);
            self.reply(now, server, &invite, status, reason, &[]);
            return;
        }
        if self.accounting.is_full() {
            let (status, reason) = self.refuse(Reject::CdrLogFull);
            self.reply(now, server, &invite, status, reason, &[]);
            return;
        }
        let directory = self.directory.load();
        let customer = match routing::identify(&directory, peer.addr.ip()) {
            Ok(c) => c.clone(),
            Err(reject) => {
                let (status, reason) = self.refuse(reject);
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
                let (code, reason) = self.refuse(reject);
                debug!(target: "vts::admission", customer = customer.id.0, code, reason, "refused");
                let _ = self.notices.send(SwitchEvent::Refused {
                    customer: Some(customer.id),
                    source: peer.addr.ip(),
                    code,
                    reason,
                });
                let numbers = routing::Numbers {
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
                self.fail_call(now, cref, Failure::Local(reject), HangupSide::Switch);
            }
        }
    }

    /// The admission stages after identification, in SPEC.md's order; the channels the call
    /// reserves are leases it holds until it ends.
    pub(super) fn admit(
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
        routing::status(customer)?;
        let global = Lease::acquire(
            &self.channels,
            ChannelScope::Global,
            cref.0,
            settings.global_max_channels,
            now,
        )
        .ok_or(Reject::SystemCapacity)?;
        limits::global_cps(&mut *self.limiter, settings, now)?;
        limits::customer_cps(&mut *self.limiter, customer, now)?;
        let own = Lease::acquire(
            &self.channels,
            ChannelScope::Customer(customer.id.0),
            cref.0,
            customer.max_channels,
            now,
        )
        .ok_or(Reject::ChannelLimit)?;
        limits::minutes(&*self.minutes, customer, now_ms)?;
        // (Billing off: no balance to read.)
        let balance = match customer.billing {
            domain::BillingMode::Off => domain::Money(0),
            _ => self.balance_now(customer.id, now_ms),
        };
        limits::balance(customer, balance, settings)?;
        let numbers = routing::numbers(customer, callee, caller)?;
        let first = match customer.spendable(balance) {
            Some(_) => {
                domain::rating::tariff(directory, customer.id, None, &numbers.callee, now_ms)
                    .filter(|t| matches!(t, domain::rating::Tariff::Rate(_)))
                    .map(|t| t.price(true, 0))
            }
            None => None,
        };
        limits::first_increment(customer, balance, first, settings)?;
        routing::dial_plan(directory, customer, &numbers.callee)?;
        let probes = &self.probes;
        let health = |c: &Carrier| probes.state(c.id, directory);
        let routes = routing::route(
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
    pub(super) fn warn_limits(&mut self, now: Instant, customer: &Customer) {
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
}
