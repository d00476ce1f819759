//! URIs: SIP and SIPS (RFC 3261 §19.1), tel (RFC 3966), and any other absolute URI kept opaque.
//! Views borrow the message bytes; `%`-escapes are kept as written and decoded on request.

use std::borrow::Cow;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use memchr::memchr;

use crate::params::Params;
use crate::scan;

/// Why a URI is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriError {
    /// No `scheme:` prefix, or a scheme with characters RFC 3986 does not allow.
    BadScheme,
    BadUser,
    BadHost,
    BadPort,
    BadParams,
    BadHeaders,
    BadNumber,
}

impl fmt::Display for UriError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UriError::BadScheme => "bad URI scheme",
            UriError::BadUser => "bad URI user part",
            UriError::BadHost => "bad URI host",
            UriError::BadPort => "bad URI port",
            UriError::BadParams => "bad URI parameters",
            UriError::BadHeaders => "bad URI headers",
            UriError::BadNumber => "bad telephone number",
        })
    }
}

/// The host of a SIP URI or Via.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host<'a> {
    Name(&'a str),
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

impl<'a> Host<'a> {
    /// Parses `hostname`, `IPv4address` or `[IPv6reference]`.
    pub fn parse(b: &'a [u8]) -> Option<Host<'a>> {
        if b.first() == Some(&b'[') {
            let inner = b.strip_prefix(b"[")?.strip_suffix(b"]")?;
            return std::str::from_utf8(inner).ok()?.parse().ok().map(Host::V6);
        }
        if b.is_empty() || !scan::all(b, scan::HOST) {
            return None;
        }
        if b.iter().all(|&c| c.is_ascii_digit() || c == b'.') {
            return parse_ipv4(b).map(Host::V4);
        }
        std::str::from_utf8(b).ok().map(Host::Name)
    }

    /// Checks the syntax of a host without building it (the IPv6 case is rare and parsed).
    pub(crate) fn is_valid(b: &[u8]) -> bool {
        match b.first() {
            None => false,
            Some(b'[') => Host::parse(b).is_some(),
            Some(_) => {
                let mut numeric = true;
                for &c in b {
                    if !scan::is(c, scan::HOST) {
                        return false;
                    }
                    numeric &= c.is_ascii_digit() || c == b'.';
                }
                !numeric || parse_ipv4(b).is_some()
            }
        }
    }

    /// True for addresses a proxy must never send to: broadcast, multicast, unspecified.
    pub fn is_broadcast_or_multicast(&self) -> bool {
        match self {
            Host::V4(a) => a.is_broadcast() || a.is_multicast() || a.is_unspecified(),
            Host::V6(a) => a.is_multicast() || a.is_unspecified(),
            Host::Name(_) => false,
        }
    }
}

/// Dotted-quad IPv4, four decimal octets of at most 255 (at most three digits each).
fn parse_ipv4(b: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut n = 0usize;
    let mut value: u16 = 0;
    let mut digits = 0;
    for &c in b {
        if c == b'.' {
            if digits == 0 || n == 3 {
                return None;
            }
            octets[n] = value as u8;
            n += 1;
            value = 0;
            digits = 0;
        } else {
            value = value * 10 + u16::from(c.wrapping_sub(b'0'));
            digits += 1;
            if !c.is_ascii_digit() || digits > 3 || value > 255 {
                return None;
            }
        }
    }
    if digits == 0 || n != 3 {
        return None;
    }
    octets[3] = value as u8;
    Some(Ipv4Addr::from(octets))
}

/// A SIP or SIPS URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipUri<'a> {
    pub secure: bool,
    /// The user part as written (escapes not decoded).
    pub user: Option<&'a [u8]>,
    pub password: Option<&'a [u8]>,
    /// The host as written (brackets of an IPv6 reference included); see [`SipUri::host`].
    pub host_raw: &'a [u8],
    pub port: Option<u16>,
    pub params: Params<'a>,
    /// The `?headers` part without the `?`.
    pub headers: Option<&'a [u8]>,
}

impl<'a> SipUri<'a> {
    /// The host, typed (parsed on demand; the syntax was checked when the URI was).
    pub fn host(&self) -> Option<Host<'a>> {
        Host::parse(self.host_raw)
    }
}

