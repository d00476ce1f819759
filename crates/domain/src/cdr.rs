//! CDRs: accounting feeds each call's [`CallEvent`]s to a [`CdrBuilder`], which returns the
//! finished [`Cdr`] when the call ends; what a peer sent is cleaned and bounded on the way
//! in ([`clean_text`], [`limits`]).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::call::{CallEvent, CallRef, HangupSide};
use crate::party::{CarrierId, CustomerId};
use crate::rates::Money;

/// One INVITE sent to a carrier, as the CDR keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    pub carrier_id: CarrierId,
    pub carrier_addr: String,
    /// The INVITE sent.
    pub started_ms: i64,
    /// Its final response, or the switch's code for a timeout or transport error, or the
    /// call's final code when the call ended during this attempt.
    pub code: Option<u16>,
    /// INVITE sent → first 18x of this attempt.
    pub pdd_ms: Option<i64>,
}

/// One call record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cdr {
    pub id: String,
    pub call_id: String,
    pub customer_id: CustomerId,
    /// The carrier of the last attempt, if any.
    pub carrier_id: Option<CarrierId>,
    pub carrier_addr: Option<String>,
    pub source_addr: String,
    pub caller: String,
    pub callee: String,
    pub caller_out: Option<String>,
    pub callee_out: Option<String>,
    pub user_agent: Option<String>,
    /// INVITE received.
    pub invite_ms: i64,
    /// First 18x of the last attempt.
    pub progress_ms: Option<i64>,
    pub answer_ms: Option<i64>,
    pub end_ms: i64,
    /// The last attempt's INVITE sent → its first 18x.
    pub pdd_ms: Option<i64>,
    /// Answer → end, in milliseconds.
    pub billable_ms: i64,
    /// `billable_ms` rounded up to whole seconds.
    pub billable_secs: i64,
    pub final_code: u16,
    pub final_reason: String,
    pub hangup: HangupSide,
    pub attempts: u32,
    /// Every attempt, in order.
    #[serde(default)]
    pub attempt_log: Vec<AttemptRecord>,
    /// The Q.850 cause of the Reason header that ended the call, if any.
    #[serde(default)]
    pub q850_cause: Option<u16>,
    /// Audio codecs offered by the customer and answered by the carrier (comma-separated).
    #[serde(default)]
    pub codecs_offered: Option<String>,
    #[serde(default)]
    pub codecs_answered: Option<String>,
    /// The CLI and destination in E.164, as admission read them (`None`: refused before).
    #[serde(default)]
    pub caller_e164: Option<String>,
    #[serde(default)]
    pub callee_e164: Option<String>,
    /// What the call costs at the carrier's rate (`None`: no carrier rate for it).
    #[serde(default)]
    pub cost: Option<Money>,
    /// What the customer pays (`None`: no customer rate, rate plan or markup applies).
    #[serde(default)]
    pub price: Option<Money>,
}

#[derive(Debug)]
struct Draft {
    cdr: Cdr,
    attempt_started_ms: Option<i64>,
}

/// A call in progress as accounting sees it (the API's live calls).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallInProgress {
    pub call_id: String,
    pub customer_id: CustomerId,
    /// The carrier of the attempt in progress, if any.
    pub carrier_id: Option<CarrierId>,
    pub source_addr: String,
    pub caller: String,
    /// The destination as routing read it (E.164), else as received.
    pub callee: String,
    pub started_ms: i64,
    pub progress_ms: Option<i64>,
    pub answered_ms: Option<i64>,
    pub attempts: u32,
}

/// Turns each call's events into its CDR.
#[derive(Debug, Default)]
pub struct CdrBuilder {
    open: HashMap<CallRef, Draft>,
}

