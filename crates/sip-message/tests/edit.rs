//! Forwarding edits on a realistic carrier INVITE: every edit a proxy makes, then the result
//! re-parsed and compared header by header with the original.

use bytes::Bytes;
use sip_message::sanity::{self, SanityConfig};
use sip_message::uri::Uri;
use sip_message::{HeaderName, Message, parse_datagram};

const INVITE: &str = "INVITE sip:34911234567@switch.example.com:5060;user=phone SIP/2.0\r\n\
Via: SIP/2.0/UDP 198.51.100.20:5060;branch=z9hG4bK-524287-1---a1b2c3;rport\r\n\
Max-Forwards: 70\r\n\
Route: <sip:switch.example.com;lr>, <sip:other.example.net;lr>\r\n\
From: \"Caller\" <sip:912013022@198.51.100.20>;tag=abc123\r\n\
To: <sip:34911234567@switch.example.com>\r\n\
Call-ID: 8f7e6d5c4b3a@198.51.100.20\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:912013022@198.51.100.20:5060>\r\n\
X-Unknown-Header:   kept   exactly ;as=is\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 29\r\n\
\r\n\
v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\n";

fn invite() -> Message {
    parse_datagram(Bytes::from_static(INVITE.as_bytes())).unwrap()
}

#[test]
fn forwarded_invite_carries_every_edit_and_nothing_else() {
    let m = invite();
    assert_eq!(m.body().len(), 29);
    let mut e = m.edit();
    e.prepend_via(b"SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bKvts1")
        .unwrap();
    e.set_via_received(Some(b"198.51.100.21"), 5062).unwrap();
    e.prepend_record_route(b"<sip:203.0.113.10:5060;lr>")
        .unwrap();
    e.remove_first_route().unwrap();
    assert_eq!(e.decrement_max_forwards().unwrap(), 69);
    e.set_request_uri(b"sip:1558491234567@192.0.2.50:5060")
        .unwrap();
    e.set_to_user(b"1558491234567").unwrap();
    e.set_from_user(b"34912013022").unwrap();
    e.set_body(None, b"v=0\r\n").unwrap();
    let out = parse_datagram(e.finish()).unwrap();
    sanity::check_request(&out, &SanityConfig::default()).unwrap();

    let h = out.headers();
    let vias: Vec<_> = h.vias().map(Result::unwrap).collect();
    assert_eq!(vias.len(), 2);
    assert_eq!(vias[0].branch(), Some(&b"z9hG4bKvts1"[..]));
    assert_eq!(vias[1].received(), Some(&b"198.51.100.21"[..]));
    assert_eq!(vias[1].rport(), Some(Some(5062)));
    assert_eq!(vias[1].branch(), Some(&b"z9hG4bK-524287-1---a1b2c3"[..]));
    let rr: Vec<_> = h.record_routes().map(Result::unwrap).collect();
    assert_eq!(rr[0].uri_raw, b"sip:203.0.113.10:5060;lr");
    let routes: Vec<_> = h.routes().map(Result::unwrap).collect();
    assert_eq!(routes.len(), 1);
    assert_eq!(routes[0].uri_raw, b"sip:other.example.net;lr");
    assert_eq!(h.max_forwards().unwrap(), Some(69));
    assert_eq!(
        out.request_uri_bytes(),
        Some(&b"sip:1558491234567@192.0.2.50:5060"[..])
    );
    assert_eq!(
        h.to().unwrap().uri_raw,
        b"sip:1558491234567@switch.example.com"
    );
    let from = h.from().unwrap();
    assert_eq!(from.uri_raw, b"sip:34912013022@198.51.100.20");
    assert_eq!(from.display_name, Some(&b"\"Caller\""[..]));
    assert_eq!(from.tag(), Some(&b"abc123"[..]));
    assert_eq!(h.content_length().unwrap(), Some(5));
    assert_eq!(out.body(), b"v=0\r\n");

    // Headers nobody edited go out byte for byte.
    let text = std::str::from_utf8(out.raw()).unwrap();
    for line in [
        "X-Unknown-Header:   kept   exactly ;as=is\r\n",
        "Call-ID: 8f7e6d5c4b3a@198.51.100.20\r\n",
        "CSeq: 1 INVITE\r\n",
        "Contact: <sip:912013022@198.51.100.20:5060>\r\n",
        "Content-Type: application/sdp\r\n",
    ] {
        assert!(text.contains(line), "{line:?} missing from\n{text}");
    }
}

