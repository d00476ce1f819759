//! The manager: [`Transactions`] owns every transaction in hash maps keyed by
//! [`ClientKey`] / [`ServerKey`], routes messages, responses and timer firings to them, and
//! removes them once they reach `Terminated`.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;
use sip_message::{Message, Method};

use crate::client::ClientTxn;
use crate::io::Io;
use crate::key::{ClientKey, ServerKey};
use crate::server::ServerTxn;
use crate::{
    ClientTxnId, Config, Error, Event, RequestOutcome, ResponseOutcome, ServerInviteState,
    ServerTxnId, State, Timer, Transmit, TxnId,
};

/// Every transaction of one proxy, and their pending output. `A` is the caller's opaque
/// address (for example a socket address and a transport).
#[derive(Debug)]
pub struct Transactions<A> {
    config: Config,
    next_id: u64,
    clients: HashMap<ClientTxnId, ClientTxn<A>>,
    client_keys: HashMap<ClientKey, ClientTxnId>,
    servers: HashMap<ServerTxnId, ServerTxn<A>>,
    server_keys: HashMap<ServerKey, ServerTxnId>,
    io: Io<A>,
}

/// The status code at the start of response bytes (`SIP/2.0 NNN ...`).
fn status_of(bytes: &[u8]) -> Option<u16> {
    let rest = bytes.strip_prefix(b"SIP/2.0 ")?;
    let code = rest.get(..3)?;
    if !code.iter().all(u8::is_ascii_digit) || rest.get(3).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let n = code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    (100..=699).contains(&n).then_some(n)
}

impl<A: Clone> Transactions<A> {
    /// An empty table.
    pub fn new(config: Config) -> Self {
        Transactions {
            config,
            next_id: 0,
            clients: HashMap::new(),
            client_keys: HashMap::new(),
            servers: HashMap::new(),
            server_keys: HashMap::new(),
            io: Io::new(),
        }
    }

    /// The timer configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// A request from the network (§17.2.3 matching). Retransmissions are absorbed (and the
    /// last response resent); a new request opens a server transaction.
    pub fn receive_request(
        &mut self,
        now: Instant,
        msg: &Message,
        from: A,
        reliable: bool,
    ) -> Result<RequestOutcome, Error> {
        let method = msg.method().ok_or(Error::NotARequest)?;
        let key = ServerKey::from_request(msg)?;
        let found = self.server_keys.get(&key).copied();
        if method == Method::Ack {
            let Some(id) = found else {
                return Ok(RequestOutcome::StrayAck);
            };
            let txn = self.servers.get_mut(&id).ok_or(Error::UnknownTransaction)?;
            // RFC 2543 rules: the ACK's To tag must be the one of the sent final response.
            if !txn.key.is_rfc3261() && txn.ack_key.as_ref() != Some(&key) {
                return Ok(RequestOutcome::StrayAck);
            }
            let outcome = txn.on_ack(now, &self.config, &mut self.io);
            self.reap_server(id);
            return Ok(outcome);
        }
        if let Some(id) = found {
            let txn = self.servers.get_mut(&id).ok_or(Error::UnknownTransaction)?;
            return Ok(txn.on_retransmission(&mut self.io));
        }
        let id = ServerTxnId(self.next_id());
        let txn = ServerTxn::new(id, key.clone(), method == Method::Invite, from, reliable);
        self.servers.insert(id, txn);
        let invite_key = (method == Method::Cancel).then(|| key.invite_key_for_cancel());
        self.server_keys.insert(key, id);
        Ok(match invite_key {
            Some(k) => RequestOutcome::Cancel {
                invite: self.find_server(&k),
                cancel: id,
            },
            None => RequestOutcome::New(id),
        })
    }

    /// The server transaction a key matches, if any (e.g. with
    /// [`ServerKey::invite_key_for_cancel`]).
    pub fn find_server(&self, key: &ServerKey) -> Option<ServerTxnId> {
        self.server_keys.get(key).copied()
    }

    /// Where a server transaction's responses go: the address given to
    /// [`Transactions::receive_request`] (the TU fills the response's top Via from it).
    pub fn server_peer(&self, id: ServerTxnId) -> Option<&A> {
        self.servers.get(&id).map(ServerTxn::peer)
    }

    /// The TU's response on a server transaction; the status is read from the bytes.
    pub fn respond(&mut self, now: Instant, id: ServerTxnId, response: Bytes) -> Result<(), Error> {
        let status = status_of(&response).ok_or(Error::NotAResponse)?;
        let txn = self.servers.get_mut(&id).ok_or(Error::UnknownTransaction)?;
        txn.respond(now, status, response.clone(), &self.config, &mut self.io)?;
        let completed = txn.state() == State::ServerInvite(ServerInviteState::Completed);
        if completed && !txn.key.is_rfc3261() {
            // RFC 2543 rules: remember the To tag the ACK will carry.
            let parsed = sip_message::parse_datagram(response).ok();
            let tag = parsed.as_ref().and_then(|r| r.headers().to().ok()?.tag());
            if let Some(ack_key) = txn.key.with_to_tag(tag) {
                self.server_keys.entry(ack_key.clone()).or_insert(id);
                txn.ack_key = Some(ack_key);
            }
        }
        self.reap_server(id);
        Ok(())
    }

