//! Answered calls: the dialog the switch is in (it Record-Routes, so in-dialog requests from
//! both sides come through it), relaying those requests, the end of the call on BYE, and the
//! switch's own hang-ups (max duration, shutdown, an unwanted 2xx) with BYE.

use std::time::{Duration, Instant};

use bytes::Bytes;
use domain::{CallEvent, CallRef, HangupSide};
use sip_message::headers::ContactValue;
use sip_message::{Message, Method, parse_datagram};
use sip_transaction::ServerTxnId;
use tracing::{debug, info};

use super::call::Phase;
use super::wire::{self, InDialog};
use super::{CallTimer, ClientRole, Engine};
use crate::transport::Peer;

/// Where a relayed in-dialog request goes.
#[derive(Debug)]
struct Hop {
    /// The top Route is ours: remove it.
    drop_route: bool,
    peer: Peer,
    /// Set when the dialog, not the message, chose the destination.
    request_uri: Option<Bytes>,
}

/// What the switch knows of an answered call's dialog (RFC 3261 §12), enough to relay and
/// to write a BYE to either side.
#[derive(Debug)]
pub(super) struct Dialog {
    /// Call-ID, caller tag, caller (From of the INVITE, with tag), callee (To of the 2xx, with
    /// tag), caller target (Contact of the INVITE), callee target (Contact of the 2xx): one
    /// buffer, one allocation per dialog.
    buf: Bytes,
    ends: [u16; 6],
    caller_peer: Peer,
    callee_peer: Peer,
    /// Route sets from the switch towards each side (the Record-Route entries beyond ours).
    route_to_callee: Vec<Bytes>,
    route_to_caller: Vec<Bytes>,
    caller_cseq: u32,
    callee_cseq: u32,
    /// RFC 4028 session interval, when the call negotiated one, and the last refresh (a
    /// re-INVITE or UPDATE in either direction): past the interval and a grace without a
    /// refresh, the reaper ends the call.
    session_expires: Option<Duration>,
    refreshed: Instant,
}

/// Grace after a session interval before the reaper acts: a third of it, at most 32 s
/// (RFC 4028 §10's margin for the refresher).
fn reap_after(interval: Duration) -> Duration {
    interval + (interval / 3).min(Duration::from_secs(32))
}

impl Dialog {
    fn part(&self, i: usize) -> Bytes {
        let start = if i == 0 {
            0
        } else {
            usize::from(self.ends[i - 1])
        };
        self.buf.slice(start..usize::from(self.ends[i]))
    }

    pub(super) fn call_id(&self) -> Bytes {
        self.part(0)
    }

    fn caller_tag(&self) -> Bytes {
        self.part(1)
    }

    fn caller(&self) -> Bytes {
        self.part(2)
    }

    fn callee(&self) -> Bytes {
        self.part(3)
    }

    fn caller_target(&self) -> Bytes {
        self.part(4)
    }

    fn callee_target(&self) -> Bytes {
        self.part(5)
    }
}

/// Packs the six values of a dialog into one buffer; `None` if they are too long for it.
fn pack(parts: [&[u8]; 6]) -> Option<(Bytes, [u16; 6])> {
    let mut buf = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
    let mut ends = [0u16; 6];
    for (end, part) in ends.iter_mut().zip(parts) {
        buf.extend_from_slice(part);
        *end = u16::try_from(buf.len()).ok()?;
    }
    Some((Bytes::from(buf), ends))
}

/// The first Contact URI of a message (empty when there is none).
fn contact_uri(m: &Message) -> &[u8] {
    m.headers()
        .contacts()
        .find_map(|c| match c {
            Ok(ContactValue::Addr(a)) => Some(a.uri_raw),
            _ => None,
        })
        .unwrap_or_default()
}

/// A header's value without trailing white space (empty when absent).
fn header_value(m: &Message, name: sip_message::HeaderName) -> &[u8] {
    let h = m.headers();
    h.get(name).map_or(&[][..], |l| h.value(l).trim_ascii_end())
}

