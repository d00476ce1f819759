//! The end of a call: failed before an answer, ended after one, and forgotten once late
//! responses to its attempts can no longer come.

use std::time::{Duration, Instant};

use domain::{CallEvent, CallRef, HangupSide};
use sip_message::build;

use super::call::{Failure, lossy};
use super::dialog::Phase;
use super::{CallTimer, Engine};

impl Engine {
    /// Ends an unanswered call with a final response to the customer.
    pub(super) fn fail_call(
        &mut self,
        now: Instant,
        cref: CallRef,
        failure: Failure,
        hangup: HangupSide,
    ) {
        let Some(call) = self.calls.get(&cref) else {
            return;
        };
        let server = call.server;
        let (code, reason, q850) = match &failure {
            Failure::Response(m) => (
                m.status().unwrap_or(500),
                lossy(m.reason_phrase().unwrap_or_default()),
                m.headers().q850_cause(),
            ),
            Failure::Local(reject) => {
                let (code, reason) = self.refuse(*reject);
                (code, reason.to_string(), None)
            }
        };
        match failure {
            Failure::Response(m) => {
                let number = call.attempt.as_ref().map_or(0, |a| a.number);
                let back = self.back_for_invite(cref, number, false);
                self.relay_response(now, server, &m, back)
            }
            Failure::Local(_) => {
                if let Some(invite) = call.invite.as_ref() {
                    let tag = call.to_tag.as_bytes();
                    let source = self.txns.server_peer(server).map(|p| p.addr.into());
                    let bytes = build::response_from(
                        invite.headers(),
                        source,
                        code,
                        &reason,
                        Some(tag),
                        &[],
                    );
                    let _ = self.txns.respond(now, server, bytes);
                }
            }
        }
        self.end_call(now, cref, (code, reason, q850), hangup);
    }

    /// Marks a call ended at `now` (the CDR's end: for a hang-up, when it began), with its
    /// final code, reason and Q.850 cause; sends its `Ended` event and frees its place in
    /// the status and its channels.
    pub(super) fn end_call(
        &mut self,
        now: Instant,
        cref: CallRef,
        (code, reason, q850): (u16, String, Option<u16>),
        hangup: HangupSide,
    ) {
        let Some(call) = self.calls.get_mut(&cref) else {
            return;
        };
        if call.is_ended() {
            return;
        }
        let phase = std::mem::replace(&mut call.phase, Phase::Ended(None));
        match phase {
            Phase::Confirmed(d) => call.phase = Phase::Ended(Some(d)),
            Phase::Setup => self.in_setup = self.in_setup.saturating_sub(1),
            Phase::Ended(_) => {}
        }
        call.shed();
        // Every channel goes back, whatever ended the call.
        call.leases.clear();
        call.carrier_lease = None;
        let (customer, carrier) = (call.customer, call.carrier());
        let end_ms = self.clock.epoch_ms(now);
        self.release_hold(cref);
        self.minutes.end(cref.0, end_ms);
        // Before the end event: accounting's commit of the CDR must find the charge.
        self.charge_ended(now, customer, cref, end_ms);
        self.status.send_modify(|s| {
            s.call_ended(customer);
            s.carrier_changed(carrier, None);
        });
        self.emit(CallEvent::Ended {
            call: cref,
            at_ms: self.clock.epoch_ms(now),
            code,
            reason,
            hangup,
            q850,
        });
        let linger = self.txns.config().sixty_four_t1() + Duration::from_secs(1);
        self.schedule(now + linger, CallTimer::Forget { call: cref });
    }

    pub(super) fn forget(&mut self, cref: CallRef) {
        if let Some(call) = self.calls.remove(&cref) {
            self.by_server.remove(&call.server);
            for key in &call.timers {
                self.timers.remove(*key);
            }
            if let Phase::Ended(Some(d)) = &call.phase {
                self.dialogs.remove(&d.key());
            }
            for a in call
                .attempt
                .as_deref()
                .into_iter()
                .chain(call.abandoned.iter())
            {
                self.by_client.remove(&a.client);
                // Timer C: an attempt still in Proceeding this long after its call ended
                // (a carrier that never answered the CANCEL) is dropped.
                self.txns
                    .terminate(sip_transaction::TxnId::Client(a.client));
            }
        }
    }
}
