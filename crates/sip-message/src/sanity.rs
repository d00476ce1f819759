//! The checks a proxy runs on a parsed message before any policy (RFC 3261 §16.3, §8.2.2;
//! RFC 4475 is the test set). Each failure is a typed [`Reject`]: a reply with its status,
//! reason and, for 420, the Unsupported list; or a silent drop.

use bytes::Bytes;

use crate::headers::{ContactValue, HeaderError};
use crate::message::{Headers, Message};
use crate::method::Method;
use crate::name::HeaderName;
use crate::parse::{ParseError, ParseErrorKind};
use crate::uri::{Host, Uri, UriError};

/// The largest CSeq number a request may carry (RFC 3261 §8.1.1.5: a CSeq number is below
/// 2^31). The switch writes requests of its own in dialogs it carries (a BYE adds 1 to the
/// dialog's CSeq; refreshes would add more): a request whose CSeq leaves less than 256 numbers
/// of room is refused with `400 Bad Request - CSeq Too Large`, so that no request the switch
/// writes can overflow the range.
pub const MAX_CSEQ: u32 = (1 << 31) - 1 - 256;

/// Sanity settings.
#[derive(Debug, Clone)]
pub struct SanityConfig {
    /// Larger messages get `513 Message Too Large` (default 16 KiB).
    pub max_message_size: usize,
    /// Option tags this proxy supports in Proxy-Require (none by default).
    pub supported_proxy_extensions: Vec<String>,
}

impl Default for SanityConfig {
    fn default() -> Self {
        SanityConfig {
            max_message_size: 16 * 1024,
            supported_proxy_extensions: Vec::new(),
        }
    }
}

/// Why a message was dropped without a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The bytes are not a message (or a request without a usable Via).
    Unparseable(ParseErrorKind),
    /// A request with no Via to send a reply to.
    NoVia,
    /// A malformed response (responses are never answered).
    BadResponse,
    /// A response whose next hop is a broadcast or multicast address.
    BroadcastNextHop,
    /// An ACK with Max-Forwards 0 (an ACK is never answered).
    AckTooManyHops,
}

/// What to do with a message that fails sanity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reject {
    /// Answer with this status and reason phrase.
    Reply {
        status: u16,
        reason: &'static str,
        /// For 420: the option tags to list in Unsupported, comma-separated.
        unsupported: Option<Bytes>,
        /// What was wrong, for logs (never sent).
        detail: RejectDetail,
    },
    /// Drop silently.
    Drop(DropReason),
}

/// The cause of a reply reject, for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectDetail {
    Parse(ParseErrorKind),
    Header(HeaderError),
    RequestUri(UriError),
    UnsupportedScheme,
    CSeqMethodMismatch,
    TooLarge,
    Version,
    TooManyHops,
    ProxyRequire,
    /// A header value holds a control character RFC 3261 does not allow there.
    ControlCharacter(HeaderName),
    /// The CSeq number is above [`MAX_CSEQ`].
    CSeqTooLarge,
}

impl Reject {
    fn bad(detail: RejectDetail) -> Self {
        Reject::Reply {
            status: 400,
            reason: "Bad Request",
            unsupported: None,
            detail,
        }
    }

    /// The status of a reply reject.
    pub fn status(&self) -> Option<u16> {
        match self {
            Reject::Reply { status, .. } => Some(*status),
            Reject::Drop(_) => None,
        }
    }
}

/// The reject for bytes that did not parse: `400` for a request whose headers could be read
/// and that has a Via to answer to, else a silent drop.
pub fn reject_unparseable(err: &ParseError) -> Reject {
    match err.request_headers() {
        Some(h) if h.get(HeaderName::Via).is_some() => Reject::bad(RejectDetail::Parse(err.kind)),
        _ => Reject::Drop(DropReason::Unparseable(err.kind)),
    }
}

