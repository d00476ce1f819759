//! Client transactions (RFC 3261 §17.1, RFC 6026 §8.4): the INVITE machine (Calling,
//! Proceeding, Completed, Accepted, Terminated; Timers A, B, D, M) and the non-INVITE machine
//! (Trying, Proceeding, Completed, Terminated; Timers E, F, K). Each state variant holds the
//! data that exists only in that state.

use std::time::Instant;

use bytes::Bytes;
use sip_message::{Message, Method};

use crate::io::Io;
use crate::key::ClientKey;
use crate::timer::Retransmit;
use crate::{
    ClientInviteState, ClientNonInviteState, ClientTxnId, Config, Event, ResponseOutcome, State,
    Timer, TxnId,
};

/// Provisional responses already passed to the TU, so that a retransmitted one is not passed
/// twice: the hashes of the last [`Seen::KEPT`] distinct ones (a peer that sends thousands of
/// distinct provisionals costs a bounded list; a retransmission of one forgotten is passed
/// again, which a proxy relays harmlessly). A reliable provisional (RFC 3262, with RSeq) is
/// always passed: its retransmissions are end to end and a proxy must forward them.
#[derive(Debug, Default)]
struct Seen(std::collections::VecDeque<u64>);

impl Seen {
    const KEPT: usize = 16;

    fn first_time(&mut self, msg: &Message) -> bool {
        if msg.headers().get_other("RSeq").is_some() {
            return true;
        }
        let h = hash(msg.raw());
        if self.0.contains(&h) {
            return false;
        }
        if self.0.len() == Self::KEPT {
            self.0.pop_front();
        }
        self.0.push_back(h);
        true
    }
}

/// A hash of a message's bytes, keyed per process (a peer cannot aim collisions at it).
fn hash(bytes: &[u8]) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    thread_local! {
        static KEYS: std::collections::hash_map::RandomState = std::collections::hash_map::RandomState::new();
    }
    KEYS.with(|k| {
        let mut h = k.build_hasher();
        h.write(bytes);
        h.finish()
    })
}

#[derive(Debug)]
enum Invite {
    Calling { a: Option<Retransmit>, b: Instant },
    Proceeding { seen: Seen },
    Completed { ack: Bytes, d: Instant },
    Accepted { m: Instant },
    Terminated,
}

#[derive(Debug)]
enum NonInvite {
    Trying {
        e: Option<Retransmit>,
        f: Instant,
    },
    Proceeding {
        e: Option<Retransmit>,
        f: Instant,
        seen: Seen,
    },
    Completed {
        k: Instant,
    },
    Terminated,
}

#[derive(Debug)]
enum Machine {
    Invite(Invite),
    NonInvite(NonInvite),
}

/// One client transaction: what it sent, to whom, and its state machine.
#[derive(Debug)]
pub(crate) struct ClientTxn<A> {
    pub(crate) key: ClientKey,
    id: ClientTxnId,
    peer: A,
    reliable: bool,
    /// The request, while it may have to be retransmitted or ACKed; dropped afterwards
    /// (an answered INVITE stays in `Accepted` for 64*T1 and must not hold it).
    request: Option<Message>,
    machine: Machine,
}

enum Class {
    Provisional,
    Success,
    Failure,
}

fn class(status: u16) -> Class {
    match status {
        100..=199 => Class::Provisional,
        200..=299 => Class::Success,
        _ => Class::Failure,
    }
}

impl<A: Clone> ClientTxn<A> {
    /// A transaction in Calling (INVITE) or Trying (other methods); nothing sent yet.
    pub(crate) fn new(
        id: ClientTxnId,
        key: ClientKey,
        request: Message,
        peer: A,
        reliable: bool,
        now: Instant,
        cfg: &Config,
    ) -> Self {
        let machine = if request.method() == Some(Method::Invite) {
            Machine::Invite(Invite::Calling {
                a: Retransmit::start(now, cfg.timer_a(), reliable),
                b: now + cfg.timer_b(),
            })
        } else {
            Machine::NonInvite(NonInvite::Trying {
                e: Retransmit::start(now, cfg.timer_e(), reliable),
                f: now + cfg.timer_f(),
            })
        };
        ClientTxn {
            key,
            id,
            peer,
            reliable,
            request: Some(request),
            machine,
        }
    }

    /// Sends the request and arms the timers of the initial state.
    pub(crate) fn start(&self, io: &mut Io<A>) {
        let tid = TxnId::Client(self.id);
        if let Some(r) = &self.request {
            io.send(tid, &self.peer, r.raw().clone());
        }
        for timer in [Timer::A, Timer::B, Timer::E, Timer::F] {
            if let Some(at) = self.armed(timer) {
                io.arm(tid, timer, at);
            }
        }
    }