    /// Sends a request in a new client transaction (Calling or Trying). The top Via must
    /// carry the branch; ACK opens no transaction.
    pub fn send_request(
        &mut self,
        now: Instant,
        request: Message,
        to: A,
        reliable: bool,
    ) -> Result<ClientTxnId, Error> {
        match request.method() {
            None => return Err(Error::NotARequest),
            Some(Method::Ack) => return Err(Error::AckHasNoTransaction),
            Some(_) => {}
        }
        let key = ClientKey::from_message(&request)?;
        if self.client_keys.contains_key(&key) {
            return Err(Error::DuplicateKey);
        }
        let id = ClientTxnId(self.next_id());
        let txn = ClientTxn::new(id, key.clone(), request, to, reliable, now, &self.config);
        txn.start(&mut self.io);
        self.client_keys.insert(key, id);
        self.clients.insert(id, txn);
        Ok(id)
    }

    /// A response from the network (§17.1.3 matching).
    pub fn receive_response(&mut self, now: Instant, msg: Message) -> ResponseOutcome {
        if msg.is_request() {
            return ResponseOutcome::Stray(msg);
        }
        let Some(id) = ClientKey::from_message(&msg)
            .ok()
            .and_then(|k| self.client_keys.get(&k).copied())
        else {
            return ResponseOutcome::Stray(msg);
        };
        let Some(txn) = self.clients.get_mut(&id) else {
            return ResponseOutcome::Stray(msg);
        };
        let outcome = txn.on_response(now, msg, &self.config, &mut self.io);
        self.reap_client(id);
        outcome
    }

    /// The caller failed to send a transmit of this transaction: it terminates with
    /// [`Event::TransportError`] (§17.1.4, §17.2.4). Unknown ids are ignored.
    pub fn transport_error(&mut self, id: TxnId) {
        match id {
            TxnId::Client(c) => {
                if let Some(t) = self.clients.get_mut(&c) {
                    t.transport_error(&mut self.io);
                    self.reap_client(c);
                }
            }
            TxnId::Server(s) => {
                if let Some(t) = self.servers.get_mut(&s) {
                    t.transport_error(&mut self.io);
                    self.reap_server(s);
                }
            }
        }
    }

    /// The TU abandons a transaction, which is removed at once with [`Event::Terminated`]:
    /// for a client INVITE stuck in Proceeding (no timer runs there) after Timer C and a
    /// CANCEL that brought no final response (§9.1, §16.8). Unknown ids are ignored.
    pub fn terminate(&mut self, id: TxnId) {
        self.remove(id);
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut due = Vec::new();
        while let Some(&Reverse(entry)) = self.io.timers.peek() {
            if entry.0 > now {
                break;
            }
            self.io.timers.pop();
            due.push(entry);
        }
        for (at, id, timer) in due {
            if self.armed(id, timer) != Some(at) {
                continue;
            }
            match id {
                TxnId::Client(c) => {
                    if let Some(t) = self.clients.get_mut(&c) {
                        t.on_timer(now, timer, &self.config, &mut self.io);
                        self.reap_client(c);
                    }
                }
                TxnId::Server(s) => {
                    if let Some(t) = self.servers.get_mut(&s) {
                        t.on_timer(now, timer, &self.config, &mut self.io);
                        self.reap_server(s);
                    }
                }
            }
        }
    }

    fn armed(&self, id: TxnId, timer: Timer) -> Option<Instant> {
        match id {
            TxnId::Client(c) => self.clients.get(&c)?.armed(timer),
            TxnId::Server(s) => self.servers.get(&s)?.armed(timer),
        }
    }

    /// The next instant [`Transactions::handle_timeout`] must be called; `None` when no timer
    /// is armed.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        while let Some(&Reverse((at, id, timer))) = self.io.timers.peek() {
            if self.armed(id, timer) == Some(at) {
                return Some(at);
            }
            self.io.timers.pop();
        }
        None
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit<A>> {
        self.io.transmits.pop_front()
    }

    /// The next event for the TU.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.io.events.pop_front()
    }

    /// The state of a transaction still in the table.
    pub fn state(&self, id: TxnId) -> Option<State> {
        match id {
            TxnId::Client(c) => self.clients.get(&c).map(ClientTxn::state),
            TxnId::Server(s) => self.servers.get(&s).map(ServerTxn::state),
        }
    }

    /// How many transactions are in the table.
    pub fn len(&self) -> usize {
        self.clients.len() + self.servers.len()
    }

    /// Whether the table holds no transaction.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn reap_client(&mut self, id: ClientTxnId) {
        if self.clients.get(&id).is_some_and(ClientTxn::is_terminated) {
            self.remove(TxnId::Client(id));
        }
    }

    fn reap_server(&mut self, id: ServerTxnId) {
        if self.servers.get(&id).is_some_and(ServerTxn::is_terminated) {
            self.remove(TxnId::Server(id));
        }
    }

    /// Removes a transaction and its keys, and tells the TU.
    fn remove(&mut self, id: TxnId) {
        let known = match id {
            TxnId::Client(c) => self.clients.remove(&c).map(|t| {
                self.client_keys.remove(&t.key);
            }),
            TxnId::Server(s) => self.servers.remove(&s).map(|t| {
                for key in std::iter::once(t.key).chain(t.ack_key) {
                    if self.server_keys.get(&key) == Some(&s) {
                        self.server_keys.remove(&key);
                    }
                }
            }),
        };
        if known.is_some() {
            self.io.event(Event::Terminated { id });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::status_of;

    #[test]
    fn status_line() {
        assert_eq!(status_of(b"SIP/2.0 486 Busy Here\r\n"), Some(486));
        assert_eq!(status_of(b"SIP/2.0 100\r\n"), Some(100));
        assert_eq!(status_of(b"SIP/2.0 1000 x"), None);
        assert_eq!(status_of(b"SIP/2.0 099 x"), None);
        assert_eq!(status_of(b"INVITE sip:a SIP/2.0"), None);
    }
}
