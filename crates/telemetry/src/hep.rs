//! HEPv3 (the Homer Encapsulation Protocol, version 3) as Kamailio's `siptrace` sends it:
//! every SIP message the switch receives or sends, with its addresses, ports, transport
//! and time, so that Homer/heplify-server and `sngrep -L udp:...` show the switch's calls.
//! Written by hand (a deliberate exception: no maintained crate encodes HEP), from the
//! HEP3 specification's chunk table (vendor 0, "generic"):
//!
//! | type | chunk | size |
//! |---|---|---|
//! | 1 | IP family (2 IPv4, 10 IPv6) | u8 |
//! | 2 | IP protocol (17 UDP, 6 TCP) | u8 |
//! | 3 / 4 | IPv4 source / destination | 4 |
//! | 5 / 6 | IPv6 source / destination | 16 |
//! | 7 / 8 | source / destination port | u16 |
//! | 9 / 10 | time: seconds / microseconds | u32 |
//! | 11 | protocol type (1: SIP) | u8 |
//! | 12 | capture agent id | u32 |
//! | 14 | authentication key | text |
//! | 15 | the captured payload | bytes |
//! | 17 | correlation id (the Call-ID) | text |
//!
//! A packet is `HEP3`, its total length (u16), then the chunks, each `vendor (u16), type
//! (u16), length (u16, the 6-byte chunk header included), value`; every number big-endian.

use std::net::{IpAddr, SocketAddr};

/// One captured message, as HEP describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<'a> {
    pub source: SocketAddr,
    pub destination: SocketAddr,
    /// TCP (else UDP).
    pub tcp: bool,
    /// Microseconds since the Unix epoch.
    pub at_us: u64,
    /// The capture agent id (`[trace] hep_id`).
    pub agent_id: u32,
    /// `[trace] hep_password`, when set.
    pub password: Option<&'a str>,
    /// The Call-ID, when the message has one.
    pub correlation: Option<&'a [u8]>,
    pub payload: &'a [u8],
}

/// Why a packet cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TooLarge {
    /// The packet would pass 65,535 bytes (the length field).
    Packet,
}

const PROTOCOL_SIP: u8 = 1;

fn chunk(out: &mut Vec<u8>, kind: u16, value: &[u8]) -> Result<(), TooLarge> {
    let len = u16::try_from(value.len() + 6).map_err(|_| TooLarge::Packet)?;
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(value);
    Ok(())
}

