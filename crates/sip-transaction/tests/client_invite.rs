//! Client INVITE transaction (RFC 3261 §17.1.1, RFC 6026): every transition, Timers A, B, D, M.

mod common;

use common::*;
use sip_transaction::{
    ClientInviteState, ClientTxnId, Config, Event, ResponseOutcome, State, Timer, Transactions,
    TxnId,
};

fn state(t: &Transactions<Addr>, id: ClientTxnId) -> Option<State> {
    t.state(TxnId::Client(id))
}

fn calling(reliable: bool) -> (Transactions<Addr>, ClientTxnId, sip_message::Message) {
    let mut t = Transactions::new(Config::default());
    let invite = request("INVITE", "z9hG4bKinv1");
    let id = t
        .send_request(t0(), invite.clone(), "server", reliable)
        .unwrap();
    let sent = transmits(&mut t);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, "server");
    assert_eq!(sent[0].payload, invite.raw());
    assert_eq!(sent[0].id, TxnId::Client(id));
    (t, id, invite)
}

fn statuses(evs: &[Event]) -> Vec<u16> {
    evs.iter()
        .filter_map(|e| match e {
            Event::Response { msg, .. } => msg.status(),
            _ => None,
        })
        .collect()
}

#[test]
fn timer_a_doubles_until_timer_b_times_out() {
    let origin = t0();
    let mut t = Transactions::new(Config::default());
    let id = t
        .send_request(origin, request("INVITE", "z9hG4bKa"), "server", false)
        .unwrap();
    transmits(&mut t);
    assert_eq!(t.poll_timeout(), Some(origin + ms(500)));
    let (sent, evs) = run_until(&mut t, origin, origin + ms(100_000));
    let at: Vec<u64> = sent.iter().map(|(d, _)| d.as_millis() as u64).collect();
    assert_eq!(at, [500, 1500, 3500, 7500, 15_500, 31_500]);
    assert!(sent.iter().all(|(_, l)| l.starts_with("INVITE ")));
    assert!(matches!(evs[0], Event::Timeout { id: TxnId::Client(c), timer: Timer::B } if c == id));
    assert!(matches!(evs[1], Event::Terminated { id: TxnId::Client(c) } if c == id));
    assert!(t.is_empty());
    assert_eq!(t.poll_timeout(), None);
}

#[test]
fn provisional_moves_calling_to_proceeding_and_stops_timers() {
    let (mut t, id, invite) = calling(false);
    assert_eq!(
        state(&t, id),
        Some(State::ClientInvite(ClientInviteState::Calling))
    );
    let out = t.receive_response(t0(), response(&invite, 180, Some("b1")));
    assert!(matches!(out, ResponseOutcome::Matched(c) if c == id));
    assert_eq!(
        state(&t, id),
        Some(State::ClientInvite(ClientInviteState::Proceeding))
    );
    assert_eq!(statuses(&events(&mut t)), [180]);
    // No Timer A nor B in Proceeding.
    assert_eq!(t.poll_timeout(), None);
    // A retransmitted 180 is not passed up twice; a different provisional is.
    let out = t.receive_response(t0(), response(&invite, 180, Some("b1")));
    assert!(matches!(out, ResponseOutcome::Absorbed));
    let out = t.receive_response(t0(), response(&invite, 183, Some("b1")));
    assert!(matches!(out, ResponseOutcome::Matched(_)));
    assert_eq!(statuses(&events(&mut t)), [183]);
}

#[test]
fn non2xx_is_acked_in_completed_and_reacked_on_retransmission() {
    let origin = t0();
    let (mut t, id, invite) = calling(false);
    t.receive_response(origin, response(&invite, 180, Some("b1")));
    events(&mut t);
    let busy = response(&invite, 486, Some("b1"));
    let out = t.receive_response(origin + ms(1000), busy.clone());
    assert!(matches!(out, ResponseOutcome::Matched(c) if c == id));
    assert_eq!(
        state(&t, id),
        Some(State::ClientInvite(ClientInviteState::Completed))
    );
    assert_eq!(statuses(&events(&mut t)), [486]);
    let ack = transmits(&mut t);
    assert_eq!(ack.len(), 1);
    let ack_msg = sip_message::parse_datagram(ack[0].payload.clone()).unwrap();
    assert_eq!(ack_msg.method(), Some(sip_message::Method::Ack));
    assert_eq!(ack_msg.headers().cseq().unwrap().seq, 1);
    assert_eq!(ack_msg.headers().to().unwrap().tag(), Some(&b"b1"[..]));
    assert_eq!(
        ack_msg.headers().top_via().unwrap().branch(),
        Some(&b"z9hG4bKinv1"[..])
    );
    // The retransmitted 486 is absorbed and ACKed again.
    let out = t.receive_response(origin + ms(2000), busy);
    assert!(matches!(out, ResponseOutcome::Absorbed));
    assert!(events(&mut t).is_empty());
    assert_eq!(transmits(&mut t)[0].payload, ack[0].payload);
    // Timer D: 32 s after the 486.
    assert_eq!(t.poll_timeout(), Some(origin + ms(33_000)));
    t.handle_timeout(origin + ms(33_000));
    assert!(matches!(events(&mut t)[..], [Event::Terminated { id: TxnId::Client(c) }] if c == id));
    assert!(t.is_empty());
}

