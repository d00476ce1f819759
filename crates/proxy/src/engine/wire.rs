//! Small pieces of wire format the engine writes: branches, tags, Via and Record-Route
//! values, requests inside a dialog, and where a URI or Via points.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use domain::{Carrier, Transport};
use sip_message::headers::Via;
use sip_message::uri::{Host, Uri};

use crate::transport::Peer;

/// Every branch the switch writes starts with this (the RFC 3261 magic cookie first).
pub(super) const BRANCH_PREFIX: &[u8] = b"z9hG4bK-vts-";

fn random_hex(n: usize) -> String {
    let mut s = String::with_capacity(n);
    for _ in 0..n / 16 {
        let _ = write!(s, "{:016x}", fastrand::u64(..));
    }
    s
}

/// A new Via branch.
pub(super) fn branch() -> String {
    format!(
        "{}{}",
        std::str::from_utf8(BRANCH_PREFIX).unwrap_or("z9hG4bK"),
        random_hex(16)
    )
}

/// A branch derived from another (for a stateless relay: the same input, the same branch).
pub(super) fn derived_branch(from: &[u8]) -> String {
    // FNV-1a: stable across runs, which a stateless relay needs for retransmissions.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in from {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!(
        "{}{h:016x}",
        std::str::from_utf8(BRANCH_PREFIX).unwrap_or("z9hG4bK")
    )
}

/// A new From/To tag.
/// A number as the user part of a SIP URI: characters RFC 3261 allows there as they are,
/// others (`#` of tech prefixes) %-escaped.
pub(super) fn escape_user(user: &str) -> String {
    let mut out = String::with_capacity(user.len());
    for b in user.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(super) fn tag() -> String {
    random_hex(16)
}

pub(super) fn via_transport(t: Transport) -> &'static str {
    match t {
        Transport::Udp => "UDP",
        Transport::Tcp => "TCP",
    }
}

/// Our Record-Route value.
pub(super) fn record_route(host: &str, t: Transport) -> String {
    match t {
        Transport::Udp => format!("<sip:{host};lr>"),
        Transport::Tcp => format!("<sip:{host};transport=tcp;lr>"),
    }
}

/// A carrier's address; `None` when its host is not an IP address (names are resolved by
/// the directory loader, not on the call path).
pub(super) fn carrier_peer(c: &Carrier) -> Option<Peer> {
    let ip: IpAddr = c
        .host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    Some(Peer {
        addr: SocketAddr::new(ip, c.port),
        transport: c.transport,
    })
}

fn host_ip(h: Host<'_>) -> Option<IpAddr> {
    match h {
        Host::V4(a) => Some(IpAddr::V4(a)),
        Host::V6(a) => Some(IpAddr::V6(a)),
        Host::Name(_) => None,
    }
}

/// Where a SIP URI points: its IP host, port (5060 when absent) and transport parameter.
pub(super) fn uri_peer(uri: &[u8]) -> Option<Peer> {
    let Ok(Uri::Sip(sip)) = Uri::parse(uri) else {
        return None;
    };
    let ip = host_ip(sip.host()?)?;
    let transport = match sip.params.get("transport").flatten() {
        Some(t) if t.eq_ignore_ascii_case(b"tcp") => Transport::Tcp,
        _ => Transport::Udp,
    };
    Some(Peer {
        addr: SocketAddr::new(ip, sip.port.unwrap_or(5060)),
        transport,
    })
}

/// Where a response goes by a Via (RFC 3261 §18.2.2 with RFC 3581): received and rport when
/// present, else sent-by.
pub(super) fn via_peer(via: &Via<'_>) -> Option<Peer> {
    let ip = match via.received() {
        Some(r) => Host::parse(r).and_then(host_ip)?,
        None => host_ip(via.host()?)?,
    };
    let port = via.rport().flatten().or(via.port).unwrap_or(5060);
    let transport = if via.transport.eq_ignore_ascii_case(b"TCP") {
        Transport::Tcp
    } else {
        Transport::Udp
    };
    Some(Peer {
        addr: SocketAddr::new(ip, port),
        transport,
    })
}

/// A request inside a dialog, written by the switch (BYE, or the ACK of an unwanted 2xx).
pub(super) struct InDialog<'a> {
    pub(super) method: &'a str,
    pub(super) target: &'a [u8],
    pub(super) via: &'a str,
    pub(super) routes: &'a [Bytes],
    pub(super) from: &'a [u8],
    pub(super) to: &'a [u8],
    pub(super) call_id: &'a [u8],
    pub(super) cseq: u32,
    pub(super) user_agent: &'a str,
    pub(super) reason: Option<&'a str>,
}

impl InDialog<'_> {
    pub(super) fn write(&self) -> Bytes {
        let mut out = Vec::with_capacity(512);
        let mut line = |parts: &[&[u8]]| {
            for p in parts {
                out.extend_from_slice(p);
            }
            out.extend_from_slice(b"\r\n");
        };
        line(&[self.method.as_bytes(), b" ", self.target, b" SIP/2.0"]);
        line(&[b"Via: ", self.via.as_bytes()]);
        for r in self.routes {
            line(&[b"Route: ", r]);
        }
        line(&[b"Max-Forwards: 70"]);
        line(&[b"From: ", self.from]);
        line(&[b"To: ", self.to]);
        line(&[b"Call-ID: ", self.call_id]);
        line(&[
            b"CSeq: ",
            self.cseq.to_string().as_bytes(),
            b" ",
            self.method.as_bytes(),
        ]);
        line(&[b"User-Agent: ", self.user_agent.as_bytes()]);
        if let Some(r) = self.reason {
            line(&[b"Reason: ", r.as_bytes()]);
        }
        line(&[b"Content-Length: 0"]);
        out.extend_from_slice(b"\r\n");
        Bytes::from(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branches_and_tags() {
        let b = branch();
        assert!(b.starts_with("z9hG4bK-vts-") && b.len() == 12 + 16);
        assert_ne!(branch(), branch());
        assert_eq!(derived_branch(b"x"), derived_branch(b"x"));
        assert_ne!(derived_branch(b"x"), derived_branch(b"y"));
        assert_eq!(tag().len(), 16);
    }

    #[test]
    fn uri_peers() {
        let p = uri_peer(b"sip:bob@127.0.0.1:5070;transport=TCP").unwrap();
        assert_eq!((p.addr.port(), p.transport), (5070, Transport::Tcp));
        let p = uri_peer(b"sip:[::1]").unwrap();
        assert_eq!((p.addr.port(), p.transport), (5060, Transport::Udp));
        assert!(uri_peer(b"sip:bob@example.com").is_none());
        assert!(uri_peer(b"tel:+1234").is_none());
    }

    #[test]
    fn in_dialog_request_parses() {
        let bytes = InDialog {
            method: "BYE",
            target: b"sip:bob@192.0.2.5:5060",
            via: "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-vts-1",
            routes: &[Bytes::from_static(b"<sip:192.0.2.9;lr>")],
            from: b"<sip:alice@a>;tag=1",
            to: b"<sip:bob@b>;tag=2",
            call_id: b"c@h",
            cseq: 3,
            user_agent: "vts",
            reason: Some("Q.850;cause=16"),
        }
        .write();
        let m = sip_message::parse_datagram(bytes).unwrap();
        sip_message::sanity::check_request(&m, &Default::default()).unwrap();
        assert_eq!(m.headers().cseq().unwrap().seq, 3);
        assert_eq!(m.headers().q850_cause(), Some(16));
    }
}
