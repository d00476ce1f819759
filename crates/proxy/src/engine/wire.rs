//! Small pieces of wire format the engine writes: branches, tags, Via and Record-Route
//! values, requests inside a dialog, and where a URI or Via points.

use std::fmt::Write as _;
use std::net::SocketAddr;

use bytes::Bytes;
use domain::{Carrier, Transport};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use sip_message::Message;

use crate::config::BranchKey;
use crate::transport::Peer;

/// Every branch the switch writes starts with this (the RFC 3261 magic cookie first).
pub(super) const BRANCH_PREFIX: &[u8] = b"z9hG4bK-vts-";

/// `n` random bytes as hex, from a CSPRNG (the thread's ChaCha generator, seeded by the
/// operating system): tags, branches and Call-IDs must not be guessable, or a stranger
/// could forge in-dialog requests and responses.
fn random_hex(n: usize) -> String {
    use rand::Rng as _;
    let mut rng = rand::rng();
    let mut s = String::with_capacity(n);
    for _ in 0..n.div_ceil(16) {
        let _ = write!(s, "{:016x}", rng.next_u64());
    }
    s.truncate(n);
    s
}

/// Branches with a keyed MAC: `z9hG4bK-vts-` + 16 hex digits of nonce + 16 hex digits of
/// HMAC-SHA256(key, nonce ‖ Call-ID), truncated. A response whose top Via carries a branch
/// without a valid MAC for its Call-ID was not caused by the switch (forged, or sent to
/// probe it): it is dropped. A request that carries one of our branches in any Via has been
/// through the switch before: a loop.
#[derive(Clone)]
pub(super) struct Branches {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Branches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Branches")
    }
}

const NONCE_HEX: usize = 16;
const MAC_HEX: usize = 16;

impl Branches {
    pub(super) fn new(key: &BranchKey) -> Branches {
        Branches {
            mac: <Hmac<Sha256> as KeyInit>::new_from_slice(key.secret())
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length")),
        }
    }

    fn tag(&self, nonce: &[u8], call_id: &[u8]) -> u64 {
        let mut m = self.mac.clone();
        m.update(nonce);
        m.update(b"\0");
        m.update(call_id);
        let out = m.finalize().into_bytes();
        let mut first = [0u8; 8];
        first.copy_from_slice(&out[..8]);
        u64::from_be_bytes(first)
    }

    fn with_nonce(&self, nonce: &str, call_id: &[u8]) -> String {
        let mut b = String::with_capacity(BRANCH_PREFIX.len() + NONCE_HEX + MAC_HEX);
        b.push_str(std::str::from_utf8(BRANCH_PREFIX).unwrap_or("z9hG4bK"));
        b.push_str(nonce);
        let _ = write!(b, "{:016x}", self.tag(nonce.as_bytes(), call_id));
        b
    }

    /// A new branch for a request of dialog or call `call_id`.
    pub(super) fn new_branch(&self, call_id: &[u8]) -> String {
        self.with_nonce(&random_hex(NONCE_HEX), call_id)
    }

    /// A branch derived from another (a stateless relay: the same input, the same branch,
    /// so that retransmissions of the input match).
    pub(super) fn derived(&self, from: &[u8], call_id: &[u8]) -> String {
        let mut m = self.mac.clone();
        m.update(b"derive\0");
        m.update(from);
        let out = m.finalize().into_bytes();
        let mut nonce = String::with_capacity(NONCE_HEX);
        for b in &out[8..16] {
            let _ = write!(nonce, "{b:02x}");
        }
        self.with_nonce(&nonce, call_id)
    }

    /// Whether `branch` is one the switch issued for `call_id`.
    pub(super) fn is_ours(&self, branch: &[u8], call_id: &[u8]) -> bool {
        let Some(rest) = branch.strip_prefix(BRANCH_PREFIX) else {
            return false;
        };
        if rest.len() != NONCE_HEX + MAC_HEX {
            return false;
        }
        let (nonce, mac) = rest.split_at(NONCE_HEX);
        let Some(mac) = std::str::from_utf8(mac)
            .ok()
            .and_then(|m| u64::from_str_radix(m, 16).ok())
        else {
            return false;
        };
        // One 64-bit comparison of public data with a secret-keyed tag: a forger learns
        // nothing from its timing that it could not learn from the drop itself.
        self.tag(nonce, call_id) == mac
    }
}

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
    let ip = domain::routing::carrier_ip(c)?;
    Some(Peer {
        addr: SocketAddr::new(ip, c.port),
        transport: c.transport,
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

/// The Via values of a request, as written (one per header line).
pub(super) fn via_values(msg: &Message) -> Vec<Bytes> {
    let h = msg.headers();
    h.all(sip_message::HeaderName::Via)
        .map(|l| Bytes::copy_from_slice(h.value(l).trim_ascii()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branches_carry_a_mac_and_tags_are_random() {
        let keys = Branches::new(&BranchKey::random());
        let b = keys.new_branch(b"call-1");
        assert!(b.starts_with("z9hG4bK-vts-") && b.len() == 12 + 32, "{b}");
        assert_ne!(keys.new_branch(b"call-1"), b);
        assert!(keys.is_ours(b.as_bytes(), b"call-1"));
        assert!(
            !keys.is_ours(b.as_bytes(), b"call-2"),
            "bound to the Call-ID"
        );
        let mut forged = b.clone().into_bytes();
        let last = forged.len() - 1;
        forged[last] = if forged[last] == b'0' { b'1' } else { b'0' };
        assert!(!keys.is_ours(&forged, b"call-1"));
        assert!(!keys.is_ours(b"z9hG4bK-vts-0123456789abcdef", b"call-1"));
        let other = Branches::new(&BranchKey::random());
        assert!(
            !other.is_ours(b.as_bytes(), b"call-1"),
            "another install's key"
        );
        let d = keys.derived(b"z9hG4bKabc", b"call-1");
        assert_eq!(d, keys.derived(b"z9hG4bKabc", b"call-1"));
        assert_ne!(d, keys.derived(b"z9hG4bKabd", b"call-1"));
        assert!(keys.is_ours(d.as_bytes(), b"call-1"));
        assert_eq!(tag().len(), 16);
        assert_ne!(tag(), tag());
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
