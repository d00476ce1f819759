//! Messages the switch writes itself from a request: responses (RFC 3261 §8.2.6), the ACK of a
//! non-2xx final response (§17.1.1.3) and CANCEL (§9.1).

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;

use crate::headers::HeaderError;
use crate::message::{Headers, Message, Span};
use crate::name::HeaderName;
use crate::scan;

fn push_u32(out: &mut Vec<u8>, n: u32) {
    out.extend_from_slice(n.to_string().as_bytes());
}

/// Where a request came from, written into the top Via of the responses built for it (RFC
/// 3261 §18.2.1, RFC 3581 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViaFill {
    /// The source IP address of the request.
    pub ip: IpAddr,
    /// The source port of the request.
    pub port: u16,
}

impl From<SocketAddr> for ViaFill {
    fn from(a: SocketAddr) -> Self {
        ViaFill {
            ip: a.ip(),
            port: a.port(),
        }
    }
}

/// Builds a response to a request from its header index: every Via line, From, To (with
/// `to_tag` added when To has none), Call-ID and CSeq are copied as written, then `extra`
/// headers and `Content-Length: 0`. Works on the index of a malformed request too, so that a
/// `400` can be sent. The top Via is copied as written: see [`response_from`] to fill it.
pub fn response(
    req: &Headers,
    status: u16,
    reason: &str,
    to_tag: Option<&[u8]>,
    extra: &[(&str, &[u8])],
) -> Bytes {
    response_from(req, None, status, reason, to_tag, extra)
}

