//! Stream framing (RFC 3261 §18.3): is a whole message in the buffer? `Incomplete` is a normal
//! outcome; nothing is parsed or allocated until a whole message is known to be there. The
//! header block ends at the first empty line, CRLF or bare LF (as the parser accepts in
//! datagrams), so a peer writing bare LFs is framed instead of left waiting.

use bytes::Bytes;

use crate::name::HeaderName;
use crate::scan;

/// The outcome of looking at the front of a stream buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// A whole message of this many bytes is at the front of the buffer.
    Message(usize),
    /// This many keep-alive line ends (RFC 5626 §3.5.1 CRLF, or bare CRLFs between messages)
    /// are at the front; skip them.
    KeepAlive(usize),
    /// More bytes are needed.
    Incomplete,
}

/// Why a stream can not be framed; the connection should be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The message (or its header block so far) is larger than the limit.
    TooLarge,
    /// The header block has no Content-Length (required on streams).
    MissingContentLength,
    /// Content-Length is not a number, or there are two.
    BadContentLength,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FrameError::TooLarge => "message larger than the limit",
            FrameError::MissingContentLength => "Content-Length missing on a stream",
            FrameError::BadContentLength => "malformed Content-Length",
        })
    }
}

impl std::error::Error for FrameError {}

/// Looks at the front of `buf`. `max_size` bounds a whole message; the caller must not buffer
/// more than `max_size` bytes of one message (the check runs before the header block ends).
pub fn frame(buf: &[u8], max_size: usize) -> Result<Frame, FrameError> {
    let crlfs = buf
        .iter()
        .take_while(|b| matches!(b, b'\r' | b'\n'))
        .count();
    if crlfs > 0 {
        return Ok(Frame::KeepAlive(crlfs));
    }
    let Some((end, header_len)) = header_end(buf) else {
        return if buf.len() >= max_size {
            Err(FrameError::TooLarge)
        } else {
            Ok(Frame::Incomplete)
        };
    };
    if header_len > max_size {
        return Err(FrameError::TooLarge);
    }
    let mut content_length = None;
    // Skip the start line, then look at each header line's name.
    let mut pos = memchr::memchr(b'\n', &buf[..header_len]).map_or(header_len, |n| n + 1);
    while pos < end {
        let line_end =
            pos + memchr::memchr(b'\n', &buf[pos..header_len]).unwrap_or(header_len - pos);
        let line = &buf[pos..line_end];
        if let Some(colon) = memchr::memchr(b':', line) {
            let name = scan::trim(&line[..colon]);
            if !matches!(line.first(), Some(b' ' | b'\t'))
                && HeaderName::from_bytes(name) == HeaderName::ContentLength
            {
                if content_length.is_some() {
                    return Err(FrameError::BadContentLength);
                }
                let value = scan::trim(&line[colon + 1..]);
                let n = scan::parse_decimal(value, u64::from(u32::MAX))
                    .ok_or(FrameError::BadContentLength)?;
                content_length = Some(n as usize);
            }
        }
        pos = line_end + 1;
    }
    let total = header_len + content_length.ok_or(FrameError::MissingContentLength)?;
    if total > max_size {
        return Err(FrameError::TooLarge);
    }
    Ok(if buf.len() >= total {
        Frame::Message(total)
    } else {
        Frame::Incomplete
    })
}

/// Where the header block ends: `(end of its last line's text, length with the empty line)`.
/// The empty line is the first line holding nothing but an optional CR; line ends may be CRLF
/// or bare LF. `None` while it has not arrived.
fn header_end(buf: &[u8]) -> Option<(usize, usize)> {
    for nl in memchr::memchr_iter(b'\n', buf) {
        match buf.get(nl + 1..) {
            Some([b'\n', ..]) => return Some((nl, nl + 2)),
            Some([b'\r', b'\n', ..]) => return Some((nl, nl + 3)),
            _ => {}
        }
    }
    None
}

