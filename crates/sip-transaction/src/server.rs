//! Server transactions (RFC 3261 §17.2, RFC 6026 §8.5–8.7): the INVITE machine (Proceeding,
//! Completed, Confirmed, Accepted, Terminated; Timers G, H, I, L) and the non-INVITE machine
//! (Trying, Proceeding, Completed, Terminated; Timer J). Each state variant holds the data
//! that exists only in that state.

use std::time::Instant;

use bytes::Bytes;

use crate::io::Io;
use crate::key::ServerKey;
use crate::timer::Retransmit;
use crate::{
    Config, Error, Event, RequestOutcome, ServerInviteState, ServerNonInviteState, ServerTxnId,
    State, Timer, TxnId,
};

#[derive(Debug)]
enum Invite {
    Proceeding {
        last_provisional: Option<Bytes>,
    },
    Completed {
        response: Bytes,
        g: Option<Retransmit>,
        h: Instant,
    },
    Confirmed {
        i: Instant,
    },
    Accepted {
        l: Instant,
    },
    Terminated,
}

#[derive(Debug)]
enum NonInvite {
    Trying,
    Proceeding { last_provisional: Bytes },
    Completed { response: Bytes, j: Instant },
    Terminated,
}

#[derive(Debug)]
enum Machine {
    Invite(Invite),
    NonInvite(NonInvite),
}

/// One server transaction: where responses go and its state machine.
#[derive(Debug)]
pub(crate) struct ServerTxn<A> {
    pub(crate) key: ServerKey,
    /// RFC 2543 rules: the key an ACK of the sent non-2xx final response carries.
    pub(crate) ack_key: Option<ServerKey>,
    id: ServerTxnId,
    peer: A,
    reliable: bool,
    machine: Machine,
}

impl<A: Clone> ServerTxn<A> {
    /// A new transaction in Proceeding (INVITE) or Trying (other methods).
    pub(crate) fn new(
        id: ServerTxnId,
        key: ServerKey,
        invite: bool,
        peer: A,
        reliable: bool,
    ) -> Self {
        let machine = if invite {
            Machine::Invite(Invite::Proceeding {
                last_provisional: None,
            })
        } else {
            Machine::NonInvite(NonInvite::Trying)
        };
        ServerTxn {
            key,
            ack_key: None,
            id,
            peer,
            reliable,
            machine,
        }
    }

    /// The public state.
    /// Where the transaction's responses go (the address its request came from).
    pub(crate) fn peer(&self) -> &A {
        &self.peer
    }

