//! Server INVITE transaction (RFC 3261 §17.2.1, RFC 6026): every transition, Timers G, H, I, L.

mod common;

use common::*;
use sip_message::Message;
use sip_transaction::{
    Config, Error, Event, RequestOutcome, ServerInviteState, ServerTxnId, State, Timer,
    Transactions, TxnId,
};

fn proceeding(reliable: bool) -> (Transactions<Addr>, ServerTxnId, Message) {
    let mut t = Transactions::new(Config::default());
    let invite = request("INVITE", "z9hG4bKsi1");
    let out = t
        .receive_request(t0(), &invite, "client", reliable)
        .unwrap();
    let RequestOutcome::New(id) = out else {
        panic!("{out:?}")
    };
    assert_eq!(
        state(&t, id),
        Some(State::ServerInvite(ServerInviteState::Proceeding))
    );
    (t, id, invite)
}

fn state(t: &Transactions<Addr>, id: ServerTxnId) -> Option<State> {
    t.state(TxnId::Server(id))
}

fn ack_for(invite: &Message, to_tag: &str) -> Message {
    let via = invite.headers().top_via().unwrap().raw;
    request_with(
        "ACK",
        std::str::from_utf8(via).unwrap(),
        Some(to_tag),
        "call-1@192.0.2.1",
        1,
    )
}

#[test]
fn retransmission_in_proceeding_resends_the_last_provisional() {
    let (mut t, id, invite) = proceeding(false);
    // Nothing sent yet: the retransmission is absorbed silently.
    let out = t.receive_request(t0(), &invite, "client", false).unwrap();
    assert_eq!(out, RequestOutcome::Retransmission);
    assert!(transmits(&mut t).is_empty());
    t.respond(t0(), id, response_bytes(&invite, 100, None))
        .unwrap();
    t.respond(t0(), id, response_bytes(&invite, 180, Some("s1")))
        .unwrap();
    assert_eq!(transmits(&mut t).len(), 2);
    assert_eq!(
        state(&t, id),
        Some(State::ServerInvite(ServerInviteState::Proceeding))
    );
    t.receive_request(t0(), &invite, "client", false).unwrap();
    let again = transmits(&mut t);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].to, "client");
    assert_eq!(first_line(&again[0].payload), "SIP/2.0 180 Ringing");
    assert_eq!(t.poll_timeout(), None, "no timer in Proceeding");
}

#[test]
fn non2xx_completed_timer_g_doubles_capped_and_timer_h_times_out() {
    let origin = t0();
    let (mut t, id, invite) = proceeding(false);
    t.respond(origin, id, response_bytes(&invite, 486, Some("s1")))
        .unwrap();
    assert_eq!(
        state(&t, id),
        Some(State::ServerInvite(ServerInviteState::Completed))
    );
    assert_eq!(transmits(&mut t).len(), 1);
    let (sent, evs) = run_until(&mut t, origin, origin + ms(100_000));
    let at: Vec<u64> = sent.iter().map(|(d, _)| d.as_millis() as u64).collect();
    assert_eq!(
        at,
        [
            500, 1500, 3500, 7500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500
        ]
    );
    assert!(sent.iter().all(|(_, l)| l == "SIP/2.0 486 Busy Here"));
    assert!(matches!(evs[0], Event::Timeout { id: TxnId::Server(s), timer: Timer::H } if s == id));
    assert!(matches!(evs[1], Event::Terminated { id: TxnId::Server(s) } if s == id));
    assert!(t.is_empty());
}

#[test]
fn retransmission_in_completed_resends_the_final_response() {
    let (mut t, id, invite) = proceeding(false);
    t.respond(t0(), id, response_bytes(&invite, 486, Some("s1")))
        .unwrap();
    let first = transmits(&mut t);
    t.receive_request(t0() + ms(100), &invite, "client", false)
        .unwrap();
    assert_eq!(transmits(&mut t)[0].payload, first[0].payload);
    assert_eq!(
        t.respond(t0(), id, response_bytes(&invite, 500, None)),
        Err(Error::FinalAlreadySent)
    );
}