/// Encodes `p` into `out` (cleared first). Source and destination must be of one family
/// (an IPv4 address is written as IPv6 when the other one is IPv6).
pub fn encode(p: &Packet<'_>, out: &mut Vec<u8>) -> Result<(), TooLarge> {
    out.clear();
    out.extend_from_slice(b"HEP3\0\0");
    let v6 = p.source.is_ipv6() || p.destination.is_ipv6();
    chunk(out, 1, &[if v6 { 10 } else { 2 }])?;
    chunk(out, 2, &[if p.tcp { 6 } else { 17 }])?;
    let octets = |ip: IpAddr| -> Vec<u8> {
        match (ip, v6) {
            (IpAddr::V4(a), false) => a.octets().to_vec(),
            (IpAddr::V4(a), true) => a.to_ipv6_mapped().octets().to_vec(),
            (IpAddr::V6(a), _) => a.octets().to_vec(),
        }
    };
    let (src_kind, dst_kind) = if v6 { (5, 6) } else { (3, 4) };
    chunk(out, src_kind, &octets(p.source.ip()))?;
    chunk(out, dst_kind, &octets(p.destination.ip()))?;
    chunk(out, 7, &p.source.port().to_be_bytes())?;
    chunk(out, 8, &p.destination.port().to_be_bytes())?;
    let seconds = u32::try_from(p.at_us / 1_000_000).unwrap_or(u32::MAX);
    let micros = (p.at_us % 1_000_000) as u32;
    chunk(out, 9, &seconds.to_be_bytes())?;
    chunk(out, 10, &micros.to_be_bytes())?;
    chunk(out, 11, &[PROTOCOL_SIP])?;
    chunk(out, 12, &p.agent_id.to_be_bytes())?;
    if let Some(password) = p.password {
        chunk(out, 14, password.as_bytes())?;
    }
    if let Some(id) = p.correlation {
        chunk(out, 17, id)?;
    }
    chunk(out, 15, p.payload)?;
    let total = u16::try_from(out.len()).map_err(|_| TooLarge::Packet)?;
    out[4..6].copy_from_slice(&total.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chunks of a packet: (type, value).
    fn chunks(b: &[u8]) -> Vec<(u16, Vec<u8>)> {
        assert_eq!(&b[..4], b"HEP3");
        assert_eq!(usize::from(u16::from_be_bytes([b[4], b[5]])), b.len());
        let mut out = Vec::new();
        let mut i = 6;
        while i < b.len() {
            assert_eq!(&b[i..i + 2], &[0, 0], "vendor 0");
            let kind = u16::from_be_bytes([b[i + 2], b[i + 3]]);
            let len = usize::from(u16::from_be_bytes([b[i + 4], b[i + 5]]));
            out.push((kind, b[i + 6..i + len].to_vec()));
            i += len;
        }
        assert_eq!(i, b.len());
        out
    }

    #[test]
    fn an_ipv4_udp_packet_has_kamailios_chunks_in_order() {
        let p = Packet {
            source: "192.0.2.10:5070".parse().unwrap(),
            destination: "198.51.100.1:5060".parse().unwrap(),
            tcp: false,
            at_us: 1_796_083_200_123_456,
            agent_id: 2001,
            password: Some("s3cret"),
            correlation: Some(b"abc@host"),
            payload: b"INVITE sip:1@x SIP/2.0\r\n\r\n",
        };
        let mut out = Vec::new();
        encode(&p, &mut out).unwrap();
        let c = chunks(&out);
        let kinds: Vec<u16> = c.iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds, [1, 2, 3, 4, 7, 8, 9, 10, 11, 12, 14, 17, 15]);
        assert_eq!(c[0].1, [2]);
        assert_eq!(c[1].1, [17]);
        assert_eq!(c[2].1, [192, 0, 2, 10]);
        assert_eq!(c[3].1, [198, 51, 100, 1]);
        assert_eq!(c[4].1, 5070u16.to_be_bytes());
        assert_eq!(c[5].1, 5060u16.to_be_bytes());
        assert_eq!(c[6].1, 1_796_083_200u32.to_be_bytes());
        assert_eq!(c[7].1, 123_456u32.to_be_bytes());
        assert_eq!(c[8].1, [1]);
        assert_eq!(c[9].1, 2001u32.to_be_bytes());
        assert_eq!(c[10].1, b"s3cret");
        assert_eq!(c[11].1, b"abc@host");
        assert_eq!(c[12].1, p.payload);
    }

    #[test]
    fn ipv6_and_tcp_and_a_packet_too_large() {
        let mut out = Vec::new();
        let p = Packet {
            source: "[2001:db8::1]:5060".parse().unwrap(),
            destination: "192.0.2.1:5080".parse().unwrap(),
            tcp: true,
            at_us: 0,
            agent_id: 1,
            password: None,
            correlation: None,
            payload: b"x",
        };
        encode(&p, &mut out).unwrap();
        let c = chunks(&out);
        assert_eq!(c[0].1, [10]);
        assert_eq!(c[1].1, [6]);
        assert_eq!((c[2].0, c[3].0), (5, 6));
        assert_eq!(
            c[3].1[..12],
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff],
            "v4-mapped"
        );
        let big = vec![b'a'; 70_000];
        let p = Packet { payload: &big, ..p };
        assert_eq!(encode(&p, &mut out), Err(TooLarge::Packet));
    }
}

/// What the HEP sender did, for `/metrics`.
#[derive(Debug, Default)]
pub struct Sent {
    pub packets: std::sync::atomic::AtomicU64,
    /// Send errors and messages too large for one packet.
    pub failed: std::sync::atomic::AtomicU64,
}

/// Where and as whom to send (its `Debug` hides the password).
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    /// The collector (Homer, heplify-server, `sngrep -L`), UDP.
    pub collector: SocketAddr,
    pub agent_id: u32,
    pub password: Option<String>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("collector", &self.collector)
            .field("agent_id", &self.agent_id)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

/// `udp:IP:PORT` (the collector's address: an IP, no name to resolve).
pub fn parse_collector(text: &str) -> Result<SocketAddr, String> {
    text.trim()
        .strip_prefix("udp:")
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| {
            format!("{text:?}: udp:IP:PORT (udp:192.0.2.10:9060, udp:[2001:db8::1]:9060)")
        })
}

/// Sends captured messages to the collector, one HEP packet each.
pub struct Sender {
    socket: tokio::net::UdpSocket,
    target: Target,
    sent: std::sync::Arc<Sent>,
    buf: Vec<u8>,
}

impl Sender {
    /// A socket of the collector's family, bound to any port.
    pub async fn new(target: Target, sent: std::sync::Arc<Sent>) -> std::io::Result<Sender> {
        let bind: SocketAddr = if target.collector.is_ipv6() {
            "[::]:0".parse().expect("an address")
        } else {
            "0.0.0.0:0".parse().expect("an address")
        };
        Ok(Sender {
            socket: tokio::net::UdpSocket::bind(bind).await?,
            target,
            sent,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Sends one message (counted as sent or failed).
    pub async fn send(&mut self, c: &crate::capture::Captured) {
        use std::sync::atomic::Ordering;
        let packet = Packet {
            source: c.source,
            destination: c.destination,
            tcp: c.tcp,
            at_us: c.at_us,
            agent_id: self.target.agent_id,
            password: self.target.password.as_deref(),
            correlation: crate::capture::call_id(&c.bytes),
            payload: &c.bytes,
        };
        let ok = encode(&packet, &mut self.buf).is_ok()
            && self
                .socket
                .send_to(&self.buf, self.target.collector)
                .await
                .is_ok();
        let counter = if ok {
            &self.sent.packets
        } else {
            &self.sent.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