/// Checks a request. The order follows what a reply can report: size, version, then the
/// headers a proxy needs, the Request-URI, CSeq against the method, Max-Forwards and
/// Proxy-Require.
pub fn check_request(msg: &Message, cfg: &SanityConfig) -> Result<(), Reject> {
    let Some(rl) = msg.request_line() else {
        return Err(Reject::Drop(DropReason::BadResponse));
    };
    let h = msg.headers();
    if h.get(HeaderName::Via).is_none() {
        return Err(Reject::Drop(DropReason::NoVia));
    }
    if msg.len() > cfg.max_message_size {
        return Err(Reject::Reply {
            status: 513,
            reason: "Message Too Large",
            unsupported: None,
            detail: RejectDetail::TooLarge,
        });
    }
    if msg.version() != b"SIP/2.0" {
        return Err(Reject::Reply {
            status: 505,
            reason: "Version Not Supported",
            unsupported: None,
            detail: RejectDetail::Version,
        });
    }
    if let Some(name) = control_character(h) {
        return Err(Reject::bad(RejectDetail::ControlCharacter(name)));
    }
    check_common_headers(h).map_err(|e| Reject::bad(RejectDetail::Header(e)))?;

    let uri = rl.uri.of(msg.raw());
    match Uri::parse(uri) {
        Ok(Uri::Sip(s)) if s.headers.is_some() => {
            return Err(Reject::bad(RejectDetail::RequestUri(UriError::BadHeaders)));
        }
        Ok(Uri::Sip(_) | Uri::Tel(_)) => {}
        Ok(Uri::Other { .. }) => {
            return Err(Reject::Reply {
                status: 416,
                reason: "Unsupported URI Scheme",
                unsupported: None,
                detail: RejectDetail::UnsupportedScheme,
            });
        }
        Err(e) => return Err(Reject::bad(RejectDetail::RequestUri(e))),
    }

    let cseq = h.cseq().map_err(|e| Reject::bad(RejectDetail::Header(e)))?;
    if cseq.method_raw != rl.method_span.of(msg.raw()) {
        return Err(Reject::bad(RejectDetail::CSeqMethodMismatch));
    }
    // An ACK is never answered, and its number is its INVITE's (refused when too large).
    if cseq.seq > MAX_CSEQ && rl.method != Method::Ack {
        return Err(Reject::Reply {
            status: 400,
            reason: "Bad Request - CSeq Too Large",
            unsupported: None,
            detail: RejectDetail::CSeqTooLarge,
        });
    }
    if let Some(0) = h
        .max_forwards()
        .map_err(|e| Reject::bad(RejectDetail::Header(e)))?
    {
        if rl.method == Method::Ack {
            return Err(Reject::Drop(DropReason::AckTooManyHops));
        }
        {
            return Err(Reject::Reply {
                status: 483,
                reason: "Too Many Hops",
                unsupported: None,
                detail: RejectDetail::TooManyHops,
            });
        }
    }
    if h.get(HeaderName::ProxyRequire).is_some()
        && rl.method != Method::Ack
        && rl.method != Method::Cancel
    {
        let mut unsupported: Vec<u8> = Vec::new();
        for tag in h.tokens(HeaderName::ProxyRequire) {
            let tag = tag.map_err(|e| Reject::bad(RejectDetail::Header(e)))?;
            let known = cfg
                .supported_proxy_extensions
                .iter()
                .any(|s| s.as_bytes().eq_ignore_ascii_case(tag));
            if !known {
                if !unsupported.is_empty() {
                    unsupported.extend_from_slice(b", ");
                }
                unsupported.extend_from_slice(tag);
            }
        }
        if !unsupported.is_empty() {
            return Err(Reject::Reply {
                status: 420,
                reason: "Bad Extension",
                unsupported: Some(Bytes::from(unsupported)),
                detail: RejectDetail::ProxyRequire,
            });
        }
    }
    Ok(())
}

/// The first header whose value holds a control character (octets 0x00–0x1F and 0x7F) that
/// RFC 3261 §25.1 does not allow in a header value. Allowed: HTAB; the CRLF (or bare LF) of a
/// folded line, followed by a blank; and, inside a quoted string, a quoted-pair (`\` and any
/// octet but CR and LF: RFC 4475 `intmeth` has `\` NUL in a display name). A quoted-pair in a
/// comment is refused too (a comment is not told from a URI's `(` without parsing each
/// header). The body is not looked at: it may hold anything.
fn control_character(h: &Headers) -> Option<HeaderName> {
    h.iter()
        .find(|line| !value_is_clean(h.value(line)))
        .map(|line| line.name)
}

fn value_is_clean(v: &[u8]) -> bool {
    // Fast path: most values have no control octet at all (a tab makes `maybe_ctl` true;
    // the exact test follows).
    if !maybe_ctl(v) || !v.iter().any(|&b| is_ctl(b)) {
        return true;
    }
    let mut quoted = false;
    let mut i = 0;
    while i < v.len() {
        let b = v[i];
        match b {
            b'"' => quoted = !quoted,
            b'\\' if quoted => {
                // A quoted-pair: any octet but CR and LF.
                match v.get(i + 1) {
                    Some(b'\r' | b'\n') | None => return false,
                    Some(_) => i += 1,
                }
            }
            // Line ends only as the fold the parser kept: CRLF (or LF), then a blank.
            b'\r' if v.get(i + 1) != Some(&b'\n') => return false,
            b'\n' if !matches!(v.get(i + 1), Some(b' ' | b'\t')) => return false,
            b'\r' | b'\n' => {}
            b'\t' => {}
            _ if is_ctl(b) => return false,
            _ => {}
        }
        i += 1;
    }
    true
}

