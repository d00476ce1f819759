//! Via (RFC 3261 §20.42, §18.2.1; RFC 3581 rport): every value of every Via line.

use crate::headers::HeaderError;
use crate::message::{Header, Headers};
use crate::name::HeaderName;
use crate::params::{Params, valid_header_param};
use crate::scan::{self, CommaSplit};
use crate::uri::Host;

/// The branch prefix of RFC 3261 §8.1.1.7.
pub const MAGIC_COOKIE: &[u8] = b"z9hG4bK";

/// One Via value. The parameters a proxy reads are found while the list is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via<'a> {
    /// The whole value, trimmed.
    pub raw: &'a [u8],
    pub protocol_name: &'a [u8],
    pub protocol_version: &'a [u8],
    /// `UDP`, `TCP`, `TLS`, `SCTP`, `WS`... as written.
    pub transport: &'a [u8],
    /// The sent-by host as written; see [`Via::host`].
    pub host_raw: &'a [u8],
    pub port: Option<u16>,
    pub params: Params<'a>,
    branch: Option<&'a [u8]>,
    received: Option<&'a [u8]>,
    rport: Option<Option<u16>>,
    maddr: Option<&'a [u8]>,
    ttl: Option<u8>,
}

impl<'a> Via<'a> {
    /// The sent-by host, typed.
    pub fn host(&self) -> Option<Host<'a>> {
        Host::parse(self.host_raw)
    }

    pub fn branch(&self) -> Option<&'a [u8]> {
        self.branch
    }

    /// True when the branch is RFC 3261 compliant: the magic cookie and something after it.
    /// A branch that is only the cookie (RFC 4475 `badbranch`) is treated as RFC 2543.
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch
            .is_some_and(|b| b.len() > MAGIC_COOKIE.len() && b.starts_with(MAGIC_COOKIE))
    }

    pub fn received(&self) -> Option<&'a [u8]> {
        self.received
    }

    /// `None`: no rport; `Some(None)`: rport asked for (no value); `Some(Some(p))`: filled.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.rport
    }

    pub fn maddr(&self) -> Option<&'a [u8]> {
        self.maddr
    }

    pub fn ttl(&self) -> Option<u8> {
        self.ttl
    }

    /// The transport is one that retransmits for us (RFC 3261 §17: TCP, TLS, SCTP, WS, WSS).
    pub fn is_reliable_transport(&self) -> bool {
        !self.transport.eq_ignore_ascii_case(b"UDP")
    }

    pub(crate) fn parse(value: &'a [u8]) -> Option<Via<'a>> {
        let raw = scan::trim(value);
        let (protocol_name, rest) = take_token(raw)?;
        let rest = expect_slash(rest)?;
        let (protocol_version, rest) = take_token(rest)?;
        let rest = expect_slash(rest)?;
        let (transport, rest) = take_token(rest)?;
        if rest.first().is_none_or(|b| !scan::is_lws(*b)) {
            return None;
        }
        let rest = scan::trim_start(rest);
        // sent-by: host [ SWS ":" SWS port ], then params.
        let host_end = if rest.first() == Some(&b'[') {
            rest.iter().position(|&b| b == b']')? + 1
        } else {
            rest.iter()
                .position(|&b| scan::is_lws(b) || b == b':' || b == b';')
                .unwrap_or(rest.len())
        };
        let host_raw = &rest[..host_end];
        if !Host::is_valid(host_raw) {
            return None;
        }
        let mut rest = scan::trim_start(&rest[host_end..]);
        let mut port = None;
        if let Some(after) = rest.strip_prefix(b":") {
            let after = scan::trim_start(after);
            let end = after
                .iter()
                .position(|b| !b.is_ascii_digit())
                .unwrap_or(after.len());
            port = Some(scan::parse_decimal(&after[..end], 65535)? as u16);
            rest = scan::trim_start(&after[end..]);
        }
        let mut via = Via {
            raw,
            protocol_name,
            protocol_version,
            transport,
            host_raw,
            port,
            params: Params::default(),
            branch: None,
            received: None,
            rport: None,
            maddr: None,
            ttl: None,
        };
        match rest {
            [] => {}
            [b';', tail @ ..] if !tail.is_empty() => {
                via.params = Params::new(tail);
                // One pass: check each parameter and keep the ones a proxy reads.
                for (name, value) in via.params.iter() {
                    if !valid_header_param(name, value) {
                        return None;
                    }
                    match name.len() {
                        5 if name.eq_ignore_ascii_case(b"rport") => {
                            via.rport = Some(match value {
                                None => None,
                                Some(p) => Some(scan::parse_decimal(p, 65535)? as u16),
                            });
                        }
                        6 if name.eq_ignore_ascii_case(b"branch") => via.branch = value,
                        8 if name.eq_ignore_ascii_case(b"received") => via.received = value,
                        5 if name.eq_ignore_ascii_case(b"maddr") => via.maddr = value,
                        3 if name.eq_ignore_ascii_case(b"ttl") => {
                            via.ttl = Some(scan::parse_decimal(value?, 255)? as u8);
                        }
                        _ => {}
                    }
                }
            }
            _ => return None,
        }
        Some(via)
    }
}