#[test]
fn ack_is_absorbed_into_confirmed_then_timer_i() {
    let origin = t0();
    let (mut t, id, invite) = proceeding(false);
    t.respond(origin, id, response_bytes(&invite, 486, Some("s1")))
        .unwrap();
    transmits(&mut t);
    let ack = ack_for(&invite, "s1");
    let out = t
        .receive_request(origin + ms(200), &ack, "client", false)
        .unwrap();
    assert_eq!(out, RequestOutcome::AckAbsorbed);
    assert_eq!(
        state(&t, id),
        Some(State::ServerInvite(ServerInviteState::Confirmed))
    );
    // Retransmitted ACK and INVITE are absorbed without output.
    let out = t
        .receive_request(origin + ms(300), &ack, "client", false)
        .unwrap();
    assert_eq!(out, RequestOutcome::AckAbsorbed);
    t.receive_request(origin + ms(300), &invite, "client", false)
        .unwrap();
    assert!(transmits(&mut t).is_empty());
    // G and H are gone; I = T4.
    assert_eq!(t.poll_timeout(), Some(origin + ms(5200)));
    let (sent, evs) = run_until(&mut t, origin, origin + ms(100_000));
    assert!(sent.is_empty());
    assert!(matches!(evs[..], [Event::Terminated { .. }]));
    assert!(t.is_empty());
}

#[test]
fn reliable_transport_sends_no_retransmissions_and_timer_i_is_zero() {
    let origin = t0();
    let (mut t, id, invite) = proceeding(true);
    t.respond(origin, id, response_bytes(&invite, 486, Some("s1")))
        .unwrap();
    assert_eq!(transmits(&mut t).len(), 1);
    assert_eq!(t.poll_timeout(), Some(origin + ms(32_000)), "only Timer H");
    let out = t
        .receive_request(origin, &ack_for(&invite, "s1"), "client", true)
        .unwrap();
    assert_eq!(out, RequestOutcome::AckAbsorbed);
    assert!(matches!(events(&mut t)[..], [Event::Terminated { .. }]));
    assert!(t.is_empty());
}

#[test]
fn success_moves_to_accepted_then_timer_l() {
    let origin = t0();
    let (mut t, id, invite) = proceeding(false);
    t.respond(origin, id, response_bytes(&invite, 200, Some("s1")))
        .unwrap();
    assert_eq!(
        state(&t, id),
        Some(State::ServerInvite(ServerInviteState::Accepted))
    );
    assert_eq!(transmits(&mut t).len(), 1);
    // INVITE retransmissions are absorbed; the TU retransmits 2xx itself.
    t.receive_request(origin + ms(100), &invite, "client", false)
        .unwrap();
    assert!(transmits(&mut t).is_empty());
    // A second 2xx (another fork) is sent; a non-2xx is refused.
    t.respond(origin, id, response_bytes(&invite, 200, Some("s2")))
        .unwrap();
    assert_eq!(transmits(&mut t).len(), 1);
    let late = t.respond(origin, id, response_bytes(&invite, 486, Some("s3")));
    assert_eq!(late, Err(Error::FinalAlreadySent));
    // The ACK of a 2xx goes to the TU (whatever its branch).
    let out = t
        .receive_request(origin, &ack_for(&invite, "s1"), "client", false)
        .unwrap();
    assert_eq!(out, RequestOutcome::StrayAck);
    let e2e = request_with(
        "ACK",
        "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKe2e",
        Some("s1"),
        "c",
        1,
    );
    let out = t.receive_request(origin, &e2e, "client", false).unwrap();
    assert_eq!(out, RequestOutcome::StrayAck);
    assert_eq!(t.poll_timeout(), Some(origin + ms(32_000)));
    let (sent, evs) = run_until(&mut t, origin, origin + ms(100_000));
    assert!(sent.is_empty());
    assert!(matches!(evs[..], [Event::Terminated { .. }]));
    assert!(t.is_empty());
}

#[test]
fn transport_error_terminates() {
    let (mut t, id, invite) = proceeding(false);
    t.respond(t0(), id, response_bytes(&invite, 486, Some("s1")))
        .unwrap();
    t.transport_error(TxnId::Server(id));
    let evs = events(&mut t);
    assert!(matches!(evs[0], Event::TransportError { id: TxnId::Server(s) } if s == id));
    assert!(matches!(evs[1], Event::Terminated { .. }));
    assert!(t.is_empty());
    assert_eq!(t.poll_timeout(), None);
    let gone = t.respond(t0(), id, response_bytes(&invite, 486, None));
    assert_eq!(gone, Err(Error::UnknownTransaction));
}

#[test]
fn respond_refuses_bytes_that_are_not_a_response() {
    let (mut t, id, invite) = proceeding(false);
    let err = t.respond(t0(), id, invite.raw().clone());
    assert_eq!(err, Err(Error::NotAResponse));
}
