//! Single-value headers and token lists: Call-ID, CSeq, Max-Forwards, Content-Length,
//! Content-Type, Expires, Require, Proxy-Require, Supported, Unsupported, Allow, Reason,
//! Retry-After, User-Agent, Server, Session-Expires.

use crate::headers::{HeaderError, HeaderErrorKind};
use crate::message::Headers;
use crate::method::Method;
use crate::name::HeaderName;
use crate::params::Params;
use crate::scan::{self, CommaSplit};

/// CSeq (RFC 3261 §20.16): a sequence number below 2^31 and a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CSeq<'a> {
    pub seq: u32,
    pub method: Method,
    /// The method as written.
    pub method_raw: &'a [u8],
}

/// A media type (Content-Type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaType<'a> {
    pub kind: &'a [u8],
    pub subtype: &'a [u8],
    pub params: Params<'a>,
}

impl MediaType<'_> {
    /// Case-insensitive `type/subtype` comparison.
    pub fn is(&self, kind: &str, subtype: &str) -> bool {
        self.kind.eq_ignore_ascii_case(kind.as_bytes())
            && self.subtype.eq_ignore_ascii_case(subtype.as_bytes())
    }
}

/// One Reason value (RFC 3326).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reason<'a> {
    /// `SIP`, `Q.850`, ...
    pub protocol: &'a [u8],
    pub cause: Option<u16>,
    /// The text parameter, quotes included.
    pub text: Option<&'a [u8]>,
    pub params: Params<'a>,
}

/// Retry-After (RFC 3261 §20.33).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter<'a> {
    pub seconds: u32,
    pub duration: Option<u32>,
    pub params: Params<'a>,
}

/// Who refreshes a session (RFC 4028).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    Uac,
    Uas,
}

/// Session-Expires (RFC 4028).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionExpires<'a> {
    pub seconds: u32,
    pub refresher: Option<Refresher>,
    pub params: Params<'a>,
}

/// The tokens of Require, Proxy-Require, Supported, Unsupported or Allow, across lines.
pub struct TokenIter<'a> {
    inner: Box<dyn Iterator<Item = Result<&'a [u8], HeaderError>> + 'a>,
}

impl<'a> Iterator for TokenIter<'a> {
    type Item = Result<&'a [u8], HeaderError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next()
    }
}

/// Splits `value *(SEMI params)` into the trimmed value and its parameters.
fn value_and_params(v: &[u8]) -> Option<(&[u8], Params<'_>)> {
    let v = scan::trim(v);
    match memchr::memchr(b';', v) {
        None => Some((v, Params::default())),
        Some(i) => {
            let p = Params::new(&v[i + 1..]);
            p.validate_header_params().then(|| (scan::trim(&v[..i]), p))
        }
    }
}

fn delta_seconds(v: &[u8]) -> Option<u32> {
    scan::parse_decimal(v, u64::from(u32::MAX)).map(|n| n as u32)
}

impl Headers {
    /// The only line of a header that may appear once: `Ok(None)` when absent.
    fn single(&self, name: HeaderName) -> Result<Option<&[u8]>, HeaderError> {
        let mut lines = self.all(name);
        match (lines.next(), lines.next()) {
            (None, _) => Ok(None),
            (Some(h), None) => Ok(Some(scan::trim(self.value(h)))),
            (Some(_), Some(_)) => Err(HeaderError::new(name, HeaderErrorKind::Repeated)),
        }
    }

    fn required(&self, name: HeaderName) -> Result<&[u8], HeaderError> {
        self.single(name)?
            .ok_or(HeaderError::new(name, HeaderErrorKind::Missing))
    }