fn take_token(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = s
        .iter()
        .position(|&b| !scan::is_token(b))
        .unwrap_or(s.len());
    (end > 0).then(|| (&s[..end], &s[end..]))
}

fn expect_slash(s: &[u8]) -> Option<&[u8]> {
    scan::trim_start(s).strip_prefix(b"/").map(scan::trim_start)
}

/// Every Via value in message order, across lines and commas.
pub struct ViaIter<'a> {
    headers: &'a Headers,
    lines: std::slice::Iter<'a, Header>,
    values: Option<CommaSplit<'a>>,
}

impl<'a> Iterator for ViaIter<'a> {
    type Item = Result<Via<'a>, HeaderError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(v) = self.values.as_mut().and_then(Iterator::next) {
                return Some(Via::parse(v).ok_or(HeaderError::malformed(HeaderName::Via)));
            }
            let line = self.lines.by_ref().find(|h| h.name == HeaderName::Via)?;
            self.values = Some(CommaSplit::new(self.headers.value(line)));
        }
    }
}

impl Headers {
    /// Every Via value, top first.
    pub fn vias(&self) -> ViaIter<'_> {
        ViaIter {
            headers: self,
            lines: self.entries.iter(),
            values: None,
        }
    }

    /// The top Via value.
    pub fn top_via(&self) -> Result<Via<'_>, HeaderError> {
        self.vias().next().unwrap_or(Err(HeaderError::new(
            HeaderName::Via,
            crate::headers::HeaderErrorKind::Missing,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    #[test]
    fn whitespace_everywhere() {
        let v = Via::parse(b"SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!(v.transport, b"UDP");
        assert_eq!(v.branch(), Some(&b"390skdjuw"[..]));
        assert!(!v.has_rfc3261_branch());
        let v = Via::parse(
            b"SIP  / 2.0  / TCP     spindle.example.com   ;\r\n  branch  =   z9hG4bK9ikj8  ",
        )
        .unwrap();
        assert_eq!(v.host_raw, b"spindle.example.com");
        assert!(v.has_rfc3261_branch());
    }

    #[test]
    fn ipv6_port_rport_received() {
        let v = Via::parse(
            b"SIP/2.0/UDP [2001:db8::9]:5061;branch=z9hG4bKx;rport;received=[2001:db8::1]",
        )
        .unwrap();
        assert_eq!(
            v.host(),
            Some(Host::V6("2001:db8::9".parse::<Ipv6Addr>().unwrap()))
        );
        assert_eq!(v.port, Some(5061));
        assert_eq!(v.rport(), Some(None));
        assert_eq!(v.received(), Some(&b"[2001:db8::1]"[..]));
        let v = Via::parse(b"SIP/2.0/UDP h : 5070 ;rport=5070;maddr=224.0.0.1;ttl=16").unwrap();
        assert_eq!(v.port, Some(5070));
        assert_eq!(v.rport(), Some(Some(5070)));
        assert_eq!(v.maddr(), Some(&b"224.0.0.1"[..]));
        assert_eq!(v.ttl(), Some(16));
    }

    #[test]
    fn rejects() {
        assert!(Via::parse(b"SIP/2.0/UDP 192.0.2.15;;").is_none());
        assert!(Via::parse(b"SIP/2.0/UDP").is_none());
        assert!(Via::parse(b"SIP/2.0/UDP h:99999").is_none());
        assert!(Via::parse(b"SIP/2.0/UDP h;rport=x").is_none());
        assert!(Via::parse(b"SIP/2.0/UDP h junk").is_none());
    }
}
