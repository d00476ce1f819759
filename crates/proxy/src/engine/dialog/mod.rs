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

mod hangup;
mod relay;

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
        let (number, carrier) = (attempt.number, attempt.carrier);
        self.metrics.answer(carrier);
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
