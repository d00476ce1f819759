//! Requests and responses inside a dialog the switch holds: relayed statefully to the
//! other side along the dialog's own route (never one the message names), the ACK of a 2xx
//! relayed hop by hop, stray responses forwarded by their Via, and Timer C for relayed
//! re-INVITEs.

use super::*;

impl Engine {
    /// A request of a dialog the switch holds (checked by [`Self::dialog_of`]), from `side`:
    /// relayed statefully to the other side along the dialog's route.
    pub(in crate::engine) fn relay_in_dialog(
        &mut self,
        now: Instant,
        server: ServerTxnId,
        msg: Message,
        peer: Peer,
        (cref, side): (CallRef, Side),
    ) {
        let method = msg.method();
        let Some(call) = self.calls.get_mut(&cref) else {
            return;
        };
        let Phase::Confirmed(d) = &mut call.phase else {
            return;
        };
        if d.ending.is_some() {
            // Hanging up already: a BYE from the other side crossed ours.
            if method == Some(Method::Bye) {
                self.reply(now, server, &msg, 200, "OK", &[]);
            } else {
                self.reply(
                    now,
                    server,
                    &msg,
                    481,
                    "Call/Transaction Does Not Exist",
                    &[],
                );
            }
            return;
        }
        let seq = msg.headers().cseq().map_or(0, |c| c.seq);
        if matches!(method, Some(Method::Invite | Method::Update)) {
            d.refreshed = now;
            if let Some(se) = session_interval(&msg) {
                d.session_expires = Some(se);
            }
            // A target refresh (RFC 3261 §12.2.2): the sender's new Contact.
            d.set_target(side, contact_uri(&msg));
        }
        match side {
            Side::Caller => d.caller_cseq = d.caller_cseq.max(seq),
            Side::Callee => d.callee_cseq = d.callee_cseq.max(seq),
        }
        let to = side.other();
        let (target, routes) = (d.target(to), d.routes(to).to_vec());
        let hop = Hop {
            peer: d.peer(to),
            request_uri: &target,
            routes: &routes,
        };
        let call_id = d.call_id();
        let hide = d.hide[side.index()];
        let branch = self.branches.new_branch(&call_id);
        let Some(out) = self.forward_request(&msg, peer, &hop, &branch, hide) else {
            self.reply(now, server, &msg, 400, "Bad Request", &[]);
            return;
        };
        let q850 = msg.headers().q850_cause();
        let to_peer = hop.peer;
        let client = match self
            .txns
            .send_request(now, out, to_peer, to_peer.reliable())
        {
            Ok(id) => id,
            Err(e) => {
                debug!(error = %e, "in-dialog request not relayed");
                self.reply(now, server, &msg, 500, "Server Internal Error", &[]);
                return;
            }
        };
        let bye = method == Some(Method::Bye);
        self.track(
            client,
            ClientRole::Relay {
                server,
                call: cref,
                from: side,
                bye,
            },
        );
        self.relayed.insert(server, msg);
        if method == Some(Method::Invite) {
            self.schedule(now + TIMER_C, CallTimer::TimerC { client });
        }
        if bye && let Some(Phase::Confirmed(d)) = self.calls.get_mut(&cref).map(|c| &mut c.phase) {
            let mut legs = [Leg::Settled; 2];
            legs[to.index()] = Leg::Relayed;
            d.ending = Some(Ending {
                at: now,
                side: side.hangup(),
                reason: "OK".to_string(),
                q850,
                legs,
            });
        }
    }