    /// The public state.
    pub(crate) fn state(&self) -> State {
        match &self.machine {
            Machine::Invite(s) => State::ClientInvite(match s {
                Invite::Calling { .. } => ClientInviteState::Calling,
                Invite::Proceeding { .. } => ClientInviteState::Proceeding,
                Invite::Completed { .. } => ClientInviteState::Completed,
                Invite::Accepted { .. } => ClientInviteState::Accepted,
                Invite::Terminated => ClientInviteState::Terminated,
            }),
            Machine::NonInvite(s) => State::ClientNonInvite(match s {
                NonInvite::Trying { .. } => ClientNonInviteState::Trying,
                NonInvite::Proceeding { .. } => ClientNonInviteState::Proceeding,
                NonInvite::Completed { .. } => ClientNonInviteState::Completed,
                NonInvite::Terminated => ClientNonInviteState::Terminated,
            }),
        }
    }

    pub(crate) fn is_terminated(&self) -> bool {
        matches!(
            self.machine,
            Machine::Invite(Invite::Terminated) | Machine::NonInvite(NonInvite::Terminated)
        )
    }

    /// When `timer` is armed to fire, if it is.
    pub(crate) fn armed(&self, timer: Timer) -> Option<Instant> {
        match (&self.machine, timer) {
            (Machine::Invite(Invite::Calling { a, .. }), Timer::A) => a.map(|a| a.at),
            (Machine::Invite(Invite::Calling { b, .. }), Timer::B) => Some(*b),
            (Machine::Invite(Invite::Completed { d, .. }), Timer::D) => Some(*d),
            (Machine::Invite(Invite::Accepted { m }), Timer::M) => Some(*m),
            (
                Machine::NonInvite(NonInvite::Trying { e, .. } | NonInvite::Proceeding { e, .. }),
                Timer::E,
            ) => e.map(|e| e.at),
            (
                Machine::NonInvite(NonInvite::Trying { f, .. } | NonInvite::Proceeding { f, .. }),
                Timer::F,
            ) => Some(*f),
            (Machine::NonInvite(NonInvite::Completed { k }), Timer::K) => Some(*k),
            _ => None,
        }
    }

    /// A timer that [`ClientTxn::armed`] reported as due.
    pub(crate) fn on_timer(&mut self, now: Instant, timer: Timer, cfg: &Config, io: &mut Io<A>) {
        let tid = TxnId::Client(self.id);
        match (&mut self.machine, timer) {
            (Machine::Invite(Invite::Calling { a: Some(a), .. }), Timer::A) => {
                if let Some(r) = &self.request {
                    io.send(tid, &self.peer, r.raw().clone());
                }
                *a = Retransmit::next(now, cfg.double(a.interval, false));
                io.arm(tid, Timer::A, a.at);
            }
            (Machine::NonInvite(NonInvite::Trying { e: Some(e), .. }), Timer::E) => {
                if let Some(r) = &self.request {
                    io.send(tid, &self.peer, r.raw().clone());
                }
                *e = Retransmit::next(now, cfg.double(e.interval, true));
                io.arm(tid, Timer::E, e.at);
            }
            (Machine::NonInvite(NonInvite::Proceeding { e: Some(e), .. }), Timer::E) => {
                if let Some(r) = &self.request {
                    io.send(tid, &self.peer, r.raw().clone());
                }
                *e = Retransmit::next(now, cfg.t2);
                io.arm(tid, Timer::E, e.at);
            }
            (Machine::Invite(m), Timer::B) => {
                io.event(Event::Timeout { id: tid, timer });
                *m = Invite::Terminated;
            }
            (Machine::NonInvite(m), Timer::F) => {
                io.event(Event::Timeout { id: tid, timer });
                *m = NonInvite::Terminated;
            }
            (Machine::Invite(m), Timer::D | Timer::M) => *m = Invite::Terminated,
            (Machine::NonInvite(m), Timer::K) => *m = NonInvite::Terminated,
            _ => {}
        }
    }

    /// The transport failed to send for this transaction (§17.1.4).
    pub(crate) fn transport_error(&mut self, io: &mut Io<A>) {
        io.event(Event::TransportError {
            id: TxnId::Client(self.id),
        });
        self.machine = match self.machine {
            Machine::Invite(_) => Machine::Invite(Invite::Terminated),
            Machine::NonInvite(_) => Machine::NonInvite(NonInvite::Terminated),
        };
    }

