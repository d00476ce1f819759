//! Answered calls: the dialog the switch is in, and everything that may happen inside it.
//!
//! The switch rewrites the Contact of both legs to itself and Record-Routes, so every
//! in-dialog request of both sides comes through it whatever the far end does. A request
//! is relayed only when it names a dialog the switch holds by Call-ID and **both** tags and
//! comes from that dialog's party on that side (the customer's source address or the
//! carrier's); its next hop comes from the dialog alone (the other side's address, remote
//! target and route set), never from the message. Anything else gets a stateless 481.
//!
//! A BYE does not end the call when it is relayed: the call ends when the far side confirms
//! (2xx, 481, 408 or no answer at all). If the far side refuses it, the switch answers the
//! sender itself and sends its own BYE, retried until settled; the switch's own hang-ups
//! (max duration, balance, reaper, no ACK, shutdown) work the same way. Until then the
//! call keeps its channels: a hang-up that the carrier never heard is never a free call.

use std::time::{Duration, Instant};

use bytes::Bytes;
use domain::{CallEvent, CallRef, HangupSide};
use sip_message::headers::ContactValue;
use sip_message::{HeaderName, Message, Method, parse_datagram};
use sip_transaction::{ClientTxnId, ServerTxnId};
use tracing::{debug, error, info, warn};

use super::wire::{self, InDialog};
use super::{CallTimer, ClientRole, Engine};
use crate::guard::Counter;
use crate::transport::Peer;

/// One side of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Side {
    /// The customer that sent the INVITE.
    Caller,
    /// The carrier that answered it.
    Callee,
}

impl Side {
    pub(super) fn other(self) -> Side {
        match self {
            Side::Caller => Side::Callee,
            Side::Callee => Side::Caller,
        }
    }

    fn hangup(self) -> HangupSide {
        match self {
            Side::Caller => HangupSide::Caller,
            Side::Callee => HangupSide::Callee,
        }
    }

    fn index(self) -> usize {
        match self {
            Side::Caller => 0,
            Side::Callee => 1,
        }
    }
}

/// A dialog's key: its Call-ID and both tags, the tags in a fixed order so that a request
/// from either side finds it with one lookup.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct DialogKey(Bytes);

impl DialogKey {
    pub(super) fn new(call_id: &[u8], a: &[u8], b: &[u8]) -> DialogKey {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let mut v = Vec::with_capacity(call_id.len() + lo.len() + hi.len() + 2);
        v.extend_from_slice(call_id);
        v.push(0);
        v.extend_from_slice(lo);
        v.push(0);
        v.extend_from_slice(hi);
        DialogKey(Bytes::from(v))
    }

    /// The key a message names (`None` without a Call-ID, a From tag and a To tag).
    pub(super) fn of(msg: &Message) -> Option<DialogKey> {
        let h = msg.headers();
        let call_id = h.call_id().ok()?;
        let from = h.from().ok()?.tag()?;
        let to = h.to().ok()?.tag()?;
        Some(DialogKey::new(call_id, from, to))
    }
}

/// How far the far side of a hang-up has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leg {
    /// Nothing to do on this side (it sent the BYE, or it confirmed ours).
    Settled,
    /// The BYE of the other side was relayed here; waiting for its final response.
    Relayed,
    /// The switch's own BYE is out (try `n`, counting from 1).
    Bye(u32),
}

/// A call being hung up: when, by whom, and each side's progress.
#[derive(Debug)]
struct Ending {
    /// The moment of the hang-up (the CDR's end: billing stops here).
    at: Instant,
    side: HangupSide,
    reason: String,
    q850: Option<u16>,
    legs: [Leg; 2],
}

/// Where a call is: setting up, in its dialog, or ended.
#[derive(Debug)]
pub(super) enum Phase {
    /// Trying carriers; nothing final sent to the customer.
    Setup,
    /// Answered: the dialog the switch is in.
    Confirmed(Box<Dialog>),
    /// Ended (CDR event sent); kept a while so late responses to attempts are handled,
    /// with the dialog of an answered call (late ACKs and 2xx are still relayed).
    Ended(Option<Box<Dialog>>),
}