/// Whether `v` may hold a control octet: one below 0x20 (tab included) or 0x7F, tested
/// eight octets at a time (every header value of every message goes through this).
fn maybe_ctl(v: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut words = v.chunks_exact(8);
    for word in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        let w = u64::from_le_bytes(bytes);
        // A byte below 0x20 (exact as an "any" test: bytes of 0x80 and up are masked out).
        let below = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
        // A byte equal to 0x7F: a zero byte of w ^ 0x7F7F...
        let x = w ^ (ONES * 0x7f);
        let del = x.wrapping_sub(ONES) & !x & HIGH;
        if below | del != 0 {
            return true;
        }
    }
    words.remainder().iter().any(|&b| b < 0x20 || b == 0x7f)
}

fn is_ctl(b: u8) -> bool {
    b < 0x20 && b != b'\t' || b == 0x7f
}

/// Headers every request and response must have in a readable form: Via (every value), From,
/// To, Call-ID, CSeq, and the single headers a proxy reads (Max-Forwards, Content-Length,
/// Content-Type, Expires), plus Contact, Route and Record-Route values.
fn check_common_headers(h: &Headers) -> Result<(), HeaderError> {
    for via in h.vias() {
        via?;
    }
    // From and To may carry any absolute URI (RFC 4475 unksm2); a SIP or tel URI must parse.
    h.from()?
        .uri()
        .map_err(|_| HeaderError::malformed(HeaderName::From))?;
    h.to()?
        .uri()
        .map_err(|_| HeaderError::malformed(HeaderName::To))?;
    h.call_id()?;
    h.cseq()?;
    h.max_forwards()?;
    h.content_length()?;
    h.content_type()?;
    h.expires()?;
    for c in h.contacts() {
        if let ContactValue::Addr(a) = c? {
            a.uri()
                .map_err(|_| HeaderError::malformed(HeaderName::Contact))?;
        }
    }
    for r in h.routes() {
        r?.uri()
            .map_err(|_| HeaderError::malformed(HeaderName::Route))?;
    }
    for r in h.record_routes() {
        r?.uri()
            .map_err(|_| HeaderError::malformed(HeaderName::RecordRoute))?;
    }
    Ok(())
}

/// Checks a response a proxy is about to route back. Failures are always silent drops: a
/// response is never answered.
pub fn check_response(msg: &Message, cfg: &SanityConfig) -> Result<(), Reject> {
    let drop = Reject::Drop(DropReason::BadResponse);
    let Some(status) = msg.status() else {
        return Err(drop);
    };
    if !(100..=699).contains(&status)
        || msg.version() != b"SIP/2.0"
        || msg.len() > cfg.max_message_size
    {
        return Err(drop);
    }
    let h = msg.headers();
    if control_character(h).is_some()
        || msg
            .reason_phrase()
            .is_some_and(|r| r.iter().any(|&b| is_ctl(b)))
    {
        return Err(drop);
    }
    check_common_headers(h).map_err(|_| drop.clone())?;
    if h.retry_after().is_err() {
        return Err(drop);
    }
    if let Some(Ok(next)) = h.vias().nth(1)
        && (next.host().is_some_and(|h| h.is_broadcast_or_multicast())
            || maddr_is_broadcast(next.maddr()))
    {
        return Err(Reject::Drop(DropReason::BroadcastNextHop));
    }
    Ok(())
}