impl Engine {
    /// The first 2xx of the current attempt: the call is answered.
    pub(super) fn answered(&mut self, now: Instant, cref: CallRef, msg: Message) {
        let Some(call) = self.calls.get(&cref) else {
            return;
        };
        let Some(attempt) = call.attempt.as_ref() else {
            return;
        };
        let Some(invite) = call.invite.as_ref() else {
            return;
        };
        let h = invite.headers();
        let (to_callee, to_caller) = self.route_sets(&msg);
        let Some((buf, ends)) = pack([
            h.call_id().unwrap_or_default(),
            h.from().ok().and_then(|f| f.tag()).unwrap_or_default(),
            header_value(invite, sip_message::HeaderName::From),
            header_value(&msg, sip_message::HeaderName::To),
            contact_uri(invite),
            contact_uri(&msg),
        ]) else {
            return;
        };
        let dialog = Dialog {
            buf,
            ends,
            caller_peer: call.source,
            callee_peer: attempt.peer,
            route_to_callee: to_callee,
            route_to_caller: to_caller,
            caller_cseq: h.cseq().map_or(1, |c| c.seq),
            callee_cseq: 0,
            session_expires: session_interval(&msg).or_else(|| session_interval(invite)),
            refreshed: now,
        };
        let reap_at = dialog.session_expires.map(|se| now + reap_after(se));
        let server = call.server;
        self.relay_response(now, server, &msg);
        self.emit(CallEvent::Answered {
            call: cref,
            at_ms: self.clock.epoch_ms(now),
            codecs: crate::sdp::audio_codecs(msg.body()),
        });
        self.minutes.answer(cref.0, self.clock.epoch_ms(now));
        self.dialogs.insert(dialog.call_id(), cref);
        if let Some(call) = self.calls.get_mut(&cref) {
            call.phase = Phase::Confirmed(Box::new(dialog));
            call.answered_by = call.attempt.as_ref().map(|a| a.number);
            if let Some(a) = call.attempt.as_mut() {
                a.finished = true;
            }
            call.shed();
        }
        self.schedule(
            now + self.cfg.max_call_duration,
            CallTimer::MaxDuration { call: cref },
        );
        if let Some(at) = reap_at {
            self.schedule(at, CallTimer::SessionExpiry { call: cref });
        }
        self.charge_answered(now, cref);
    }

    /// The session timer fired: a call with no refresh within its interval and grace has
    /// lost its legs (or its endpoints stopped refreshing): BYE to both sides. Otherwise
    /// the timer waits for the latest refresh's deadline.
    pub(super) fn session_expiry(&mut self, now: Instant, cref: CallRef) {
        let Some(call) = self.calls.get(&cref) else {
            return;
        };
        let Phase::Confirmed(d) = &call.phase else {
            return;
        };
        let Some(se) = d.session_expires else { return };
        let deadline = d.refreshed + reap_after(se);
        if now < deadline {
            self.schedule(deadline, CallTimer::SessionExpiry { call: cref });
            return;
        }
        self.hang_up(now, cref, "Reaper - Session Expired");
    }

    /// The route sets from the switch towards the callee and towards the caller, from the
    /// Record-Route of a 2xx (top first): the entries before ours lead to the callee (nearest
    /// last, so reversed), the entries after ours lead to the caller.
    fn route_sets(&self, response: &Message) -> (Vec<Bytes>, Vec<Bytes>) {
        let rr: Vec<_> = response
            .headers()
            .record_routes()
            .filter_map(Result::ok)
            .collect();
        let ours = rr.iter().position(|r| {
            r.uri()
                .ok()
                .and_then(|u| u.as_sip().map(|s| self.is_us(s.host_raw, s.port)))
                .unwrap_or(false)
        });
        let raw = |r: &sip_message::headers::NameAddr<'_>| Bytes::copy_from_slice(r.raw);
        match ours {
            Some(i) => (
                rr[..i].iter().rev().map(raw).collect(),
                rr[i + 1..].iter().map(raw).collect(),
            ),
            None => (Vec::new(), Vec::new()),
        }
    }

