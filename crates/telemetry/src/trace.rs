//! Which captured messages become stored SIP traces ([`Recorder`]), under `[trace] mode`:
//!
//! - `all`: every message of every call (by its CSeq method: OPTIONS probes, REGISTER and
//!   the like are not calls), with no state to lose: a BYE an hour later is kept too;
//! - `sample`: the same for the calls whose Call-ID hashes under `sample_percent`;
//! - `failed` (the default): the calls that fail. A call's messages wait in memory until the
//!   switch sends the final response to its INVITE: a failure writes them (and what follows
//!   for 32 s: the ACK), a success drops them. While new calls arrive slower than
//!   `all_below_cps` a second, every call is kept whole, as in `all`.
//!
//! Memory is bounded: messages waiting for their call's outcome may hold `memory_bytes` at
//! most; past it the oldest call's are dropped first (counted: [`Recorder::evicted`]).
//! The recorder does no I/O: it returns what to write.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

use bytes::Bytes;

use crate::capture::{Captured, call_id};

/// `[trace] mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Failed,
    All,
    /// Percent of calls, 0 to 100.
    Sample(u8),
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        match s.trim() {
            "failed" => Ok(Mode::Failed),
            "all" => Ok(Mode::All),
            "sample" => Ok(Mode::Sample(10)),
            other => Err(format!("{other:?}: failed, all or sample")),
        }
    }
}

/// The recorder's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub mode: Mode,
    /// Below this many new calls a second every call is kept whole (0: never).
    pub all_below_cps: u32,
    /// Messages waiting for their call's outcome hold at most this many bytes.
    pub memory_bytes: usize,
}

/// After the final response of a failed call, its messages are kept this long (the ACK).
const AFTER_FINAL_US: u64 = 32_000_000;
/// Calls kept whole because the switch was quiet, remembered for their in-dialog messages.
const QUIET_CALLS: usize = 100_000;

/// What the recorder knows of a call.
#[derive(Debug)]
enum State {
    /// Waiting for the final response: its messages so far, and the customer's address.
    Pending {
        customer: SocketAddr,
        messages: Vec<Captured>,
        bytes: usize,
        started_us: u64,
    },
    /// Failed: kept until this time (its ACK).
    Failed { until_us: u64 },
}

/// Decides which messages are written (see the module's documentation).
#[derive(Debug)]
pub struct Recorder {
    policy: Policy,
    calls: HashMap<Bytes, State>,
    /// Pending calls, oldest first (for eviction and the setup bound).
    order: VecDeque<Bytes>,
    pending_bytes: usize,
    /// Calls kept whole while the switch was quiet (bounded, oldest forgotten first).
    quiet: HashMap<Bytes, ()>,
    quiet_order: VecDeque<Bytes>,
    /// New calls in the current second: (second, count).
    rate: (u64, u32),
    evicted: u64,
}

/// Whether a message is the initial INVITE of a call (a request, no To tag).
fn initial_invite(m: &[u8]) -> bool {
    m.starts_with(b"INVITE ") && !has_to_tag(m)
}

fn has_to_tag(m: &[u8]) -> bool {
    m[..crate::capture::head_end(m)]
        .split(|&b| b == b'\n')
        .skip(1)
        .find(|l| {
            let l = l.trim_ascii_start();
            l.len() > 3
                && (l[..3].eq_ignore_ascii_case(b"to:")
                    || (l.len() > 2 && l[..2].eq_ignore_ascii_case(b"t:")))
        })
        .is_some_and(|l| {
            l.windows(5)
                .any(|w| w[0] == b';' && w[1..4].eq_ignore_ascii_case(b"tag") && w[4] == b'=')
        })
}

/// The status of a final response to an INVITE (`SIP/2.0 NNN`, CSeq method INVITE).
fn final_invite_status(m: &[u8]) -> Option<u16> {
    let rest = m.strip_prefix(b"SIP/2.0 ")?;
    let status: u16 = std::str::from_utf8(rest.get(..3)?).ok()?.parse().ok()?;
    if status < 200 {
        return None;
    }
    let cseq = m[..crate::capture::head_end(m)]
        .split(|&b| b == b'\n')
        .skip(1)
        .find(|l| {
            l.trim_ascii_start()
                .get(..5)
                .is_some_and(|n| n.eq_ignore_ascii_case(b"cseq:"))
        })?;
    memchr::memmem::find(cseq, b"INVITE").map(|_| status)
}

