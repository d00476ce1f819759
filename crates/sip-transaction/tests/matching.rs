//! Transaction matching (RFC 3261 §17.1.3, §17.2.3): CANCEL to INVITE by branch and by the
//! RFC 2543 rules, the RFC 4475 `badbranch` case, RFC 2543 ACK matching by the To tag of the
//! sent response, sent-by and method in the RFC 3261 key.

mod common;

use common::*;
use sip_message::Message;
use sip_transaction::{
    Config, Event, RequestOutcome, ServerKey, ServerNonInviteState, ServerTxnId, State,
    Transactions, TxnId,
};

const OLD_VIA: &str = "SIP/2.0/UDP 192.0.2.1:5060";

fn table() -> Transactions<Addr> {
    Transactions::new(Config::default())
}

fn new_id(t: &mut Transactions<Addr>, req: &Message) -> ServerTxnId {
    match t.receive_request(t0(), req, "client", false).unwrap() {
        RequestOutcome::New(id) => id,
        other => panic!("expected a new transaction, got {other:?}"),
    }
}

#[test]
fn cancel_matches_its_invite_by_branch() {
    let mut t = table();
    let invite = request("INVITE", "z9hG4bKc1");
    let inv = new_id(&mut t, &invite);
    let cancel = request("CANCEL", "z9hG4bKc1");
    let out = t.receive_request(t0(), &cancel, "client", false).unwrap();
    let RequestOutcome::Cancel {
        invite: Some(i),
        cancel: can,
    } = out
    else {
        panic!("{out:?}")
    };
    assert_eq!(i, inv);
    assert_ne!(can, inv);
    assert_eq!(
        t.state(TxnId::Server(can)),
        Some(State::ServerNonInvite(ServerNonInviteState::Trying))
    );
    // The CANCEL's retransmission hits the CANCEL transaction, not the INVITE one.
    t.respond(t0(), can, response_bytes(&cancel, 200, Some("s1")))
        .unwrap();
    t.respond(t0(), inv, response_bytes(&invite, 487, Some("s1")))
        .unwrap();
    transmits(&mut t);
    let out = t.receive_request(t0(), &cancel, "client", false).unwrap();
    assert_eq!(out, RequestOutcome::Retransmission);
    assert_eq!(first_line(&transmits(&mut t)[0].payload), "SIP/2.0 200 OK");
    // The key helper agrees with the table.
    let key = ServerKey::from_request(&cancel)
        .unwrap()
        .invite_key_for_cancel();
    assert_eq!(t.find_server(&key), Some(inv));
    // The ACK of the 487 (same branch) is absorbed.
    let ack = request_with(
        "ACK",
        &format!("{OLD_VIA};branch=z9hG4bKc1"),
        Some("s1"),
        "call-1@192.0.2.1",
        1,
    );
    assert_eq!(
        t.receive_request(t0(), &ack, "client", false).unwrap(),
        RequestOutcome::AckAbsorbed
    );
}

#[test]
fn cancel_with_another_branch_or_sent_by_matches_nothing() {
    let mut t = table();
    new_id(&mut t, &request("INVITE", "z9hG4bKc1"));
    let out = t
        .receive_request(t0(), &request("CANCEL", "z9hG4bKc2"), "client", false)
        .unwrap();
    assert!(matches!(out, RequestOutcome::Cancel { invite: None, .. }));
    let moved = request_with(
        "CANCEL",
        "SIP/2.0/UDP 192.0.2.99:5060;branch=z9hG4bKc1",
        None,
        "call-1@192.0.2.1",
        1,
    );
    let out = t.receive_request(t0(), &moved, "client", false).unwrap();
    assert!(matches!(out, RequestOutcome::Cancel { invite: None, .. }));
}

#[test]
fn same_branch_from_another_sent_by_is_another_transaction() {
    let mut t = table();
    let a = new_id(&mut t, &request("INVITE", "z9hG4bKsame"));
    let other = request_with(
        "INVITE",
        "SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bKsame",
        None,
        "x",
        1,
    );
    let b = new_id(&mut t, &other);
    assert_ne!(a, b);
    // The host is compared case-insensitively.
    let upper = request_with(
        "INVITE",
        "SIP/2.0/UDP EXAMPLE.com:5060;branch=z9hG4bKh",
        None,
        "y",
        1,
    );
    let lower = request_with(
        "INVITE",
        "SIP/2.0/UDP example.COM:5060;branch=z9hG4bKh",
        None,
        "y",
        1,
    );
    new_id(&mut t, &upper);
    assert_eq!(
        t.receive_request(t0(), &lower, "client", false).unwrap(),
        RequestOutcome::Retransmission
    );
}

