//! Messages the switch writes itself from a request: responses (RFC 3261 §8.2.6), the ACK of a
//! non-2xx final response (§17.1.1.3) and CANCEL (§9.1).

use bytes::Bytes;

use crate::headers::HeaderError;
use crate::message::{Headers, Message};
use crate::name::HeaderName;
use crate::scan;

fn push_u32(out: &mut Vec<u8>, n: u32) {
    out.extend_from_slice(n.to_string().as_bytes());
}

/// Builds a response to a request from its header index: every Via line, From, To (with
/// `to_tag` added when To has none), Call-ID and CSeq are copied as written, then `extra`
/// headers and `Content-Length: 0`. Works on the index of a malformed request too, so that a
/// `400` can be sent.
pub fn response(
    req: &Headers,
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
    for h in req.iter() {
        match h.name {
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
