//! Edits for forwarding. Each edit records a "lump" (replace a byte range of the original
//! message, or insert at a point); [`Edit::finish`] writes the untouched ranges and the lumps
//! into one buffer. Everything not edited goes out byte for byte.

use std::fmt;

use bytes::Bytes;

use crate::headers::{HeaderError, HeaderErrorKind};
use crate::message::{Header, Message, Span};
use crate::name::HeaderName;
use crate::scan::{self, CommaSplit};
use crate::uri::Uri;

/// Why an edit could not be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditError {
    /// The edit touches bytes another edit already replaces.
    Overlap,
    /// The header to edit is missing or malformed.
    Header(HeaderError),
    /// The message is a response and the edit is for requests (or the reverse).
    WrongKind,
}

impl fmt::Display for EditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EditError::Overlap => f.write_str("edit overlaps an earlier edit"),
            EditError::Header(e) => e.fmt(f),
            EditError::WrongKind => f.write_str("edit does not apply to this kind of message"),
        }
    }
}

impl std::error::Error for EditError {}

impl From<HeaderError> for EditError {
    fn from(e: HeaderError) -> Self {
        EditError::Header(e)
    }
}

#[derive(Debug, Clone, Copy)]
struct Lump {
    at: Span,
    /// Range of the replacement in the arena.
    data: (u32, u32),
}

/// A set of edits over one message. Build it with [`Message::edit`].
pub struct Edit<'m> {
    msg: &'m Message,
    lumps: Vec<Lump>,
    arena: Vec<u8>,
    body_replaced: bool,
}

impl Message {
    /// Starts a set of edits of this message.
    pub fn edit(&self) -> Edit<'_> {
        Edit {
            msg: self,
            lumps: Vec::with_capacity(12),
            arena: Vec::with_capacity(256),
            body_replaced: false,
        }
    }
}

/// Decimal digits of `n` in a stack buffer.
struct Digits {
    buf: [u8; 10],
    start: usize,
}

