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
