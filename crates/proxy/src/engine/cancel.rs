//! CANCEL: from the customer (only from the INVITE's source), to the carrier of the
//! current attempt, and the setup aborted when the switch stops.

use std::time::Instant;

use domain::{CallRef, HangupSide};
use sip_message::{Message, build, parse_datagram};
use sip_transaction::ServerTxnId;

use super::call::{Cancel, Failure};
use super::dialog::Phase;
use super::{ClientRole, Engine, wire};
use domain::Reject;

impl Engine {
    /// CANCEL from the customer: 200 to the CANCEL, 487 to the INVITE, CANCEL to the carrier.
    pub(super) fn handle_cancel(
        &mut self,
        now: Instant,
        invite: Option<ServerTxnId>,
        cancel: ServerTxnId,
        msg: &Message,
    ) {
        let cref = invite.and_then(|id| self.by_server.get(&id).copied());
        let tag = cref
            .and_then(|c| self.calls.get(&c))
            .map(|c| c.to_tag.clone())
            .unwrap_or_else(wire::tag);
        let source = self.txns.server_peer(cancel).map(|p| p.addr.into());
        let ok = build::response_from(msg.headers(), source, 200, "OK", Some(tag.as_bytes()), &[]);
        let _ = self.txns.respond(now, cancel, ok);
        let Some(cref) = cref else { return };
        let Some(call) = self.calls.get_mut(&cref) else {
            return;
        };
        if !matches!(call.phase, Phase::Setup) {
            return;
        }
        if let Some(a) = call.attempt.as_mut() {
            a.cancel = Cancel::Wanted;
        }
        let number = call.attempt.as_ref().map(|a| a.number);
        self.fail_call(
            now,
            cref,
            Failure::local(Reject::Cancelled),
            HangupSide::Caller,
        );
        if let Some(number) = number {
            self.send_cancel(now, cref, number);
        }
    }

    /// Sends CANCEL for an attempt once a provisional response allows it.
    pub(super) fn send_cancel(&mut self, now: Instant, cref: CallRef, number: u32) {
        let Some(call) = self.calls.get_mut(&cref) else {
            return;
        };
        let Some(attempt) = call.attempt_mut(number) else {
            return;
        };
        if attempt.cancel == Cancel::Sent {
            return;
        }
        if !attempt.responded {
            attempt.cancel = Cancel::Wanted;
            return;
        }
        attempt.cancel = Cancel::Sent;
        let Some(request) = attempt.request.as_ref() else {
            return;
        };
        let (peer, cancel) = (attempt.peer, build::cancel(request, None));
        if let Ok(bytes) = cancel
            && let Ok(msg) = parse_datagram(bytes)
            && let Ok(id) = self.txns.send_request(now, msg, peer, peer.reliable())
        {
            self.track(id, ClientRole::Local);
        }
    }

    /// Shutdown of a call still being set up: CANCEL to the carrier, 503 to the customer.
    pub(super) fn abort_setup(&mut self, now: Instant, cref: CallRef) {
        let number = self
            .calls
            .get(&cref)
            .and_then(|c| c.attempt.as_ref())
            .map(|a| a.number);
        self.fail_call(
            now,
            cref,
            Failure::Local(Reject::ShuttingDown),
            HangupSide::Switch,
        );
        if let Some(number) = number {
            self.send_cancel(now, cref, number);
        }
    }
}