/// Bounds, in bytes, on a CDR's text fields (docs/CDR.md). Most of them come from the wire
/// (a customer's From user, User-Agent and Call-ID, a carrier's reason phrase), where a
/// peer may send anything the SIP parser lets through; the bounds keep one CDR small in the
/// log, the database and an operator's terminal.
pub mod limits {
    /// `call_id`.
    pub const CALL_ID: usize = 256;
    /// `caller`, `callee`, `caller_out`, `callee_out`, `caller_e164`, `callee_e164`.
    pub const NUMBER: usize = 128;
    /// `source_addr`, `carrier_addr` (`ip:port`; an IPv6 one is at most 47 bytes).
    pub const ADDRESS: usize = 64;
    /// `user_agent`.
    pub const USER_AGENT: usize = 256;
    /// `final_reason`.
    pub const REASON: usize = 256;
    /// `codecs_offered`, `codecs_answered`.
    pub const CODECS: usize = 256;
    /// `id` (the switch makes it; bounded all the same).
    pub const ID: usize = 64;
}

/// What takes the place of a control character in a CDR text field.
pub const REPLACEMENT: char = '\u{FFFD}';

/// Whether `c` may not stay in a CDR text field: C0 and C1 controls and DEL (NUL is refused
/// by PostgreSQL, ESC sequences drive a terminal, CR/LF split log lines and CSV rows), and
/// the Unicode line separators and bidirectional overrides (they reorder what a terminal
/// shows).
pub fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every unsafe character replaced by [`REPLACEMENT`] and cut to at most `max`
/// bytes (on a character boundary). Borrows when there is nothing to do.
pub fn clean_text(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if s.len() <= max && !s.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len().min(max));
    for c in s.chars() {
        let c = if unsafe_char(c) { REPLACEMENT } else { c };
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(c);
    }
    std::borrow::Cow::Owned(out)
}

fn clean_in_place(s: &mut String, max: usize) {
    if let std::borrow::Cow::Owned(c) = clean_text(s, max) {
        *s = c;
    }
}

fn clean_opt(s: &mut Option<String>, max: usize) {
    if let Some(s) = s.as_mut() {
        clean_in_place(s, max);
    }
}

impl Cdr {
    /// The record as its customer sees it: what concerns the carrier side (the carrier, its
    /// address, the numbers sent to it, the cost, the attempt log) left out. The API's
    /// customer tokens, their exports, events and webhooks get only this.
    pub fn for_customer(&self) -> Cdr {
        Cdr {
            carrier_id: None,
            carrier_addr: None,
            caller_out: None,
            callee_out: None,
            cost: None,
            attempt_log: Vec::new(),
            ..self.clone()
        }
    }

    /// Cleans every text field: control characters replaced (see [`clean_text`]) and each
    /// field cut to its bound in [`limits`]. The builder does it to every CDR it returns, so
    /// that what a peer sent can neither make the database refuse the record nor reach a
    /// terminal or a spreadsheet raw.
    pub fn clean(&mut self) {
        use limits::*;
        clean_in_place(&mut self.id, ID);
        clean_in_place(&mut self.call_id, CALL_ID);
        clean_opt(&mut self.carrier_addr, ADDRESS);
        clean_in_place(&mut self.source_addr, ADDRESS);
        clean_in_place(&mut self.caller, NUMBER);
        clean_in_place(&mut self.callee, NUMBER);
        clean_opt(&mut self.caller_out, NUMBER);
        clean_opt(&mut self.callee_out, NUMBER);
        clean_opt(&mut self.user_agent, USER_AGENT);
        clean_in_place(&mut self.final_reason, REASON);
        clean_opt(&mut self.codecs_offered, CODECS);
        clean_opt(&mut self.codecs_answered, CODECS);
        clean_opt(&mut self.caller_e164, NUMBER);
        clean_opt(&mut self.callee_e164, NUMBER);
        for a in &mut self.attempt_log {
            clean_in_place(&mut a.carrier_addr, ADDRESS);
        }
    }

    /// Ring time: the first 18x → the answer, or → the end of a call never answered;
    /// `None` without an 18x.
    pub fn ring_ms(&self) -> Option<i64> {
        self.progress_ms
            .map(|p| (self.answer_ms.unwrap_or(self.end_ms) - p).max(0))
    }

    /// Total duration: the INVITE received → the end.
    pub fn total_ms(&self) -> i64 {
        (self.end_ms - self.invite_ms).max(0)
    }
}

