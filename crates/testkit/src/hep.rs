//! A HEPv3 decoder for tests, written apart from the switch's encoder
//! (`telemetry::hep`) so that a test checks the encoding against the specification's
//! chunk table, not against itself.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// A decoded HEP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hep {
    /// 2 (IPv4) or 10 (IPv6).
    pub family: u8,
    /// 17 (UDP) or 6 (TCP).
    pub protocol: u8,
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub seconds: u32,
    pub micros: u32,
    /// 1: SIP.
    pub payload_type: u8,
    pub agent_id: u32,
    pub password: Option<String>,
    pub correlation: Option<String>,
    pub payload: String,
}

/// Decodes one packet; panics (with the reason) on anything the specification does not
/// allow.
pub fn decode(b: &[u8]) -> Hep {
    assert!(b.len() >= 6 && &b[..4] == b"HEP3", "not HEP3: {b:?}");
    assert_eq!(
        usize::from(u16::from_be_bytes([b[4], b[5]])),
        b.len(),
        "total length"
    );
    let mut family = 0;
    let mut protocol = 0;
    let (mut src, mut dst) = (None, None);
    let (mut sport, mut dport) = (0, 0);
    let (mut seconds, mut micros, mut payload_type, mut agent_id) = (0, 0, 0, 0);
    let (mut password, mut correlation, mut payload) = (None, None, None);
    let mut i = 6;
    while i < b.len() {
        assert!(i + 6 <= b.len(), "a chunk header past the end");
        let vendor = u16::from_be_bytes([b[i], b[i + 1]]);
        let kind = u16::from_be_bytes([b[i + 2], b[i + 3]]);
        let len = usize::from(u16::from_be_bytes([b[i + 4], b[i + 5]]));
        assert!(
            len >= 6 && i + len <= b.len(),
            "chunk {kind}: bad length {len}"
        );
        assert_eq!(vendor, 0, "generic chunks only");
        let v = &b[i + 6..i + len];
        let u32_of = |v: &[u8]| u32::from_be_bytes(v.try_into().expect("4 bytes"));
        match kind {
            1 => family = v[0],
            2 => protocol = v[0],
            3 => src = Some(IpAddr::V4(Ipv4Addr::from(u32_of(v)))),
            4 => dst = Some(IpAddr::V4(Ipv4Addr::from(u32_of(v)))),
            5 => src = Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(v).unwrap()))),
            6 => dst = Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(v).unwrap()))),
            7 => sport = u16::from_be_bytes([v[0], v[1]]),
            8 => dport = u16::from_be_bytes([v[0], v[1]]),
            9 => seconds = u32_of(v),
            10 => micros = u32_of(v),
            11 => payload_type = v[0],
            12 => agent_id = u32_of(v),
            14 => password = Some(String::from_utf8_lossy(v).into_owned()),
            15 => payload = Some(String::from_utf8_lossy(v).into_owned()),
            17 => correlation = Some(String::from_utf8_lossy(v).into_owned()),
            other => panic!("unexpected chunk type {other}"),
        }
        i += len;
    }
    Hep {
        family,
        protocol,
        source: SocketAddr::new(src.expect("a source address chunk"), sport),
        destination: SocketAddr::new(dst.expect("a destination address chunk"), dport),
        seconds,
        micros,
        payload_type,
        agent_id,
        password,
        correlation,
        payload: payload.expect("a payload chunk"),
    }
}