    pub(crate) fn state(&self) -> State {
        match &self.machine {
            Machine::Invite(s) => State::ServerInvite(match s {
                Invite::Proceeding { .. } => ServerInviteState::Proceeding,
                Invite::Completed { .. } => ServerInviteState::Completed,
                Invite::Confirmed { .. } => ServerInviteState::Confirmed,
                Invite::Accepted { .. } => ServerInviteState::Accepted,
                Invite::Terminated => ServerInviteState::Terminated,
            }),
            Machine::NonInvite(s) => State::ServerNonInvite(match s {
                NonInvite::Trying => ServerNonInviteState::Trying,
                NonInvite::Proceeding { .. } => ServerNonInviteState::Proceeding,
                NonInvite::Completed { .. } => ServerNonInviteState::Completed,
                NonInvite::Terminated => ServerNonInviteState::Terminated,
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
            (Machine::Invite(Invite::Completed { g, .. }), Timer::G) => g.map(|g| g.at),
            (Machine::Invite(Invite::Completed { h, .. }), Timer::H) => Some(*h),
            (Machine::Invite(Invite::Confirmed { i }), Timer::I) => Some(*i),
            (Machine::Invite(Invite::Accepted { l }), Timer::L) => Some(*l),
            (Machine::NonInvite(NonInvite::Completed { j, .. }), Timer::J) => Some(*j),
            _ => None,
        }
    }

    /// A timer that [`ServerTxn::armed`] reported as due.
    pub(crate) fn on_timer(&mut self, now: Instant, timer: Timer, cfg: &Config, io: &mut Io<A>) {
        let tid = TxnId::Server(self.id);
        match (&mut self.machine, timer) {
            (
                Machine::Invite(Invite::Completed {
                    response,
                    g: Some(g),
                    ..
                }),
                Timer::G,
            ) => {
                io.send(tid, &self.peer, response.clone());
                *g = Retransmit::next(now, cfg.double(g.interval, true));
                io.arm(tid, Timer::G, g.at);
            }
            (Machine::Invite(m), Timer::H) => {
                io.event(Event::Timeout { id: tid, timer });
                *m = Invite::Terminated;
            }
            (Machine::Invite(m), Timer::I | Timer::L) => *m = Invite::Terminated,
            (Machine::NonInvite(m), Timer::J) => *m = NonInvite::Terminated,
            _ => {}
        }
    }

    /// The transport failed to send for this transaction (§17.2.4).
    pub(crate) fn transport_error(&mut self, io: &mut Io<A>) {
        io.event(Event::TransportError {
            id: TxnId::Server(self.id),
        });
        self.machine = match self.machine {
            Machine::Invite(_) => Machine::Invite(Invite::Terminated),
            Machine::NonInvite(_) => Machine::NonInvite(NonInvite::Terminated),
        };
    }

    /// A retransmission of the request: resend the last response, if any.
    pub(crate) fn on_retransmission(&mut self, io: &mut Io<A>) -> RequestOutcome {
        let resend = match &self.machine {
            Machine::Invite(Invite::Proceeding { last_provisional }) => last_provisional.as_ref(),
            Machine::Invite(Invite::Completed { response, .. }) => Some(response),
            Machine::NonInvite(NonInvite::Proceeding { last_provisional }) => {
                Some(last_provisional)
            }
            Machine::NonInvite(NonInvite::Completed { response, .. }) => Some(response),
            _ => None,
        };
        if let Some(r) = resend {
            io.send(TxnId::Server(self.id), &self.peer, r.clone());
        }
        RequestOutcome::Retransmission
    }

    /// An ACK that matched this (INVITE) transaction.
    pub(crate) fn on_ack(&mut self, now: Instant, cfg: &Config, io: &mut Io<A>) -> RequestOutcome {
        match &mut self.machine {
            Machine::Invite(m @ Invite::Completed { .. }) => {
                let i = cfg.timer_i(self.reliable);
                *m = if i.is_zero() {
                    Invite::Terminated
                } else {
                    io.arm(TxnId::Server(self.id), Timer::I, now + i);
                    Invite::Confirmed { i: now + i }
                };
                RequestOutcome::AckAbsorbed
            }
            Machine::Invite(Invite::Confirmed { .. }) => RequestOutcome::AckAbsorbed,
            // RFC 6026: in Accepted the ACK (of a 2xx) goes to the TU; before any final
            // response there is nothing to acknowledge.
            _ => RequestOutcome::StrayAck,
        }
    }

    /// A response from the TU.
    pub(crate) fn respond(
        &mut self,
        now: Instant,
        status: u16,
        response: Bytes,
        cfg: &Config,
        io: &mut Io<A>,
    ) -> Result<(), Error> {
        let tid = TxnId::Server(self.id);
        let provisional = status < 200;
        match &mut self.machine {
            Machine::Invite(m) => match m {
                Invite::Proceeding { last_provisional } if provisional => {
                    *last_provisional = Some(response.clone());
                }
                Invite::Proceeding { .. } if status < 300 => {
                    let l = now + cfg.timer_l();
                    io.arm(tid, Timer::L, l);
                    *m = Invite::Accepted { l };
                }
                Invite::Proceeding { .. } => {
                    let g = Retransmit::start(now, cfg.timer_g(), self.reliable);
                    let h = now + cfg.timer_h();
                    if let Some(g) = g {
                        io.arm(tid, Timer::G, g.at);
                    }
                    io.arm(tid, Timer::H, h);
                    *m = Invite::Completed {
                        response: response.clone(),
                        g,
                        h,
                    };
                }
                // RFC 6026: a forking proxy forwards every 2xx.
                Invite::Accepted { .. } if (200..300).contains(&status) => {}
                _ => return Err(Error::FinalAlreadySent),
            },
            Machine::NonInvite(m) => match m {
                NonInvite::Trying | NonInvite::Proceeding { .. } if provisional => {
                    *m = NonInvite::Proceeding {
                        last_provisional: response.clone(),
                    };
                }
                NonInvite::Trying | NonInvite::Proceeding { .. } => {
                    let j = cfg.timer_j(self.reliable);
                    *m = if j.is_zero() {
                        NonInvite::Terminated
                    } else {
                        io.arm(tid, Timer::J, now + j);
                        NonInvite::Completed {
                            response: response.clone(),
                            j: now + j,
                        }
                    };
                }
                _ => return Err(Error::FinalAlreadySent),
            },
        }
        io.send(tid, &self.peer, response);
        Ok(())
    }
}