impl Digits {
    fn new(mut n: u32) -> Self {
        let mut buf = [0u8; 10];
        let mut start = buf.len();
        loop {
            start -= 1;
            buf[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        Digits { buf, start }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

impl<'m> Edit<'m> {
    fn push(&mut self, at: Span, parts: &[&[u8]]) -> Result<(), EditError> {
        for l in &self.lumps {
            let overlaps = if at.is_empty() {
                l.at.start < at.start && at.start < l.at.end
            } else if l.at.is_empty() {
                at.start < l.at.start && l.at.start < at.end
            } else {
                at.start < l.at.end && l.at.start < at.end
            };
            if overlaps {
                return Err(EditError::Overlap);
            }
        }
        let start = self.arena.len() as u32;
        for p in parts {
            self.arena.extend_from_slice(p);
        }
        self.lumps.push(Lump {
            at,
            data: (start, self.arena.len() as u32),
        });
        Ok(())
    }

    fn insert(&mut self, at: u32, parts: &[&[u8]]) -> Result<(), EditError> {
        self.push(Span { start: at, end: at }, parts)
    }

    fn header_line_insert(
        &mut self,
        at: u32,
        name: HeaderName,
        value: &[u8],
    ) -> Result<(), EditError> {
        self.insert(at, &[name.as_str().as_bytes(), b": ", value, b"\r\n"])
    }

    fn first_header_pos(&self) -> u32 {
        self.msg.start_end
    }

    /// Removes the first value of a comma-list header: the whole line when it is the only
    /// value, else the value and its comma.
    fn remove_first_value(&mut self, name: HeaderName) -> Result<(), EditError> {
        let h = self
            .msg
            .headers
            .get(name)
            .copied()
            .ok_or(HeaderError::new(name, HeaderErrorKind::Missing))?;
        let value = self.msg.headers.value(&h);
        let mut split = CommaSplit::new(value);
        let first = split.next().unwrap_or(value);
        let rest_start = first.len() + 1;
        if rest_start >= value.len() || scan::trim(&value[rest_start..]).is_empty() {
            return self.push(h.line, &[]);
        }
        let skip = value[rest_start..]
            .iter()
            .take_while(|&&b| scan::is_lws(b))
            .count();
        let start = h.value.start;
        self.push(
            Span {
                start,
                end: start + (rest_start + skip) as u32,
            },
            &[],
        )
    }

    /// Adds a Via value on top (a new line before every other header).
    pub fn prepend_via(&mut self, value: &[u8]) -> Result<(), EditError> {
        self.header_line_insert(self.first_header_pos(), HeaderName::Via, value)
    }

    /// Removes the top Via value (RFC 3261 §16.7 step 3, on a response).
    pub fn remove_top_via(&mut self) -> Result<(), EditError> {
        self.remove_first_value(HeaderName::Via)
    }

    /// Sets `received` and fills `rport` on the top Via (RFC 3261 §18.2.1, RFC 3581 §4).
    /// `received` is added when `Some`; `rport` is filled only when the Via asked for it.
    pub fn set_via_received(
        &mut self,
        received: Option<&[u8]>,
        rport: u16,
    ) -> Result<(), EditError> {
        let headers = &self.msg.headers;
        let via = headers.top_via()?;
        let mut port_lump = None;
        let mut received_lump = None;
        for (name, value) in via.params.iter() {
            if name.eq_ignore_ascii_case(b"rport") {
                port_lump = Some(match value {
                    Some(v) => headers.span_of(v),
                    None => {
                        let s = headers.span_of(name);
                        Span {
                            start: s.end,
                            end: s.end,
                        }
                    }
                });
            } else if name.eq_ignore_ascii_case(b"received") {
                received_lump = value.map(|v| headers.span_of(v));
            }
        }
        let end = headers.span_of(via.raw).end;
        if let Some(at) = port_lump {
            let digits = Digits::new(u32::from(rport));
            if at.is_empty() {
                self.push(at, &[b"=", digits.as_bytes()])?;
            } else {
                self.push(at, &[digits.as_bytes()])?;
            }
        }
        if let Some(ip) = received {
            match received_lump {
                Some(at) => self.push(at, &[ip])?,
                None => self.insert(end, &[b";received=", ip])?,
            }
        }
        Ok(())
    }

    /// Adds a Record-Route value above every other (RFC 3261 §16.6 step 4).
    pub fn prepend_record_route(&mut self, value: &[u8]) -> Result<(), EditError> {
        let at = self
            .msg
            .headers
            .get(HeaderName::RecordRoute)
            .map_or(self.first_header_pos(), |h| h.line.start);
        self.header_line_insert(at, HeaderName::RecordRoute, value)
    }

    /// Removes the first Route value (RFC 3261 §16.4, §16.12).
    pub fn remove_first_route(&mut self) -> Result<(), EditError> {
        self.remove_first_value(HeaderName::Route)
    }

    /// Replaces the Request-URI.
    pub fn set_request_uri(&mut self, uri: &[u8]) -> Result<(), EditError> {
        let rl = self.msg.request_line().ok_or(EditError::WrongKind)?;
        self.push(rl.uri, &[uri])
    }

    /// Replaces the user part of the Request-URI (the number of a tel URI).
    pub fn set_request_uri_user(&mut self, user: &[u8]) -> Result<(), EditError> {
        let rl = *self.msg.request_line().ok_or(EditError::WrongKind)?;
        let raw = rl.uri.of(self.msg.raw());
        let uri = Uri::parse(raw).map_err(|_| EditError::WrongKind)?;
        self.replace_user(rl.uri, &uri, user)
    }

    fn replace_user(
        &mut self,
        uri_span: Span,
        uri: &Uri<'_>,
        user: &[u8],
    ) -> Result<(), EditError> {
        match uri.user() {
            Some(u) => {
                let s = self.msg.headers.span_of(u);
                self.push(s, &[user])
            }
            None => match uri {
                Uri::Sip(s) => {
                    let at = uri_span.start + if s.secure { 5 } else { 4 };
                    self.insert(at, &[user, b"@"])
                }
                _ => Err(EditError::WrongKind),
            },
        }
    }

    fn name_addr_uri(&mut self, name: HeaderName, uri: &[u8]) -> Result<(), EditError> {
        let headers = &self.msg.headers;
        let na = if name == HeaderName::To {
            headers.to()?
        } else {
            headers.from()?
        };
        let span = headers.span_of(na.uri_raw);
        if na.bracketed {
            self.push(span, &[uri])
        } else {
            self.push(span, &[b"<", uri, b">"])
        }
    }

    fn name_addr_user(&mut self, name: HeaderName, user: &[u8]) -> Result<(), EditError> {
        let headers = &self.msg.headers;
        let na = if name == HeaderName::To {
            headers.to()?
        } else {
            headers.from()?
        };
        let span = headers.span_of(na.uri_raw);
        let uri = na.uri().map_err(|_| HeaderError::malformed(name))?;
        self.replace_user(span, &uri, user)
    }

    /// Replaces the URI of To (display name and parameters stay).
    pub fn set_to_uri(&mut self, uri: &[u8]) -> Result<(), EditError> {
        self.name_addr_uri(HeaderName::To, uri)
    }

    /// Replaces the URI of From (display name and tag stay).
    pub fn set_from_uri(&mut self, uri: &[u8]) -> Result<(), EditError> {
        self.name_addr_uri(HeaderName::From, uri)
    }

    /// Replaces the user part of the To URI.
    pub fn set_to_user(&mut self, user: &[u8]) -> Result<(), EditError> {
        self.name_addr_user(HeaderName::To, user)
    }

    /// Replaces the user part of the From URI.
    pub fn set_from_user(&mut self, user: &[u8]) -> Result<(), EditError> {
        self.name_addr_user(HeaderName::From, user)
    }

    /// Sets Max-Forwards to `value`, adding the header when it is missing.
    pub fn set_max_forwards(&mut self, value: u8) -> Result<(), EditError> {
        let digits = Digits::new(u32::from(value));
        match self.msg.headers.get(HeaderName::MaxForwards).copied() {
            Some(h) => {
                let v = self.msg.headers.value(&h);
                let span = self.msg.headers.span_of(scan::trim(v));
                self.push(span, &[digits.as_bytes()])
            }
            None => self.header_line_insert(
                self.first_header_pos(),
                HeaderName::MaxForwards,
                digits.as_bytes(),
            ),
        }
    }

    /// Decrements Max-Forwards (RFC 3261 §16.6 step 3), adding `Max-Forwards: 70` when absent.
    /// Returns the new value. The caller answers 483 before forwarding a request at zero.
    pub fn decrement_max_forwards(&mut self) -> Result<u8, EditError> {
        let new = match self.msg.headers.max_forwards()? {
            Some(n) => n.saturating_sub(1),
            None => 70,
        };
        self.set_max_forwards(new)?;
        Ok(new)
    }

    /// Replaces the body and fixes Content-Length (and Content-Type when given).
    pub fn set_body(&mut self, content_type: Option<&[u8]>, body: &[u8]) -> Result<(), EditError> {
        let headers = &self.msg.headers;
        let digits = Digits::new(body.len() as u32);
        let cl = headers.get(HeaderName::ContentLength).copied();
        let ct = headers.get(HeaderName::ContentType).copied();
        let end = headers.end;
        match cl {
            Some(h) => {
                let span = headers.span_of(scan::trim(headers.value(&h)));
                self.push(span, &[digits.as_bytes()])?;
            }
            None => self.header_line_insert(end, HeaderName::ContentLength, digits.as_bytes())?,
        }
        if let Some(t) = content_type {
            match ct {
                Some(h) => {
                    let span = self
                        .msg
                        .headers
                        .span_of(scan::trim(self.msg.headers.value(&h)));
                    self.push(span, &[t])?;
                }
                None => self.header_line_insert(end, HeaderName::ContentType, t)?,
            }
        }
        self.body_replaced = true;
        self.push(self.msg.body, &[body])
    }

    /// Adds a header line after the others.
    pub fn add_header(&mut self, name: &str, value: &[u8]) -> Result<(), EditError> {
        let end = self.msg.headers.end;
        self.insert(end, &[name.as_bytes(), b": ", value, b"\r\n"])
    }

    /// Removes every line of a header.
    pub fn remove_header(&mut self, name: HeaderName) -> Result<(), EditError> {
        let lines: Vec<Header> = self.msg.headers.all(name).copied().collect();
        for h in lines {
            self.push(h.line, &[])?;
        }
        Ok(())
    }

    /// Removes every line of a header the parser does not know by name (`Other`), matched
    /// by its name without regard to case (e.g. `P-Asserted-Identity`).
    pub fn remove_other(&mut self, name: &str) -> Result<(), EditError> {
        let lines: Vec<Header> = self
            .msg
            .headers
            .all(HeaderName::Other)
            .filter(|h| {
                self.msg
                    .headers
                    .name_bytes(h)
                    .eq_ignore_ascii_case(name.as_bytes())
            })
            .copied()
            .collect();
        for h in lines {
            self.push(h.line, &[])?;
        }
        Ok(())
    }

    /// Replaces the value of one header line.
    pub fn replace_value(&mut self, h: &Header, value: &[u8]) -> Result<(), EditError> {
        let span = self
            .msg
            .headers
            .span_of(scan::trim(self.msg.headers.value(h)));
        self.push(span, &[value])
    }

    /// Writes the edited message.
    pub fn finish(mut self) -> Bytes {
        let raw: &[u8] = self.msg.raw();
        if self.lumps.is_empty() {
            return self.msg.raw().clone();
        }
        self.lumps.sort_by_key(|l| l.at.start);
        // Exactly the output length: a `Vec` whose capacity equals its length becomes `Bytes`
        // without a second allocation.
        let removed: usize = self.lumps.iter().map(|l| l.at.len()).sum();
        let mut out = Vec::with_capacity(raw.len() - removed + self.arena.len());
        let mut pos = 0usize;
        for l in &self.lumps {
            let start = l.at.start as usize;
            if start > pos {
                out.extend_from_slice(&raw[pos..start]);
            }
            out.extend_from_slice(&self.arena[l.data.0 as usize..l.data.1 as usize]);
            pos = pos.max(l.at.end as usize);
        }
        out.extend_from_slice(&raw[pos..]);
        Bytes::from(out)
    }

    /// Whether [`Edit::set_body`] was called.
    pub fn body_replaced(&self) -> bool {
        self.body_replaced
    }
}