/// A tel URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelUri<'a> {
    /// The number as written (`+1-201-555-0123`).
    pub number: &'a [u8],
    pub params: Params<'a>,
}

/// A URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uri<'a> {
    Sip(SipUri<'a>),
    Tel(TelUri<'a>),
    /// Any other absolute URI, unparsed.
    Other {
        scheme: &'a [u8],
        rest: &'a [u8],
    },
}

impl<'a> Uri<'a> {
    /// Parses a URI (no surrounding white space or angle brackets).
    pub fn parse(raw: &'a [u8]) -> Result<Uri<'a>, UriError> {
        let colon = memchr(b':', raw).ok_or(UriError::BadScheme)?;
        let scheme = &raw[..colon];
        if !is_scheme(scheme) {
            return Err(UriError::BadScheme);
        }
        let rest = &raw[colon + 1..];
        if scheme.eq_ignore_ascii_case(b"sip") || scheme.eq_ignore_ascii_case(b"sips") {
            parse_sip(rest, scheme.len() == 4).map(Uri::Sip)
        } else if scheme.eq_ignore_ascii_case(b"tel") {
            parse_tel(rest).map(Uri::Tel)
        } else if rest.is_empty() || rest.iter().any(|&b| b <= b' ' || b == 0x7f) {
            Err(UriError::BadScheme)
        } else {
            Ok(Uri::Other { scheme, rest })
        }
    }

    /// The scheme as written.
    pub fn scheme(raw: &[u8]) -> Option<&[u8]> {
        let colon = memchr(b':', raw)?;
        is_scheme(&raw[..colon]).then(|| &raw[..colon])
    }

    /// The user of a SIP URI or the number of a tel URI.
    pub fn user(&self) -> Option<&'a [u8]> {
        match self {
            Uri::Sip(s) => s.user,
            Uri::Tel(t) => Some(t.number),
            Uri::Other { .. } => None,
        }
    }

    pub fn as_sip(&self) -> Option<&SipUri<'a>> {
        match self {
            Uri::Sip(s) => Some(s),
            _ => None,
        }
    }
}

fn is_scheme(s: &[u8]) -> bool {
    matches!(s.first(), Some(b) if b.is_ascii_alphabetic())
        && s.iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

fn parse_sip(rest: &[u8], secure: bool) -> Result<SipUri<'_>, UriError> {
    let (userinfo, hostpart) = match memchr(b'@', rest) {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let (user, password) = match userinfo {
        None => (None, None),
        Some(ui) => {
            let (u, p) = match memchr(b':', ui) {
                Some(c) => (&ui[..c], Some(&ui[c + 1..])),
                None => (ui, None),
            };
            if u.is_empty() || !scan::valid_chars(u, scan::USER) {
                return Err(UriError::BadUser);
            }
            if let Some(p) = p
                && !scan::valid_chars(p, scan::PASSWORD)
            {
                return Err(UriError::BadUser);
            }
            (Some(u), p)
        }
    };
    let (before_headers, headers) = match memchr(b'?', hostpart) {
        Some(q) => (&hostpart[..q], Some(&hostpart[q + 1..])),
        None => (hostpart, None),
    };
    if let Some(h) = headers
        && (h.is_empty() || !scan::valid_chars(h, scan::URI_HEADER))
    {
        return Err(UriError::BadHeaders);
    }
    let (hostport, params) = match memchr(b';', before_headers) {
        Some(s) => (&before_headers[..s], Params::new(&before_headers[s + 1..])),
        None => (before_headers, Params::default()),
    };
    if memchr(b';', before_headers).is_some() && !params.validate_uri_params() {
        return Err(UriError::BadParams);
    }
    let (host_raw, port) = split_host_port(hostport)?;
    if !Host::is_valid(host_raw) {
        return Err(UriError::BadHost);
    }
    Ok(SipUri {
        secure,
        user,
        password,
        host_raw,
        port,
        params,
        headers,
    })
}

/// Splits `host[:port]`, where host may be an IPv6 reference.
pub(crate) fn split_host_port(hp: &[u8]) -> Result<(&[u8], Option<u16>), UriError> {
    let colon = if hp.first() == Some(&b'[') {
        let close = memchr(b']', hp).ok_or(UriError::BadHost)?;
        match hp.get(close + 1) {
            None => None,
            Some(b':') => Some(close + 1),
            Some(_) => return Err(UriError::BadHost),
        }
    } else {
        memchr(b':', hp)
    };
    match colon {
        None => Ok((hp, None)),
        Some(c) => {
            let port = scan::parse_decimal(&hp[c + 1..], 65535).ok_or(UriError::BadPort)?;
            Ok((&hp[..c], Some(port as u16)))
        }
    }
}

fn parse_tel(rest: &[u8]) -> Result<TelUri<'_>, UriError> {
    let (number, params) = match memchr(b';', rest) {
        Some(s) => (&rest[..s], Params::new(&rest[s + 1..])),
        None => (rest, Params::default()),
    };
    let ok = |b: u8| {
        b.is_ascii_hexdigit() || matches!(b, b'+' | b'-' | b'.' | b'(' | b')' | b'*' | b'#')
    };
    if number.is_empty() || !number.iter().all(|&b| ok(b)) {
        return Err(UriError::BadNumber);
    }
    if memchr(b';', rest).is_some() && !params.validate_uri_params() {
        return Err(UriError::BadParams);
    }
    Ok(TelUri { number, params })
}

