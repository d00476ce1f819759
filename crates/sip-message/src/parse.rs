//! One pass over the bytes: start line, header line index (folds joined), body bounded by
//! Content-Length. No header value is parsed here beyond Content-Length.

use std::fmt;

use bytes::Bytes;
use memchr::memchr;

use crate::message::{Header, Headers, Message, RequestLine, Span, StartLine, StatusLine};
use crate::method::Method;
use crate::name::HeaderName;
use crate::scan;

/// Why bytes are not a SIP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// Nothing but line ends (a keep-alive).
    Empty,
    /// The header block does not end (no empty line).
    Truncated,
    /// The request or status line does not follow RFC 3261 §7.1/§7.2.
    BadStartLine,
    /// A header line has no colon, a bad name, or starts with a fold.
    BadHeaderLine,
    /// Content-Length is not a number of at most 2^32-1.
    BadContentLength,
    /// Content-Length says more octets than the datagram holds.
    BodyTruncated,
    /// A stream message without Content-Length (RFC 3261 §18.3).
    MissingContentLength,
}

impl fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParseErrorKind::Empty => "empty message",
            ParseErrorKind::Truncated => "header block does not end",
            ParseErrorKind::BadStartLine => "malformed start line",
            ParseErrorKind::BadHeaderLine => "malformed header line",
            ParseErrorKind::BadContentLength => "malformed Content-Length",
            ParseErrorKind::BodyTruncated => "Content-Length larger than the body",
            ParseErrorKind::MissingContentLength => "Content-Length missing on a stream",
        })
    }
}

/// A parse failure. When the bytes were a request whose header block could be indexed, the
/// index is kept so that a `400` can still be built from its Via, From, To, Call-ID and CSeq.
#[derive(Debug, Clone)]
pub struct ParseError {
    pub kind: ParseErrorKind,
    request_headers: Option<Headers>,
}

impl ParseError {
    fn bare(kind: ParseErrorKind) -> Self {
        ParseError {
            kind,
            request_headers: None,
        }
    }

    /// The header index of a malformed request, if it could be built.
    pub fn request_headers(&self) -> Option<&Headers> {
        self.request_headers.as_ref()
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind.fmt(f)
    }
}

impl std::error::Error for ParseError {}

/// Parses a UDP datagram. Content-Length is optional (the body is the rest of the datagram);
/// octets past Content-Length are dropped (RFC 3261 §18.3).
pub fn parse_datagram(raw: Bytes) -> Result<Message, ParseError> {
    parse_inner(raw, true)
}

/// Parses one message cut from a stream by [`crate::framing::frame`]: Content-Length is
/// required.
pub fn parse_stream_message(raw: Bytes) -> Result<Message, ParseError> {
    parse_inner(raw, false)
}