/// What the switch knows of an answered call's dialog (RFC 3261 §12), enough to route
/// requests of either side and to write a BYE to either side.
#[derive(Debug)]
pub(super) struct Dialog {
    /// Call-ID, caller tag, callee tag, caller (From of the INVITE, with tag), callee (To of
    /// the 2xx, with tag): one buffer, one allocation.
    buf: Bytes,
    ends: [u16; 5],
    /// Remote targets (Contact URIs as the parties wrote them; the other side sees ours).
    caller_target: Bytes,
    callee_target: Bytes,
    /// Where each party is: the INVITE's source, and the carrier the INVITE went to.
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
    /// The caller's ACK of the 2xx arrived.
    acked: bool,
    /// Which sides hide their topology from the other (caller: the customer's setting,
    /// callee: the carrier's), and our Record-Route value in the dialog.
    hide: [bool; 2],
    our_rr: Bytes,
    ending: Option<Ending>,
}

/// Grace after a session interval before the reaper acts: a third of it, at most 32 s
/// (RFC 4028 §10's margin for the refresher).
fn reap_after(interval: Duration) -> Duration {
    interval + (interval / 3).min(Duration::from_secs(32))
}

/// The switch's own BYE to one side is sent at most this many times (then the side is
/// given up with an error: the far end refuses every BYE).
const BYE_TRIES: u32 = 6;

/// Wait before try `n + 1` of a BYE: 1, 2, 4, 8, 16 s.
fn bye_backoff(n: u32) -> Duration {
    Duration::from_secs(1 << n.saturating_sub(1).min(4))
}

/// A final response that settles a BYE: the far side ended the dialog (2xx), does not
/// know it (481), or is gone (408).
fn settles(status: u16) -> bool {
    (200..300).contains(&status) || status == 481 || status == 408
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

    pub(super) fn key(&self) -> DialogKey {
        DialogKey::new(&self.part(0), &self.part(1), &self.part(2))
    }

    /// Which side sent a request of this dialog, by its tags (From is the sender's).
    fn sender(&self, msg: &Message) -> Option<Side> {
        let h = msg.headers();
        let from = h.from().ok()?.tag()?;
        let to = h.to().ok()?.tag()?;
        let (caller, callee) = (self.part(1), self.part(2));
        if from == &caller[..] && to == &callee[..] {
            Some(Side::Caller)
        } else if from == &callee[..] && to == &caller[..] {
            Some(Side::Callee)
        } else {
            None
        }
    }

    pub(super) fn peer(&self, side: Side) -> Peer {
        match side {
            Side::Caller => self.caller_peer,
            Side::Callee => self.callee_peer,
        }
    }

    fn target(&self, side: Side) -> Bytes {
        let t = match side {
            Side::Caller => &self.caller_target,
            Side::Callee => &self.callee_target,
        };
        if t.is_empty() {
            Bytes::from(format!("sip:{}", self.peer(side).addr))
        } else {
            t.clone()
        }
    }

    fn set_target(&mut self, side: Side, uri: &[u8]) {
        if uri.is_empty() {
            return;
        }
        let t = Bytes::copy_from_slice(uri);
        match side {
            Side::Caller => self.caller_target = t,
            Side::Callee => self.callee_target = t,
        }
    }

    fn routes(&self, towards: Side) -> &[Bytes] {
        match towards {
            Side::Caller => &self.route_to_caller,
            Side::Callee => &self.route_to_callee,
        }
    }

    /// Whether `peer` is the party of `side` (by address: a trunk is identified by its
    /// address, and its source port may change between requests).
    fn is_party(&self, side: Side, peer: Peer) -> bool {
        self.peer(side).addr.ip() == peer.addr.ip()
    }

    /// The next CSeq the switch may use in requests on behalf of `sender`'s side.
    fn next_cseq(&mut self, sender: Side) -> u32 {
        let c = match sender {
            Side::Caller => &mut self.caller_cseq,
            Side::Callee => &mut self.callee_cseq,
        };
        *c = c.saturating_add(1);
        *c
    }
}

/// Packs the values of a dialog into one buffer; `None` if they are too long for it.
fn pack<const N: usize>(parts: [&[u8]; N]) -> Option<(Bytes, [u16; N])> {
    let mut buf = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
    let mut ends = [0u16; N];
    for (end, part) in ends.iter_mut().zip(parts) {
        buf.extend_from_slice(part);
        *end = u16::try_from(buf.len()).ok()?;
    }
    Some((Bytes::from(buf), ends))
}