    /// Call-ID (RFC 3261 §20.8): `word [@ word]`.
    pub fn call_id(&self) -> Result<&[u8], HeaderError> {
        let v = self.required(HeaderName::CallId)?;
        let ok = match memchr::memchr(b'@', v) {
            Some(at) => {
                at > 0
                    && at + 1 < v.len()
                    && v[..at].iter().all(|&b| scan::is_word(b))
                    && v[at + 1..].iter().all(|&b| scan::is_word(b))
            }
            None => !v.is_empty() && v.iter().all(|&b| scan::is_word(b)),
        };
        if ok {
            Ok(v)
        } else {
            Err(HeaderError::malformed(HeaderName::CallId))
        }
    }

    /// CSeq (RFC 3261 §20.16).
    pub fn cseq(&self) -> Result<CSeq<'_>, HeaderError> {
        let v = self.required(HeaderName::CSeq)?;
        let bad = || HeaderError::malformed(HeaderName::CSeq);
        let digits = v.iter().position(|b| !b.is_ascii_digit()).ok_or_else(bad)?;
        let seq = scan::parse_decimal(&v[..digits], (1 << 31) - 1).ok_or(HeaderError::new(
            HeaderName::CSeq,
            HeaderErrorKind::OutOfRange,
        ))?;
        let rest = &v[digits..];
        if rest.first().is_none_or(|b| !scan::is_lws(*b)) {
            return Err(bad());
        }
        let method_raw = scan::trim_start(rest);
        if !scan::is_token_str(method_raw) {
            return Err(bad());
        }
        Ok(CSeq {
            seq: seq as u32,
            method: Method::from_bytes(method_raw),
            method_raw,
        })
    }

    /// Max-Forwards (0–255); `None` when absent.
    pub fn max_forwards(&self) -> Result<Option<u8>, HeaderError> {
        self.single(HeaderName::MaxForwards)?
            .map(|v| {
                if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
                    return Err(HeaderError::malformed(HeaderName::MaxForwards));
                }
                scan::parse_decimal(v, 255)
                    .map(|n| n as u8)
                    .ok_or(HeaderError::new(
                        HeaderName::MaxForwards,
                        HeaderErrorKind::OutOfRange,
                    ))
            })
            .transpose()
    }

    /// Content-Length; `None` when absent.
    pub fn content_length(&self) -> Result<Option<u32>, HeaderError> {
        self.single(HeaderName::ContentLength)?
            .map(|v| delta_seconds(v).ok_or(HeaderError::malformed(HeaderName::ContentLength)))
            .transpose()
    }

    /// Expires (delta-seconds below 2^32); `None` when absent.
    pub fn expires(&self) -> Result<Option<u32>, HeaderError> {
        self.single(HeaderName::Expires)?
            .map(|v| {
                delta_seconds(v).ok_or(HeaderError::new(
                    HeaderName::Expires,
                    HeaderErrorKind::OutOfRange,
                ))
            })
            .transpose()
    }

    /// Content-Type; `None` when absent.
    pub fn content_type(&self) -> Result<Option<MediaType<'_>>, HeaderError> {
        let Some(v) = self.single(HeaderName::ContentType)? else {
            return Ok(None);
        };
        let bad = || HeaderError::malformed(HeaderName::ContentType);
        let (mt, params) = value_and_params(v).ok_or_else(bad)?;
        let slash = memchr::memchr(b'/', mt).ok_or_else(bad)?;
        let (kind, subtype) = (scan::trim(&mt[..slash]), scan::trim(&mt[slash + 1..]));
        if !scan::is_token_str(kind) || !scan::is_token_str(subtype) {
            return Err(bad());
        }
        Ok(Some(MediaType {
            kind,
            subtype,
            params,
        }))
    }

    /// The option tags or methods of a token-list header, across all its lines.
    pub fn tokens(&self, name: HeaderName) -> TokenIter<'_> {
        TokenIter {
            inner: Box::new(self.all(name).flat_map(move |h| {
                let v = scan::trim(self.value(h));
                let values = (!v.is_empty()).then(|| CommaSplit::new(v));
                values.into_iter().flatten().map(move |t| {
                    let t = scan::trim(t);
                    if scan::is_token_str(t) {
                        Ok(t)
                    } else {
                        Err(HeaderError::malformed(name))
                    }
                })
            })),
        }
    }

    /// Every Reason value (RFC 3326).
    pub fn reasons(&self) -> impl Iterator<Item = Result<Reason<'_>, HeaderError>> + '_ {
        self.all(HeaderName::Reason).flat_map(move |h| {
            CommaSplit::new(self.value(h)).map(|v| {
                let bad = HeaderError::malformed(HeaderName::Reason);
                let (protocol, params) = value_and_params(v).ok_or(bad)?;
                if !scan::is_token_str(protocol) {
                    return Err(bad);
                }
                let cause = match params.get("cause") {
                    None => None,
                    Some(c) => {
                        Some(c.and_then(|c| scan::parse_decimal(c, 65535)).ok_or(bad)? as u16)
                    }
                };
                Ok(Reason {
                    protocol,
                    cause,
                    text: params.get("text").flatten(),
                    params,
                })
            })
        })
    }

    /// The Q.850 cause of the first well-formed `Reason: Q.850` value.
    pub fn q850_cause(&self) -> Option<u16> {
        self.reasons()
            .filter_map(Result::ok)
            .find(|r| r.protocol.eq_ignore_ascii_case(b"Q.850"))
            .and_then(|r| r.cause)
    }

    /// Retry-After; `None` when absent.
    pub fn retry_after(&self) -> Result<Option<RetryAfter<'_>>, HeaderError> {
        let Some(v) = self.single(HeaderName::RetryAfter)? else {
            return Ok(None);
        };
        let bad = HeaderError::malformed(HeaderName::RetryAfter);
        let digits = v
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(v.len());
        let seconds = delta_seconds(&v[..digits]).ok_or(bad)?;
        let mut rest = scan::trim_start(&v[digits..]);
        if rest.first() == Some(&b'(') {
            let close = memchr::memchr(b')', rest).ok_or(bad)?;
            rest = scan::trim_start(&rest[close + 1..]);
        }
        let params = match rest {
            [] => Params::default(),
            [b';', tail @ ..] if Params::new(tail).validate_header_params() => Params::new(tail),
            _ => return Err(bad),
        };
        let duration = match params.get("duration") {
            None => None,
            Some(d) => Some(d.and_then(delta_seconds).ok_or(bad)?),
        };
        Ok(Some(RetryAfter {
            seconds,
            duration,
            params,
        }))
    }

    /// User-Agent, trimmed; `None` when absent.
    pub fn user_agent(&self) -> Option<&[u8]> {
        self.get(HeaderName::UserAgent)
            .map(|h| scan::trim(self.value(h)))
    }

    /// Server, trimmed; `None` when absent.
    pub fn server(&self) -> Option<&[u8]> {
        self.get(HeaderName::Server)
            .map(|h| scan::trim(self.value(h)))
    }

    /// Session-Expires (RFC 4028); `None` when absent.
    pub fn session_expires(&self) -> Result<Option<SessionExpires<'_>>, HeaderError> {
        let Some(v) = self.single(HeaderName::SessionExpires)? else {
            return Ok(None);
        };
        let bad = HeaderError::malformed(HeaderName::SessionExpires);
        let (secs, params) = value_and_params(v).ok_or(bad)?;
        let seconds = delta_seconds(secs).ok_or(bad)?;
        let refresher = match params.get("refresher") {
            None => None,
            Some(Some(r)) if r.eq_ignore_ascii_case(b"uac") => Some(Refresher::Uac),
            Some(Some(r)) if r.eq_ignore_ascii_case(b"uas") => Some(Refresher::Uas),
            Some(_) => return Err(bad),
        };
        Ok(Some(SessionExpires {
            seconds,
            refresher,
            params,
        }))
    }
}