fn parse_inner(raw: Bytes, datagram: bool) -> Result<Message, ParseError> {
    let skip = raw
        .iter()
        .take_while(|b| matches!(b, b'\r' | b'\n'))
        .count();
    let raw = if skip > 0 { raw.slice(skip..) } else { raw };
    if raw.is_empty() {
        return Err(ParseError::bare(ParseErrorKind::Empty));
    }
    if raw.len() > u32::MAX as usize / 2 {
        return Err(ParseError::bare(ParseErrorKind::Truncated));
    }
    let buf: &[u8] = &raw;
    let is_request = !buf.starts_with(b"SIP/");

    let line_end = |pos: usize| {
        let nl = pos + scan::find_byte(b'\n', &buf[pos..])?;
        let content_end = if nl > pos && buf[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        };
        Some((content_end, nl + 1))
    };
    let (start_content_end, mut pos) = match line_end(0) {
        Some(x) => x,
        None => return Err(ParseError::bare(ParseErrorKind::Truncated)),
    };
    let start_end = pos;

    let mut entries: Vec<Header> = Vec::with_capacity(24);
    let mut bad_header = false;
    let (header_end, body_start) = loop {
        let Some((content_end, next)) = line_end(pos) else {
            return Err(ParseError::bare(ParseErrorKind::Truncated));
        };
        if content_end == pos {
            break (pos, next);
        }
        if matches!(buf[pos], b' ' | b'\t') {
            match entries.last_mut() {
                Some(h) => {
                    h.value.end = content_end as u32;
                    h.line.end = next as u32;
                }
                None => bad_header = true,
            }
        } else {
            match index_line(buf, pos, content_end, next) {
                Some(h) => entries.push(h),
                None => bad_header = true,
            }
        }
        pos = next;
    };

    let headers = Headers {
        raw: raw.clone(),
        entries,
        end: header_end as u32,
    };
    let fail = |kind: ParseErrorKind, headers: Headers| ParseError {
        kind,
        request_headers: is_request.then_some(headers),
    };
    if bad_header {
        return Err(fail(ParseErrorKind::BadHeaderLine, headers));
    }

    let available = buf.len() - body_start;
    let body_len = match headers.get(HeaderName::ContentLength) {
        Some(h) => match scan::parse_decimal(scan::trim(headers.value(h)), u64::from(u32::MAX)) {
            Some(n) if n as usize <= available => n as usize,
            Some(_) if datagram => return Err(fail(ParseErrorKind::BodyTruncated, headers)),
            Some(_) => return Err(fail(ParseErrorKind::Truncated, headers)),
            None => return Err(fail(ParseErrorKind::BadContentLength, headers)),
        },
        None if datagram => available,
        None => return Err(fail(ParseErrorKind::MissingContentLength, headers)),
    };
    let body_end = body_start + body_len;

    let start = match parse_start_line(&buf[..start_content_end]) {
        Some(s) => s,
        None => return Err(fail(ParseErrorKind::BadStartLine, headers)),
    };

    let mut headers = headers;
    if body_end < raw.len() {
        headers.raw = raw.slice(..body_end);
    }
    Ok(Message {
        headers,
        start,
        start_end: start_end as u32,
        body: Span::new(body_start, body_end),
    })
}

/// Indexes one header line: a token name, optional blanks, a colon, the value.
fn index_line(buf: &[u8], pos: usize, content_end: usize, next: usize) -> Option<Header> {
    let line = &buf[pos..content_end];
    let name_end = line
        .iter()
        .position(|&b| !scan::is_token(b))
        .unwrap_or(line.len());
    if name_end == 0 {
        return None;
    }
    let mut v = name_end;
    while v < line.len() && matches!(line[v], b' ' | b'\t') {
        v += 1;
    }
    if line.get(v) != Some(&b':') {
        return None;
    }
    v += 1;
    while v < line.len() && matches!(line[v], b' ' | b'\t') {
        v += 1;
    }
    Some(Header {
        name: HeaderName::from_bytes(&line[..name_end]),
        name_span: Span::new(pos, pos + name_end),
        value: Span::new(pos + v, content_end),
        line: Span::new(pos, next),
    })
}

fn is_version(v: &[u8]) -> bool {
    if v.len() < 7 || !v[..4].eq_ignore_ascii_case(b"SIP/") {
        return false;
    }
    let rest = &v[4..];
    let Some(dot) = memchr(b'.', rest) else {
        return false;
    };
    let (major, minor) = (&rest[..dot], &rest[dot + 1..]);
    !major.is_empty()
        && !minor.is_empty()
        && major.iter().all(u8::is_ascii_digit)
        && minor.iter().all(u8::is_ascii_digit)
}