fn maddr_is_broadcast(maddr: Option<&[u8]>) -> bool {
    maddr
        .and_then(Host::parse)
        .is_some_and(|h| h.is_broadcast_or_multicast())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_datagram;

    fn request(extra: &[u8], cseq: &str) -> Message {
        let mut m = b"INVITE sip:1@192.0.2.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.2;branch=z9hG4bK1\r\nFrom: <sip:a@192.0.2.2>;tag=1\r\n\
To: <sip:1@192.0.2.1>\r\nCall-ID: c1\r\n"
            .to_vec();
        m.extend_from_slice(format!("CSeq: {cseq}\r\n").as_bytes());
        m.extend_from_slice(extra);
        m.extend_from_slice(b"Content-Length: 4\r\n\r\n\0\x01\x7f\n");
        parse_datagram(Bytes::from(m)).unwrap()
    }

    fn check(extra: &[u8], cseq: &str) -> Result<(), Reject> {
        check_request(&request(extra, cseq), &SanityConfig::default())
    }

    #[test]
    fn the_word_at_a_time_test_finds_every_control_octet_at_every_position() {
        for len in 0..20 {
            let clean: Vec<u8> = (0..len).map(|i| b"a~ \x80\xff"[i % 5]).collect();
            assert!(!maybe_ctl(&clean), "{clean:?}");
            for at in 0..len {
                for b in (0u8..0x20).chain([0x7f]) {
                    let mut v = clean.clone();
                    v[at] = b;
                    assert!(maybe_ctl(&v), "{v:?}");
                }
                for b in (0x20u8..=0xff).filter(|&b| b != 0x7f) {
                    let mut v = clean.clone();
                    v[at] = b;
                    assert!(!maybe_ctl(&v), "{v:?}");
                }
            }
        }
    }

    #[test]
    fn control_characters_in_header_values_get_400() {
        for bad in [
            &b"User-Agent: a\0b\r\n"[..],
            b"User-Agent: \0\r\n",
            b"User-Agent: a\x01\r\n",
            b"User-Agent: a\x1fb\r\n",
            b"User-Agent: a\x7fb\r\n",
            b"User-Agent: a\rb\r\n",
            b"User-Agent: a\r\n \0folded\r\n",
            b"User-Agent: x\\\0y\r\n",
            b"Subject: \"a\\\r\n b\"\r\n",
            b"X-Any: (c\\\0)\r\n",
        ] {
            let got = check(bad, "1 INVITE");
            assert!(
                matches!(
                    got,
                    Err(Reject::Reply {
                        status: 400,
                        detail: RejectDetail::ControlCharacter(_),
                        ..
                    })
                ),
                "{bad:?}: {got:?}"
            );
        }
    }

    #[test]
    fn tabs_folds_quoted_pairs_and_the_body_pass() {
        for good in [
            &b"User-Agent: a\tb\r\n"[..],
            b"Subject: one\r\n  two\r\n\tthree\r\n",
            b"Subject: one\n two\r\n",
            b"X-Q: \"BEL:\\\x07 NUL:\\\0 DEL:\\\x7f\"\r\n",
            b"X-Utf8: caf\xc3\xa9\r\n",
        ] {
            assert_eq!(check(good, "1 INVITE"), Ok(()), "{good:?}");
        }
    }

    #[test]
    fn cseq_without_room_gets_400() {
        assert_eq!(check(b"", &format!("{MAX_CSEQ} INVITE")), Ok(()));
        for n in [MAX_CSEQ + 1, (1 << 31) - 1] {
            let got = check(b"", &format!("{n} INVITE")).unwrap_err();
            assert!(
                matches!(
                    got,
                    Reject::Reply {
                        status: 400,
                        reason: "Bad Request - CSeq Too Large",
                        detail: RejectDetail::CSeqTooLarge,
                        ..
                    }
                ),
                "{n}: {got:?}"
            );
        }
        // 2^31 and beyond are out of the header's range (RFC 3261 §8.1.1.5).
        let got = check(b"", "2147483648 INVITE").unwrap_err();
        assert_eq!(got.status(), Some(400));
        assert!(matches!(
            got,
            Reject::Reply {
                detail: RejectDetail::Header(_),
                ..
            }
        ));
        // An ACK is never answered.
        let ack = String::from_utf8_lossy(request(b"", "2147483647 ACK").raw()).replacen(
            "INVITE sip",
            "ACK sip",
            1,
        );
        let ack = parse_datagram(Bytes::from(ack.into_bytes())).unwrap();
        assert_eq!(check_request(&ack, &SanityConfig::default()), Ok(()));
    }

    #[test]
    fn responses_with_control_characters_are_dropped() {
        let ok = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.2;branch=z9hG4bK1\r\n\
From: <sip:a@192.0.2.2>;tag=1\r\nTo: <sip:1@192.0.2.1>;tag=2\r\nCall-ID: c1\r\n\
CSeq: 1 INVITE\r\nServer: x\r\nContent-Length: 0\r\n\r\n";
        let cfg = SanityConfig::default();
        let parse = |b: Vec<u8>| parse_datagram(Bytes::from(b)).unwrap();
        assert_eq!(check_response(&parse(ok.to_vec()), &cfg), Ok(()));
        let nul = String::from_utf8_lossy(ok).replace("Server: x", "Server: x\0");
        let bad_reason = String::from_utf8_lossy(ok).replace("200 OK", "200 O\x01K");
        for bad in [nul, bad_reason] {
            assert_eq!(
                check_response(&parse(bad.into_bytes()), &cfg),
                Err(Reject::Drop(DropReason::BadResponse))
            );
        }
    }
}