    /// A response to a relayed in-dialog request: back to the sender (our Via off, a
    /// Contact rewritten to us). A BYE's final response settles the far side; one that
    /// refuses it is answered by the switch and replaced by its own BYE.
    pub(in crate::engine) fn relayed_response(
        &mut self,
        now: Instant,
        (server, cref, from, bye): (ServerTxnId, CallRef, Side, bool),
        msg: &Message,
    ) {
        let Some(status) = msg.status() else { return };
        let back = self.calls.get_mut(&cref).and_then(|c| match &mut c.phase {
            Phase::Confirmed(d) => {
                if (200..300).contains(&status) {
                    // The responder's target refresh (2xx to a re-INVITE or UPDATE).
                    d.set_target(from.other(), contact_uri(msg));
                }
                Some((d.peer(from).transport, d.hide, d.our_rr.clone()))
            }
            _ => None,
        });
        let back = match back {
            Some((t, hide, our_rr)) => crate::engine::Back {
                contact: Some(t),
                vias: hide[from.index()]
                    .then(|| self.relayed.get(&server).map(wire::via_values))
                    .flatten(),
                strip: hide[from.other().index()].then_some(our_rr),
            },
            None => crate::engine::Back::default(),
        };
        if !bye || status < 200 {
            self.relay_response(now, server, msg, back);
            return;
        }
        if settles(status) {
            self.relay_response(now, server, msg, back);
            self.leg_settled(now, cref, from.other());
        } else {
            // The far side did not take the BYE: the sender's hang-up stands (answered by
            // the switch), and the switch hangs up the far side itself.
            warn!(
                call = cref.0,
                status, "relayed BYE refused: the switch sends its own"
            );
            if let Some(req) = self.relayed.remove(&server) {
                self.reply(now, server, &req, 200, "OK", &[]);
            }
            self.send_own_bye(now, cref, from.other(), 1);
        }
    }

    /// A relayed in-dialog request got no final response (Timer F) or could not be sent.
    pub(in crate::engine) fn relay_failed(
        &mut self,
        now: Instant,
        (server, cref, from, bye): (ServerTxnId, CallRef, Side, bool),
        timeout: bool,
    ) {
        let (status, reason) = if timeout {
            (408, "Request Timeout")
        } else {
            (503, "Service Unavailable")
        };
        if let Some(req) = self.relayed.remove(&server) {
            let status = if bye { 200 } else { status };
            let reason = if bye { "OK" } else { reason };
            self.reply(now, server, &req, status, reason, &[]);
        }
        if !bye {
            return;
        }
        if timeout {
            // No answer at all: the far side is gone.
            self.leg_settled(now, cref, from.other());
        } else {
            self.send_own_bye(now, cref, from.other(), 1);
        }
    }

    /// The ACK of a 2xx: relayed statelessly along the dialog's route (it has no
    /// transaction), only for a call the switch holds or recently held and only from its
    /// caller (`dialog`: what [`Self::dialog_of`] found for it).
    pub(in crate::engine) fn relay_ack(
        &mut self,
        msg: Message,
        peer: Peer,
        dialog: Option<(CallRef, Side)>,
    ) {
        let Some((cref, side)) = dialog else {
            self.guards.count(Counter::StrayDropped);
            debug!(from = %peer.addr, "ACK for no dialog of the switch: dropped");
            return;
        };
        if side != Side::Caller {
            self.guards.count(Counter::StrayDropped);
            return;
        }
        let Some(call) = self.calls.get_mut(&cref) else {
            return;
        };
        let d = match &mut call.phase {
            Phase::Confirmed(d) => {
                d.acked = true;
                &**d
            }
            Phase::Ended(Some(d)) => &**d,
            _ => return,
        };
        let (target, routes) = (d.target(Side::Callee), d.routes(Side::Callee).to_vec());
        let hop = Hop {
            peer: d.callee_peer,
            request_uri: &target,
            routes: &routes,
        };
        let input = msg
            .headers()
            .top_via()
            .ok()
            .and_then(|v| v.branch())
            .unwrap_or_default();
        let branch = self.branches.derived(input, &d.call_id());
        let hide = d.hide[Side::Caller.index()];
        if let Some(out) = self.forward_request(&msg, peer, &hop, &branch, hide) {
            self.out.push((hop.peer, out.raw().clone()));
        }
    }