fn parse_start_line(line: &[u8]) -> Option<StartLine> {
    if line.starts_with(b"SIP/") {
        let sp = memchr(b' ', line)?;
        if !is_version(&line[..sp]) {
            return None;
        }
        let rest = &line[sp + 1..];
        if rest.len() < 3 || !rest[..3].iter().all(u8::is_ascii_digit) {
            return None;
        }
        if rest.len() > 3 && rest[3] != b' ' {
            return None;
        }
        let code = rest[..3]
            .iter()
            .fold(0u16, |a, &d| a * 10 + u16::from(d - b'0'));
        let reason_start = (sp + 5).min(line.len());
        return Some(StartLine::Response(StatusLine {
            version: Span::new(0, sp),
            code,
            reason: Span::new(reason_start, line.len()),
        }));
    }
    // Request-Line = Method SP Request-URI SP SIP-Version, single spaces; the URI has no
    // white space or control characters. Trailing blanks after the version are tolerated.
    let sp1 = line.iter().position(|&b| !scan::is_token(b))?;
    if sp1 == 0 || line[sp1] != b' ' {
        return None;
    }
    let uri_len = line[sp1 + 1..]
        .iter()
        .position(|&b| b <= b' ' || b == 0x7f)?;
    let sp2 = sp1 + 1 + uri_len;
    if uri_len == 0 || line[sp2] != b' ' {
        return None;
    }
    let mut end = line.len();
    while end > sp2 + 1 && matches!(line[end - 1], b' ' | b'\t') {
        end -= 1;
    }
    if !is_version(&line[sp2 + 1..end]) {
        return None;
    }
    Some(StartLine::Request(RequestLine {
        method: Method::from_bytes(&line[..sp1]),
        method_span: Span::new(0, sp1),
        uri: Span::new(sp1 + 1, sp2),
        version: Span::new(sp2 + 1, end),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Message, ParseError> {
        parse_datagram(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn request_line_and_headers() {
        let m = p("INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nl: 4\r\n\r\nbodyEXTRA").unwrap();
        assert_eq!(m.method(), Some(Method::Invite));
        assert_eq!(m.request_uri_bytes(), Some(&b"sip:a@b"[..]));
        assert_eq!(m.body(), b"body");
        assert_eq!(m.raw().len(), m.len());
        assert!(m.raw().ends_with(b"body"));
    }

    #[test]
    fn folded_header_joins_previous() {
        let m = p("OPTIONS sip:a@b SIP/2.0\r\nSubject: one\r\n  two\r\nl: 0\r\n\r\n").unwrap();
        let h = m.headers().get(HeaderName::Subject).unwrap();
        assert_eq!(m.headers().value(h), b"one\r\n  two");
    }

    #[test]
    fn bad_start_lines() {
        for s in [
            "INVITE  sip:a@b SIP/2.0\r\n\r\n",
            "INVITE sip:a@b  SIP/2.0\r\n\r\n",
            "INVITE sip:a@b; lr SIP/2.0\r\n\r\n",
            "SIP/2.0 4294967301 big\r\n\r\n",
            "SIP/2.0 20 OK\r\n\r\n",
            "INVITE sip:a@b HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(p(s).unwrap_err().kind, ParseErrorKind::BadStartLine, "{s}");
        }
    }

    #[test]
    fn empty_reason_and_trailing_space_version() {
        let m = p("SIP/2.0 100 \r\nl: 0\r\n\r\n").unwrap();
        assert_eq!(m.status(), Some(100));
        assert_eq!(m.reason_phrase(), Some(&b""[..]));
        let m = p("OPTIONS sip:a@b SIP/2.0  \r\nl: 0\r\n\r\n").unwrap();
        assert_eq!(m.version(), b"SIP/2.0");
    }

    #[test]
    fn content_length_errors_keep_headers_of_requests() {
        let e = p("INVITE sip:a@b SIP/2.0\r\nContent-Length: 99\r\n\r\nabc").unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::BodyTruncated);
        assert!(e.request_headers().is_some());
        let e = p("SIP/2.0 200 OK\r\nContent-Length: -1\r\n\r\n").unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::BadContentLength);
        assert!(e.request_headers().is_none());
    }

    #[test]
    fn keepalive_is_empty() {
        assert_eq!(p("\r\n\r\n").unwrap_err().kind, ParseErrorKind::Empty);
    }
}