    /// Which dialog an in-dialog request belongs to, and whether the caller sent it.
    fn dialog_of(&self, msg: &Message) -> Option<(CallRef, bool)> {
        let h = msg.headers();
        let cref = *self.dialogs.get(h.call_id().ok()?)?;
        let Phase::Confirmed(d) = &self.calls.get(&cref)?.phase else {
            return None;
        };
        let from_tag = h.from().ok().and_then(|f| f.tag()).unwrap_or_default();
        Some((cref, from_tag == &d.caller_tag()[..]))
    }

    /// Where an in-dialog request goes. Loose routing first (RFC 3261 §16.4, §16.6): drop our
    /// own Route; the next hop is the next Route, else the Request-URI. When that points back
    /// at the switch (a UA that ignored Record-Route and sends everything to us), the dialog
    /// decides: the other side's remote target, which also becomes the Request-URI.
    fn in_dialog_hop(&self, msg: &Message) -> Option<Hop> {
        let routes: Vec<_> = msg.headers().routes().filter_map(Result::ok).collect();
        let is_us = |uri: &[u8]| {
            sip_message::uri::Uri::parse(uri)
                .ok()
                .and_then(|u| u.as_sip().map(|s| self.is_us(s.host_raw, s.port)))
                .unwrap_or(false)
        };
        let drop_route = routes.first().is_some_and(|r| is_us(r.uri_raw));
        let next = routes
            .get(usize::from(drop_route))
            .map(|r| r.uri_raw)
            .or(msg.request_uri_bytes())?;
        if !is_us(next)
            && let Some(peer) = wire::uri_peer(next)
        {
            return Some(Hop {
                drop_route,
                peer,
                request_uri: None,
            });
        }
        let (cref, from_caller) = self.dialog_of(msg)?;
        let Phase::Confirmed(d) = &self.calls.get(&cref)?.phase else {
            return None;
        };
        let (target, fallback) = if from_caller {
            (d.callee_target(), d.callee_peer)
        } else {
            (d.caller_target(), d.caller_peer)
        };
        let peer = wire::uri_peer(&target)
            .filter(|p| !self.is_us_addr(p))
            .unwrap_or(fallback);
        let request_uri = (!target.is_empty()).then(|| target.clone());
        Some(Hop {
            drop_route,
            peer,
            request_uri,
        })
    }

    /// A request with a To tag: relayed statefully inside a dialog the switch knows.
    pub(super) fn relay_in_dialog(
        &mut self,
        now: Instant,
        server: ServerTxnId,
        msg: Message,
        peer: Peer,
    ) {
        let Some((cref, from_caller)) = self.dialog_of(&msg) else {
            self.reply(
                now,
                server,
                &msg,
                481,
                "Call/Transaction Does Not Exist",
                &[],
            );
            return;
        };
        let Some(hop) = self.in_dialog_hop(&msg) else {
            self.reply(now, server, &msg, 404, "Not Found", &[]);
            return;
        };
        let Some(call) = self.calls.get_mut(&cref) else {
            return;
        };
        let Phase::Confirmed(d) = &mut call.phase else {
            return;
        };
        let seq = msg.headers().cseq().map_or(0, |c| c.seq);
        if matches!(msg.method(), Some(Method::Invite | Method::Update)) {
            d.refreshed = now;
            if let Some(se) = session_interval(&msg) {
                d.session_expires = Some(se);
            }
        }
        if from_caller {
            d.caller_cseq = d.caller_cseq.max(seq);
        } else {
            d.callee_cseq = d.callee_cseq.max(seq);
        }
        let Some(out) = self.forward_request(&msg, peer, &hop, None) else {
            self.reply(now, server, &msg, 400, "Bad Request", &[]);
            return;
        };
        let method = msg.method();
        let q850 = msg.headers().q850_cause();
        let hop = hop.peer;
        match self.txns.send_request(now, out, hop, hop.reliable()) {
            Ok(id) => {
                self.track(id, ClientRole::Relay { server });
                self.relayed.insert(server, msg);
            }
            Err(e) => {
                debug!(error = %e, "in-dialog request not relayed");
                self.reply(now, server, &msg, 500, "Server Internal Error", &[]);
                return;
            }
        }
        if method == Some(Method::Bye) {
            let side = if from_caller {
                HangupSide::Caller
            } else {
                HangupSide::Callee
            };
            self.end_call(now, cref, (200, "OK".to_string(), q850), side);
        }
    }

