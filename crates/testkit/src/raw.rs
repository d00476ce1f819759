//! A raw SIP endpoint on a blocking UDP socket ([`Raw`]) for tests against a switch
//! process: sends text as written, reads datagrams with bounded waits. Also the strict
//! header readers those tests use ([`required_header`], [`required_tag`]), which panic with
//! the message when the part is missing.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// A raw SIP endpoint on a loopback address: sends text, reads datagrams.
pub struct Raw {
    sock: UdpSocket,
}

impl Raw {
    pub fn bind(ip: &str) -> Raw {
        let sock = UdpSocket::bind((ip, 0)).unwrap();
        Raw { sock }
    }

    pub fn addr(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }

    /// Sends `msg` (written with `\n`) with CRLF line ends, as SIP wants.
    pub fn send(&self, to: SocketAddr, msg: &str) {
        let wire = msg.replace("\r\n", "\n").replace('\n', "\r\n");
        self.sock.send_to(wire.as_bytes(), to).unwrap();
    }

    /// The next datagram within `timeout`, if any.
    pub fn recv(&self, timeout: Duration) -> Option<String> {
        self.sock.set_read_timeout(Some(timeout)).unwrap();
        let mut buf = vec![0u8; 65536];
        match self.sock.recv_from(&mut buf) {
            Ok((n, _)) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(_) => None,
        }
    }

    /// The first datagram within `timeout` whose first line contains `start` (others are
    /// skipped: provisional responses, retransmissions).
    pub fn expect(&self, start: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no {start:?} within {timeout:?}");
            if let Some(m) = self.recv(left)
                && m.lines().next().is_some_and(|l| l.contains(start))
            {
                return m;
            }
        }
    }

    /// Every datagram that arrives within `window` (a bounded wait for an absence).
    pub fn drain(&self, window: Duration) -> Vec<String> {
        let deadline = Instant::now() + window;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return out;
            }
            match self.recv(left) {
                Some(m) => out.push(m),
                None => return out,
            }
        }
    }
}

/// The value of the first header `name` of a message; panics when there is none.
pub fn required_header<'a>(msg: &'a str, name: &str) -> &'a str {
    msg.lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then_some(v.trim())
        })
        .unwrap_or_else(|| panic!("no {name} in\n{msg}"))
}

/// The `tag` parameter of a From or To value; panics when there is none.
pub fn required_tag(value: &str) -> &str {
    value
        .split(";tag=")
        .nth(1)
        .map(|t| t.split(';').next().unwrap_or(t))
        .unwrap_or_else(|| panic!("no tag in {value}"))
}