impl CdrBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// The calls in progress, oldest first, a customer's only when `customer` is given, at
    /// most `limit`.
    pub fn live(&self, customer: Option<CustomerId>, limit: usize) -> Vec<CallInProgress> {
        let mut out: Vec<CallInProgress> = self
            .open
            .values()
            .map(|d| &d.cdr)
            .filter(|c| customer.is_none_or(|id| c.customer_id == id))
            .map(|c| CallInProgress {
                call_id: c.call_id.clone(),
                customer_id: c.customer_id,
                carrier_id: c.carrier_id,
                source_addr: c.source_addr.clone(),
                caller: c.caller.clone(),
                callee: c.callee_e164.clone().unwrap_or_else(|| c.callee.clone()),
                started_ms: c.invite_ms,
                progress_ms: c.progress_ms,
                answered_ms: c.answer_ms,
                attempts: c.attempts,
            })
            .collect();
        out.sort_by_key(|c| c.started_ms);
        out.truncate(limit);
        out
    }

    /// Calls started and not yet ended.
    pub fn open_calls(&self) -> usize {
        self.open.len()
    }

    /// Every call in progress as its CDR so far (with the last attempt's start), for a
    /// checkpoint of the write-ahead log.
    pub fn drafts(&self) -> Vec<(CallRef, Cdr, Option<i64>)> {
        let mut out: Vec<_> = self
            .open
            .iter()
            .map(|(call, d)| (*call, d.cdr.clone(), d.attempt_started_ms))
            .collect();
        out.sort_by_key(|(call, _, _)| *call);
        out
    }

    /// Puts back a call in progress from a checkpoint.
    pub fn restore(&mut self, call: CallRef, cdr: Cdr, attempt_started_ms: Option<i64>) {
        self.open.insert(
            call,
            Draft {
                cdr,
                attempt_started_ms,
            },
        );
    }

    /// Ends every call in progress at `at_ms` (the last moment the switch is known to have
    /// been alive), ended by the switch: the calls a crash left open.
    pub fn close_all(&mut self, at_ms: i64, reason: &str) -> Vec<Cdr> {
        let calls: Vec<CallRef> = self.open.keys().copied().collect();
        let mut out = Vec::with_capacity(calls.len());
        for call in calls {
            let answered = self
                .open
                .get(&call)
                .is_some_and(|d| d.cdr.answer_ms.is_some());
            let (code, why) = if answered {
                (200, reason.to_string())
            } else {
                (500, format!("Server Internal Error - {reason}"))
            };
            if let Some(cdr) = self.apply(CallEvent::Ended {
                call,
                at_ms,
                code,
                reason: why,
                hangup: HangupSide::Switch,
                q850: None,
            }) {
                out.push(cdr);
            }
        }
        out.sort_by_key(|c| c.invite_ms);
        out
    }

    /// Applies one event; returns the CDR when the call ends. Events of unknown calls (after
    /// `Ended`, or without `Started`) are ignored.
    pub fn apply(&mut self, event: CallEvent) -> Option<Cdr> {
        match event {
            CallEvent::Started {
                call,
                cdr_id,
                at_ms,
                call_id,
                customer,
                source,
                caller,
                callee,
                user_agent,
                codecs,
            } => {
                let cdr = Cdr {
                    attempt_log: Vec::new(),
                    q850_cause: None,
                    codecs_offered: (!codecs.is_empty()).then(|| codecs.join(",")),
                    codecs_answered: None,
                    id: cdr_id,
                    call_id,
                    customer_id: customer,
                    carrier_id: None,
                    carrier_addr: None,
                    source_addr: source,
                    caller,
                    callee,
                    caller_out: None,
                    callee_out: None,
                    user_agent,
                    invite_ms: at_ms,
                    progress_ms: None,
                    answer_ms: None,
                    end_ms: at_ms,
                    pdd_ms: None,
                    billable_ms: 0,
                    billable_secs: 0,
                    final_code: 0,
                    final_reason: String::new(),
                    hangup: HangupSide::Switch,
                    attempts: 0,
                    caller_e164: None,
                    callee_e164: None,
                    cost: None,
                    price: None,
                };
                self.open.insert(
                    call,
                    Draft {
                        cdr,
                        attempt_started_ms: None,
                    },
                );
                None
            }
            CallEvent::AttemptStarted {
                call,
                carrier,
                carrier_addr,
                caller_out,
                callee_out,
                at_ms,
            } => {
                let d = self.open.get_mut(&call)?;
                d.cdr.attempts += 1;
                d.cdr.attempt_log.push(AttemptRecord {
                    carrier_id: carrier,
                    carrier_addr: carrier_addr.clone(),
                    started_ms: at_ms,
                    code: None,
                    pdd_ms: None,
                });
                d.cdr.carrier_id = Some(carrier);
                d.cdr.carrier_addr = Some(carrier_addr);
                d.cdr.caller_out = Some(caller_out);
                d.cdr.callee_out = Some(callee_out);
                d.cdr.progress_ms = None;
                d.cdr.pdd_ms = None;
                d.attempt_started_ms = Some(at_ms);
                None
            }
            CallEvent::Numbers {
                call,
                caller,
                callee,
            } => {
                let d = self.open.get_mut(&call)?;
                d.cdr.caller_e164 = Some(caller);
                d.cdr.callee_e164 = Some(callee);
                None
            }
            CallEvent::Progress { call, at_ms } => {
                let d = self.open.get_mut(&call)?;
                if d.cdr.progress_ms.is_none() {
                    d.cdr.progress_ms = Some(at_ms);
                    d.cdr.pdd_ms = d.attempt_started_ms.map(|s| (at_ms - s).max(0));
                    if let Some(a) = d.cdr.attempt_log.last_mut() {
                        a.pdd_ms = d.cdr.pdd_ms;
                    }
                }
                None
            }
            CallEvent::AttemptEnded { call, code } => {
                let d = self.open.get_mut(&call)?;
                if let Some(a) = d.cdr.attempt_log.last_mut().filter(|a| a.code.is_none()) {
                    a.code = Some(code);
                }
                None
            }
            CallEvent::Answered {
                call,
                at_ms,
                codecs,
            } => {
                let d = self.open.get_mut(&call)?;
                if d.cdr.answer_ms.is_none() {
                    d.cdr.answer_ms = Some(at_ms);
                    d.cdr.codecs_answered = (!codecs.is_empty()).then(|| codecs.join(","));
                }
                None
            }
            CallEvent::Ended {
                call,
                at_ms,
                code,
                reason,
                hangup,
                q850,
            } => {
                let Draft { mut cdr, .. } = self.open.remove(&call)?;
                cdr.q850_cause = q850;
                if let Some(a) = cdr.attempt_log.last_mut().filter(|a| a.code.is_none()) {
                    a.code = Some(code);
                }
                cdr.end_ms = at_ms.max(cdr.invite_ms);
                cdr.billable_ms = cdr.answer_ms.map_or(0, |a| (cdr.end_ms - a).max(0));
                cdr.billable_secs = (cdr.billable_ms + 999) / 1000;
                cdr.final_code = code;
                cdr.final_reason = reason;
                cdr.hangup = hangup;
                cdr.clean();
                Some(cdr)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(call: u64, at: i64) -> CallEvent {
        CallEvent::Started {
            call: CallRef(call),
            cdr_id: format!("cdr-{call}"),
            at_ms: at,
            call_id: "abc@h".into(),
            customer: CustomerId(1),
            source: "192.0.2.1:5060".into(),
            caller: "100".into(),
            callee: "200".into(),
            user_agent: None,
            codecs: vec!["PCMU".into(), "PCMA".into()],
        }
    }

    /// What a peer sends goes into the CDR cleaned: NUL (PostgreSQL refuses it), ESC
    /// sequences, CR/LF and bidi overrides replaced, and every field bounded.
    #[test]
    fn text_fields_are_cleaned_and_bounded() {
        let mut b = CdrBuilder::new();
        let CallEvent::Started {
            call,
            cdr_id,
            at_ms,
            customer,
            source,
            callee,
            codecs,
            ..
        } = started(1, 1_000)
        else {
            unreachable!()
        };
        b.apply(CallEvent::Started {
            call,
            cdr_id,
            at_ms,
            call_id: "c\0id@h".into(),
            customer,
            source,
            caller: "\0\u{0}1\u{0}2".into(),
            callee,
            user_agent: Some(format!(
                "\u{1b}[2J\u{1b}]0;pwned\u{7}UA\r\n{}",
                "é".repeat(400)
            )),
            codecs,
        });
        b.apply(CallEvent::AttemptStarted {
            call,
            carrier: CarrierId(1),
            carrier_addr: "198.51.100.1:5060".into(),
            caller_out: "1\u{202E}2".into(),
            callee_out: "x".repeat(1000),
            at_ms: 1_100,
        });
        let cdr = b
            .apply(CallEvent::Ended {
                call,
                at_ms: 2_000,
                code: 486,
                reason: "Busy\0Here\u{85}".into(),
                hangup: HangupSide::Callee,
                q850: None,
            })
            .unwrap();
        assert_eq!(cdr.caller, "\u{FFFD}\u{FFFD}1\u{FFFD}2");
        assert_eq!(cdr.call_id, "c\u{FFFD}id@h");
        assert_eq!(cdr.final_reason, "Busy\u{FFFD}Here\u{FFFD}");
        assert_eq!(cdr.caller_out.as_deref(), Some("1\u{FFFD}2"));
        assert_eq!(cdr.callee_out.as_ref().unwrap().len(), limits::NUMBER);
        let ua = cdr.user_agent.unwrap();
        assert!(
            ua.starts_with("\u{FFFD}[2J\u{FFFD}]0;pwned\u{FFFD}UA\u{FFFD}\u{FFFD}é"),
            "{ua:?}"
        );
        assert!(ua.len() <= limits::USER_AGENT && ua.len() > limits::USER_AGENT - 4);
        assert!(!ua.chars().any(char::is_control));
        // Clean text is left as it is.
        assert_eq!(clean_text("+4930 ünïcode", 64), "+4930 ünïcode");
        assert!(matches!(clean_text("ok", 2), std::borrow::Cow::Borrowed(_)));
        assert_eq!(clean_text("ééé", 5), "éé", "cut on a character boundary");
    }

    fn attempt(call: u64, carrier: i64, at: i64) -> CallEvent {
        CallEvent::AttemptStarted {
            call: CallRef(call),
            carrier: CarrierId(carrier),
            carrier_addr: format!("198.51.100.{carrier}:5060"),
            caller_out: "100".into(),
            callee_out: "200".into(),
            at_ms: at,
        }
    }

    #[test]
    fn answered_call_after_failover() {
        let mut b = CdrBuilder::new();
        assert!(b.apply(started(1, 1_000)).is_none());
        b.apply(attempt(1, 1, 1_002));
        b.apply(CallEvent::Progress {
            call: CallRef(1),
            at_ms: 1_050,
        });
        b.apply(CallEvent::AttemptEnded {
            call: CallRef(1),
            code: 503,
        });
        b.apply(attempt(1, 2, 1_100));
        b.apply(CallEvent::Progress {
            call: CallRef(1),
            at_ms: 1_180,
        });
        b.apply(CallEvent::Progress {
            call: CallRef(1),
            at_ms: 1_190,
        });
        b.apply(CallEvent::Answered {
            call: CallRef(1),
            at_ms: 2_000,
            codecs: vec!["PCMA".into()],
        });
        b.apply(CallEvent::Answered {
            call: CallRef(1),
            at_ms: 3_000,
            codecs: vec!["PCMU".into()],
        });
        let cdr = b
            .apply(CallEvent::Ended {
                call: CallRef(1),
                at_ms: 12_001,
                code: 200,
                reason: "OK".into(),
                hangup: HangupSide::Callee,
                q850: Some(16),
            })
            .unwrap();
        assert_eq!(cdr.attempts, 2);
        let log: Vec<(i64, Option<u16>, Option<i64>)> = cdr
            .attempt_log
            .iter()
            .map(|a| (a.carrier_id.0, a.code, a.pdd_ms))
            .collect();
        assert_eq!(
            log,
            vec![(1, Some(503), Some(48)), (2, Some(200), Some(80))]
        );
        assert_eq!(cdr.q850_cause, Some(16));
        assert_eq!(cdr.codecs_offered.as_deref(), Some("PCMU,PCMA"));
        assert_eq!(
            cdr.codecs_answered.as_deref(),
            Some("PCMA"),
            "the first answer's codecs"
        );
        assert_eq!(cdr.carrier_id, Some(CarrierId(2)));
        assert_eq!(cdr.progress_ms, Some(1_180));
        assert_eq!(cdr.pdd_ms, Some(80));
        assert_eq!(
            cdr.answer_ms,
            Some(2_000),
            "only the first 2xx sets the answer time"
        );
        assert_eq!(cdr.billable_ms, 10_001);
        assert_eq!(cdr.billable_secs, 11);
        assert_eq!(cdr.hangup, HangupSide::Callee);
        assert_eq!(b.open_calls(), 0);
    }

    #[test]
    fn a_customer_sees_its_call_but_not_the_carrier_side() {
        let mut b = CdrBuilder::new();
        b.apply(started(3, 1_000));
        b.apply(attempt(3, 9, 1_001));
        let mut cdr = b
            .apply(CallEvent::Ended {
                call: CallRef(3),
                at_ms: 2_000,
                code: 486,
                reason: "Busy Here".into(),
                hangup: HangupSide::Callee,
                q850: None,
            })
            .unwrap();
        cdr.caller_out = Some("0044".into());
        cdr.callee_out = Some("99#441".into());
        cdr.cost = Some(Money(120_000));
        cdr.price = Some(Money(150_000));
        let seen = cdr.for_customer();
        assert_eq!(seen.carrier_id, None);
        assert_eq!(seen.carrier_addr, None);
        assert_eq!((seen.caller_out, seen.callee_out), (None, None));
        assert_eq!(seen.cost, None);
        assert!(seen.attempt_log.is_empty());
        // What the customer's own side of the call was stays.
        assert_eq!(seen.price, cdr.price);
        assert_eq!(seen.attempts, 1);
        assert_eq!((seen.final_code, seen.callee), (486, cdr.callee.clone()));
        assert_eq!(seen.source_addr, cdr.source_addr);
    }

    #[test]
    fn unanswered_call_bills_nothing() {
        let mut b = CdrBuilder::new();
        b.apply(started(7, 10));
        b.apply(attempt(7, 1, 11));
        let cdr = b
            .apply(CallEvent::Ended {
                call: CallRef(7),
                at_ms: 500,
                code: 486,
                reason: "Busy Here".into(),
                hangup: HangupSide::Callee,
                q850: None,
            })
            .unwrap();
        assert_eq!(
            (
                cdr.billable_ms,
                cdr.billable_secs,
                cdr.answer_ms,
                cdr.pdd_ms
            ),
            (0, 0, None, None)
        );
        assert_eq!(cdr.final_code, 486);
        assert_eq!(
            (cdr.ring_ms(), cdr.total_ms()),
            (None, 490),
            "no 18x: no ring time"
        );
        // Ringing from 100 ms until the carrier gave up at 400 ms: 300 ms of ring time.
        b.apply(started(8, 0));
        b.apply(attempt(8, 1, 1));
        b.apply(CallEvent::Progress {
            call: CallRef(8),
            at_ms: 100,
        });
        let rang = b
            .apply(CallEvent::Ended {
                call: CallRef(8),
                at_ms: 400,
                code: 480,
                reason: "Temporarily Unavailable".into(),
                hangup: HangupSide::Callee,
                q850: None,
            })
            .unwrap();
        assert_eq!((rang.ring_ms(), rang.total_ms()), (Some(300), 400));
        assert!(
            b.apply(CallEvent::Progress {
                call: CallRef(7),
                at_ms: 600
            })
            .is_none()
        );
    }
}