/// The reply to a stream message [`frame`] refused: `513 Message Too Large` for
/// [`FrameError::TooLarge`], `400 Bad Request` for a missing or malformed Content-Length.
/// Built with [`crate::build::response`] from what arrived of the head (`buf`, the
/// connection's buffer: the head up to its empty line, or as many whole header lines as
/// arrived). `None` when the head is not a request with a Via (a response, an ACK, or
/// garbage get no reply).
pub fn refusal(err: FrameError, buf: &[u8], to_tag: &[u8]) -> Option<Bytes> {
    let (status, reason) = match err {
        FrameError::TooLarge => (513, "Message Too Large"),
        FrameError::MissingContentLength | FrameError::BadContentLength => (400, "Bad Request"),
    };
    if buf.starts_with(b"ACK ") || buf.starts_with(b"SIP/") {
        return None;
    }
    let mut head = match header_end(buf) {
        Some((_, len)) => buf[..len].to_vec(),
        None => {
            let last = memchr::memrchr(b'\n', buf)?;
            buf[..=last].to_vec()
        }
    };
    if header_end(&head).is_none() {
        head.extend_from_slice(b"\r\n");
    }
    // Without its body the head may fail to parse (Content-Length larger than what follows,
    // or malformed): the header index of a request is kept in the error.
    let reply = |h: &crate::Headers| {
        h.get(HeaderName::Via)
            .is_some()
            .then(|| crate::build::response(h, status, reason, Some(to_tag), &[]))
    };
    match crate::parse_datagram(Bytes::from(head)) {
        Ok(m) if m.is_request() => reply(m.headers()),
        Ok(_) => None,
        Err(e) => reply(e.request_headers()?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h\r\nl: 3\r\n\r\nabc";

    #[test]
    fn whole_partial_and_keepalive() {
        assert_eq!(frame(MSG, 16384), Ok(Frame::Message(MSG.len())));
        for cut in 0..MSG.len() {
            let f = frame(&MSG[..cut], 16384).unwrap();
            assert!(matches!(f, Frame::Incomplete), "{cut}: {f:?}");
        }
        assert_eq!(frame(b"\r\n\r\nOPTIONS", 16384), Ok(Frame::KeepAlive(4)));
    }

    #[test]
    fn bare_lf_line_ends_are_framed() {
        let lf = b"OPTIONS sip:a@b SIP/2.0\nVia: SIP/2.0/TCP h\nl: 3\n\nabc";
        assert_eq!(frame(lf, 16384), Ok(Frame::Message(lf.len())));
        let mixed = b"OPTIONS sip:a@b SIP/2.0\nVia: SIP/2.0/TCP h\r\nl: 3\n\r\nabc";
        assert_eq!(frame(mixed, 16384), Ok(Frame::Message(mixed.len())));
        for cut in 0..lf.len() {
            assert_eq!(frame(&lf[..cut], 16384), Ok(Frame::Incomplete), "{cut}");
        }
        let m = crate::parse_stream_message(Bytes::from_static(lf)).unwrap();
        assert_eq!(m.body(), b"abc");
    }

    #[test]
    fn refusals_come_from_the_head() {
        let big = b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\
            From: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n\
            Content-Length: 100000\r\n\r\nv=0";
        assert_eq!(frame(big, 16384), Err(FrameError::TooLarge));
        let r = refusal(FrameError::TooLarge, big, b"t1").unwrap();
        let r = std::str::from_utf8(&r).unwrap();
        assert!(r.starts_with("SIP/2.0 513 Message Too Large\r\n"), "{r}");
        assert!(r.contains("To: <sip:a@b>;tag=t1\r\n"), "{r}");
        assert!(r.contains("Call-ID: c1\r\n"), "{r}");
        // A head cut off by the limit: its whole lines are enough.
        let mut cut = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\
            From: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c2\r\nCSeq: 1 OPTIONS\r\n"
            .to_vec();
        while cut.len() < 2000 {
            cut.extend_from_slice(b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        cut.truncate(1990);
        assert_eq!(frame(&cut, 1024), Err(FrameError::TooLarge));
        let r = refusal(FrameError::TooLarge, &cut, b"t2").unwrap();
        assert!(r.starts_with(b"SIP/2.0 513 "), "{r:?}");
        let big = FrameError::TooLarge;
        assert!(refusal(big, b"ACK sip:a@b SIP/2.0\r\nVia: x\r\n", b"t").is_none());
        assert!(refusal(big, b"SIP/2.0 200 OK\r\nVia: x\r\n", b"t").is_none());
        assert!(refusal(big, &[b'A'; 100], b"t").is_none());
        // No Content-Length on a stream: 400.
        let bare = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\
            From: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c3\r\nCSeq: 1 OPTIONS\r\n\r\n";
        let err = frame(bare, 16384).unwrap_err();
        assert_eq!(err, FrameError::MissingContentLength);
        let r = refusal(err, bare, b"t3").unwrap();
        assert!(r.starts_with(b"SIP/2.0 400 Bad Request\r\n"), "{r:?}");
    }

    #[test]
    fn two_messages_back_to_back() {
        let mut two = MSG.to_vec();
        two.extend_from_slice(MSG);
        assert_eq!(frame(&two, 16384), Ok(Frame::Message(MSG.len())));
    }

    #[test]
    fn errors() {
        assert_eq!(
            frame(b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n\r\n", 16384),
            Err(FrameError::MissingContentLength)
        );
        assert_eq!(
            frame(b"OPTIONS sip:a@b SIP/2.0\r\nl: -1\r\n\r\n", 16384),
            Err(FrameError::BadContentLength)
        );
        assert_eq!(frame(&[b'A'; 100], 64), Err(FrameError::TooLarge));
        assert_eq!(
            frame(b"OPTIONS sip:a@b SIP/2.0\r\nl: 1000\r\n\r\n", 100),
            Err(FrameError::TooLarge)
        );
    }
}
