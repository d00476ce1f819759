//! Attacks on the wire against a real `vts serve` (issue 12, "Harden the call path"): raw
//! UDP datagrams from a test socket on loopback, and the responses the switch writes.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use crate::common::*;

/// A UDP socket on loopback that talks to the switch.
struct Peer {
    socket: UdpSocket,
    switch: SocketAddr,
}

impl Peer {
    fn new(switch: SocketAddr) -> Peer {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Peer { socket, switch }
    }

    fn port(&self) -> u16 {
        self.socket.local_addr().unwrap().port()
    }

    fn send(&self, datagram: &[u8]) {
        self.socket.send_to(datagram, self.switch).unwrap();
    }

    /// The next response that is not `100 Trying` (bounded wait).
    fn final_response(&self, serve: &Serve) -> Response {
        let mut buf = [0u8; 65535];
        loop {
            let (n, from) = self
                .socket
                .recv_from(&mut buf)
                .unwrap_or_else(|e| panic!("no response ({e}):\n{}", serve.log_text()));
            assert_eq!(from, self.switch);
            let r = Response::parse(&buf[..n]);
            if r.status != 100 {
                return r;
            }
        }
    }
}

/// A response read by hand (the test does not depend on the parser under test).
struct Response {
    status: u16,
    reason: String,
    /// Header lines as (lower-case name, value), in order.
    headers: Vec<(String, String)>,
}

impl Response {
    fn parse(bytes: &[u8]) -> Response {
        let text = String::from_utf8_lossy(bytes);
        let head = text.split("\r\n\r\n").next().unwrap();
        let mut lines = head.split("\r\n");
        let start = lines.next().unwrap();
        let mut parts = start.splitn(3, ' ');
        assert_eq!(parts.next(), Some("SIP/2.0"), "{text}");
        let status = parts.next().unwrap().parse().unwrap();
        let reason = parts.next().unwrap_or_default().to_string();
        let headers = lines
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap_or((l, ""));
                (n.trim().to_ascii_lowercase(), v.trim().to_string())
            })
            .collect();
        Response {
            status,
            reason,
            headers,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn top_via(&self) -> &str {
        let via = self.header("via").expect("a Via");
        via.split(',').next().unwrap().trim()
    }
}

/// A request from `peer` with the given top Via parameters, CSeq and extra header lines.
fn request(method: &str, peer: &Peer, via_params: &str, cseq: u32, extra: &[u8]) -> Vec<u8> {
    request_with_body(method, peer, via_params, cseq, extra, b"")
}

fn request_with_body(
    method: &str,
    peer: &Peer,
    via_params: &str,
    cseq: u32,
    extra: &[u8],
    body: &[u8],
) -> Vec<u8> {
    let port = peer.port();
    let mut m = format!(
        "{method} sip:100@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-wire-{cseq}{via_params}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:200@127.0.0.1:{port}>;tag=w1\r\n\
         To: <sip:100@127.0.0.1>\r\n\
         Call-ID: wire-{cseq}@127.0.0.1\r\n\
         CSeq: {cseq} {method}\r\n\
         Contact: <sip:200@127.0.0.1:{port}>\r\n"
    )
    .into_bytes();
    m.extend_from_slice(extra);
    if !body.is_empty() {
        m.extend_from_slice(b"Content-Type: application/sdp\r\n");
    }
    m.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    m.extend_from_slice(body);
    m
}

fn switch() -> (Vts, Serve, SocketAddr) {
    let vts = Vts::new(VTS);
    let port = free_port();
    let serve = vts.serve(&[format!("udp:127.0.0.1:{port}")]);
    (vts, serve, at(port))
}

#[test]
fn a_nul_byte_in_a_header_value_gets_400() {
    let (_vts, serve, addr) = switch();
    let peer = Peer::new(addr);
    peer.send(&request(
        "OPTIONS",
        &peer,
        "",
        1,
        b"User-Agent: evil\0agent\r\n",
    ));
    let r = peer.final_response(&serve);
    assert_eq!((r.status, r.reason.as_str()), (400, "Bad Request"));
    assert_eq!(r.header("cseq"), Some("1 OPTIONS"));
    // Any other control character but HTAB too (here a BEL); a tab passes.
    peer.send(&request("OPTIONS", &peer, "", 2, b"User-Agent: a\x07b\r\n"));
    assert_eq!(peer.final_response(&serve).status, 400);
    peer.send(&request("OPTIONS", &peer, "", 3, b"User-Agent: a\tb\r\n"));
    assert_eq!(peer.final_response(&serve).status, 200);
    serve.stop();
}

