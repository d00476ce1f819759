//! Server non-INVITE transaction (RFC 3261 §17.2.2): every transition, Timer J.

mod common;

use common::*;
use sip_message::Message;
use sip_transaction::{
    Config, Error, Event, RequestOutcome, ServerNonInviteState, ServerTxnId, State, Transactions,
    TxnId,
};

fn trying(reliable: bool) -> (Transactions<Addr>, ServerTxnId, Message) {
    let mut t = Transactions::new(Config::default());
    let req = request("REGISTER", "z9hG4bKsn1");
    let RequestOutcome::New(id) = t.receive_request(t0(), &req, "client", reliable).unwrap() else {
        panic!("not new")
    };
    (t, id, req)
}

fn state(t: &Transactions<Addr>, id: ServerTxnId) -> Option<State> {
    t.state(TxnId::Server(id))
}

#[test]
fn trying_absorbs_retransmissions_silently() {
    let (mut t, id, req) = trying(false);
    assert_eq!(
        state(&t, id),
        Some(State::ServerNonInvite(ServerNonInviteState::Trying))
    );
    let out = t.receive_request(t0(), &req, "client", false).unwrap();
    assert_eq!(out, RequestOutcome::Retransmission);
    assert!(transmits(&mut t).is_empty());
    assert_eq!(t.poll_timeout(), None);
}

#[test]
fn proceeding_resends_the_last_provisional() {
    let (mut t, id, req) = trying(false);
    t.respond(t0(), id, response_bytes(&req, 100, None))
        .unwrap();
    t.respond(t0(), id, response_bytes(&req, 183, None))
        .unwrap();
    assert_eq!(
        state(&t, id),
        Some(State::ServerNonInvite(ServerNonInviteState::Proceeding))
    );
    assert_eq!(transmits(&mut t).len(), 2);
    t.receive_request(t0(), &req, "client", false).unwrap();
    assert_eq!(
        first_line(&transmits(&mut t)[0].payload),
        "SIP/2.0 183 Session Progress"
    );
}

#[test]
fn completed_resends_the_final_then_timer_j() {
    let origin = t0();
    let (mut t, id, req) = trying(false);
    t.respond(origin, id, response_bytes(&req, 100, None))
        .unwrap();
    t.respond(origin, id, response_bytes(&req, 200, Some("s1")))
        .unwrap();
    assert_eq!(
        state(&t, id),
        Some(State::ServerNonInvite(ServerNonInviteState::Completed))
    );
    assert_eq!(transmits(&mut t).len(), 2);
    t.receive_request(origin + ms(10), &req, "client", false)
        .unwrap();
    assert_eq!(first_line(&transmits(&mut t)[0].payload), "SIP/2.0 200 OK");
    let late = t.respond(origin, id, response_bytes(&req, 500, None));
    assert_eq!(late, Err(Error::FinalAlreadySent));
    // J = 64*T1, no retransmission of its own.
    assert_eq!(t.poll_timeout(), Some(origin + ms(32_000)));
    let (sent, evs) = run_until(&mut t, origin, origin + ms(100_000));
    assert!(sent.is_empty());
    assert!(matches!(evs[..], [Event::Terminated { id: TxnId::Server(s) }] if s == id));
    assert!(t.is_empty());
}

#[test]
fn final_from_trying_on_reliable_transport_terminates_at_once() {
    let (mut t, id, req) = trying(true);
    t.respond(t0(), id, response_bytes(&req, 200, Some("s1")))
        .unwrap();
    assert_eq!(transmits(&mut t).len(), 1);
    assert!(matches!(events(&mut t)[..], [Event::Terminated { .. }]));
    assert!(t.is_empty());
    // A retransmission now opens a new transaction (the TU answers it again).
    let out = t.receive_request(t0(), &req, "client", true).unwrap();
    assert!(matches!(out, RequestOutcome::New(_)));
}

#[test]
fn transport_error_terminates() {
    let (mut t, id, _) = trying(false);
    t.transport_error(TxnId::Server(id));
    let evs = events(&mut t);
    assert!(matches!(evs[0], Event::TransportError { .. }));
    assert!(matches!(evs[1], Event::Terminated { .. }));
    assert!(t.is_empty());
}
