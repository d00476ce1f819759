//! Call events: the proxy emits a [`CallEvent`] at every state change of a call, and
//! accounting turns them into CDRs (`cdr.rs`). Times are epoch milliseconds taken from a
//! monotonic clock by the proxy.

use crate::invalid::Invalid;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::party::{CarrierId, CustomerId};

/// The proxy's number for a call, unique within one run of the switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CallRef(pub u64);

/// Who ended the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HangupSide {
    /// The customer: BYE or CANCEL from the caller.
    Caller,
    /// The carrier: BYE from the callee, or a final failure reply.
    Callee,
    /// The switch: a refusal, max duration, shutdown, or no carrier answered.
    Switch,
}

impl HangupSide {
    pub fn as_str(self) -> &'static str {
        match self {
            HangupSide::Caller => "caller",
            HangupSide::Callee => "callee",
            HangupSide::Switch => "switch",
        }
    }
}

impl fmt::Display for HangupSide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HangupSide {
    type Err = Invalid;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "caller" => Ok(HangupSide::Caller),
            "callee" => Ok(HangupSide::Callee),
            "switch" => Ok(HangupSide::Switch),
            other => Err(format!("unknown hangup side {other:?}").into()),
        }
    }
}

/// A state change of a call. Each call emits `Started` first and `Ended` last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum CallEvent {
    /// An INVITE from an identified customer opened a call.
    Started {
        call: CallRef,
        /// The CDR's id (time-ordered, unique across runs and nodes).
        cdr_id: String,
        at_ms: i64,
        call_id: String,
        customer: CustomerId,
        /// `ip:port` the INVITE came from.
        source: String,
        /// Caller (From user) and callee (Request-URI user) as received.
        caller: String,
        callee: String,
        user_agent: Option<String>,
        /// Audio codecs of the customer's SDP offer, in its order.
        #[serde(default)]
        codecs: Vec<String>,
    },
    /// An INVITE left for a carrier (each failover is a new attempt).
    AttemptStarted {
        call: CallRef,
        carrier: CarrierId,
        /// `ip:port` the INVITE was sent to.
        carrier_addr: String,
        caller_out: String,
        callee_out: String,
        at_ms: i64,
    },
    /// The current attempt ended: its final response (or the switch's own code for a
    /// timeout or transport error).
    AttemptEnded { call: CallRef, code: u16 },
    /// Admission read the numbers: the destination and CLI in E.164 (what routing and
    /// rating use).
    Numbers {
        call: CallRef,
        caller: String,
        callee: String,
    },
    /// The current attempt's first 18x.
    Progress { call: CallRef, at_ms: i64 },
    /// The initial INVITE's first 2xx: the call is answered.
    Answered {
        call: CallRef,
        at_ms: i64,
        /// Audio codecs of the carrier's SDP answer.
        #[serde(default)]
        codecs: Vec<String>,
    },
    /// The call ended: final failure, CANCEL, BYE from either side, or the switch.
    Ended {
        call: CallRef,
        at_ms: i64,
        code: u16,
        reason: String,
        hangup: HangupSide,
        /// The Q.850 cause of a Reason header on the BYE, CANCEL or final response that
        /// ended the call.
        #[serde(default)]
        q850: Option<u16>,
    },
}

impl CallEvent {
    pub fn call(&self) -> CallRef {
        match self {
            CallEvent::Started { call, .. }
            | CallEvent::AttemptStarted { call, .. }
            | CallEvent::Numbers { call, .. }
            | CallEvent::AttemptEnded { call, .. }
            | CallEvent::Progress { call, .. }
            | CallEvent::Answered { call, .. }
            | CallEvent::Ended { call, .. } => *call,
        }
    }
}