/// The first Contact URI of a message (empty when there is none).
pub(super) fn contact_uri(m: &Message) -> &[u8] {
    m.headers()
        .contacts()
        .find_map(|c| match c {
            Ok(ContactValue::Addr(a)) => Some(a.uri_raw),
            _ => None,
        })
        .unwrap_or_default()
}

/// A header's value without trailing white space (empty when absent).
fn header_value(m: &Message, name: HeaderName) -> &[u8] {
    let h = m.headers();
    h.get(name).map_or(&[][..], |l| h.value(l).trim_ascii_end())
}

/// Where a relayed in-dialog request goes and what it carries: all from the dialog.
struct Hop<'a> {
    peer: Peer,
    request_uri: &'a [u8],
    routes: &'a [Bytes],
}

impl Engine {
    /// The first 2xx of the current attempt: the call is answered.
    pub(super) fn answered(&mut self, now: Instant, cref: CallRef, msg: Message) {
        let Some(call) = self.calls.get(&cref) else {
            return;
        };
        let (Some(attempt), Some(invite)) = (call.attempt.as_ref(), call.invite.as_ref()) else {
            return;
        };
        let h = invite.headers();
        let our_rr = wire::record_route(
            self.advertised(attempt.peer.transport),
            attempt.peer.transport,
        );
        let (to_callee, to_caller) = route_sets(&msg, our_rr.as_bytes());
        let callee_tag = msg
            .headers()
            .to()
            .ok()
            .and_then(|t| t.tag())
            .unwrap_or_default();
        let Some((buf, ends)) = pack([
            h.call_id().unwrap_or_default(),
            h.from().ok().and_then(|f| f.tag()).unwrap_or_default(),
            callee_tag,
            header_value(invite, HeaderName::From),
            header_value(&msg, HeaderName::To),
        ]) else {
            return;
        };
        let dialog = Dialog {
            buf,
            ends,
            caller_target: Bytes::copy_from_slice(contact_uri(invite)),
            callee_target: Bytes::copy_from_slice(contact_uri(&msg)),
            caller_peer: call.source,
            callee_peer: attempt.peer,
            route_to_callee: to_callee,
            route_to_caller: to_caller,
            caller_cseq: h.cseq().map_or(1, |c| c.seq),
            callee_cseq: 0,
            session_expires: session_interval(&msg).or_else(|| session_interval(invite)),
            refreshed: now,
            acked: false,
            hide: [call.hidden_vias.is_some(), attempt.hide],
            our_rr: Bytes::from(our_rr),
            ending: None,
        };
        let reap_at = dialog.session_expires.map(|se| now + reap_after(se));
        let server = call.server;
        let number = attempt.number;
        let back = self.back_for_invite(cref, number, true);
        self.relay_response(now, server, &msg, back);
        self.emit(CallEvent::Answered {
            call: cref,
            at_ms: self.clock.epoch_ms(now),
            codecs: crate::sdp::audio_codecs(msg.body()),
        });
        self.minutes.answer(cref.0, self.clock.epoch_ms(now));
        self.dialogs.insert(dialog.key(), cref);
        self.in_setup = self.in_setup.saturating_sub(1);
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
        // RFC 3261 §13.3.1.4: a 2xx with no ACK within 64×T1 ends the dialog.
        self.schedule(
            now + self.txns.config().sixty_four_t1(),
            CallTimer::AckWait { call: cref },
        );
        if let Some(at) = reap_at {
            self.schedule(at, CallTimer::SessionExpiry { call: cref });
        }
        // From here the call is charged as it runs (its first increment included).
        self.release_hold(cref);
        self.charge_answered(now, cref);
    }

