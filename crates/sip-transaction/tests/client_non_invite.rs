//! Client non-INVITE transaction (RFC 3261 §17.1.2): every transition, Timers E, F, K.

mod common;

use common::*;
use sip_transaction::{
    ClientNonInviteState, ClientTxnId, Config, Event, ResponseOutcome, State, Timer, Transactions,
    TxnId,
};

fn trying(reliable: bool) -> (Transactions<Addr>, ClientTxnId, sip_message::Message) {
    let mut t = Transactions::new(Config::default());
    let options = request("OPTIONS", "z9hG4bKopt1");
    let id = t
        .send_request(t0(), options.clone(), "server", reliable)
        .unwrap();
    assert_eq!(transmits(&mut t).len(), 1);
    assert_eq!(
        t.state(TxnId::Client(id)),
        Some(State::ClientNonInvite(ClientNonInviteState::Trying))
    );
    (t, id, options)
}

fn state(t: &Transactions<Addr>, id: ClientTxnId) -> Option<State> {
    t.state(TxnId::Client(id))
}

fn millis(sent: &[(std::time::Duration, String)]) -> Vec<u64> {
    sent.iter().map(|(d, _)| d.as_millis() as u64).collect()
}

#[test]
fn timer_e_doubles_capped_at_t2_until_timer_f() {
    let origin = t0();
    let (mut t, id, _) = trying(false);
    let (sent, evs) = run_until(&mut t, origin, origin + ms(100_000));
    assert_eq!(
        millis(&sent),
        [
            500, 1500, 3500, 7500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500
        ]
    );
    assert!(sent.iter().all(|(_, l)| l.starts_with("OPTIONS ")));
    assert!(matches!(evs[0], Event::Timeout { id: TxnId::Client(c), timer: Timer::F } if c == id));
    assert!(matches!(evs[1], Event::Terminated { .. }));
    assert!(t.is_empty());
}

#[test]
fn proceeding_retransmits_every_t2() {
    let origin = t0();
    let (mut t, id, options) = trying(false);
    let out = t.receive_response(origin + ms(100), response(&options, 100, None));
    assert!(matches!(out, ResponseOutcome::Matched(c) if c == id));
    assert_eq!(
        state(&t, id),
        Some(State::ClientNonInvite(ClientNonInviteState::Proceeding))
    );
    let (sent, evs) = run_until(&mut t, origin, origin + ms(20_000));
    // The E already armed fires at 500 ms, then every T2.
    assert_eq!(millis(&sent), [500, 4500, 8500, 12_500, 16_500]);
    assert_eq!(evs.len(), 1, "only the 100 event: {evs:?}");
    // F still fires in Proceeding.
    let (_, evs) = run_until(&mut t, origin, origin + ms(100_000));
    assert!(matches!(
        evs[0],
        Event::Timeout {
            timer: Timer::F,
            ..
        }
    ));
    assert!(t.is_empty());
}

#[test]
fn final_moves_to_completed_absorbs_retransmissions_then_timer_k() {
    let origin = t0();
    let (mut t, id, options) = trying(false);
    t.receive_response(origin + ms(50), response(&options, 180, None));
    assert_eq!(
        state(&t, id),
        Some(State::ClientNonInvite(ClientNonInviteState::Proceeding))
    );
    let ok = response(&options, 200, Some("s1"));
    let out = t.receive_response(origin + ms(100), ok.clone());
    assert!(matches!(out, ResponseOutcome::Matched(c) if c == id));
    assert_eq!(
        state(&t, id),
        Some(State::ClientNonInvite(ClientNonInviteState::Completed))
    );
    assert_eq!(events(&mut t).len(), 2);
    assert!(matches!(
        t.receive_response(origin + ms(200), ok),
        ResponseOutcome::Absorbed
    ));
    assert!(events(&mut t).is_empty());
    // No retransmission in Completed; K = T4 after the final response.
    assert_eq!(t.poll_timeout(), Some(origin + ms(5100)));
    let (sent, evs) = run_until(&mut t, origin, origin + ms(100_000));
    assert!(sent.is_empty());
    assert!(matches!(evs[..], [Event::Terminated { .. }]));
    assert!(t.is_empty());
}

#[test]
fn final_in_trying_goes_to_completed() {
    let (mut t, id, options) = trying(false);
    t.receive_response(t0(), response(&options, 404, Some("s1")));
    assert_eq!(
        state(&t, id),
        Some(State::ClientNonInvite(ClientNonInviteState::Completed))
    );
}

#[test]
fn reliable_transport_sends_no_retransmissions_and_timer_k_is_zero() {
    let origin = t0();
    let (mut t, id, options) = trying(true);
    assert_eq!(t.poll_timeout(), Some(origin + ms(32_000)), "only Timer F");
    t.receive_response(origin, response(&options, 200, Some("s1")));
    let evs = events(&mut t);
    assert!(matches!(evs[0], Event::Response { .. }));
    assert!(matches!(evs[1], Event::Terminated { id: TxnId::Client(c) } if c == id));
    assert!(t.is_empty());
    assert!(transmits(&mut t).is_empty());
}

#[test]
fn transport_error_terminates() {
    let (mut t, id, _) = trying(false);
    t.transport_error(TxnId::Client(id));
    let evs = events(&mut t);
    assert!(matches!(evs[0], Event::TransportError { .. }));
    assert!(matches!(evs[1], Event::Terminated { .. }));
    assert!(t.is_empty());
}