    /// The ACK of a 2xx: relayed statelessly along the dialog's route (it has no
    /// transaction). Only inside a dialog the switch knows or through our own Route.
    pub(super) fn relay_ack(&mut self, msg: Message, peer: Peer) {
        let Some(hop) = self.in_dialog_hop(&msg) else {
            return;
        };
        let known = self
            .dialogs
            .contains_key(msg.headers().call_id().unwrap_or_default());
        if !(known || hop.drop_route) {
            return;
        }
        let branch = msg
            .headers()
            .top_via()
            .ok()
            .and_then(|v| v.branch())
            .map(wire::derived_branch);
        if let Some(out) = self.forward_request(&msg, peer, &hop, branch.as_deref()) {
            self.out.push((hop.peer, out.raw().clone()));
        }
    }

    /// A request as relayed to `hop`: our Via on top, received/rport on the sender's,
    /// our Route removed, Max-Forwards decremented.
    fn forward_request(
        &self,
        msg: &Message,
        from: Peer,
        hop: &Hop,
        branch: Option<&str>,
    ) -> Option<Message> {
        let mut e = msg.edit();
        let host = self.advertised(hop.peer.transport);
        let branch = branch.map_or_else(wire::branch, str::to_string);
        let via = format!(
            "SIP/2.0/{} {host};branch={branch};rport",
            wire::via_transport(hop.peer.transport)
        );
        e.prepend_via(via.as_bytes()).ok()?;
        let ip = from.addr.ip().to_string();
        e.set_via_received(Some(ip.as_bytes()), from.addr.port())
            .ok()?;
        if hop.drop_route {
            e.remove_first_route().ok()?;
        }
        if let Some(uri) = &hop.request_uri {
            e.set_request_uri(uri).ok()?;
        }
        e.decrement_max_forwards().ok()?;
        parse_datagram(e.finish()).ok()
    }

    /// Ends an answered call from the switch: BYE to both sides.
    pub(super) fn hang_up(&mut self, now: Instant, cref: CallRef, reason: &str) {
        let Some(call) = self.calls.get_mut(&cref) else {
            return;
        };
        let Phase::Confirmed(d) = &mut call.phase else {
            return;
        };
        d.caller_cseq += 1;
        d.callee_cseq += 1;
        let q850 = "Q.850;cause=16;text=\"Normal call clearing\"";
        let to_callee = (
            d.callee_target(),
            d.route_to_callee.clone(),
            d.caller(),
            d.callee(),
            d.caller_cseq,
            d.callee_peer,
        );
        let to_caller = (
            d.caller_target(),
            d.route_to_caller.clone(),
            d.callee(),
            d.caller(),
            d.callee_cseq,
            d.caller_peer,
        );
        let call_id = d.call_id();
        for (target, routes, from, to, cseq, fallback) in [to_callee, to_caller] {
            let hop = routes
                .first()
                .and_then(|r| {
                    wire::uri_peer(
                        r.trim_ascii()
                            .strip_prefix(b"<")
                            .unwrap_or(r)
                            .split(|&b| b == b'>')
                            .next()
                            .unwrap_or_default(),
                    )
                })
                .or_else(|| wire::uri_peer(&target))
                .unwrap_or(fallback);
            let via = format!(
                "SIP/2.0/{} {};branch={}",
                wire::via_transport(hop.transport),
                self.advertised(hop.transport),
                wire::branch()
            );
            let target = if target.is_empty() {
                Bytes::from(format!("sip:{}", hop.addr))
            } else {
                target
            };
            let bye = InDialog {
                method: "BYE",
                target: &target,
                via: &via,
                routes: &routes,
                from: &from,
                to: &to,
                call_id: &call_id,
                cseq,
                user_agent: &self.cfg.user_agent,
                reason: Some(q850),
            }
            .write();
            if let Ok(msg) = parse_datagram(bye)
                && let Ok(id) = self.txns.send_request(now, msg, hop, hop.reliable())
            {
                self.track(id, ClientRole::Local);
            }
        }
        info!(
            call = cref.0,
            reason, "switch ended the call with BYE to both sides"
        );
        self.end_call(
            now,
            cref,
            (200, reason.to_string(), None),
            HangupSide::Switch,
        );
    }