#[test]
fn responses_fill_the_rport_the_request_asked_for() {
    let (_vts, serve, addr) = switch();
    let peer = Peer::new(addr);
    let port = peer.port();
    // Through a server transaction (Engine::reply).
    peer.send(&request("OPTIONS", &peer, ";rport", 1, b""));
    let r = peer.final_response(&serve);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.top_via(),
        format!(
            "SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-wire-1;rport={port};received=127.0.0.1"
        )
    );
    // A stateless reply (a request that fails sanity) too.
    peer.send(&request(
        "OPTIONS",
        &peer,
        ";rport",
        2,
        b"User-Agent: \0\r\n",
    ));
    let r = peer.final_response(&serve);
    assert_eq!(r.status, 400);
    assert!(
        r.top_via()
            .ends_with(&format!(";rport={port};received=127.0.0.1")),
        "{}",
        r.top_via()
    );
    // Without rport, the Via goes back as written (its host is the source).
    peer.send(&request("OPTIONS", &peer, "", 3, b""));
    let r = peer.final_response(&serve);
    assert_eq!(
        r.top_via(),
        format!("SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-wire-3")
    );
    serve.stop();
}

#[test]
fn an_invite_whose_cseq_leaves_no_room_gets_400() {
    let (_vts, serve, addr) = switch();
    let peer = Peer::new(addr);
    // The switch's own BYE would need CSeq 2^31, out of range (RFC 3261 §8.1.1.5).
    peer.send(&request("INVITE", &peer, "", 2147483647, b""));
    let r = peer.final_response(&serve);
    assert_eq!(
        (r.status, r.reason.as_str()),
        (400, "Bad Request - CSeq Too Large")
    );
    assert_eq!(r.header("cseq"), Some("2147483647 INVITE"));
    // 2^31 and beyond do not parse as a CSeq: 400 as well.
    peer.send(&request("INVITE", &peer, "", 1 << 31, b""));
    let r = peer.final_response(&serve);
    assert_eq!((r.status, r.reason.as_str()), (400, "Bad Request"));
    serve.stop();
}

#[test]
fn a_crafted_15_kb_offer_gets_488_and_never_reaches_the_carrier() {
    let vts = Vts::new(VTS);
    vts.add_customer("acme", "127.0.0.1");
    let carrier = UdpSocket::bind("127.0.0.1:0").unwrap();
    let carrier_port = carrier.local_addr().unwrap().port();
    let id = vts.add_carrier("alaw", carrier_port, 10, "udp").to_string();
    vts.cli(&["carrier", "profile", &id, "--codecs", "PCMA"]);
    let port = free_port();
    let serve = vts.serve(&[format!("udp:127.0.0.1:{port}")]);
    let peer = Peer::new(at(port));
    // PCMA is offered, among a thousand payload types and hundreds of rtpmap lines: the
    // offer the old filter spent ~100 ms of the engine on, per carrier.
    let mut sdp = String::from(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio 4000 RTP/AVP 8",
    );
    for i in 0..1000 {
        sdp.push_str(&format!(" {}", 96 + i % 32));
    }
    sdp.push_str("\r\na=rtpmap:8 PCMA/8000\r\n");
    for i in 0..340 {
        sdp.push_str(&format!(
            "a=rtpmap:{} X-CODEC-{i:03}/8000/1\r\n",
            96 + i % 32
        ));
    }
    assert!(sdp.len() >= 15_000, "{}", sdp.len());
    let invite = request_with_body("INVITE", &peer, "", 1, b"", sdp.as_bytes());
    // A number the default profile reads (E.164).
    let invite = String::from_utf8(invite)
        .unwrap()
        .replace("sip:100@", "sip:441234567890@")
        .into_bytes();
    assert!(invite.len() < 16 * 1024, "within sip.max_message_size");
    peer.send(&invite);
    let r = peer.final_response(&serve);
    assert_eq!(
        (r.status, r.reason.as_str()),
        (488, "Not Acceptable Here"),
        "{}",
        serve.log_text()
    );
    // The carrier never saw the INVITE (a probe OPTIONS may come; nothing else).
    carrier
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 65535];
    while let Ok((n, _)) = carrier.recv_from(&mut buf) {
        assert!(
            !buf[..n].starts_with(b"INVITE"),
            "the carrier got the offer"
        );
    }
    serve.stop();
}