#[test]
fn non2xx_in_calling_goes_straight_to_completed() {
    let (mut t, id, invite) = calling(false);
    t.receive_response(t0(), response(&invite, 603, Some("x")));
    assert_eq!(
        state(&t, id),
        Some(State::ClientInvite(ClientInviteState::Completed))
    );
    assert_eq!(transmits(&mut t).len(), 1);
    assert_eq!(statuses(&events(&mut t)), [603]);
}

#[test]
fn success_moves_to_accepted_and_2xx_retransmissions_reach_the_tu() {
    let origin = t0();
    let (mut t, id, invite) = calling(false);
    t.receive_response(origin, response(&invite, 180, Some("b1")));
    let ok = response(&invite, 200, Some("b1"));
    t.receive_response(origin + ms(100), ok.clone());
    assert_eq!(
        state(&t, id),
        Some(State::ClientInvite(ClientInviteState::Accepted))
    );
    assert!(
        transmits(&mut t).is_empty(),
        "the TU ACKs a 2xx, not the transaction"
    );
    t.receive_response(origin + ms(200), ok);
    // A 2xx from another fork goes up too; a non-2xx is dropped.
    t.receive_response(origin + ms(300), response(&invite, 200, Some("b2")));
    let out = t.receive_response(origin + ms(400), response(&invite, 486, Some("b3")));
    assert!(matches!(out, ResponseOutcome::Absorbed));
    assert_eq!(statuses(&events(&mut t)), [180, 200, 200, 200]);
    // Timer M: 64*T1 after the first 2xx.
    assert_eq!(t.poll_timeout(), Some(origin + ms(32_100)));
    t.handle_timeout(origin + ms(32_100));
    assert!(matches!(events(&mut t)[..], [Event::Terminated { .. }]));
    assert!(t.is_empty());
    // After termination a 2xx is stray (the proxy forwards it statelessly).
    let out = t.receive_response(origin + ms(40_000), response(&invite, 200, Some("b1")));
    assert!(matches!(out, ResponseOutcome::Stray(_)));
}

#[test]
fn reliable_transport_sends_no_retransmissions_and_timer_d_is_zero() {
    let origin = t0();
    let (mut t, id, invite) = calling(true);
    // Only Timer B is armed.
    assert_eq!(t.poll_timeout(), Some(origin + ms(32_000)));
    t.receive_response(origin, response(&invite, 486, Some("b1")));
    assert_eq!(transmits(&mut t).len(), 1, "the ACK");
    let evs = events(&mut t);
    assert_eq!(statuses(&evs), [486]);
    assert!(matches!(evs[1], Event::Terminated { id: TxnId::Client(c) } if c == id));
    assert!(t.is_empty());
    assert_eq!(t.poll_timeout(), None);
}

#[test]
fn reliable_calling_times_out_with_b_without_retransmitting() {
    let origin = t0();
    let (mut t, _, _) = calling(true);
    let (sent, evs) = run_until(&mut t, origin, origin + ms(100_000));
    assert!(sent.is_empty());
    assert!(matches!(
        evs[0],
        Event::Timeout {
            timer: Timer::B,
            ..
        }
    ));
    assert!(t.is_empty());
}

#[test]
fn transport_error_terminates() {
    let (mut t, id, _) = calling(false);
    t.transport_error(TxnId::Client(id));
    let evs = events(&mut t);
    assert!(matches!(evs[0], Event::TransportError { id: TxnId::Client(c) } if c == id));
    assert!(matches!(evs[1], Event::Terminated { id: TxnId::Client(c) } if c == id));
    assert!(t.is_empty());
    assert_eq!(t.poll_timeout(), None);
}

#[test]
fn cancel_has_its_own_client_transaction() {
    let (mut t, inv, invite) = calling(false);
    let cancel = request("CANCEL", "z9hG4bKinv1");
    let can = t
        .send_request(t0(), cancel.clone(), "server", false)
        .unwrap();
    assert_ne!(inv, can);
    let out = t.receive_response(t0(), response(&cancel, 200, Some("b1")));
    assert!(matches!(out, ResponseOutcome::Matched(c) if c == can));
    let out = t.receive_response(t0(), response(&invite, 487, Some("b1")));
    assert!(matches!(out, ResponseOutcome::Matched(c) if c == inv));
    // The same key twice is refused; so is a bare ACK.
    let dup = t.send_request(t0(), request("CANCEL", "z9hG4bKinv1"), "server", false);
    assert_eq!(dup, Err(sip_transaction::Error::DuplicateKey));
    let ack = t.send_request(t0(), request("ACK", "z9hG4bKx"), "server", false);
    assert_eq!(ack, Err(sip_transaction::Error::AckHasNoTransaction));
}

#[test]
fn response_with_unknown_branch_is_stray() {
    let (mut t, _, _) = calling(false);
    let other = request("INVITE", "z9hG4bKother");
    let out = t.receive_response(t0(), response(&other, 200, Some("b1")));
    assert!(matches!(out, ResponseOutcome::Stray(_)));
    assert!(events(&mut t).is_empty());
}