    pub(super) fn max_duration(&mut self, now: Instant, cref: CallRef) {
        self.hang_up(now, cref, "Max Duration");
    }

    /// Shutdown after the drain period: BYE to answered calls, a final reply to the others.
    pub(super) fn hang_up_all(&mut self, now: Instant) {
        let open: Vec<(CallRef, bool)> = self
            .calls
            .iter()
            .filter(|(_, c)| !c.is_ended())
            .map(|(r, c)| (*r, matches!(c.phase, Phase::Confirmed(_))))
            .collect();
        for (cref, confirmed) in open {
            if confirmed {
                self.hang_up(now, cref, "Shutdown");
            } else {
                self.abort_setup(now, cref);
            }
        }
    }

    /// ACK and BYE for a 2xx the call does not want (an abandoned attempt answered late, or
    /// the customer cancelled while the carrier answered).
    pub(super) fn ack_and_bye(
        &mut self,
        now: Instant,
        request: &Message,
        response: &Message,
        hop: Peer,
    ) {
        let h = request.headers();
        let target = match contact_uri(response) {
            [] => request.request_uri_bytes().unwrap_or_default(),
            uri => uri,
        };
        let (routes, _) = self.route_sets(response);
        let from = header_value(request, sip_message::HeaderName::From);
        let to = header_value(response, sip_message::HeaderName::To);
        let call_id = h.call_id().unwrap_or_default();
        let seq = h.cseq().map_or(1, |c| c.seq);
        let host = self.advertised(hop.transport).to_string();
        let transport = wire::via_transport(hop.transport);
        let ack_via = format!("SIP/2.0/{transport} {host};branch={}", wire::branch());
        let ack = InDialog {
            method: "ACK",
            target,
            via: &ack_via,
            routes: &routes,
            from,
            to,
            call_id,
            cseq: seq,
            user_agent: &self.cfg.user_agent,
            reason: None,
        }
        .write();
        self.out.push((hop, ack));
        let bye_via = format!("SIP/2.0/{transport} {host};branch={}", wire::branch());
        let bye = InDialog {
            method: "BYE",
            target,
            via: &bye_via,
            routes: &routes,
            from,
            to,
            call_id,
            cseq: seq + 1,
            user_agent: &self.cfg.user_agent,
            reason: Some("SIP;cause=487;text=\"Call no longer wanted\""),
        }
        .write();
        if let Ok(msg) = parse_datagram(bye)
            && let Ok(id) = self.txns.send_request(now, msg, hop, hop.reliable())
        {
            self.track(id, ClientRole::Local);
        }
    }
}

/// The session interval a message's Session-Expires asks for (RFC 4028), if any.
fn session_interval(msg: &Message) -> Option<Duration> {
    msg.headers()
        .session_expires()
        .ok()
        .flatten()
        .filter(|se| se.seconds > 0)
        .map(|se| Duration::from_secs(se.seconds.into()))
}
