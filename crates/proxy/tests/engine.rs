//! The engine in process, on paused time: the switch runs inside the test's runtime
//! (`testkit::TestSwitch`), customers and carriers are scripted user agents on loopback
//! sockets, and Tokio's paused clock jumps to the next timer whenever everything waits. So
//! the timers of a call (ring timeout, first-response failover, the session reaper) run
//! in milliseconds of wall time, and each test checks the virtual time they took.

use std::time::Duration;

use domain::CallEvent;
use proxy::ProxyConfig;
use testkit::{TestSwitch, Ua, World, header, invite, response, tag_of};
use tokio::time::Instant;

const NUMBER: &str = "34911234567";

/// Sends: a customer's INVITE; the carrier answers 100 and 180, then nothing. Asserts: at
/// the ring timeout (120 s by default, virtual) the customer gets 408 Request Timeout -
/// Ring Timeout, the carrier gets a CANCEL, and the call ends with 408, not earlier.
#[tokio::test(start_paused = true)]
async fn a_call_ringing_past_the_ring_timeout_gets_408_and_the_carrier_a_cancel() {
    let carrier = Ua::bind("127.0.0.1").await;
    let customer = Ua::bind("127.0.0.1").await;
    let world = World::new()
        .customer("acme", "127.0.0.1")
        .carrier("c1", carrier.addr(), 10);
    let cfg = ProxyConfig::default();
    let ring = cfg.ring_timeout;
    let mut switch = TestSwitch::start(&world, cfg).await;
    customer
        .send(
            switch.addr,
            &invite(customer.addr(), switch.addr, "ring-1", NUMBER),
        )
        .await;
    let (inv, from) = carrier.expect("INVITE ").await;
    carrier
        .send(from, &response(&inv, "100 Trying", None, ""))
        .await;
    carrier
        .send(from, &response(&inv, "180 Ringing", Some("c1"), ""))
        .await;
    customer.expect("SIP/2.0 180").await;
    let ringing = Instant::now();
    let (cancel, _) = carrier.expect("CANCEL ").await;
    assert!(
        ringing.elapsed() >= ring,
        "CANCEL after {:?}, the ring timeout is {ring:?}",
        ringing.elapsed()
    );
    assert_eq!(header(&cancel, "Call-ID"), header(&inv, "Call-ID"));
    let (reply, _) = customer.expect("SIP/2.0 408").await;
    assert!(
        reply.starts_with("SIP/2.0 408 Request Timeout - Ring Timeout"),
        "{reply}"
    );
    match switch.ended().await {
        CallEvent::Ended { code, .. } => assert_eq!(code, 408),
        e => panic!("{e:?}"),
    }
    switch.stop().await;
}

/// Sends: a customer's INVITE with two carriers; the first never answers at all. Asserts:
/// the second carrier gets the INVITE once the first-response timeout (5 s by default,
/// virtual) has passed and not before; its 200 reaches the customer.
#[tokio::test(start_paused = true)]
async fn a_carrier_silent_past_the_first_response_timeout_is_failed_over() {
    let silent = Ua::bind("127.0.0.1").await;
    let backup = Ua::bind("127.0.0.1").await;
    let customer = Ua::bind("127.0.0.1").await;
    let world = World::new()
        .customer("acme", "127.0.0.1")
        .carrier("silent", silent.addr(), 10)
        .carrier("backup", backup.addr(), 5);
    let cfg = ProxyConfig::default();
    let first_response = cfg.first_response_timeout;
    let mut switch = TestSwitch::start(&world, cfg).await;
    let sent = Instant::now();
    customer
        .send(
            switch.addr,
            &invite(customer.addr(), switch.addr, "fo-1", NUMBER),
        )
        .await;
    silent.expect("INVITE ").await;
    let (inv, from) = backup.expect("INVITE ").await;
    assert!(
        sent.elapsed() >= first_response,
        "failed over after {:?}, the first-response timeout is {first_response:?}",
        sent.elapsed()
    );
    let contact = format!("Contact: <sip:backup@{}>\n", backup.addr());
    backup
        .send(from, &response(&inv, "200 OK", Some("b1"), &contact))
        .await;
    let (ok, _) = customer.expect("SIP/2.0 200").await;
    assert_eq!(tag_of(header(&ok, "To")), "b1");
    match switch.next_event().await {
        CallEvent::Started { .. } => {}
        e => panic!("{e:?}"),
    }
    switch.stop().await;
}

/// Sends: a call answered with `Session-Expires: 20` and ACKed, then no refresh. Asserts:
/// the switch ends it by itself (the session reaper) with a BYE to each side once the
/// interval plus a third of it (26.7 s, virtual) has passed and not before, and the CDR
/// says the switch hung up.
#[tokio::test(start_paused = true)]
async fn a_session_never_refreshed_is_reaped_with_a_bye_to_both_sides() {
    let carrier = Ua::bind("127.0.0.1").await;
    let customer = Ua::bind("127.0.0.1").await;
    let world = World::new()
        .customer("acme", "127.0.0.1")
        .carrier("c1", carrier.addr(), 10);
    let mut switch = TestSwitch::start(&world, ProxyConfig::default()).await;
    customer
        .send(
            switch.addr,
            &invite(customer.addr(), switch.addr, "se-1", NUMBER),
        )
        .await;
    let (inv, from) = carrier.expect("INVITE ").await;
    let extra = format!(
        "Contact: <sip:c1@{}>\nSession-Expires: 20;refresher=uac\n",
        carrier.addr()
    );
    carrier
        .send(from, &response(&inv, "200 OK", Some("c1"), &extra))
        .await;
    let (ok, _) = customer.expect("SIP/2.0 200").await;
    let answered = Instant::now();
    let target = header(&ok, "Contact")
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap()
        .to_string();
    let ack = format!(
        "ACK {target} SIP/2.0\n\
Via: SIP/2.0/UDP {ua};branch=z9hG4bK-tk-se-1-ack;rport\n\
From: {from_}\n\
To: {to}\n\
Call-ID: se-1\n\
CSeq: 1 ACK\n\
Max-Forwards: 70\n\
Content-Length: 0\n\n",
        ua = customer.addr(),
        from_ = header(&ok, "From"),
        to = header(&ok, "To"),
    );
    customer.send(switch.addr, &ack).await;
    carrier.expect("ACK ").await;
    // No refresh: the reaper sends a BYE to each side.
    let (bye_out, at) = carrier.expect("BYE ").await;
    let reaped = answered.elapsed();
    assert!(
        reaped >= Duration::from_millis(26_600) && reaped < Duration::from_secs(32),
        "reaped after {reaped:?}: 20 s + 20 s / 3 expected"
    );
    carrier
        .send(at, &response(&bye_out, "200 OK", None, ""))
        .await;
    let (bye_in, at) = customer.expect("BYE ").await;
    customer
        .send(at, &response(&bye_in, "200 OK", None, ""))
        .await;
    match switch.ended().await {
        CallEvent::Ended { hangup, reason, .. } => {
            assert_eq!(hangup, domain::HangupSide::Switch);
            assert!(reason.contains("Session Expired"), "{reason}");
        }
        e => panic!("{e:?}"),
    }
    switch.stop().await;
}
