//! Byte-level helpers shared by the parser and the header views: RFC 3261 §25.1 character
//! classes, linear white space (folded lines included) and splitting of comma-separated values.

/// `token` characters of RFC 3261 §25.1.
pub(crate) fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

/// `word` characters (Call-ID) of RFC 3261 §25.1.
pub(crate) fn is_word(b: u8) -> bool {
    is_token(b)
        || matches!(
            b,
            b'(' | b')'
                | b'<'
                | b'>'
                | b':'
                | b'\\'
                | b'"'
                | b'/'
                | b'['
                | b']'
                | b'?'
                | b'{'
                | b'}'
        )
}

/// Linear white space inside a header value. A header value keeps its folds (CRLF followed by
/// SP or HT), so CR and LF inside a value are white space too.
pub(crate) fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

pub(crate) fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if is_lws(*first) {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if is_lws(*last) {
            s = rest;
        } else {
            break;
        }
    }
    s
}

pub(crate) fn trim_start(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if is_lws(*first) {
            s = rest;
        } else {
            break;
        }
    }
    s
}

pub(crate) fn is_token_str(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_token(b))
}

/// Index just past a quoted string that starts at `s[0] == b'"'`, or `None` if it never closes.
pub(crate) fn quoted_end(s: &[u8]) -> Option<usize> {
    let mut i = 1;
    while i < s.len() {
        match s[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Splits a header value on the commas that separate its values: commas inside quoted strings
/// and inside `<...>` do not count. Yields each value untrimmed; an unterminated quote or angle
/// bracket yields the rest as one value (the value parser then rejects it).
pub(crate) struct CommaSplit<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> CommaSplit<'a> {
    pub(crate) fn new(s: &'a [u8]) -> Self {
        Self { rest: Some(s) }
    }
}

impl<'a> Iterator for CommaSplit<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let s = self.rest?;
        let mut i = 0;
        let mut angle = false;
        while i < s.len() {
            match s[i] {
                b'"' if !angle => match quoted_end(&s[i..]) {
                    Some(n) => {
                        i += n;
                        continue;
                    }
                    None => break,
                },
                b'<' => angle = true,
                b'>' => angle = false,
                b',' if !angle => {
                    self.rest = Some(&s[i + 1..]);
                    return Some(&s[..i]);
                }
                _ => {}
            }
            i += 1;
        }
        self.rest = None;
        Some(s)
    }
}

/// Parses an unsigned decimal of at most `max`, rejecting empty input, signs and overflow.
pub(crate) fn parse_decimal(s: &[u8], max: u64) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    (v <= max).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comma_split_respects_quotes_and_angles() {
        let v: Vec<&[u8]> = CommaSplit::new(b"\"a,b\" <sip:x,y>, <sip:z>").collect();
        assert_eq!(v, vec![&b"\"a,b\" <sip:x,y>"[..], &b" <sip:z>"[..]]);
    }

    #[test]
    fn decimal_bounds() {
        assert_eq!(parse_decimal(b"0068", 255), Some(68));
        assert_eq!(parse_decimal(b"300", 255), None);
        assert_eq!(parse_decimal(b"-1", 255), None);
        assert_eq!(parse_decimal(b"36893488147419103232", u64::MAX), None);
    }
}
