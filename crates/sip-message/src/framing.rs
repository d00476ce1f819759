//! Stream framing (RFC 3261 §18.3): is a whole message in the buffer? `Incomplete` is a normal
//! outcome; nothing is parsed or allocated until a whole message is known to be there.

use memchr::memmem;

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
    let Some(end) = memmem::find(buf, b"\r\n\r\n") else {
        return if buf.len() >= max_size {
            Err(FrameError::TooLarge)
        } else {
            Ok(Frame::Incomplete)
        };
    };
    let header_len = end + 4;
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
