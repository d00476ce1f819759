//! `;name=value` parameter lists, read lazily from the original bytes. The same type serves
//! header parameters (LWS allowed around `;` and `=`) and URI parameters (no LWS).

use crate::scan;

/// A parameter list: the bytes after the first `;` (e.g. `branch=z9hG4bK1;rport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params<'a> {
    raw: &'a [u8],
}

impl<'a> Params<'a> {
    pub(crate) fn new(raw: &'a [u8]) -> Self {
        Params { raw }
    }

    /// The raw bytes of the list.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Every parameter as (name, value), trimmed; names keep their case.
    pub fn iter(&self) -> ParamIter<'a> {
        ParamIter {
            rest: (!self.raw.is_empty()).then_some(self.raw),
        }
    }

    /// A parameter by name (case-insensitive): `Some(None)` when present without a value.
    pub fn get(&self, name: &str) -> Option<Option<&'a [u8]>> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Header parameters (RFC 3261 `generic-param`): token names; values are tokens, hosts
    /// (IPv6 references included) or quoted strings. An empty list (a `;` with nothing after
    /// it) is invalid.
    pub(crate) fn validate_header_params(&self) -> bool {
        !self.raw.is_empty() && self.iter().all(|(n, v)| valid_header_param(n, v))
    }

    /// URI parameters (RFC 3261 `uri-parameter`): `paramchar`s only, no white space.
    pub(crate) fn validate_uri_params(&self) -> bool {
        !self.raw.is_empty()
            && self.raw.split(|&b| b == b';').all(|p| {
                let (name, value) = match p.iter().position(|&b| b == b'=') {
                    Some(i) => (&p[..i], Some(&p[i + 1..])),
                    None => (p, None),
                };
                !name.is_empty()
                    && scan::valid_chars(name, scan::PARAM)
                    && value.is_none_or(|v| scan::valid_chars(v, scan::PARAM))
            })
    }
}

/// One `generic-param`: a token name and an optional token, host or quoted-string value.
pub(crate) fn valid_header_param(name: &[u8], value: Option<&[u8]>) -> bool {
    scan::is_token_str(name)
        && match value {
            None => true,
            Some(v) if v.first() == Some(&b'"') => scan::quoted_end(v) == Some(v.len()),
            Some(v) => {
                !v.is_empty()
                    && v.iter()
                        .all(|&b| scan::is_token(b) || matches!(b, b':' | b'[' | b']'))
            }
        }
}

/// Iterator over a [`Params`] list.
pub struct ParamIter<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> Iterator for ParamIter<'a> {
    type Item = (&'a [u8], Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        let s = self.rest?;
        let mut i = 0;
        let mut end = s.len();
        // Parameter lists are short: a plain loop beats a vectorised search here.
        while i < s.len() {
            match s[i] {
                b';' => {
                    end = i;
                    break;
                }
                b'"' => match scan::quoted_end(&s[i..]) {
                    Some(n) => i += n,
                    None => break,
                },
                _ => i += 1,
            }
        }
        self.rest = (end < s.len()).then(|| &s[end + 1..]);
        let item = &s[..end];
        Some(match item.iter().position(|&b| b == b'=') {
            Some(eq) => (scan::trim(&item[..eq]), Some(scan::trim(&item[eq + 1..]))),
            None => (scan::trim(item), None),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Params;

    #[test]
    fn get_with_whitespace_and_flags() {
        let p = Params::new(b"  branch  =   z9hG4bK9ikj8  ;rport; q = 0.33");
        assert_eq!(p.get("BRANCH"), Some(Some(&b"z9hG4bK9ikj8"[..])));
        assert_eq!(p.get("rport"), Some(None));
        assert_eq!(p.get("q"), Some(Some(&b"0.33"[..])));
        assert_eq!(p.get("maddr"), None);
        assert!(p.validate_header_params());
    }

    #[test]
    fn empty_names_are_invalid() {
        assert!(!Params::new(b";").validate_header_params());
        assert!(!Params::new(b"a=b;;c").validate_header_params());
        assert!(!Params::new(b"x=").validate_header_params());
    }

    #[test]
    fn quoted_values_may_hold_semicolons() {
        let p = Params::new(b"text=\"a;b\";cause=16");
        assert_eq!(p.get("cause"), Some(Some(&b"16"[..])));
        assert!(p.validate_header_params());
    }
}
