//! Capture of SIP messages off the call path: the engine hands each message it receives
//! or sends to a [`Tap`] (a bounded channel: `try_send`, never a wait; a full channel drops
//! the copy and counts it), and a task on the other runtime does the rest (HEP export now,
//! stored traces next). A [`Tap`] costs nothing when the switch has none.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::sync::mpsc;

/// One message as it crossed the switch's socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// Microseconds since the Unix epoch.
    pub at_us: u64,
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub tcp: bool,
    pub bytes: Bytes,
}

/// The engine's end of the capture channel.
#[derive(Debug, Clone)]
pub struct Tap {
    tx: mpsc::Sender<Captured>,
    dropped: Arc<AtomicU64>,
}

/// The consumer's end, with the count of copies dropped because it fell behind.
pub struct Taken {
    pub rx: mpsc::Receiver<Captured>,
    pub dropped: Arc<AtomicU64>,
}

impl Tap {
    /// A channel holding up to `capacity` messages in flight.
    pub fn channel(capacity: usize) -> (Tap, Taken) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        (
            Tap {
                tx,
                dropped: dropped.clone(),
            },
            Taken { rx, dropped },
        )
    }

    /// Hands a copy over, or drops and counts it when the consumer is behind.
    pub fn record(&self, c: Captured) {
        if self.tx.try_send(c).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Now, in microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Where a message's head ends (its length when it has no blank line).
pub(crate) fn head_end(message: &[u8]) -> usize {
    static BLANK: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\r\n\r\n"));
    BLANK.find(message).unwrap_or(message.len())
}

/// The Call-ID of a SIP message (`Call-ID:` or its compact form `i:`, any case), trimmed;
/// `None` when it has none in its head.
pub fn call_id(message: &[u8]) -> Option<&[u8]> {
    let head_end = head_end(message);
    let head = &message[..head_end];
    for line in head.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if name.eq_ignore_ascii_case(b"call-id") || name.eq_ignore_ascii_case(b"i") {
            let value = line[colon + 1..].trim_ascii();
            return (!value.is_empty()).then_some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_ids_in_long_and_compact_form() {
        let m = b"INVITE sip:a@b SIP/2.0\r\nVia: x\r\nCall-ID:  abc@h \r\n\r\nCall-ID: body";
        assert_eq!(call_id(m), Some(&b"abc@h"[..]));
        let m = b"SIP/2.0 200 OK\r\ni: q1\r\n\r\n";
        assert_eq!(call_id(m), Some(&b"q1"[..]));
        let m = b"SIP/2.0 200 OK\r\nX-Call-ID: no\r\n\r\ncall-id: body\r\n";
        assert_eq!(call_id(m), None, "not in the head");
        assert_eq!(call_id(b""), None);
    }

    #[tokio::test]
    async fn a_full_channel_drops_and_counts_instead_of_waiting() {
        let (tap, mut taken) = Tap::channel(2);
        let c = Captured {
            at_us: 1,
            source: "127.0.0.1:1".parse().unwrap(),
            destination: "127.0.0.1:2".parse().unwrap(),
            tcp: false,
            bytes: Bytes::from_static(b"x"),
        };
        for _ in 0..5 {
            tap.record(c.clone());
        }
        assert_eq!(taken.dropped.load(Ordering::Relaxed), 3);
        assert_eq!(taken.rx.recv().await, Some(c));
    }
}