    /// The caller never ACKed the 2xx: the call is ended on both sides (billed to now).
    pub(super) fn ack_wait(&mut self, now: Instant, cref: CallRef) {
        let acked = match self.calls.get(&cref).map(|c| &c.phase) {
            Some(Phase::Confirmed(d)) => d.acked,
            _ => return,
        };
        if !acked {
            self.guards.count(Counter::NoAck);
            warn!(
                call = cref.0,
                "no ACK for the 2xx within 64*T1: ending the call"
            );
            self.hang_up(now, cref, "No ACK");
        }
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

    /// The dialog an in-dialog request belongs to and the side that sent it: both tags must
    /// match a dialog the switch holds and the source must be that side's party. `None`
    /// (answered 481 by the caller) for anything else.
    pub(super) fn dialog_of(&self, msg: &Message, peer: Peer) -> Option<(CallRef, Side)> {
        let cref = *self.dialogs.get(&DialogKey::of(msg)?)?;
        let d = match &self.calls.get(&cref)?.phase {
            Phase::Confirmed(d) => d,
            Phase::Ended(Some(d)) if msg.method() == Some(Method::Ack) => d,
            _ => return None,
        };
        let side = d.sender(msg)?;
        d.is_party(side, peer).then_some((cref, side))
    }

    /// A request of a dialog the switch holds (checked by [`Self::dialog_of`]), from `side`:
    /// relayed statefully to the other side along the dialog's route.
    pub(super) fn relay_in_dialog(
        &mut self,
        now: Instant,
        server: ServerTxnId,
        msg: Message,
        peer: Peer,
        (cref, side): (CallRef, Side),
    ) {
        let method = msg.method();
        let Some(call) = self.calls.get_mut(&cref) else {
            return;
        };
        let Phase::Confirmed(d) = &mut call.phase else {
            return;
        };
        if d.ending.is_some() {
            // Hanging up already: a BYE from the other side crossed ours.
            if method == Some(Method::Bye) {
                self.reply(now, server, &msg, 200, "OK", &[]);
            } else {
                self.reply(
                    now,
                    server,
                    &msg,
                    481,
                    "Call/Transaction Does Not Exist",
                    &[],
                );
            }
            return;
        }
        let seq = msg.headers().cseq().map_or(0, |c| c.seq);
        if matches!(method, Some(Method::Invite | Method::Update)) {
            d.refreshed = now;
            if let Some(se) = session_interval(&msg) {
                d.session_expires = Some(se);
            }
            // A target refresh (RFC 3261 §12.2.2): the sender's new Contact.
            d.set_target(side, contact_uri(&msg));
        }
        match side {
            Side::Caller => d.caller_cseq = d.caller_cseq.max(seq),
            Side::Callee => d.callee_cseq = d.callee_cseq.max(seq),
        }
        let to = side.other();
        let (target, routes) = (d.target(to), d.routes(to).to_vec());
        let hop = Hop {
            peer: d.peer(to),
            request_uri: &target,
            routes: &routes,
        };
        let call_id = d.call_id();
        let hide = d.hide[side.index()];
        let branch = self.branches.new_branch(&call_id);
        let Some(out) = self.forward_request(&msg, peer, &hop, &branch, hide) else {
            self.reply(now, server, &msg, 400, "Bad Request", &[]);
            return;
        };
        let q850 = msg.headers().q850_cause();
        let to_peer = hop.peer;
        let client = match self
            .txns
            .send_request(now, out, to_peer, to_peer.reliable())
        {
            Ok(id) => id,
            Err(e) => {
                debug!(error = %e, "in-dialog request not relayed");
                self.reply(now, server, &msg, 500, "Server Internal Error", &[]);
                return;
            }
        };
        let bye = method == Some(Method::Bye);
        self.track(
            client,
            ClientRole::Relay {
                server,
                call: cref,
                from: side,
                bye,
            },
        );
        self.relayed.insert(server, msg);
        if method == Some(Method::Invite) {
            self.schedule(now + TIMER_C, CallTimer::TimerC { client });
        }
        if bye && let Some(Phase::Confirmed(d)) = self.calls.get_mut(&cref).map(|c| &mut c.phase) {
            let mut legs = [Leg::Settled; 2];
            legs[to.index()] = Leg::Relayed;
            d.ending = Some(Ending {
                at: now,
                side: side.hangup(),
                reason: "OK".to_string(),
                q850,
                legs,
            });
        }
    }

    /// A response to a relayed in-dialog request: back to the sender (our Via off, a
    /// Contact rewritten to us). A BYE's final response settles the far side; one that
    /// refuses it is answered by the switch and replaced by its own BYE.
    pub(super) fn relayed_response(
        &mut self,
        now: Instant,
        (server, cref, from, bye): (ServerTxnId, CallRef, Side, bool),
        msg: &Message,
    ) {
        let Some(status) = msg.status() else { return };
        let back = self.calls.get_mut(&cref).and_then(|c| match &mut c.phase {
            Phase::Confirmed(d) => {
                if (200..300).contains(&status) {
                    // The responder's target refresh (2xx to a re-INVITE or UPDATE).
                    d.set_target(from.other(), contact_uri(msg));
                }
                Some((d.peer(from).transport, d.hide, d.our_rr.clone()))
            }
            _ => None,
        });
        let back = match back {
            Some((t, hide, our_rr)) => super::Back {
                contact: Some(t),
                vias: hide[from.index()]
                    .then(|| self.relayed.get(&server).map(wire::via_values))
                    .flatten(),
                strip: hide[from.other().index()].then_some(our_rr),
            },
            None => super::Back::default(),
        };
        if !bye || status < 200 {
            self.relay_response(now, server, msg, back);
            return;
        }
        if settles(status) {
            self.relay_response(now, server, msg, back);
            self.leg_settled(now, cref, from.other());
        } else {
            // The far side did not take the BYE: the sender's hang-up stands (answered by
            // the switch), and the switch hangs up the far side itself.
            warn!(
                call = cref.0,
                status, "relayed BYE refused: the switch sends its own"
            );
            if let Some(req) = self.relayed.remove(&server) {
                self.reply(now, server, &req, 200, "OK", &[]);
            }
            self.send_own_bye(now, cref, from.other(), 1);
        }
    }

    /// A relayed in-dialog request got no final response (Timer F) or could not be sent.
    pub(super) fn relay_failed(
        &mut self,
        now: Instant,
        (server, cref, from, bye): (ServerTxnId, CallRef, Side, bool),
        timeout: bool,
    ) {
        let (status, reason) = if timeout {
            (408, "Request Timeout")
        } else {
            (503, "Service Unavailable")
        };
        if let Some(req) = self.relayed.remove(&server) {
            let status = if bye { 200 } else { status };
            let reason = if bye { "OK" } else { reason };
            self.reply(now, server, &req, status, reason, &[]);
        }
        if !bye {
            return;
        }
        if timeout {
            // No answer at all: the far side is gone.
            self.leg_settled(now, cref, from.other());
        } else {
            self.send_own_bye(now, cref, from.other(), 1);
        }
    }

    /// The ACK of a 2xx: relayed statelessly along the dialog's route (it has no
    /// transaction), only for a call the switch holds or recently held and only from its
    /// caller (`dialog`: what [`Self::dialog_of`] found for it).
    pub(super) fn relay_ack(&mut self, msg: Message, peer: Peer, dialog: Option<(CallRef, Side)>) {
        let Some((cref, side)) = dialog else {
            self.guards.count(Counter::StrayDropped);
            debug!(from = %peer.addr, "ACK for no dialog of the switch: dropped");
            return;
        };
        if side != Side::Caller {
            self.guards.count(Counter::StrayDropped);
            return;
        }
        let Some(call) = self.calls.get_mut(&cref) else {
            return;
        };
        let d = match &mut call.phase {
            Phase::Confirmed(d) => {
                d.acked = true;
                &**d
            }
            Phase::Ended(Some(d)) => &**d,
            _ => return,
        };
        let (target, routes) = (d.target(Side::Callee), d.routes(Side::Callee).to_vec());
        let hop = Hop {
            peer: d.callee_peer,
            request_uri: &target,
            routes: &routes,
        };
        let input = msg
            .headers()
            .top_via()
            .ok()
            .and_then(|v| v.branch())
            .unwrap_or_default();
        let branch = self.branches.derived(input, &d.call_id());
        let hide = d.hide[Side::Caller.index()];
        if let Some(out) = self.forward_request(&msg, peer, &hop, &branch, hide) {
            self.out.push((hop.peer, out.raw().clone()));
        }
    }

    /// A 2xx no transaction knows (a retransmission after its transaction ended): relayed
    /// statelessly to the caller, only when its branch is ours, it belongs to a call the
    /// switch holds or recently held, and it comes from that call's callee.
    pub(super) fn forward_stray_response(&mut self, msg: Message, peer: Peer) {
        if !matches!(msg.status(), Some(200..=299)) {
            return;
        }
        let h = msg.headers();
        let branch = h
            .top_via()
            .ok()
            .and_then(|v| v.branch())
            .unwrap_or_default();
        if !self
            .branches
            .is_ours(branch, h.call_id().unwrap_or_default())
        {
            self.guards.count(Counter::ForgedBranch);
            debug!(from = %peer.addr, "response with a branch the switch did not issue: dropped");
            return;
        }
        let dest = DialogKey::of(&msg)
            .and_then(|k| self.dialogs.get(&k))
            .and_then(|cref| self.calls.get(cref))
            .and_then(|c| match &c.phase {
                Phase::Confirmed(d) | Phase::Ended(Some(d)) => Some(d),
                _ => None,
            })
            .and_then(|d| {
                // The request was sent by the side whose tag is in From; its peer answers.
                let requester = d.sender_of_response(&msg)?;
                d.is_party(requester.other(), peer)
                    .then(|| d.peer(requester))
            });
        let Some(dest) = dest else {
            self.guards.count(Counter::StrayDropped);
            return;
        };
        let mut e = msg.edit();
        if e.remove_top_via().is_ok() {
            self.out.push((dest, e.finish()));
        }
    }

    /// A request as relayed to `hop`: our Via on top, received/rport on the sender's,
    /// every Route the sender wrote replaced by the dialog's route set, the Request-URI
    /// the dialog's remote target, Max-Forwards decremented, a Contact rewritten to us.
    /// With `hide`, the sender's topology stays here: its Vias (put back on the response
    /// from the relayed request) and its User-Agent.
    fn forward_request(
        &self,
        msg: &Message,
        from: Peer,
        hop: &Hop<'_>,
        branch: &str,
        hide: bool,
    ) -> Option<Message> {
        let mut e = msg.edit();
        let t = hop.peer.transport;
        let via = format!(
            "SIP/2.0/{} {};branch={branch};rport",
            wire::via_transport(t),
            self.advertised(t)
        );
        if hide {
            e.remove_header(HeaderName::Via).ok()?;
            e.add_header("Via", via.as_bytes()).ok()?;
            e.remove_header(HeaderName::UserAgent).ok()?;
        } else {
            e.prepend_via(via.as_bytes()).ok()?;
            let ip = from.addr.ip().to_string();
            e.set_via_received(Some(ip.as_bytes()), from.addr.port())
                .ok()?;
        }
        e.remove_header(HeaderName::Route).ok()?;
        for r in hop.routes {
            e.add_header("Route", r).ok()?;
        }
        e.set_request_uri(hop.request_uri).ok()?;
        if msg.headers().get(HeaderName::Contact).is_some() {
            e.remove_header(HeaderName::Contact).ok()?;
            e.add_header("Contact", self.our_contact(t).as_bytes())
                .ok()?;
        }
        e.decrement_max_forwards().ok()?;
        parse_datagram(e.finish()).ok()
    }

    /// Ends an answered call from the switch: BYE to both sides, retried until each side
    /// settles; the CDR ends now.
    pub(super) fn hang_up(&mut self, now: Instant, cref: CallRef, reason: &str) {
        let Some(call) = self.calls.get_mut(&cref) else {
            return;
        };
        let Phase::Confirmed(d) = &mut call.phase else {
            return;
        };
        if d.ending.is_some() {
            return;
        }
        d.ending = Some(Ending {
            at: now,
            side: HangupSide::Switch,
            reason: reason.to_string(),
            q850: None,
            legs: [Leg::Bye(1); 2],
        });
        info!(
            call = cref.0,
            reason, "switch ends the call with BYE to both sides"
        );
        self.send_own_bye(now, cref, Side::Callee, 1);
        self.send_own_bye(now, cref, Side::Caller, 1);
        if self.draining_past_deadline {
            // Shutting down: the BYEs are out (and get a short grace to be answered), but
            // the process is leaving: the call ends now, as its CDR says.
            self.leg_settled(now, cref, Side::Callee);
            self.leg_settled(now, cref, Side::Caller);
        }
    }

    /// Try `n` of the switch's BYE to `to`. A BYE that cannot be built or sent is logged
    /// and tried again later; after [`BYE_TRIES`] the side is given up with an error.
    pub(super) fn send_own_bye(&mut self, now: Instant, cref: CallRef, to: Side, n: u32) {
        let user_agent = self.cfg.user_agent.clone();
        let Some(call) = self.calls.get_mut(&cref) else {
            return;
        };
        let Phase::Confirmed(d) = &mut call.phase else {
            return;
        };
        let Some(ending_side) = d.ending.as_ref().map(|e| e.side) else {
            return;
        };
        if n > BYE_TRIES {
            error!(
                call = cref.0,
                side = ?to,
                tries = BYE_TRIES,
                "BYE never confirmed by the far side: given up (the carrier may still bill the call)"
            );
            self.guards.count(Counter::ByeUnconfirmed);
            self.leg_settled(now, cref, to);
            return;
        }
        if let Some(e) = d.ending.as_mut() {
            e.legs[to.index()] = Leg::Bye(n);
        }
        let sender = to.other();
        let cseq = d.next_cseq(sender);
        let hop = d.peer(to);
        let target = d.target(to);
        let routes = d.routes(to).to_vec();
        let (from_hdr, to_hdr) = match to {
            Side::Callee => (d.part(3), d.part(4)),
            Side::Caller => (d.part(4), d.part(3)),
        };
        let call_id = d.call_id();
        let reason = match ending_side {
            HangupSide::Switch => "Q.850;cause=16;text=\"Normal call clearing\"",
            _ => "SIP;cause=200;text=\"Call completed elsewhere\"",
        };
        let via = format!(
            "SIP/2.0/{} {};branch={}",
            wire::via_transport(hop.transport),
            self.advertised(hop.transport),
            self.branches.new_branch(&call_id)
        );
        let bye = InDialog {
            method: "BYE",
            target: &target,
            via: &via,
            routes: &routes,
            from: &from_hdr,
            to: &to_hdr,
            call_id: &call_id,
            cseq,
            user_agent: &user_agent,
            reason: Some(reason),
        }
        .write();
        let sent = parse_datagram(bye)
            .map_err(|e| e.to_string())
            .and_then(|msg| {
                self.txns
                    .send_request(now, msg, hop, hop.reliable())
                    .map_err(|e| e.to_string())
            });
        match sent {
            Ok(id) => self.track(
                id,
                ClientRole::Bye {
                    call: cref,
                    to,
                    try_n: n,
                },
            ),
            Err(e) => {
                error!(call = cref.0, side = ?to, error = %e, "the switch's BYE could not be sent: will retry");
                self.bye_failed(now, cref, to, n);
            }
        }
    }

    /// A final response to the switch's own BYE to `to`.
    pub(super) fn own_bye_response(
        &mut self,
        now: Instant,
        (cref, to, n): (CallRef, Side, u32),
        status: u16,
    ) {
        if status < 200 {
            return;
        }
        if settles(status) {
            self.leg_settled(now, cref, to);
        } else {
            debug!(call = cref.0, status, "BYE refused: will retry");
            self.bye_failed(now, cref, to, n);
        }
    }

    /// The switch's BYE to `to` failed (refused, not sent): try again later (at once given
    /// up while shutting down past the drain).
    pub(super) fn bye_failed(&mut self, now: Instant, cref: CallRef, to: Side, n: u32) {
        self.guards.count(Counter::ByeRetried);
        if self.draining_past_deadline {
            self.send_own_bye(now, cref, to, BYE_TRIES + 1);
            return;
        }
        self.schedule(
            now + bye_backoff(n),
            CallTimer::ByeRetry {
                call: cref,
                to,
                try_n: n + 1,
            },
        );
    }

    /// Timer of a BYE retry.
    pub(super) fn bye_retry(&mut self, now: Instant, cref: CallRef, to: Side, n: u32) {
        let due = matches!(
            self.calls.get(&cref).map(|c| &c.phase),
            Some(Phase::Confirmed(d)) if d.ending.as_ref().is_some_and(|e| e.legs[to.index()] == Leg::Bye(n - 1))
        );
        if due {
            self.send_own_bye(now, cref, to, n);
        }
    }

    /// One side of a hang-up is done; when both are, the call ends (at the hang-up moment).
    fn leg_settled(&mut self, now: Instant, cref: CallRef, side: Side) {
        let Some(call) = self.calls.get_mut(&cref) else {
            return;
        };
        let Phase::Confirmed(d) = &mut call.phase else {
            return;
        };
        let Some(ending) = d.ending.as_mut() else {
            return;
        };
        ending.legs[side.index()] = Leg::Settled;
        if ending.legs.iter().any(|l| *l != Leg::Settled) {
            return;
        }
        let (at, hangup) = (ending.at, ending.side);
        let outcome = (200, std::mem::take(&mut ending.reason), ending.q850);
        let _ = now;
        self.end_call(at, cref, outcome, hangup);
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

    /// Shutdown's last resort: calls whose hang-up the far side never settled are closed.
    pub(super) fn force_end_all(&mut self, now: Instant) {
        let open: Vec<CallRef> = self
            .calls
            .iter()
            .filter(|(_, c)| !c.is_ended())
            .map(|(r, _)| *r)
            .collect();
        for cref in open {
            for side in [Side::Caller, Side::Callee] {
                self.leg_settled(now, cref, side);
            }
            if self.calls.get(&cref).is_some_and(|c| !c.is_ended()) {
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
        let our_rr = wire::record_route(self.advertised(hop.transport), hop.transport);
        let (routes, _) = route_sets(response, our_rr.as_bytes());
        let from = header_value(request, HeaderName::From);
        let to = header_value(response, HeaderName::To);
        let call_id = h.call_id().unwrap_or_default();
        let seq = h.cseq().map_or(1, |c| c.seq);
        let host = self.advertised(hop.transport).to_string();
        let transport = wire::via_transport(hop.transport);
        let ack_via = format!(
            "SIP/2.0/{transport} {host};branch={}",
            self.branches.new_branch(call_id)
        );
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
        let bye_via = format!(
            "SIP/2.0/{transport} {host};branch={}",
            self.branches.new_branch(call_id)
        );
        let bye = InDialog {
            method: "BYE",
            target,
            via: &bye_via,
            routes: &routes,
            from,
            to,
            call_id,
            cseq: seq.saturating_add(1),
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

    /// Our Contact for a leg on transport `t`.
    pub(super) fn our_contact(&self, t: domain::Transport) -> String {
        match t {
            domain::Transport::Udp => format!("<sip:{}>", self.advertised(t)),
            domain::Transport::Tcp => format!("<sip:{};transport=tcp>", self.advertised(t)),
        }
    }

    /// Timer C (RFC 3261 §16.6 step 11): a relayed re-INVITE still without a final
    /// response is answered 408 and its client transaction dropped.
    pub(super) fn timer_c(&mut self, now: Instant, client: ClientTxnId) {
        if !self.by_client.contains_key(&client) {
            return;
        }
        self.awaiting_final.remove(&client);
        if let Some(ClientRole::Relay { server, .. }) = self.by_client.remove(&client)
            && let Some(req) = self.relayed.remove(&server)
        {
            self.reply(now, server, &req, 408, "Request Timeout", &[]);
        }
        self.txns.terminate(sip_transaction::TxnId::Client(client));
    }
}

/// Timer C for relayed INVITEs (RFC 3261 §16.8: more than 3 minutes).
const TIMER_C: Duration = Duration::from_secs(181);

impl Dialog {
    /// The side that sent the request a response answers (its tag is in From).
    fn sender_of_response(&self, msg: &Message) -> Option<Side> {
        let from = msg.headers().from().ok()?.tag()?;
        if from == &self.part(1)[..] {
            Some(Side::Caller)
        } else if from == &self.part(2)[..] {
            Some(Side::Callee)
        } else {
            None
        }
    }
}

/// The route sets from the switch towards the callee and towards the caller, from the
/// Record-Route of a 2xx (top first): the entries before ours lead to the callee (nearest
/// last, so reversed), the entries after ours lead to the caller. Ours is the exact value
/// the switch wrote into the INVITE.
fn route_sets(response: &Message, ours: &[u8]) -> (Vec<Bytes>, Vec<Bytes>) {
    let rr: Vec<_> = response
        .headers()
        .record_routes()
        .filter_map(Result::ok)
        .collect();
    let pos = rr.iter().position(|r| r.raw == ours);
    let raw = |r: &sip_message::headers::NameAddr<'_>| Bytes::copy_from_slice(r.raw);
    match pos {
        Some(i) => (
            rr[..i].iter().rev().map(raw).collect(),
            rr[i + 1..].iter().map(raw).collect(),
        ),
        None => (Vec::new(), Vec::new()),
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