/// [`response`], with the top Via filled from where the request came from (`source`): a
/// valueless `rport` gets the source port and `received` the source IP (RFC 3581 §4: both,
/// always); without `rport`, `received` is set when the sent-by host is not the source IP
/// (RFC 3261 §18.2.1). A `received` already there is replaced. A top Via that does not parse
/// (a 400 for a malformed request) is copied as written.
pub fn response_from(
    req: &Headers,
    source: Option<ViaFill>,
    status: u16,
    reason: &str,
    to_tag: Option<&[u8]>,
    extra: &[(&str, &[u8])],
) -> Bytes {
    let raw: &[u8] = req.raw();
    let mut out = Vec::with_capacity(256 + raw.len().min(1024));
    out.extend_from_slice(b"SIP/2.0 ");
    push_u32(&mut out, u32::from(status));
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    let has_tag = req.to().ok().is_some_and(|t| t.tag().is_some());
    let mut fills = source.map(|s| via_fills(req, s)).unwrap_or_default();
    for h in req.iter() {
        match h.name {
            HeaderName::Via if !fills.is_empty() => {
                // The first Via line holds the top value: write it with the fills.
                let line = trim_line_end(h.line.of(raw));
                let mut at = h.line.start as usize;
                let end = at + line.len();
                for (span, bytes) in fills.drain(..) {
                    out.extend_from_slice(&raw[at..span.start as usize]);
                    bytes.iter().for_each(|b| out.extend_from_slice(b));
                    at = span.end as usize;
                }
                out.extend_from_slice(&raw[at..end]);
                out.extend_from_slice(b"\r\n");
            }
            HeaderName::Via | HeaderName::From | HeaderName::CallId | HeaderName::CSeq => {
                out.extend_from_slice(trim_line_end(h.line.of(raw)));
                out.extend_from_slice(b"\r\n");
            }
            HeaderName::To => {
                let line = trim_line_end(h.line.of(raw));
                let line = &line[..line.len() - trailing_lws(line)];
                out.extend_from_slice(line);
                if let (Some(tag), false) = (to_tag, has_tag) {
                    out.extend_from_slice(b";tag=");
                    out.extend_from_slice(tag);
                }
                out.extend_from_slice(b"\r\n");
            }
            _ => {}
        }
    }
    for (name, value) in extra {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    Bytes::from(out)
}

/// The edits of the top Via for `source`, in message order: (span replaced, bytes written).
fn via_fills(req: &Headers, source: ViaFill) -> Vec<(Span, Vec<Vec<u8>>)> {
    let Ok(via) = req.top_via() else {
        return Vec::new();
    };
    // A dual-stack socket reports IPv4 peers as IPv4-mapped IPv6 addresses.
    let source = ViaFill {
        ip: source.ip.to_canonical(),
        ..source
    };
    let mut rport_at = None;
    let mut received_at = None;
    for (name, value) in via.params.iter() {
        if name.eq_ignore_ascii_case(b"rport") && value.is_none() {
            let s = req.span_of(name);
            rport_at = Some(Span {
                start: s.end,
                end: s.end,
            });
        } else if name.eq_ignore_ascii_case(b"received") {
            // Replace the value, or (a valueless `received`) add one after the name.
            received_at = Some(match value {
                Some(v) => (req.span_of(v), false),
                None => {
                    let s = req.span_of(name);
                    (
                        Span {
                            start: s.end,
                            end: s.end,
                        },
                        true,
                    )
                }
            });
        }
    }
    let host_is_source = via.host().is_some_and(|h| match h {
        crate::uri::Host::V4(a) => IpAddr::V4(a) == source.ip,
        crate::uri::Host::V6(a) => IpAddr::V6(a) == source.ip,
        crate::uri::Host::Name(_) => false,
    });
    if rport_at.is_none() && host_is_source {
        return Vec::new();
    }
    let ip = source.ip.to_string().into_bytes();
    let mut fills = Vec::with_capacity(2);
    if let Some(at) = rport_at {
        fills.push((
            at,
            vec![b"=".to_vec(), source.port.to_string().into_bytes()],
        ));
    }
    match received_at {
        Some((at, true)) => fills.push((at, vec![b"=".to_vec(), ip])),
        Some((at, false)) => fills.push((at, vec![ip])),
        None => {
            let end = req.span_of(via.raw).end;
            let at = Span { start: end, end };
            fills.push((at, vec![b";received=".to_vec(), ip]));
        }
    }
    fills.sort_by_key(|(span, _)| span.start);
    fills
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn trailing_lws(line: &[u8]) -> usize {
    line.iter().rev().take_while(|&&b| scan::is_lws(b)).count()
}

/// Writes `Via: <top value>` of a request.
fn push_top_via(out: &mut Vec<u8>, req: &Headers) -> Result<(), HeaderError> {
    let via = req.top_via()?;
    out.extend_from_slice(b"Via: ");
    out.extend_from_slice(via.raw);
    out.extend_from_slice(b"\r\n");
    Ok(())
}

fn push_lines(out: &mut Vec<u8>, h: &Headers, name: HeaderName) {
    for line in h.all(name) {
        out.extend_from_slice(trim_line_end(line.line.of(h.raw())));
        out.extend_from_slice(b"\r\n");
    }
}

fn request_line(out: &mut Vec<u8>, method: &str, req: &Message) {
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(req.request_uri_bytes().unwrap_or_default());
    out.extend_from_slice(b" SIP/2.0\r\n");
}

/// The ACK a client INVITE transaction sends for a non-2xx final response (RFC 3261
/// §17.1.1.3): Request-URI, top Via, Route, From, Call-ID of the request; To of the response;
/// CSeq number of the request with method ACK.
pub fn ack_for_non2xx(invite: &Message, response: &Message) -> Result<Bytes, HeaderError> {
    let req = invite.headers();
    let cseq = req.cseq()?;
    let mut out = Vec::with_capacity(512);
    request_line(&mut out, "ACK", invite);
    push_top_via(&mut out, req)?;
    push_lines(&mut out, req, HeaderName::Route);
    push_lines(&mut out, req, HeaderName::From);
    push_lines(&mut out, response.headers(), HeaderName::To);
    push_lines(&mut out, req, HeaderName::CallId);
    out.extend_from_slice(b"CSeq: ");
    push_u32(&mut out, cseq.seq);
    out.extend_from_slice(b" ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n");
    Ok(Bytes::from(out))
}

/// CANCEL for a request (RFC 3261 §9.1): same Request-URI, top Via, Route, From, To, Call-ID
/// and CSeq number; method CANCEL.
pub fn cancel(invite: &Message, reason: Option<&[u8]>) -> Result<Bytes, HeaderError> {
    let req = invite.headers();
    let cseq = req.cseq()?;
    let mut out = Vec::with_capacity(512);
    request_line(&mut out, "CANCEL", invite);
    push_top_via(&mut out, req)?;
    push_lines(&mut out, req, HeaderName::Route);
    push_lines(&mut out, req, HeaderName::From);
    push_lines(&mut out, req, HeaderName::To);
    push_lines(&mut out, req, HeaderName::CallId);
    out.extend_from_slice(b"CSeq: ");
    push_u32(&mut out, cseq.seq);
    out.extend_from_slice(b" CANCEL\r\nMax-Forwards: 70\r\n");
    if let Some(r) = reason {
        out.extend_from_slice(b"Reason: ");
        out.extend_from_slice(r);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_datagram;

    fn req(via: &str) -> Message {
        let m = format!(
            "OPTIONS sip:192.0.2.1 SIP/2.0\r\nVia: {via}\r\nVia: SIP/2.0/UDP 192.0.2.9;rport\r\n\
From: <sip:a@192.0.2.2>;tag=1\r\nTo: <sip:192.0.2.1>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\n\
Content-Length: 0\r\n\r\n"
        );
        parse_datagram(Bytes::from(m)).unwrap()
    }

    fn top_via(via: &str, source: &str) -> String {
        let source: SocketAddr = source.parse().unwrap();
        let r = response_from(
            req(via).headers(),
            Some(source.into()),
            200,
            "OK",
            None,
            &[],
        );
        let r = parse_datagram(r).unwrap();
        // The Via below the top one is never touched.
        assert_eq!(
            r.headers().vias().nth(1).unwrap().unwrap().raw,
            b"SIP/2.0/UDP 192.0.2.9;rport"
        );
        String::from_utf8(r.headers().top_via().unwrap().raw.to_vec()).unwrap()
    }

    #[test]
    fn rport_asked_for_gets_port_and_received() {
        assert_eq!(
            top_via(
                "SIP/2.0/UDP 192.0.2.2:5060;branch=z9hG4bK1;rport",
                "192.0.2.2:40000"
            ),
            "SIP/2.0/UDP 192.0.2.2:5060;branch=z9hG4bK1;rport=40000;received=192.0.2.2"
        );
        assert_eq!(
            top_via(
                "SIP/2.0/UDP h.example;rport ; branch=z9hG4bK1",
                "192.0.2.7:5062"
            ),
            "SIP/2.0/UDP h.example;rport=5062 ; branch=z9hG4bK1;received=192.0.2.7"
        );
        assert_eq!(
            top_via(
                "SIP/2.0/UDP [2001:db8::2];received=192.0.2.99;rport;branch=z9hG4bK1",
                "[2001:db8::3]:7000"
            ),
            "SIP/2.0/UDP [2001:db8::2];received=2001:db8::3;rport=7000;branch=z9hG4bK1"
        );
    }

    #[test]
    fn without_rport_received_only_when_the_host_is_not_the_source() {
        let via = "SIP/2.0/UDP 192.0.2.2:5070;branch=z9hG4bK1";
        assert_eq!(top_via(via, "192.0.2.2:5070"), via);
        assert_eq!(top_via(via, "[::ffff:192.0.2.2]:5070"), via);
        assert_eq!(
            top_via(via, "198.51.100.1:5070"),
            "SIP/2.0/UDP 192.0.2.2:5070;branch=z9hG4bK1;received=198.51.100.1"
        );
        // A filled rport is the sender's business; received is still ours to write.
        assert_eq!(
            top_via("SIP/2.0/UDP h;rport=1;received", "192.0.2.2:9"),
            "SIP/2.0/UDP h;rport=1;received=192.0.2.2"
        );
    }

    #[test]
    fn without_a_source_or_a_readable_via_the_response_is_as_before() {
        let m = req("SIP/2.0/UDP 192.0.2.2;branch=z9hG4bK1;rport");
        assert_eq!(
            response_from(m.headers(), None, 200, "OK", Some(b"t"), &[]),
            response(m.headers(), 200, "OK", Some(b"t"), &[])
        );
        let bad = req("SIP/2.0/UDP 192.0.2.2;;rport");
        let source = Some(ViaFill::from("192.0.2.2:1".parse::<SocketAddr>().unwrap()));
        let r = response_from(bad.headers(), source, 400, "Bad Request", None, &[]);
        assert!(String::from_utf8_lossy(&r).contains("\r\nVia: SIP/2.0/UDP 192.0.2.2;;rport\r\n"));
    }
}