/// Whether a message is part of a call: its CSeq method is one a call uses (not OPTIONS,
/// REGISTER, SUBSCRIBE, MESSAGE...).
fn of_a_call(m: &[u8]) -> bool {
    const CALL: [&[u8]; 7] = [
        b"INVITE", b"ACK", b"BYE", b"CANCEL", b"UPDATE", b"INFO", b"PRACK",
    ];
    m[..crate::capture::head_end(m)]
        .split(|&b| b == b'\n')
        .skip(1)
        .find_map(|l| {
            let l = l.trim_ascii();
            l.get(..5).filter(|n| n.eq_ignore_ascii_case(b"cseq:"))?;
            l[5..]
                .trim_ascii()
                .split(|&b| b == b' ')
                .nth(1)
                .map(<[u8]>::trim_ascii)
        })
        .is_some_and(|method| CALL.contains(&method))
}

/// A stable percent bucket of a Call-ID (FNV-1a).
fn bucket(id: &[u8]) -> u8 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in id {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    (h % 100) as u8
}

impl Recorder {
    pub fn new(policy: Policy) -> Recorder {
        Recorder {
            policy,
            calls: HashMap::new(),
            order: VecDeque::new(),
            pending_bytes: 0,
            quiet: HashMap::new(),
            quiet_order: VecDeque::new(),
            rate: (0, 0),
            evicted: 0,
        }
    }

    /// Messages dropped from memory before their call's outcome (the memory bound).
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Bytes of messages waiting for their call's outcome.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Takes one captured message; appends to `write` what is to be stored now, each with
    /// its Call-ID.
    pub fn push(&mut self, c: Captured, write: &mut Vec<(Bytes, Captured)>) {
        let Some(id) = call_id(&c.bytes) else {
            return;
        };
        let id = c.bytes.slice_ref(id);
        let invite = initial_invite(&c.bytes);
        if invite {
            self.count_call(c.at_us);
        }
        match self.policy.mode {
            // No state: a message belongs to a call by its CSeq method, so a BYE an hour
            // later is kept as well as the INVITE.
            Mode::All => {
                if of_a_call(&c.bytes) {
                    write.push((id, c));
                }
                return;
            }
            Mode::Sample(p) if bucket(&id) < p => {
                if of_a_call(&c.bytes) {
                    write.push((id, c));
                }
                return;
            }
            _ => {}
        }
        if self.quiet.contains_key(&id) {
            write.push((id, c));
            return;
        }
        if invite && self.is_quiet() && !self.calls.contains_key(&id) {
            self.remember_quiet(&id, true);
            write.push((id, c));
            return;
        }
        self.failed_mode(id, c, invite, write);
    }

    fn failed_mode(
        &mut self,
        id: Bytes,
        c: Captured,
        invite: bool,
        write: &mut Vec<(Bytes, Captured)>,
    ) {
        let now = c.at_us;
        match self.calls.get_mut(&id) {
            None if invite => {
                let bytes = c.bytes.len();
                self.calls.insert(
                    id.clone(),
                    State::Pending {
                        customer: c.source,
                        messages: vec![c],
                        bytes,
                        started_us: now,
                    },
                );
                self.order.push_back(id);
                self.pending_bytes += bytes;
                self.bound();
            }
            None => {}
            Some(State::Failed { until_us }) => {
                if now <= *until_us {
                    write.push((id, c));
                } else {
                    self.calls.remove(&id);
                }
            }
            Some(State::Pending {
                customer,
                messages,
                bytes,
                ..
            }) => {
                let to_customer = c.destination == *customer;
                let status = to_customer.then(|| final_invite_status(&c.bytes)).flatten();
                *bytes += c.bytes.len();
                self.pending_bytes += c.bytes.len();
                messages.push(c);
                match status {
                    None => self.bound(),
                    Some(s) => {
                        let Some(State::Pending {
                            messages, bytes, ..
                        }) = self.calls.remove(&id)
                        else {
                            return;
                        };
                        self.pending_bytes -= bytes;
                        self.order.retain(|o| o != &id);
                        if s >= 300 {
                            write.extend(messages.into_iter().map(|m| (id.clone(), m)));
                            self.calls.insert(
                                id,
                                State::Failed {
                                    until_us: now + AFTER_FINAL_US,
                                },
                            );
                        }
                    }
                }
            }
        }
        self.expire(now);
    }

    /// Counts a new call in the current second.
    fn count_call(&mut self, at_us: u64) {
        let second = at_us / 1_000_000;
        if self.rate.0 == second {
            self.rate.1 += 1;
        } else {
            self.rate = (second, 1);
        }
    }

