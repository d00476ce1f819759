//! A scripted SIP user agent on a tokio UDP socket, and the messages tests send.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;

/// One side of a call in a test: a customer's trunk or a carrier.
pub struct Ua {
    socket: UdpSocket,
}

impl Ua {
    /// A user agent on `ip` (a loopback address), a free port.
    pub async fn bind(ip: &str) -> Ua {
        let socket = UdpSocket::bind((ip, 0)).await.expect("a free port");
        Ua { socket }
    }

    pub fn addr(&self) -> SocketAddr {
        self.socket.local_addr().expect("a bound socket")
    }

    /// Sends `msg` (`\n` line ends become CRLF).
    pub async fn send(&self, to: SocketAddr, msg: &str) {
        let msg = msg.replace("\r\n", "\n").replace('\n', "\r\n");
        self.socket
            .send_to(msg.as_bytes(), to)
            .await
            .expect("a datagram sent");
    }

    /// The next datagram and where it came from (bounded: 600 s of virtual time).
    pub async fn recv(&self) -> (String, SocketAddr) {
        let mut buf = vec![0u8; 65_536];
        let (n, from) =
            tokio::time::timeout(Duration::from_secs(600), self.socket.recv_from(&mut buf))
                .await
                .expect("a datagram within 600 s")
                .expect("a datagram");
        (String::from_utf8_lossy(&buf[..n]).into_owned(), from)
    }

    /// The next datagram whose first line starts with `start` (others are skipped:
    /// retransmissions, provisionals).
    pub async fn expect(&self, start: &str) -> (String, SocketAddr) {
        loop {
            let (msg, from) = self.recv().await;
            if msg.starts_with(start) {
                return (msg, from);
            }
        }
    }
}

/// An INVITE from `ua` to `number` at the switch, with an SDP offer (PCMU).
pub fn invite(ua: SocketAddr, switch: SocketAddr, call_id: &str, number: &str) -> String {
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    format!(
        "INVITE sip:{number}@{switch} SIP/2.0\n\
Via: SIP/2.0/UDP {ua};branch=z9hG4bK-tk-{call_id};rport\n\
From: <sip:912013022@{ua}>;tag=tk-{call_id}\n\
To: <sip:{number}@{switch}>\n\
Call-ID: {call_id}\n\
CSeq: 1 INVITE\n\
Contact: <sip:tk@{ua}>\n\
Max-Forwards: 70\n\
Content-Type: application/sdp\n\
Content-Length: {}\n\n{sdp}",
        sdp.len()
    )
}

/// A response to `request` (its Via, From, To, Call-ID and CSeq copied), with `to_tag` added
/// to To when given, and `extra` header lines (each ending in `\n`).
pub fn response(request: &str, status: &str, to_tag: Option<&str>, extra: &str) -> String {
    let mut out = format!("SIP/2.0 {status}\n");
    for line in request.lines() {
        let name = line.split(':').next().unwrap_or_default().trim();
        match name.to_ascii_lowercase().as_str() {
            "via" | "from" | "call-id" | "cseq" | "record-route" => {
                out.push_str(line.trim_end());
                out.push('\n');
            }
            "to" => {
                out.push_str(line.trim_end());
                if let Some(tag) = to_tag
                    && !line.contains(";tag=")
                {
                    out.push_str(&format!(";tag={tag}"));
                }
                out.push('\n');
            }
            _ => {}
        }
    }
    out.push_str(extra);
    out.push_str("Content-Length: 0\n\n");
    out
}

/// The value of the first header `name` of `msg` (case-insensitive; empty when absent).
pub fn header<'a>(msg: &'a str, name: &str) -> &'a str {
    msg.lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
        .unwrap_or_default()
}

/// The `tag` parameter of a From or To value (empty when absent).
pub fn tag_of(value: &str) -> &str {
    value
        .split(';')
        .find_map(|p| p.trim().strip_prefix("tag="))
        .unwrap_or_default()
}
