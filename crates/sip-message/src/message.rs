//! The parsed message: the original bytes, a start line and an index of header lines. Nothing
//! here copies a header; every accessor returns a slice of the original buffer.

use bytes::Bytes;

use crate::method::Method;
use crate::name::HeaderName;

/// A byte range of the message, `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub(crate) fn new(start: usize, end: usize) -> Self {
        debug_assert!(start <= end);
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    pub fn len(self) -> usize {
        (self.end - self.start) as usize
    }

    pub fn is_empty(self) -> bool {
        self.start == self.end
    }

    /// The bytes of this span in `buf`.
    pub fn of(self, buf: &[u8]) -> &[u8] {
        &buf[self.start as usize..self.end as usize]
    }
}

/// One header line of the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub name: HeaderName,
    /// The name as written (any case, maybe compact).
    pub name_span: Span,
    /// The value, from its first non-blank byte to the end of its last (folded) line.
    pub value: Span,
    /// The whole line: name, value, folds and the final line end.
    pub line: Span,
}

/// The header index of a message over its original bytes. Typed views over it live in
/// [`crate::headers`].
#[derive(Debug, Clone)]
pub struct Headers {
    pub(crate) raw: Bytes,
    pub(crate) entries: Vec<Header>,
    /// Offset of the empty line that ends the header block.
    pub(crate) end: u32,
}

impl Headers {
    /// The message bytes these headers index.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// Every header line in message order.
    pub fn iter(&self) -> std::slice::Iter<'_, Header> {
        self.entries.iter()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The first line of a header.
    pub fn get(&self, name: HeaderName) -> Option<&Header> {
        self.entries.iter().find(|h| h.name == name)
    }

    /// Every line of a header, in order.
    pub fn all(&self, name: HeaderName) -> impl Iterator<Item = &Header> + '_ {
        self.entries.iter().filter(move |h| h.name == name)
    }

    /// How many lines of a header the message has.
    pub fn count(&self, name: HeaderName) -> usize {
        self.all(name).count()
    }

    /// The value bytes of a header line (untrimmed at the end, folds included).
    pub fn value(&self, h: &Header) -> &[u8] {
        h.value.of(&self.raw)
    }

    /// The name bytes of a header line as written.
    pub fn name_bytes(&self, h: &Header) -> &[u8] {
        h.name_span.of(&self.raw)
    }

    /// The first value of a header that has no variant, by name (case-insensitive).
    pub fn get_other(&self, name: &str) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|h| {
                h.name == HeaderName::Other
                    && self.name_bytes(h).eq_ignore_ascii_case(name.as_bytes())
            })
            .map(|h| crate::scan::trim(self.value(h)))
    }

    /// The span of a sub-slice of the message bytes (a slice a view returned).
    ///
    /// # Panics
    /// If `part` does not point into this message's bytes.
    pub fn span_of(&self, part: &[u8]) -> Span {
        let base = self.raw.as_ptr() as usize;
        let start = part.as_ptr() as usize;
        assert!(
            start >= base && start + part.len() <= base + self.raw.len(),
            "slice is not part of this message"
        );
        Span::new(start - base, start - base + part.len())
    }
}

/// The first line of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLine {
    pub method: Method,
    pub method_span: Span,
    pub uri: Span,
    pub version: Span,
}

/// The first line of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusLine {
    pub version: Span,
    pub code: u16,
    pub reason: Span,
}

/// Request line or status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartLine {
    Request(RequestLine),
    Response(StatusLine),
}

/// A SIP message: original bytes, start line, header index and body range.
#[derive(Debug, Clone)]
pub struct Message {
    pub(crate) headers: Headers,
    pub(crate) start: StartLine,
    /// End of the start line, line end included.
    pub(crate) start_end: u32,
    pub(crate) body: Span,
}

impl Message {
    /// Exactly the bytes of this message (leading CRLFs and trailing datagram octets removed).
    pub fn raw(&self) -> &Bytes {
        &self.headers.raw
    }

    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    pub fn start_line(&self) -> &StartLine {
        &self.start
    }

    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request(_))
    }

    /// The request line, if this is a request.
    pub fn request_line(&self) -> Option<&RequestLine> {
        match &self.start {
            StartLine::Request(r) => Some(r),
            StartLine::Response(_) => None,
        }
    }

    /// The method of a request.
    pub fn method(&self) -> Option<Method> {
        self.request_line().map(|r| r.method)
    }

    /// The method name as written (extension methods included).
    pub fn method_bytes(&self) -> Option<&[u8]> {
        self.request_line()
            .map(|r| r.method_span.of(&self.headers.raw))
    }

    /// The Request-URI bytes of a request.
    pub fn request_uri_bytes(&self) -> Option<&[u8]> {
        self.request_line().map(|r| r.uri.of(&self.headers.raw))
    }

    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response(s) => Some(s.code),
            StartLine::Request(_) => None,
        }
    }

    /// The reason phrase of a response.
    pub fn reason_phrase(&self) -> Option<&[u8]> {
        match &self.start {
            StartLine::Response(s) => Some(s.reason.of(&self.headers.raw)),
            StartLine::Request(_) => None,
        }
    }

    /// The protocol version on the start line (`SIP/2.0` for every message we forward).
    pub fn version(&self) -> &[u8] {
        let span = match &self.start {
            StartLine::Request(r) => r.version,
            StartLine::Response(s) => s.version,
        };
        span.of(&self.headers.raw)
    }

    /// The body bytes (empty when there is none).
    pub fn body(&self) -> &[u8] {
        self.body.of(&self.headers.raw)
    }

    pub fn body_span(&self) -> Span {
        self.body
    }

    /// Size of the message in bytes.
    pub fn len(&self) -> usize {
        self.headers.raw.len()
    }

    pub fn is_empty(&self) -> bool {
        self.headers.raw.is_empty()
    }
}