/// Decodes `%HH` escapes; borrows when there are none. Malformed escapes are kept as written.
pub fn unescape(s: &[u8]) -> Cow<'_, [u8]> {
    if memchr(b'%', s).is_none() {
        return Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%'
            && let Some([h, l]) = s.get(i + 1..i + 3)
            && let (Some(h), Some(l)) = (hex(*h), hex(*l))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(s[i]);
        i += 1;
    }
    Cow::Owned(out)
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sip(s: &str) -> SipUri<'_> {
        match Uri::parse(s.as_bytes()).unwrap() {
            Uri::Sip(u) => u,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sip_uri_parts() {
        let u = sip("sip:alice:pw@[2001:db8::1]:5070;transport=tcp;lr?subject=hi");
        assert_eq!(u.user, Some(&b"alice"[..]));
        assert_eq!(u.password, Some(&b"pw"[..]));
        assert_eq!(u.host(), Some(Host::V6("2001:db8::1".parse().unwrap())));
        assert_eq!(u.port, Some(5070));
        assert_eq!(u.params.get("transport"), Some(Some(&b"tcp"[..])));
        assert!(u.params.contains("lr"));
        assert_eq!(u.headers, Some(&b"subject=hi"[..]));
    }

    #[test]
    fn unusual_user_parts() {
        let u = sip(
            "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com",
        );
        assert_eq!(
            u.user,
            Some(&b"1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"[..])
        );
        assert_eq!(u.host(), Some(Host::Name("example.com")));
        let u = sip("sip:user;par=u%40example.net@example.com");
        assert_eq!(u.user, Some(&b"user;par=u%40example.net"[..]));
    }

    #[test]
    fn escapes() {
        let u = sip("sip:%75se%72@example.com");
        assert_eq!(unescape(u.user.unwrap()).as_ref(), b"user");
        assert_eq!(unescape(b"null-%00-null").as_ref(), b"null-\0-null");
        assert_eq!(unescape(b"100%").as_ref(), b"100%");
        assert!(Uri::parse(b"sip:a%zz@h").is_err());
    }

    #[test]
    fn schemes() {
        assert_eq!(Uri::parse(b"<sip:a@b>").unwrap_err(), UriError::BadScheme);
        assert!(matches!(
            Uri::parse(b"soap.beep://192.0.2.103:3002"),
            Ok(Uri::Other { .. })
        ));
        assert!(matches!(
            Uri::parse(b"tel:+1-201-555-0123;phone-context=x"),
            Ok(Uri::Tel(_))
        ));
        assert!(matches!(
            Uri::parse(b"SIPS:a@b"),
            Ok(Uri::Sip(SipUri { secure: true, .. }))
        ));
        assert_eq!(Uri::parse(b"sip:a@b:99999").unwrap_err(), UriError::BadPort);
        assert_eq!(Uri::parse(b"sip:a@"), Err(UriError::BadHost));
        assert_eq!(Uri::parse(b"sip:a@1.2.3.256"), Err(UriError::BadHost));
        assert_eq!(
            Host::parse(b"10.0.0.1"),
            Some(Host::V4([10, 0, 0, 1].into()))
        );
        assert_eq!(Host::parse(b"1.2.3"), None);
    }
}