#[test]
fn cancel_matches_its_invite_by_rfc2543_rules() {
    let mut t = table();
    let invite = request_with("INVITE", OLD_VIA, None, "old@192.0.2.1", 7);
    let inv = new_id(&mut t, &invite);
    assert!(!ServerKey::from_request(&invite).unwrap().is_rfc3261());
    let cancel = request_with("CANCEL", OLD_VIA, None, "old@192.0.2.1", 7);
    let out = t.receive_request(t0(), &cancel, "client", false).unwrap();
    assert!(matches!(out, RequestOutcome::Cancel { invite: Some(i), .. } if i == inv));
    // Any field that differs breaks the match: CSeq number, Call-ID, top Via.
    for other in [
        request_with("CANCEL", OLD_VIA, None, "old@192.0.2.1", 8),
        request_with("CANCEL", OLD_VIA, None, "new@192.0.2.1", 7),
        request_with(
            "CANCEL",
            "SIP/2.0/UDP 192.0.2.1:5070",
            None,
            "old@192.0.2.1",
            7,
        ),
    ] {
        let out = t.receive_request(t0(), &other, "client", false).unwrap();
        assert!(
            matches!(out, RequestOutcome::Cancel { invite: None, .. }),
            "{out:?}"
        );
    }
    // An INVITE retransmission matches under the same rules.
    assert_eq!(
        t.receive_request(t0(), &invite, "client", false).unwrap(),
        RequestOutcome::Retransmission
    );
}

/// RFC 4475 §3.3.14 `badbranch`: the branch is exactly the magic cookie.
const BADBRANCH: &str = "OPTIONS sip:user@example.com SIP/2.0\r\n\
To: sip:user@example.com\r\n\
From: sip:caller@example.org;tag=33242\r\n\
Max-Forwards: 3\r\n\
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK\r\n\
Accept: application/sdp\r\n\
Call-ID: badbranch.sadonfo23i420jv0as0derf3j3n\r\n\
CSeq: 8 OPTIONS\r\n\
l: 0\r\n\r\n";

#[test]
fn badbranch_is_matched_by_rfc2543_rules() {
    let mut t = table();
    let first = parse(BADBRANCH);
    assert!(!ServerKey::from_request(&first).unwrap().is_rfc3261());
    let id = new_id(&mut t, &first);
    assert_eq!(
        t.receive_request(t0(), &parse(BADBRANCH), "client", false)
            .unwrap(),
        RequestOutcome::Retransmission
    );
    // Same cookie-only branch, another Call-ID: a different transaction, which branch
    // matching would have confused with the first.
    let other = parse(&BADBRANCH.replace("badbranch.sadonfo", "another.sadonfo"));
    assert_ne!(new_id(&mut t, &other), id);
    // Same, another CSeq number.
    let other = parse(&BADBRANCH.replace("CSeq: 8", "CSeq: 9"));
    new_id(&mut t, &other);
    assert_eq!(t.len(), 3);
}

#[test]
fn rfc2543_ack_is_matched_by_the_to_tag_of_the_sent_response() {
    let mut t = table();
    let invite = request_with("INVITE", OLD_VIA, None, "ack@192.0.2.1", 3);
    let id = new_id(&mut t, &invite);
    // Before any final response an ACK matches nothing.
    let ack = request_with("ACK", OLD_VIA, Some("srv1"), "ack@192.0.2.1", 3);
    assert_eq!(
        t.receive_request(t0(), &ack, "client", false).unwrap(),
        RequestOutcome::StrayAck
    );
    t.respond(t0(), id, response_bytes(&invite, 486, Some("srv1")))
        .unwrap();
    // Wrong To tag, or none: not this transaction's ACK.
    let wrong = request_with("ACK", OLD_VIA, Some("other"), "ack@192.0.2.1", 3);
    assert_eq!(
        t.receive_request(t0(), &wrong, "client", false).unwrap(),
        RequestOutcome::StrayAck
    );
    let untagged = request_with("ACK", OLD_VIA, None, "ack@192.0.2.1", 3);
    assert_eq!(
        t.receive_request(t0(), &untagged, "client", false).unwrap(),
        RequestOutcome::StrayAck
    );
    assert_eq!(
        t.receive_request(t0(), &ack, "client", false).unwrap(),
        RequestOutcome::AckAbsorbed
    );
    // Both keys go away with the transaction.
    let (_, evs) = run_until(&mut t, t0(), t0() + ms(100_000));
    assert!(matches!(evs[..], [Event::Terminated { .. }]));
    assert!(t.is_empty());
    assert_eq!(
        t.receive_request(t0(), &ack, "client", false).unwrap(),
        RequestOutcome::StrayAck
    );
}

#[test]
fn terminate_removes_a_transaction_and_its_keys() {
    let mut t = table();
    let invite = request("INVITE", "z9hG4bKterm");
    let id = new_id(&mut t, &invite);
    t.terminate(TxnId::Server(id));
    assert!(matches!(events(&mut t)[..], [Event::Terminated { id: TxnId::Server(s) }] if s == id));
    assert!(t.is_empty());
    assert!(matches!(
        t.receive_request(t0(), &invite, "client", false).unwrap(),
        RequestOutcome::New(_)
    ));
}
