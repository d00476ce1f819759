//! Byte-level helpers shared by the parser and the header views: RFC 3261 §25.1 character
//! classes, linear white space (folded lines included) and splitting of comma-separated values.

// Character classes of RFC 3261 §25.1, one bit each, looked up in one table.
pub(crate) const TOKEN: u8 = 1;
pub(crate) const WORD: u8 = 2;
pub(crate) const UNRESERVED: u8 = 4;
pub(crate) const USER: u8 = 8;
pub(crate) const PASSWORD: u8 = 16;
pub(crate) const PARAM: u8 = 32;
pub(crate) const URI_HEADER: u8 = 64;
pub(crate) const HOST: u8 = 128;

const fn class_of(b: u8) -> u8 {
    let alnum = b.is_ascii_alphanumeric();
    let mut c = 0;
    if alnum
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
    {
        c |= TOKEN | WORD;
    }
    if matches!(
        b,
        b'(' | b')' | b'<' | b'>' | b':' | b'\\' | b'"' | b'/' | b'[' | b']' | b'?' | b'{' | b'}'
    ) {
        c |= WORD;
    }
    let unreserved = alnum
        || matches!(
            b,
            b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
        );
    if unreserved {
        c |= UNRESERVED | USER | PASSWORD | PARAM | URI_HEADER;
    }
    if matches!(b, b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/') {
        c |= USER;
    }
    if matches!(b, b'&' | b'=' | b'+' | b'$' | b',') {
        c |= PASSWORD;
    }
    if matches!(b, b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$') {
        c |= PARAM;
    }
    if matches!(
        b,
        b'[' | b']' | b'/' | b'?' | b':' | b'+' | b'$' | b'=' | b'&'
    ) {
        c |= URI_HEADER;
    }
    if alnum || matches!(b, b'-' | b'.' | b'_') {
        c |= HOST;
    }
    c
}

const CLASSES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = class_of(i as u8);
        i += 1;
    }
    t
};

/// Whether `b` is in one of the classes of `mask`.
#[inline]
pub(crate) fn is(b: u8, mask: u8) -> bool {
    CLASSES[b as usize] & mask != 0
}

/// Whether every byte of `s` is in `mask` (true for an empty slice).
#[inline]
pub(crate) fn all(s: &[u8], mask: u8) -> bool {
    s.iter().all(|&b| is(b, mask))
}

/// `token` characters of RFC 3261 §25.1.
#[inline]
pub(crate) fn is_token(b: u8) -> bool {
    is(b, TOKEN)
}

/// `word` characters (Call-ID) of RFC 3261 §25.1.
#[inline]
pub(crate) fn is_word(b: u8) -> bool {
    is(b, WORD)
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
    !s.is_empty() && all(s, TOKEN)
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

/// Index of the first `needle` byte. SIP lines are short: eight bytes at a time in a
/// register (the classic "has zero byte" test) beats a vectorised search's set-up cost.
pub(crate) fn find_byte(needle: u8, s: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pattern = LO * u64::from(needle);
    let mut chunks = s.chunks_exact(8);
    let mut offset = 0;
    for chunk in chunks.by_ref() {
        let word = u64::from_le_bytes(*chunk.first_chunk::<8>()?) ^ pattern;
        // The lowest flagged byte is always a real match (borrows only run upwards).
        let found = word.wrapping_sub(LO) & !word & HI;
        if found != 0 {
            return Some(offset + (found.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == needle)
        .map(|p| offset + p)
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
        while let Some(off) = memchr::memchr3(b',', b'"', b'<', &s[i..]) {
            i += off;
            match s[i] {
                b'"' => match quoted_end(&s[i..]) {
                    Some(n) => i += n,
                    None => break,
                },
                b'<' => match memchr::memchr(b'>', &s[i..]) {
                    Some(n) => i += n + 1,
                    None => break,
                },
                _ => {
                    self.rest = Some(&s[i + 1..]);
                    return Some(&s[..i]);
                }
            }
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

/// All bytes are characters of `class` (the table above) or well-formed `%HH` escapes.
pub(crate) fn valid_chars(s: &[u8], class: u8) -> bool {
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            match s.get(i + 1..i + 3) {
                Some([h, l]) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => i += 3,
                _ => return false,
            }
        } else if is(s[i], class) {
            i += 1;
        } else {
            return false;
        }
    }
    true
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
    fn find_byte_matches_position() {
        let hay = b"Via: SIP/2.0/UDP h;branch=z9hG4bK\r\n\nmore\n";
        for start in 0..hay.len() {
            for needle in [b'\n', b';', b'z', b'!', 0x80] {
                let expected = hay[start..].iter().position(|&b| b == needle);
                assert_eq!(
                    find_byte(needle, &hay[start..]),
                    expected,
                    "{start} {needle}"
                );
            }
        }
        assert_eq!(find_byte(0x81, &[0x01, 0x81]), Some(1));
        assert_eq!(find_byte(0x00, &[0x01; 20]), None);
    }

    #[test]
    fn decimal_bounds() {
        assert_eq!(parse_decimal(b"0068", 255), Some(68));
        assert_eq!(parse_decimal(b"300", 255), None);
        assert_eq!(parse_decimal(b"-1", 255), None);
        assert_eq!(parse_decimal(b"36893488147419103232", u64::MAX), None);
    }
}