    /// A response that matched this transaction's key.
    pub(crate) fn on_response(
        &mut self,
        now: Instant,
        msg: Message,
        cfg: &Config,
        io: &mut Io<A>,
    ) -> ResponseOutcome {
        let cls = class(msg.status().unwrap_or(0));
        let Some(request) = &self.request else {
            // Past the states that need the request: Completed, Accepted or Terminated.
            let pass = match &mut self.machine {
                Machine::Invite(Invite::Accepted { .. }) => matches!(cls, Class::Success),
                _ => false,
            };
            if pass {
                io.event(Event::Response { id: self.id, msg });
                return ResponseOutcome::Matched(self.id);
            }
            if let (Machine::Invite(Invite::Completed { ack, .. }), Class::Failure) =
                (&self.machine, cls)
            {
                io.send(TxnId::Client(self.id), &self.peer, ack.clone());
            }
            return ResponseOutcome::Absorbed;
        };
        let cx = Ctx {
            tid: TxnId::Client(self.id),
            peer: &self.peer,
            request,
            reliable: self.reliable,
            now,
            cfg,
        };
        let pass = match &mut self.machine {
            Machine::Invite(m) => invite_response(m, &msg, cls, &cx, io),
            Machine::NonInvite(m) => non_invite_response(m, &msg, cls, &cx, io),
        };
        let retransmitting = matches!(
            self.machine,
            Machine::Invite(Invite::Calling { .. } | Invite::Proceeding { .. })
                | Machine::NonInvite(NonInvite::Trying { .. } | NonInvite::Proceeding { .. })
        );
        if !retransmitting {
            self.request = None;
        }
        if pass {
            io.event(Event::Response { id: self.id, msg });
            ResponseOutcome::Matched(self.id)
        } else {
            ResponseOutcome::Absorbed
        }
    }
}

/// What a response handler needs besides the state.
struct Ctx<'a, A> {
    tid: TxnId,
    peer: &'a A,
    request: &'a Message,
    reliable: bool,
    now: Instant,
    cfg: &'a Config,
}

/// §17.1.1.2 and RFC 6026 §8.4; returns whether the response goes to the TU.
fn invite_response<A: Clone>(
    m: &mut Invite,
    msg: &Message,
    cls: Class,
    cx: &Ctx<'_, A>,
    io: &mut Io<A>,
) -> bool {
    match (&mut *m, cls) {
        (Invite::Calling { .. }, Class::Provisional) => {
            let mut seen = Seen::default();
            seen.first_time(msg);
            *m = Invite::Proceeding { seen };
            true
        }
        (Invite::Proceeding { seen }, Class::Provisional) => seen.first_time(msg),
        (Invite::Calling { .. } | Invite::Proceeding { .. }, Class::Success) => {
            let at = cx.now + cx.cfg.timer_m();
            io.arm(cx.tid, Timer::M, at);
            *m = Invite::Accepted { m: at };
            true
        }
        (Invite::Calling { .. } | Invite::Proceeding { .. }, Class::Failure) => {
            // The INVITE's Via and CSeq were checked when it was sent, so the ACK builds.
            *m = match sip_message::build::ack_for_non2xx(cx.request, msg) {
                Ok(ack) => {
                    io.send(cx.tid, cx.peer, ack.clone());
                    let d = cx.cfg.timer_d(cx.reliable);
                    if d.is_zero() {
                        Invite::Terminated
                    } else {
                        io.arm(cx.tid, Timer::D, cx.now + d);
                        Invite::Completed { ack, d: cx.now + d }
                    }
                }
                Err(_) => Invite::Terminated,
            };
            true
        }
        (Invite::Completed { ack, .. }, Class::Failure) => {
            io.send(cx.tid, cx.peer, ack.clone());
            false
        }
        (Invite::Accepted { .. }, Class::Success) => true,
        _ => false,
    }
}

/// §17.1.2.2; returns whether the response goes to the TU.
fn non_invite_response<A: Clone>(
    m: &mut NonInvite,
    msg: &Message,
    cls: Class,
    cx: &Ctx<'_, A>,
    io: &mut Io<A>,
) -> bool {
    match (&mut *m, cls) {
        (NonInvite::Trying { e, f }, Class::Provisional) => {
            let mut seen = Seen::default();
            seen.first_time(msg);
            *m = NonInvite::Proceeding { e: *e, f: *f, seen };
            true
        }
        (NonInvite::Proceeding { seen, .. }, Class::Provisional) => seen.first_time(msg),
        (
            NonInvite::Trying { .. } | NonInvite::Proceeding { .. },
            Class::Success | Class::Failure,
        ) => {
            let k = cx.cfg.timer_k(cx.reliable);
            *m = if k.is_zero() {
                NonInvite::Terminated
            } else {
                io.arm(cx.tid, Timer::K, cx.now + k);
                NonInvite::Completed { k: cx.now + k }
            };
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod seen_tests {
    use super::*;

    fn provisional(n: usize) -> Message {
        let text = format!(
            "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag={n}\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        );
        sip_message::parse_datagram(Bytes::from(text)).unwrap()
    }

    #[test]
    fn distinct_provisionals_are_remembered_up_to_a_bound() {
        let mut seen = Seen::default();
        assert!(seen.first_time(&provisional(0)));
        assert!(!seen.first_time(&provisional(0)), "a retransmission");
        for n in 1..10_000 {
            assert!(seen.first_time(&provisional(n)));
        }
        assert_eq!(seen.0.len(), Seen::KEPT, "bounded");
        assert!(!seen.first_time(&provisional(9_999)));
    }
}
