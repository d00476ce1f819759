//! Attempts to carriers in order: each INVITE built from the pristine inbound INVITE (so
//! nothing leaks from one attempt to the next), responses, failover, and the timers of an
//! attempt (first response, ring).

use std::time::{Duration, Instant};

use bytes::Bytes;
use domain::{CallEvent, CallRef, Carrier, HangupSide};
use sip_message::{Message, parse_datagram};
use tracing::{debug, info, warn};

use super::call::{Attempt, Call, Cancel, Failure, IDENTITY_HEADERS, Unsendable, fails_over};
use super::dialog::Phase;
use super::{CallTimer, ClientRole, Engine, wire};
use crate::sdp;
use crate::transport::Peer;
use cluster::{ChannelScope, Lease, Scope};
use domain::Reject;
use domain::routing;
use telemetry::latency::Kind;

impl Engine {
    /// Sends the INVITE to the next carrier, or ends the call when none is left.
    pub(super) fn next_attempt(&mut self, now: Instant, cref: CallRef) {
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
                routing::pass_over(&carrier, &call.destination, call.sent, max_attempts)
            {
                debug!(carrier = carrier.id.0, reason = %pass.reason(), "carrier skipped");
                if call.last_failure.is_none() || pass == routing::PassOver::HostNotAddress {
                    call.last_failure = Some(Box::new(Failure::Local(pass.reject())));
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
                    call.last_failure = Some(Box::new(Failure::local(Reject::CarriersAtCapacity)));
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
            self.metrics.attempt(carrier_id);
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
    pub(super) fn build_attempt(
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
    pub(super) fn attempt_response_after_timer(
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
    pub(super) fn unwanted_response(
        &mut self,
        now: Instant,
        cref: CallRef,
        number: u32,
        msg: &Message,
    ) {
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
        reject: Reject,
    ) {
        let Some(call) = self.calls.get_mut(&cref) else {
            return;
        };
        if call.attempt.as_ref().is_none_or(|a| a.number != number)
            || !matches!(call.phase, Phase::Setup)
        {
            return;
        }
        call.last_failure = Some(Box::new(Failure::Local(reject)));
        self.emit(CallEvent::AttemptEnded {
            call: cref,
            code: reject.reply().0,
        });
        self.next_attempt(now, cref);
    }
}
