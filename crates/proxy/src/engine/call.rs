//! A call's state: its attempts, its phase, what it holds (leases, the first increment),
//! how it failed; and how a response to its INVITE is rewritten for the customer. What
//! happens to a call is in `setup.rs`, `attempts.rs`, `cancel.rs`, `end.rs` and
//! `dialog.rs`.

use std::time::Duration;

use bytes::Bytes;
use domain::{CallRef, Carrier, CarrierId, CustomerId};
use sip_message::Message;
use sip_transaction::{ClientTxnId, ServerTxnId};

use super::dialog::Phase;
use super::{Engine, wire};
use crate::transport::Peer;
use cluster::Lease;
use domain::Reject;
use domain::routing;

/// One INVITE sent to one carrier.
#[derive(Debug)]
pub(super) struct Attempt {
    pub(super) number: u32,
    pub(super) client: ClientTxnId,
    pub(super) carrier: CarrierId,
    pub(super) peer: Peer,
    /// The INVITE as sent (CANCEL and ACK are built from it); dropped once the attempt has
    /// its final response, so that answered and ended calls keep little memory.
    pub(super) request: Option<Message>,
    /// Any response arrived (stops the first-response timer; allows CANCEL).
    pub(super) responded: bool,
    /// An 18x arrived.
    pub(super) progressed: bool,
    /// A final response arrived.
    pub(super) finished: bool,
    /// This carrier's ring timeout (or the switch's).
    pub(super) ring_timeout: Duration,
    /// CANCEL wanted (the call was cancelled or the attempt abandoned) and whether it went.
    pub(super) cancel: Cancel,
    /// The carrier hides its topology from customers.
    pub(super) hide: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cancel {
    No,
    /// Send CANCEL as soon as a provisional response allows it (RFC 3261 §9.1).
    Wanted,
    Sent,
}

/// Why the last attempt failed, to tell the customer when no carrier is left.
#[derive(Debug)]
pub(super) enum Failure {
    /// A carrier's final response: relayed as it is.
    Response(Message),
    /// The switch's own failure (a timeout, a transport error, no carrier left): answered
    /// as the reply table says.
    Local(Reject),
}

impl Failure {
    /// The switch's own failure, as the reply table says.
    pub(super) fn local(reject: Reject) -> Failure {
        Failure::Local(reject)
    }
}

#[derive(Debug)]
pub(super) struct Call {
    pub(super) server: ServerTxnId,
    /// Where the INVITE came from.
    pub(super) source: Peer,
    /// The INVITE as received; dropped once the call is answered or ended.
    pub(super) invite: Option<Message>,
    pub(super) customer: CustomerId,
    /// The CDR's id (a charge held for the balance is keyed by it).
    pub(super) cdr_id: String,
    /// When the INVITE arrived (epoch ms): rates in force then apply.
    pub(super) started_ms: i64,
    /// The To tag of responses the switch writes itself for this call.
    pub(super) to_tag: String,
    pub(super) routes: Vec<Carrier>,
    pub(super) next_route: usize,
    pub(super) attempt: Option<Box<Attempt>>,
    /// Attempts given up for a later one; their late responses get CANCEL or ACK+BYE.
    pub(super) abandoned: Vec<Attempt>,
    pub(super) last_failure: Option<Box<Failure>>,
    /// The attempt whose 2xx answered the call.
    pub(super) answered_by: Option<u32>,
    /// INVITEs sent to carriers (the attempt cap counts these, not skipped carriers).
    pub(super) sent: u32,
    /// The dialled number in E.164 (normalised), for carriers' prefix rules and profiles.
    pub(super) destination: String,
    /// The CLI in E.164 (normalised or forced), or as received when it is not a number.
    pub(super) caller: String,
    /// The switch's and the customer's channels, held until the call ends.
    pub(super) leases: Vec<Lease>,
    /// The current attempt's carrier channel.
    pub(super) carrier_lease: Option<Lease>,
    /// The call's timers, removed when it is forgotten.
    pub(super) timers: Vec<super::TimerKey>,
    /// The customer's identity headers go to carriers.
    pub(super) trusted: bool,
    /// The customer hides its topology: its Via values, put back on the responses it gets.
    pub(super) hidden_vias: Option<Vec<Bytes>>,
    pub(super) phase: Phase,
}

impl Call {
    pub(super) fn is_ended(&self) -> bool {
        matches!(self.phase, Phase::Ended(_))
    }

    pub(super) fn carrier(&self) -> Option<CarrierId> {
        self.attempt.as_ref().map(|a| a.carrier)
    }

    /// Drops what an answered or ended call no longer needs: the INVITE, the route list, and
    /// the requests of attempts that have their final response.
    pub(super) fn shed(&mut self) {
        self.invite = None;
        self.routes = Vec::new();
        for a in self
            .attempt
            .as_deref_mut()
            .into_iter()
            .chain(self.abandoned.iter_mut())
        {
            if a.finished {
                a.request = None;
            }
        }
    }

    pub(super) fn attempt_mut(&mut self, number: u32) -> Option<&mut Attempt> {
        if self.attempt.as_ref().is_some_and(|a| a.number == number) {
            return self.attempt.as_deref_mut();
        }
        self.abandoned.iter_mut().find(|a| a.number == number)
    }
}

/// Headers that assert who is calling: from a customer that is not trusted they are
/// dropped, or a forced CLI is bypassed through them.
pub(super) const IDENTITY_HEADERS: &[&str] = &[
    "P-Asserted-Identity",
    "P-Preferred-Identity",
    "Remote-Party-ID",
    "Privacy",
    "Diversion",
    "History-Info",
];

pub(super) fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// What admission gives a call it lets through.
pub(super) struct Admitted {
    pub(super) leases: Vec<Lease>,
    pub(super) numbers: routing::Numbers,
    pub(super) routes: Vec<Carrier>,
    /// The first increment (minimum and connection fee) a billed customer's call holds
    /// against the balance until it is answered or ends.
    pub(super) first: Option<domain::Money>,
}

/// Why an attempt's INVITE could not be built for a carrier.
#[derive(Debug)]
pub(super) enum Unsendable {
    /// The offer has no codec the carrier takes (SDP allow-list).
    NoCodec,
    /// The inbound INVITE cannot take the edits (already checked by sanity: not expected).
    Edit,
}

impl From<sip_message::edit::EditError> for Unsendable {
    fn from(_: sip_message::edit::EditError) -> Self {
        Unsendable::Edit
    }
}

/// Failover-class final responses: 408, 5xx, 6xx. Other 4xx (486, 480, 487...) go back to
/// the customer.
pub(super) fn fails_over(status: u16) -> bool {
    status == 408 || status >= 500
}

impl Engine {
    /// How a response to the INVITE of `cref` (attempt `number`) is rewritten for the
    /// customer: Contact to us (`contact`), its hidden Vias back, the carrier's topology
    /// stripped when it hides it.
    pub(super) fn back_for_invite(&self, cref: CallRef, number: u32, contact: bool) -> super::Back {
        let Some(call) = self.calls.get(&cref) else {
            return super::Back::default();
        };
        let hides = call
            .attempt
            .as_deref()
            .filter(|a| a.number == number)
            .or_else(|| call.abandoned.iter().find(|a| a.number == number))
            .filter(|a| a.hide)
            .map(|a| {
                Bytes::from(wire::record_route(
                    self.advertised(a.peer.transport),
                    a.peer.transport,
                ))
            });
        super::Back {
            contact: contact.then_some(call.source.transport),
            vias: call.hidden_vias.clone(),
            strip: hides,
        }
    }
}