#[test]
fn no_edit_is_the_identity() {
    let m = invite();
    assert_eq!(m.edit().finish(), m.raw());
}

#[test]
fn response_top_via_removed_from_a_multi_value_line() {
    let raw = "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 203.0.113.10;branch=z9hG4bKvts1 , SIP/2.0/UDP 198.51.100.20;branch=z9hG4bKc\r\n\
From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    let m = parse_datagram(Bytes::from(raw)).unwrap();
    let mut e = m.edit();
    e.remove_top_via().unwrap();
    let out = parse_datagram(e.finish()).unwrap();
    let vias: Vec<_> = out.headers().vias().map(Result::unwrap).collect();
    assert_eq!(vias.len(), 1);
    assert_eq!(vias[0].branch(), Some(&b"z9hG4bKc"[..]));
    assert!(
        std::str::from_utf8(out.raw())
            .unwrap()
            .contains("Via: SIP/2.0/UDP 198.51.100.20;branch=z9hG4bKc\r\n")
    );
}

#[test]
fn response_top_via_line_removed_whole() {
    let raw = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 203.0.113.10;branch=z9hG4bKvts1\r\nVia: SIP/2.0/UDP 198.51.100.20;branch=z9hG4bKc\r\n\
From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    let m = parse_datagram(Bytes::from(raw)).unwrap();
    let mut e = m.edit();
    e.remove_top_via().unwrap();
    let out = e.finish();
    assert_eq!(
        out.len(),
        raw.len() - "Via: SIP/2.0/UDP 203.0.113.10;branch=z9hG4bKvts1\r\n".len()
    );
}

#[test]
fn addr_spec_to_gets_brackets_and_missing_max_forwards_is_added() {
    let raw = "OPTIONS sip:h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: sip:a@b;tag=1\r\nTo: sip:c@d\r\n\
Call-ID: x\r\nCSeq: 1 OPTIONS\r\nl: 0\r\n\r\n";
    let m = parse_datagram(Bytes::from(raw)).unwrap();
    let mut e = m.edit();
    e.set_to_uri(b"sip:c@d;user=phone").unwrap();
    assert_eq!(e.decrement_max_forwards().unwrap(), 70);
    e.set_request_uri_user(b"bob").unwrap();
    let out = parse_datagram(e.finish()).unwrap();
    let to = out.headers().to().unwrap();
    assert!(to.bracketed);
    assert!(matches!(to.uri().unwrap(), Uri::Sip(s) if s.params.contains("user")));
    assert_eq!(out.headers().max_forwards().unwrap(), Some(70));
    assert_eq!(out.request_uri_bytes(), Some(&b"sip:bob@h"[..]));
}

#[test]
fn overlapping_edits_are_refused() {
    let m = invite();
    let mut e = m.edit();
    e.set_request_uri(b"sip:x@y").unwrap();
    assert!(e.set_request_uri_user(b"z").is_err());
    let h = *m.headers().get(HeaderName::MaxForwards).unwrap();
    e.replace_value(&h, b"5").unwrap();
    assert!(e.set_max_forwards(4).is_err());
}

#[test]
fn body_added_where_there_was_none() {
    let raw = "INVITE sip:h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\n\
Call-ID: x\r\nCSeq: 1 INVITE\r\n\r\n";
    let m = parse_datagram(Bytes::from(raw)).unwrap();
    let mut e = m.edit();
    e.set_body(Some(b"application/sdp"), b"v=0\r\n").unwrap();
    e.add_header("X-Vts", b"1").unwrap();
    let out = parse_datagram(e.finish()).unwrap();
    assert_eq!(out.body(), b"v=0\r\n");
    assert_eq!(out.headers().content_length().unwrap(), Some(5));
    assert!(
        out.headers()
            .content_type()
            .unwrap()
            .unwrap()
            .is("application", "sdp")
    );
    assert_eq!(out.headers().get_other("x-vts"), Some(&b"1"[..]));
}
