//! Shared test helpers: a virtual clock, text-built messages and queue draining.
#![allow(dead_code)]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sip_message::{Message, parse_datagram};
use sip_transaction::{Event, Transactions, Transmit};

/// The caller's address type in tests.
pub(crate) type Addr = &'static str;

/// Milliseconds as a Duration.
pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The virtual clock's origin: one clock read per test binary, the same instant on every
/// call; every other instant is `t0() + Duration`.
pub(crate) fn t0() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// Parses message text.
pub(crate) fn parse(text: &str) -> Message {
    parse_datagram(Bytes::from(text.to_owned())).expect("test message parses")
}

/// A request with the given top Via (`SIP/2.0/UDP ...` value), To tag, Call-ID and CSeq.
pub(crate) fn request_with(
    method: &str,
    via: &str,
    to_tag: Option<&str>,
    call_id: &str,
    cseq: u32,
) -> Message {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    parse(&format!(
        "{method} sip:bob@example.com SIP/2.0\r\n\
         Via: {via}\r\n\
         Max-Forwards: 70\r\n\
         From: Alice <sip:alice@example.com>;tag=a1\r\n\
         To: Bob <sip:bob@example.com>{to_tag}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} {method}\r\n\
         Content-Length: 0\r\n\r\n"
    ))
}

/// A request whose top Via is `SIP/2.0/UDP 192.0.2.1:5060;branch={branch}`.
pub(crate) fn request(method: &str, branch: &str) -> Message {
    let via = format!("SIP/2.0/UDP 192.0.2.1:5060;branch={branch}");
    request_with(method, &via, None, "call-1@192.0.2.1", 1)
}

/// A response to `req` built by `sip_message::build::response`.
pub(crate) fn response_bytes(req: &Message, status: u16, to_tag: Option<&str>) -> Bytes {
    let reason = match status {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        486 => "Busy Here",
        487 => "Request Terminated",
        _ => "Whatever",
    };
    sip_message::build::response(
        req.headers(),
        status,
        reason,
        to_tag.map(str::as_bytes),
        &[],
    )
}

/// A parsed response to `req`.
pub(crate) fn response(req: &Message, status: u16, to_tag: Option<&str>) -> Message {
    parse_datagram(response_bytes(req, status, to_tag)).expect("built response parses")
}

/// Every queued transmit.
pub(crate) fn transmits(t: &mut Transactions<Addr>) -> Vec<Transmit<Addr>> {
    std::iter::from_fn(|| t.poll_transmit()).collect()
}

/// Every queued event.
pub(crate) fn events(t: &mut Transactions<Addr>) -> Vec<Event> {
    std::iter::from_fn(|| t.poll_event()).collect()
}

/// The start line of a payload.
pub(crate) fn first_line(payload: &[u8]) -> String {
    let text = String::from_utf8_lossy(payload);
    text.lines().next().unwrap_or_default().to_owned()
}

/// Runs every timer up to and including `until`, returning the instants at which transmits
/// were queued (with their start lines) and the events, in order.
pub(crate) fn run_until(
    t: &mut Transactions<Addr>,
    origin: Instant,
    until: Instant,
) -> (Vec<(Duration, String)>, Vec<Event>) {
    let mut sent = Vec::new();
    let mut evs = Vec::new();
    while let Some(at) = t.poll_timeout() {
        if at > until {
            break;
        }
        t.handle_timeout(at);
        for tx in transmits(t) {
            sent.push((at - origin, first_line(&tx.payload)));
        }
        evs.extend(events(t));
    }
    (sent, evs)
}