    /// A 2xx no transaction knows (a retransmission after its transaction ended): relayed
    /// statelessly to the caller, only when its branch is ours, it belongs to a call the
    /// switch holds or recently held, and it comes from that call's callee.
    pub(in crate::engine) fn forward_stray_response(&mut self, msg: Message, peer: Peer) {
        if !matches!(msg.status(), Some(200..=299)) {
            return;
        }
        let h = msg.headers();
        let branch = h
            .top_via()
            .ok()
            .and_then(|v| v.branch())
            .unwrap_or_default();
        if !self
            .branches
            .is_ours(branch, h.call_id().unwrap_or_default())
        {
            self.guards.count(Counter::ForgedBranch);
            debug!(from = %peer.addr, "response with a branch the switch did not issue: dropped");
            return;
        }
        let dest = DialogKey::of(&msg)
            .and_then(|k| self.dialogs.get(&k))
            .and_then(|cref| self.calls.get(cref))
            .and_then(|c| match &c.phase {
                Phase::Confirmed(d) | Phase::Ended(Some(d)) => Some(d),
                _ => None,
            })
            .and_then(|d| {
                // The request was sent by the side whose tag is in From; its peer answers.
                let requester = d.sender_of_response(&msg)?;
                d.is_party(requester.other(), peer)
                    .then(|| d.peer(requester))
            });
        let Some(dest) = dest else {
            self.guards.count(Counter::StrayDropped);
            return;
        };
        let mut e = msg.edit();
        if e.remove_top_via().is_ok() {
            self.out.push((dest, e.finish()));
        }
    }

    /// A request as relayed to `hop`: our Via on top, received/rport on the sender's,
    /// every Route the sender wrote replaced by the dialog's route set, the Request-URI
    /// the dialog's remote target, Max-Forwards decremented, a Contact rewritten to us.
    /// With `hide`, the sender's topology stays here: its Vias (put back on the response
    /// from the relayed request) and its User-Agent.
    pub(super) fn forward_request(
        &self,
        msg: &Message,
        from: Peer,
        hop: &Hop<'_>,
        branch: &str,
        hide: bool,
    ) -> Option<Message> {
        let mut e = msg.edit();
        let t = hop.peer.transport;
        let via = format!(
            "SIP/2.0/{} {};branch={branch};rport",
            wire::via_transport(t),
            self.advertised(t)
        );
        if hide {
            e.remove_header(HeaderName::Via).ok()?;
            e.add_header("Via", via.as_bytes()).ok()?;
            e.remove_header(HeaderName::UserAgent).ok()?;
        } else {
            e.prepend_via(via.as_bytes()).ok()?;
            let ip = from.addr.ip().to_string();
            e.set_via_received(Some(ip.as_bytes()), from.addr.port())
                .ok()?;
        }
        e.remove_header(HeaderName::Route).ok()?;
        for r in hop.routes {
            e.add_header("Route", r).ok()?;
        }
        e.set_request_uri(hop.request_uri).ok()?;
        if msg.headers().get(HeaderName::Contact).is_some() {
            e.remove_header(HeaderName::Contact).ok()?;
            e.add_header("Contact", self.our_contact(t).as_bytes())
                .ok()?;
        }
        e.decrement_max_forwards().ok()?;
        parse_datagram(e.finish()).ok()
    }

    /// Our Contact for a leg on transport `t`.
    pub(in crate::engine) fn our_contact(&self, t: domain::Transport) -> String {
        match t {
            domain::Transport::Udp => format!("<sip:{}>", self.advertised(t)),
            domain::Transport::Tcp => format!("<sip:{};transport=tcp>", self.advertised(t)),
        }
    }

    /// Timer C (RFC 3261 §16.6 step 11): a relayed re-INVITE still without a final
    /// response is answered 408 and its client transaction dropped.
    pub(in crate::engine) fn timer_c(&mut self, now: Instant, client: ClientTxnId) {
        if !self.by_client.contains_key(&client) {
            return;
        }
        self.awaiting_final.remove(&client);
        if let Some(ClientRole::Relay { server, .. }) = self.by_client.remove(&client)
            && let Some(req) = self.relayed.remove(&server)
        {
            self.reply(now, server, &req, 408, "Request Timeout", &[]);
        }
        self.txns.terminate(sip_transaction::TxnId::Client(client));
    }
}
