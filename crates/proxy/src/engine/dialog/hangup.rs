//! Hang-ups inside a dialog: the switch's own (max duration, balance, reaper, no ACK,
//! shutdown) and a BYE the far side refused. The switch sends its own BYE to each side,
//! retried with backoff until that side settles; the call keeps its channels until then.

use super::*;

impl Engine {
    /// Ends an answered call from the switch: BYE to both sides, retried until each side
    /// settles; the CDR ends now.
    pub(in crate::engine) fn hang_up(&mut self, now: Instant, cref: CallRef, reason: &str) {
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
    pub(in crate::engine) fn send_own_bye(
        &mut self,
        now: Instant,
        cref: CallRef,
        to: Side,
        n: u32,
    ) {
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
    pub(in crate::engine) fn own_bye_response(
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
    pub(in crate::engine) fn bye_failed(&mut self, now: Instant, cref: CallRef, to: Side, n: u32) {
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
    pub(in crate::engine) fn bye_retry(&mut self, now: Instant, cref: CallRef, to: Side, n: u32) {
        let due = matches!(
            self.calls.get(&cref).map(|c| &c.phase),
            Some(Phase::Confirmed(d)) if d.ending.as_ref().is_some_and(|e| e.legs[to.index()] == Leg::Bye(n - 1))
        );
        if due {
            self.send_own_bye(now, cref, to, n);
        }
    }

    /// One side of a hang-up is done; when both are, the call ends (at the hang-up moment).
    pub(super) fn leg_settled(&mut self, now: Instant, cref: CallRef, side: Side) {
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

    pub(in crate::engine) fn max_duration(&mut self, now: Instant, cref: CallRef) {
        self.hang_up(now, cref, "Max Duration");
    }

    /// Shutdown after the drain period: BYE to answered calls, a final reply to the others.
    pub(in crate::engine) fn hang_up_all(&mut self, now: Instant) {
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
    pub(in crate::engine) fn force_end_all(&mut self, now: Instant) {
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
    pub(in crate::engine) fn ack_and_bye(
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
}
