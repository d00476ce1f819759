//! A message in: parsed, sanity-checked, matched to a transaction or a dialog, or taken
//! as a new request (INVITE to admission, OPTIONS answered, the rest refused); and the
//! replies the engine writes, statelessly or through a server transaction.

use super::*;

impl Engine {
    pub(super) fn handle_message(&mut self, now: Instant, data: Bytes, peer: Peer) {
        let directory = self.directory.load();
        let blocks = self.directory.blocklist();
        self.refresh_drops(&directory, &blocks, now);
        let now_ms = self.clock.epoch_ms(now);
        // A blocked stranger's datagrams are dropped before parsing (customers and carriers
        // go on: a block never cuts a call already up; see `handle_request`).
        if self.is_blocked(&blocks, peer.addr.ip(), now_ms)
            && !directory.is_known(peer.addr.ip())
            && !self.blocked_replies.due(peer.addr.ip(), now)
        {
            self.guards.count(Counter::BlockedDropped);
            return;
        }
        self.capture(peer, &data, true);
        let parsed = if peer.reliable() {
            parse_stream_message(data)
        } else {
            parse_datagram(data)
        };
        let msg = match parsed {
            Ok(m) => m,
            Err(e) => {
                if let (Sanity::Reply { status, reason, .. }, Some(h)) =
                    (sanity::reject_unparseable(&e), e.request_headers())
                {
                    debug!(from = %peer.addr, error = %e, status, "malformed request");
                    let tag = wire::tag();
                    let source = Some(peer.addr.into());
                    let reply =
                        build::response_from(h, source, status, reason, Some(tag.as_bytes()), &[]);
                    self.out.push((reply_peer(h, peer), reply));
                }
                return;
            }
        };
        if msg.is_request() {
            self.metrics.request(msg.method_bytes().unwrap_or_default());
            self.handle_request(now, msg, peer);
        } else {
            self.metrics.response(msg.status().unwrap_or_default());
            self.handle_response(now, msg, peer);
        }
    }

    /// A response the switch writes without a transaction (nothing is kept, nothing is
    /// retransmitted: one reply per request, never more).
    pub(super) fn stateless(
        &mut self,
        msg: &Message,
        peer: Peer,
        status: u16,
        reason: &str,
        extra: &[(&str, &[u8])],
    ) {
        self.guards.count(Counter::StatelessReplies);
        self.metrics.reply(status);
        let server: (&str, &[u8]) = ("Server", self.cfg.user_agent.as_bytes());
        let mut headers: Vec<(&str, &[u8])> = extra.to_vec();
        headers.push(server);
        let tag = wire::tag();
        let reply = build::response_from(
            msg.headers(),
            Some(peer.addr.into()),
            status,
            reason,
            Some(tag.as_bytes()),
            &headers,
        );
        self.out.push((reply_peer(msg.headers(), peer), reply));
    }

