//! name-addr / addr-spec values (RFC 3261 §20.10, §20.20, §20.39, §20.30, §20.34): From, To,
//! Contact, Route, Record-Route.

use memchr::memchr;

use crate::headers::{HeaderError, HeaderErrorKind};
use crate::message::Headers;
use crate::name::HeaderName;
use crate::params::{Params, valid_header_param};
use crate::scan::{self, CommaSplit};
use crate::uri::{Uri, UriError};

/// An address with optional display name and header parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// The whole value, trimmed.
    pub raw: &'a [u8],
    /// The display name as written (a quoted string keeps its quotes).
    pub display_name: Option<&'a [u8]>,
    /// The URI bytes, without angle brackets; see [`NameAddr::uri`].
    pub uri_raw: &'a [u8],
    /// Whether the URI was in `<...>`.
    pub bracketed: bool,
    /// Header parameters after the address (`tag`, `expires`, `lr`...).
    pub params: Params<'a>,
    tag: Option<&'a [u8]>,
}

impl<'a> NameAddr<'a> {
    pub fn tag(&self) -> Option<&'a [u8]> {
        self.tag
    }

    /// The URI, parsed on demand (the view itself only checks the structure around it).
    pub fn uri(&self) -> Result<Uri<'a>, UriError> {
        Uri::parse(self.uri_raw)
    }

    pub(crate) fn parse(value: &'a [u8]) -> Option<NameAddr<'a>> {
        let raw = scan::trim(value);
        let (display_name, after_display) = if raw.first() == Some(&b'"') {
            let q = scan::quoted_end(raw)?;
            (Some(&raw[..q]), scan::trim_start(&raw[q..]))
        } else if let Some(lt) = memchr(b'<', raw) {
            let dn = scan::trim(&raw[..lt]);
            if !dn.iter().all(|&b| scan::is_token(b) || scan::is_lws(b)) {
                return None;
            }
            ((!dn.is_empty()).then_some(dn), &raw[lt..])
        } else {
            (None, raw)
        };

        let (uri_raw, rest, bracketed) = if let Some(inner) = after_display.strip_prefix(b"<") {
            let gt = memchr(b'>', inner)?;
            (&inner[..gt], scan::trim_start(&inner[gt + 1..]), true)
        } else {
            if display_name.is_some() {
                return None;
            }
            let end = after_display
                .iter()
                .position(|&b| b == b';' || scan::is_lws(b))
                .unwrap_or(after_display.len());
            let uri = &after_display[..end];
            // In an addr-spec the URI may not hold `,`, `?` or `;` (RFC 3261 §20).
            if uri.iter().any(|&b| b == b',' || b == b'?') {
                return None;
            }
            (uri, scan::trim_start(&after_display[end..]), false)
        };
        if uri_raw.is_empty() || uri_raw.iter().any(|&b| scan::is_lws(b)) {
            return None;
        }
        Uri::scheme(uri_raw)?;
        let mut tag = None;
        let params = match rest {
            [] => Params::default(),
            [b';', tail @ ..] if !tail.is_empty() => {
                let p = Params::new(tail);
                for (name, value) in p.iter() {
                    if !valid_header_param(name, value) {
                        return None;
                    }
                    if name.eq_ignore_ascii_case(b"tag") {
                        tag = value;
                    }
                }
                p
            }
            _ => return None,
        };
        Some(NameAddr {
            raw,
            display_name,
            uri_raw,
            bracketed,
            params,
            tag,
        })
    }
}

/// A Contact value: `*` or an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactValue<'a> {
    Star,
    Addr(NameAddr<'a>),
}

impl Headers {
    fn single_name_addr(&self, name: HeaderName) -> Result<NameAddr<'_>, HeaderError> {
        let mut lines = self.all(name);
        let h = lines
            .next()
            .ok_or(HeaderError::new(name, HeaderErrorKind::Missing))?;
        if lines.next().is_some() {
            return Err(HeaderError::new(name, HeaderErrorKind::Repeated));
        }
        NameAddr::parse(self.value(h)).ok_or(HeaderError::malformed(name))
    }

    /// The From header (exactly one).
    pub fn from(&self) -> Result<NameAddr<'_>, HeaderError> {
        self.single_name_addr(HeaderName::From)
    }

    /// The To header (exactly one).
    pub fn to(&self) -> Result<NameAddr<'_>, HeaderError> {
        self.single_name_addr(HeaderName::To)
    }

    fn name_addr_list(
        &self,
        name: HeaderName,
    ) -> impl Iterator<Item = Result<NameAddr<'_>, HeaderError>> + '_ {
        self.all(name).flat_map(move |h| {
            CommaSplit::new(self.value(h))
                .map(move |v| NameAddr::parse(v).ok_or(HeaderError::malformed(name)))
        })
    }

    /// Every Route value, in order.
    pub fn routes(&self) -> impl Iterator<Item = Result<NameAddr<'_>, HeaderError>> + '_ {
        self.name_addr_list(HeaderName::Route)
    }

    /// Every Record-Route value, in order.
    pub fn record_routes(&self) -> impl Iterator<Item = Result<NameAddr<'_>, HeaderError>> + '_ {
        self.name_addr_list(HeaderName::RecordRoute)
    }

    /// Every Contact value, in order.
    pub fn contacts(&self) -> impl Iterator<Item = Result<ContactValue<'_>, HeaderError>> + '_ {
        self.all(HeaderName::Contact).flat_map(move |h| {
            CommaSplit::new(self.value(h)).map(|v| {
                if scan::trim(v) == b"*" {
                    Ok(ContactValue::Star)
                } else {
                    NameAddr::parse(v)
                        .map(ContactValue::Addr)
                        .ok_or(HeaderError::malformed(HeaderName::Contact))
                }
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let a = NameAddr::parse(
            b"\"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8",
        )
        .unwrap();
        assert_eq!(a.tag(), Some(&b"98asjd8"[..]));
        assert!(a.bracketed);
        let a =
            NameAddr::parse(b"sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n").unwrap();
        assert_eq!(a.uri_raw, b"sip:vivekg@chair-dnrc.example.com");
        assert_eq!(a.tag(), Some(&b"1918181833n"[..]));
        let a = NameAddr::parse(b"caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(a.display_name, Some(&b"caller"[..]));
        let a =
            NameAddr::parse(b"token1~` token2'+_ token3*%!.- <sip:mundane@example.com>").unwrap();
        assert_eq!(a.uri_raw, b"sip:mundane@example.com");
        assert!(NameAddr::parse(b"isbn:2983792873").is_some());
        assert!(NameAddr::parse(b"sip:+19725552222@gw1.example.net;unknownparam").is_some());
    }

    #[test]
    fn rejects() {
        assert!(NameAddr::parse(b"\"Mr. J. User <sip:j.user@example.com>").is_none());
        assert!(NameAddr::parse(b"\"Watson, Thomas\" < sip:t.watson@example.org >").is_none());
        assert!(NameAddr::parse(b"Bell, Alexander <sip:a.g.bell@example.com>;tag=43").is_none());
        assert!(NameAddr::parse(b"sip:user@example.com?Route=%3Csip:sip.example.com%3E").is_none());
        assert!(NameAddr::parse(b"\"Joe\" <sip:joe@example.org>;;;;").is_none());
        assert!(NameAddr::parse(b"<sip:a@b> junk").is_none());
    }
}
