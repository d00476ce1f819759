//! Responses: matched to their client transaction, handed to the call they belong to
//! (attempt responses, in-dialog ones), rewritten for the customer (Contact, hidden Vias,
//! the carrier's topology) and relayed on the server transaction.

use std::time::Instant;

use bytes::Bytes;
use sip_message::{Message, sanity};
use sip_transaction::{ClientTxnId, Event, ResponseOutcome, ServerTxnId, TxnId};
use tracing::debug;

use super::{Back, ClientRole, Engine};
use crate::guard::Gauge;
use crate::transport::Peer;
use domain::Reject;
use telemetry::latency::Kind;

impl Engine {
    pub(super) fn handle_response(&mut self, now: Instant, msg: Message, peer: Peer) {
        if sanity::check_response(&msg, &self.cfg.sanity).is_err() {
            return;
        }
        match self.txns.receive_response(now, msg) {
            ResponseOutcome::Matched(_) | ResponseOutcome::Absorbed => {}
            ResponseOutcome::Stray(msg) => self.forward_stray_response(msg, peer),
        }
    }

    pub(super) fn process_events(&mut self, now: Instant) {
        while let Some(event) = self.txns.poll_event() {
            match event {
                Event::Response { id, msg } => self.client_response(now, id, msg),
                Event::Timeout {
                    id: TxnId::Client(id),
                    ..
                } => self.client_failed(now, id, true),
                Event::TransportError {
                    id: TxnId::Client(id),
                } => self.client_failed(now, id, false),
                Event::Terminated {
                    id: TxnId::Client(id),
                } => {
                    self.by_client.remove(&id);
                }
                Event::Terminated {
                    id: TxnId::Server(id),
                } => {
                    self.by_server.remove(&id);
                    self.relayed.remove(&id);
                }
                Event::Timeout {
                    id: TxnId::Server(_),
                    ..
                }
                | Event::TransportError {
                    id: TxnId::Server(_),
                } => {}
            }
        }
        self.guards.set(Gauge::Transactions, self.txns.len() as u64);
        self.guards.set(Gauge::CallsInSetup, self.in_setup as u64);
        self.guards
            .set(Gauge::Timers, self.timers.by_deadline.len() as u64);
        self.guards.set(Gauge::Calls, self.calls.len() as u64);
    }

    pub(super) fn client_response(&mut self, now: Instant, id: ClientTxnId, msg: Message) {
        if msg.status().is_some_and(|s| s >= 200) {
            self.awaiting_final.remove(&id);
        }
        match self.by_client.get(&id).copied() {
            Some(ClientRole::Attempt { call, number }) => {
                self.attempt_response(now, call, number, msg)
            }
            Some(ClientRole::Relay {
                server,
                call,
                from,
                bye,
            }) => self.relayed_response(now, (server, call, from, bye), &msg),
            Some(ClientRole::Bye { call, to, try_n }) => {
                if let Some(status) = msg.status() {
                    self.own_bye_response(now, (call, to, try_n), status);
                }
            }
            Some(ClientRole::Probe { carrier, seq }) => {
                if let Some(status) = msg.status() {
                    self.probe_response(now, carrier, seq, status);
                }
            }
            Some(ClientRole::Local) | None => {}
        }
    }

    /// A client transaction ended without a final response: Timer B/F (`timeout`) or a
    /// transport error.
    pub(super) fn client_failed(&mut self, now: Instant, id: ClientTxnId, timeout: bool) {
        self.awaiting_final.remove(&id);
        // Timer B: no response (408); a transport error: the carrier is unusable (503).
        let reject = if timeout {
            Reject::NoResponse
        } else {
            Reject::CarrierUnusable
        };
        match self.by_client.get(&id).copied() {
            Some(ClientRole::Attempt { call, number }) => {
                self.attempt_failed(now, call, number, reject)
            }
            Some(ClientRole::Relay {
                server,
                call,
                from,
                bye,
            }) => self.relay_failed(now, (server, call, from, bye), timeout),
            Some(ClientRole::Bye { call, to, try_n }) => {
                if timeout {
                    self.own_bye_response(now, (call, to, try_n), 408);
                } else {
                    self.bye_failed(now, call, to, try_n);
                }
            }
            Some(ClientRole::Probe { carrier, seq }) => self.probe_result(now, carrier, seq, false),
            Some(ClientRole::Local) | None => {}
        }
    }

    /// Relays a response of a relayed request back on its server transaction: our Via off
    /// (or the sender's own Vias put back, when they were hidden from the far side), a
    /// Contact rewritten to us, and the responder's topology stripped when it hides it.
    pub(super) fn relay_response(
        &mut self,
        now: Instant,
        server: ServerTxnId,
        msg: &Message,
        back: Back,
    ) {
        if msg.status() == Some(100) {
            return;
        }
        if let Some(at) = self.arrival {
            self.samples.push((Kind::Reply, at));
        }
        let Some(bytes) = self.rewrite_response(msg, &back) else {
            debug!("relayed response could not be rewritten");
            return;
        };
        if let Err(err) = self.txns.respond(now, server, bytes) {
            debug!(error = %err, "relayed response not sent");
        }
    }

    pub(super) fn rewrite_response(&self, msg: &Message, back: &Back) -> Option<Bytes> {
        use sip_message::HeaderName as H;
        let mut e = msg.edit();
        match &back.vias {
            Some(vias) => {
                e.remove_header(H::Via).ok()?;
                for v in vias {
                    e.add_header("Via", v).ok()?;
                }
            }
            None => e.remove_top_via().ok()?,
        }
        if let Some(our_rr) = &back.strip {
            e.remove_header(H::Server).ok()?;
            e.remove_header(H::UserAgent).ok()?;
            e.remove_other("Warning").ok()?;
            let rr: Vec<_> = msg
                .headers()
                .record_routes()
                .filter_map(Result::ok)
                .collect();
            if let Some(i) = rr.iter().position(|r| r.raw == &our_rr[..]) {
                e.remove_header(H::RecordRoute).ok()?;
                for r in &rr[i..] {
                    e.add_header("Record-Route", r.raw).ok()?;
                }
            }
        }
        if let Some(t) = back.contact
            && msg.headers().get(H::Contact).is_some()
        {
            e.remove_header(H::Contact).ok()?;
            e.add_header("Contact", self.our_contact(t).as_bytes())
                .ok()?;
        }
        Some(e.finish())
    }
}