    pub(super) fn handle_request(&mut self, now: Instant, msg: Message, peer: Peer) {
        if let Err(reject) = sanity::check_request(&msg, &self.cfg.sanity) {
            if let Sanity::Reply {
                status,
                reason,
                unsupported,
                detail,
            } = reject
            {
                debug!(from = %peer.addr, status, ?detail, "request failed sanity");
                let extra: Vec<(&str, &[u8])> = unsupported
                    .iter()
                    .map(|u| ("Unsupported", u.as_ref()))
                    .collect();
                let reply = build::response_from(
                    msg.headers(),
                    Some(peer.addr.into()),
                    status,
                    reason,
                    Some(wire::tag().as_bytes()),
                    &extra,
                );
                self.out.push((reply_peer(msg.headers(), peer), reply));
            }
            return;
        }
        let method = msg.method();
        let to_peer = reply_peer(msg.headers(), peer);
        let directory = self.directory.load();
        let now_ms = self.clock.epoch_ms(now);
        let ip = peer.addr.ip();
        // The dialog this request names, if it has a To tag (looked up once).
        let in_dialog = msg.headers().to().ok().and_then(|t| t.tag()).is_some();
        let dialog = if in_dialog {
            self.dialog_of(&msg, peer)
        } else {
            None
        };
        // Stage "block list", for every request: a stateless 403 (an ACK is dropped).
        // Requests of a dialog the switch carries pass: a BYE from a source blocked
        // mid-call must still end the call at the carrier (a block stops new traffic; it
        // never keeps a billed call up).
        let blocks = self.directory.blocklist();
        if let Some(reason) = self.blocked(&blocks, ip, now_ms)
            && dialog.is_none()
        {
            self.guards.count(Counter::BlockedDropped);
            debug!(
                target: "vts::security",
                "BLOCKED source={ip} method={} reason={reason:?}",
                String::from_utf8_lossy(msg.method_bytes().unwrap_or_default()),
            );
            if method == Some(Method::Ack) {
                // An ACK for a refusal the switch sent (say the 503 that started a flood
                // block) ends that transaction's retransmissions; any other ACK is dropped.
                let _ = self
                    .txns
                    .receive_request(now, &msg, to_peer, peer.reliable());
            } else {
                // A stranger gets here only when a reply is due (`handle_message`).
                self.guards.count(Counter::BlockedReplies);
                let (status, reason) = self.refuse(Reject::Blacklisted);
                self.stateless(&msg, peer, status, reason, &[]);
            }
            return;
        }
        // A request that already passed through the switch (one of our branches in a
        // Via): a loop (a carrier at the switch's own address, or a chain of proxies).
        if self.is_loop(&msg) {
            self.guards.count(Counter::LoopDetected);
            warn!(target: "vts::security", "LOOP source={ip}: a request carries the switch's own Via");
            if method != Some(Method::Ack) {
                let (status, reason) = self.refuse(Reject::Loop);
                self.stateless(&msg, peer, status, reason, &[]);
            }
            return;
        }
        // Strangers (neither a customer's nor a carrier's address) pass a rate bucket for
        // every method before anything is kept for them; customers are held by their own
        // CPS limit, and nothing a customer or carrier sends blocks it automatically.
        if !directory.is_known(ip)
            && let Err(reject) =
                crate::admission::security::flood(&mut *self.limiter, &directory, ip, now)
        {
            if method != Some(Method::Ack) {
                let (status, reason) = self.refuse(reject);
                self.stateless(&msg, peer, status, reason, &[]);
            }
            self.block_flood(now, ip, &directory);
            return;
        }
        // What the switch answers without a transaction: nothing is kept for a request
        // that opens nothing, and no response to it is ever retransmitted.
        if method != Some(Method::Ack) {
            let accept: (&str, &[u8]) = ("Accept", b"application/sdp");
            let stateless: Option<StatelessReply<'_>> = match method {
                Some(Method::Cancel) => (!self.cancel_matches(&msg, peer)).then_some((
                    481,
                    "Call/Transaction Does Not Exist",
                    &[],
                )),
                _ if in_dialog => {
                    dialog
                        .is_none()
                        .then_some((481, "Call/Transaction Does Not Exist", &[]))
                }
                Some(Method::Invite) => self.over_capacity().map(|(s, r)| (s, r, &[][..])),
                Some(Method::Options) => Some((200, "OK", &[("Allow", ALLOW), accept])),
                _ => Some((405, "Method Not Allowed", &[("Allow", ALLOW)])),
            };
            // (A retransmission of a request a transaction holds is absorbed by it.)
            if let Some((status, reason, extra)) = stateless
                && !self.is_retransmission(&msg)
            {
                if in_dialog && status == 481 && method != Some(Method::Cancel) {
                    self.guards.count(Counter::InDialogRefused);
                }
                self.stateless(&msg, peer, status, reason, extra);
                return;
            }
        }
        let outcome = match self
            .txns
            .receive_request(now, &msg, to_peer, peer.reliable())
        {
            Ok(o) => o,
            Err(e) => {
                debug!(from = %peer.addr, error = %e, "request not matched");
                return;
            }
        };
        match outcome {
            RequestOutcome::Retransmission | RequestOutcome::AckAbsorbed => {}
            RequestOutcome::StrayAck => self.relay_ack(msg, peer, dialog),
            RequestOutcome::Cancel { invite, cancel } => {
                self.handle_cancel(now, invite, cancel, &msg)
            }
            RequestOutcome::New(id) => match dialog {
                Some(dialog) if in_dialog => self.relay_in_dialog(now, id, msg, peer, dialog),
                _ if method == Some(Method::Invite) => self.new_call(now, id, msg, peer),
                _ => self.reply(now, id, &msg, 481, "Call/Transaction Does Not Exist", &[]),
            },
        }
    }

    /// Whether a request is a retransmission of one a server transaction holds.
    pub(super) fn is_retransmission(&self, msg: &Message) -> bool {
        sip_transaction::ServerKey::from_request(msg)
            .is_ok_and(|k| self.txns.find_server(&k).is_some())
    }

    /// Whether a CANCEL matches an INVITE the switch is handling, from that INVITE's source.
    pub(super) fn cancel_matches(&self, msg: &Message, peer: Peer) -> bool {
        let Ok(key) = sip_transaction::ServerKey::from_request(msg) else {
            return false;
        };
        let Some(invite) = self.txns.find_server(&key.invite_key_for_cancel()) else {
            return false;
        };
        match self.by_server.get(&invite).and_then(|c| self.calls.get(c)) {
            Some(call) => call.source.addr.ip() == peer.addr.ip(),
            // An INVITE refused before a call was made: its transaction answers.
            None => true,
        }
    }

    /// Whether any Via of a request carries a branch the switch issued.
    pub(super) fn is_loop(&self, msg: &Message) -> bool {
        // Almost no request carries our prefix anywhere: one search of the bytes before any
        // Via is parsed.
        static PREFIX: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
            std::sync::LazyLock::new(|| memchr::memmem::Finder::new(wire::BRANCH_PREFIX));
        if PREFIX.find(msg.raw()).is_none() {
            return false;
        }
        let h = msg.headers();
        let call_id = h.call_id().unwrap_or_default();
        h.vias().filter_map(Result::ok).any(|v| {
            v.branch().is_some_and(|b| {
                b.starts_with(wire::BRANCH_PREFIX) && self.branches.is_ours(b, call_id)
            })
        })
    }

    /// The transaction table or the calls being set up are at their bound: a new INVITE
    /// gets a stateless 503 (counted, reported once per interval).
    pub(super) fn over_capacity(&mut self) -> Option<(u16, &'static str)> {
        let limits = &self.cfg.limits;
        if self.txns.len() >= limits.max_transactions {
            self.guards
                .reached(Cap::Transactions, limits.max_transactions as u64);
            return Some(self.refuse(Reject::TooManyTransactions));
        }
        if self.in_setup >= limits.max_calls_in_setup {
            self.guards
                .reached(Cap::CallsInSetup, limits.max_calls_in_setup as u64);
            return Some(self.refuse(Reject::TooManyCallsInSetup));
        }
        None
    }

    /// Answers a server transaction with a response the switch writes.
    pub(super) fn reply(
        &mut self,
        now: Instant,
        id: ServerTxnId,
        req: &Message,
        status: u16,
        reason: &str,
        extra: &[(&str, &[u8])],
    ) {
        self.metrics.reply(status);
        let tag = (status > 100).then(wire::tag);
        let server: (&str, &[u8]) = ("Server", self.cfg.user_agent.as_bytes());
        let mut headers: Vec<(&str, &[u8])> = extra.to_vec();
        headers.push(server);
        let bytes = build::response_from(
            req.headers(),
            self.txns.server_peer(id).map(|p| p.addr.into()),
            status,
            reason,
            tag.as_ref().map(String::as_bytes),
            &headers,
        );
        if let Err(e) = self.txns.respond(now, id, bytes) {
            debug!(error = %e, status, "reply not sent");
        }
    }

    /// Whether `peer` is one of the switch's own listening addresses (exactly: a listener
    /// on 0.0.0.0 counts for the addresses it advertises, not for every address).
    pub(super) fn is_us_addr(&self, peer: &Peer) -> bool {
        self.local.iter().any(|l| {
            l.addr.port() == peer.addr.port()
                && (l.addr.ip() == peer.addr.ip()
                    || (l.addr.ip().is_unspecified()
                        && (self.advertised_ips.contains(&peer.addr.ip())
                            || peer.addr.ip().is_loopback())))
        })
    }

    pub(super) fn advertised(&self, transport: Transport) -> &str {
        self.advertised
            .get(&transport)
            .or_else(|| self.advertised.values().next())
            .map_or("127.0.0.1", String::as_str)
    }
}

/// Where responses to a request go (RFC 3261 §18.2.2, RFC 3581): over a stream, back on the
/// connection; over UDP, to the source address when the Via asks for rport (or when the
/// Via's host is not the source), else to the Via's sent-by port on the source address.
pub(super) fn reply_peer(h: &sip_message::Headers, peer: Peer) -> Peer {
    if peer.reliable() {
        return peer;
    }
    let Ok(via) = h.top_via() else { return peer };
    if via.rport().is_some() {
        return peer;
    }
    let host_is_source = via.host().is_some_and(|host| match host {
        sip_message::uri::Host::V4(a) => IpAddr::V4(a) == peer.addr.ip(),
        sip_message::uri::Host::V6(a) => IpAddr::V6(a) == peer.addr.ip(),
        sip_message::uri::Host::Name(_) => false,
    });
    if !host_is_source {
        return peer;
    }
    let mut addr = peer.addr;
    addr.set_port(via.port.unwrap_or(5060));
    Peer { addr, ..peer }
}