    /// Whether new calls arrive slower than `all_below_cps` (this one counted).
    fn is_quiet(&self) -> bool {
        self.rate.1 <= self.policy.all_below_cps
    }

    fn remember_quiet(&mut self, id: &Bytes, new: bool) {
        if !new || self.quiet.contains_key(id) {
            return;
        }
        if self.quiet_order.len() >= QUIET_CALLS
            && let Some(old) = self.quiet_order.pop_front()
        {
            self.quiet.remove(&old);
        }
        self.quiet.insert(id.clone(), ());
        self.quiet_order.push_back(id.clone());
    }

    /// Drops the oldest pending calls while over the memory bound.
    fn bound(&mut self) {
        while self.pending_bytes > self.policy.memory_bytes {
            let Some(old) = self.order.pop_front() else {
                return;
            };
            if let Some(State::Pending {
                messages, bytes, ..
            }) = self.calls.remove(&old)
            {
                self.pending_bytes -= bytes;
                self.evicted += messages.len() as u64;
            }
        }
    }

    /// Forgets failed calls past their grace and pending calls older than 10 minutes (a
    /// final response the recorder never saw).
    fn expire(&mut self, now_us: u64) {
        while let Some(front) = self.order.front() {
            match self.calls.get(front) {
                Some(State::Pending { started_us, .. })
                    if now_us - started_us.min(&now_us) > 600_000_000 =>
                {
                    let old = self.order.pop_front().expect("front");
                    if let Some(State::Pending {
                        messages, bytes, ..
                    }) = self.calls.remove(&old)
                    {
                        self.pending_bytes -= bytes;
                        self.evicted += messages.len() as u64;
                    }
                }
                _ => break,
            }
        }
        if self.calls.len() > self.order.len() + 10_000 {
            self.calls
                .retain(|_, s| !matches!(s, State::Failed { until_us } if *until_us < now_us));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CUSTOMER: &str = "192.0.2.10:5070";
    const SWITCH: &str = "192.0.2.1:5060";
    const CARRIER: &str = "198.51.100.7:5060";

    fn msg(at_us: u64, from: &str, to: &str, text: &str) -> Captured {
        Captured {
            at_us,
            source: from.parse().unwrap(),
            destination: to.parse().unwrap(),
            tcp: false,
            bytes: Bytes::from(text.replace('\n', "\r\n")),
        }
    }

    fn invite(at: u64, id: &str) -> Captured {
        msg(
            at,
            CUSTOMER,
            SWITCH,
            &format!("INVITE sip:1@x SIP/2.0\nCall-ID: {id}\nTo: <sip:1@x>\nCSeq: 1 INVITE\n\n"),
        )
    }

    fn response(at: u64, id: &str, status: u16, from: &str, to: &str) -> Captured {
        msg(
            at,
            from,
            to,
            &format!("SIP/2.0 {status} X\nCall-ID: {id}\nTo: <sip:1@x>;tag=t\nCSeq: 1 INVITE\n\n"),
        )
    }

    fn ack(at: u64, id: &str) -> Captured {
        msg(
            at,
            CUSTOMER,
            SWITCH,
            &format!("ACK sip:1@x SIP/2.0\nCall-ID: {id}\nTo: <sip:1@x>;tag=t\nCSeq: 1 ACK\n\n"),
        )
    }

    fn policy(mode: Mode) -> Policy {
        Policy {
            mode,
            all_below_cps: 0,
            memory_bytes: 1 << 20,
        }
    }

    /// Runs `messages` through a recorder; the first lines of what it writes.
    fn run(r: &mut Recorder, messages: Vec<Captured>) -> Vec<String> {
        let mut out = Vec::new();
        for m in messages {
            r.push(m, &mut out);
        }
        out.iter()
            .map(|(id, c)| {
                let text = String::from_utf8_lossy(&c.bytes);
                format!(
                    "{} {}",
                    String::from_utf8_lossy(id),
                    text.lines().next().unwrap()
                )
            })
            .collect()
    }

    #[test]
    fn a_failed_call_is_written_whole_with_its_ack_and_a_success_is_not() {
        let mut r = Recorder::new(policy(Mode::Failed));
        let failed = run(
            &mut r,
            vec![
                invite(1, "f"),
                response(2, "f", 100, SWITCH, CUSTOMER),
                msg(
                    3,
                    SWITCH,
                    CARRIER,
                    "INVITE sip:1@c SIP/2.0\nCall-ID: f\nTo: <sip:1@c>\nCSeq: 1 INVITE\n\n",
                ),
                response(4, "f", 503, CARRIER, SWITCH),
                response(5, "f", 503, SWITCH, CUSTOMER),
                ack(6, "f"),
            ],
        );
        assert_eq!(
            failed,
            [
                "f INVITE sip:1@x SIP/2.0",
                "f SIP/2.0 100 X",
                "f INVITE sip:1@c SIP/2.0",
                "f SIP/2.0 503 X",
                "f SIP/2.0 503 X",
                "f ACK sip:1@x SIP/2.0",
            ],
            "the carrier's 503 alone (not to the customer) decides nothing"
        );
        let answered = run(
            &mut r,
            vec![
                invite(10, "ok"),
                response(11, "ok", 200, SWITCH, CUSTOMER),
                ack(12, "ok"),
            ],
        );
        assert!(answered.is_empty(), "{answered:?}");
        assert_eq!(r.pending_bytes(), 0);
        let late = run(&mut r, vec![ack(6 + AFTER_FINAL_US + 1, "f")]);
        assert!(late.is_empty(), "past the grace: forgotten");
    }

    #[test]
    fn all_and_sample_write_through_and_skip_what_is_not_a_call() {
        let mut r = Recorder::new(policy(Mode::All));
        let out = run(
            &mut r,
            vec![
                msg(
                    1,
                    CARRIER,
                    SWITCH,
                    "OPTIONS sip:s SIP/2.0\nCall-ID: probe\nCSeq: 1 OPTIONS\n\n",
                ),
                invite(2, "a"),
                response(3, "a", 200, SWITCH, CUSTOMER),
                msg(
                    4,
                    CUSTOMER,
                    SWITCH,
                    "BYE sip:s SIP/2.0\nCall-ID: a\nTo: <sip:1@x>;tag=t\nCSeq: 2 BYE\n\n",
                ),
            ],
        );
        assert_eq!(out.len(), 3, "{out:?}");
        assert!(out.iter().all(|l| l.starts_with("a ")));
        // An hour and 200,000 calls later, the BYE of call `a` is still its call's.
        let later: Vec<Captured> = (0..200_000)
            .map(|i| invite(10 + i, &format!("n{i}")))
            .chain([msg(
                3_600_000_000,
                CUSTOMER,
                SWITCH,
                "BYE sip:s SIP/2.0\nCall-ID: a\nTo: <sip:1@x>;tag=t\nCSeq: 3 BYE\n\n",
            )])
            .collect();
        let out = run(&mut r, later);
        assert_eq!(out.last().map(String::as_str), Some("a BYE sip:s SIP/2.0"));
        let mut none = Recorder::new(policy(Mode::Sample(0)));
        let mut every = Recorder::new(policy(Mode::Sample(100)));
        let calls = || {
            (0..50)
                .map(|i| invite(i, &format!("c{i}")))
                .collect::<Vec<_>>()
        };
        assert!(
            run(&mut none, calls()).is_empty(),
            "0 %: as failed (none failed yet)"
        );
        assert_eq!(run(&mut every, calls()).len(), 50);
        let mut half = Recorder::new(policy(Mode::Sample(50)));
        let n = run(&mut half, calls()).len();
        assert!((10..=40).contains(&n), "about half of 50: {n}");
    }

    #[test]
    fn a_quiet_switch_keeps_every_call_and_memory_is_bounded() {
        let mut quiet = Recorder::new(Policy {
            all_below_cps: 2,
            ..policy(Mode::Failed)
        });
        // Two calls in one second: both kept whole, answered or not.
        let out = run(
            &mut quiet,
            vec![
                invite(1_000_000, "q1"),
                response(1_000_001, "q1", 200, SWITCH, CUSTOMER),
                invite(1_000_002, "q2"),
                invite(1_000_003, "busy"),
                response(1_000_004, "busy", 200, SWITCH, CUSTOMER),
            ],
        );
        assert_eq!(out.len(), 3, "{out:?}");
        assert!(
            !out.iter().any(|l| l.starts_with("busy")),
            "the third call of the second waits"
        );
        let mut small = Recorder::new(Policy {
            memory_bytes: 300,
            ..policy(Mode::Failed)
        });
        let out = run(
            &mut small,
            (0..10).map(|i| invite(i, &format!("m{i}"))).collect(),
        );
        assert!(out.is_empty());
        assert!(small.pending_bytes() <= 300);
        assert!(small.evicted() >= 6, "{}", small.evicted());
        let failed = run(&mut small, vec![response(20, "m9", 486, SWITCH, CUSTOMER)]);
        assert_eq!(
            failed.len(),
            2,
            "the newest call's INVITE was kept: {failed:?}"
        );
    }
}
