//! Text for people and spreadsheets: CSV cells that a spreadsheet cannot take for a
//! formula, and terminal text with control characters shown escaped. Used by every command
//! that prints stored data (CDRs, usage, the quarantine).

use std::fmt::Write as _;

/// One CSV cell: quoted when it holds a comma, a quote or a line break, and neutralised
/// when a spreadsheet would take it for a formula (OWASP "CSV injection"): a cell starting
/// with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'` — unless it is a
/// plain number (`-12.5`, `+4930123`), which a spreadsheet reads as a number and which
/// must stay readable (money, a negative profit, an E.164 number).
pub(crate) fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) && !plain_number(s) {
        std::borrow::Cow::Owned(format!("'{s}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.into_owned()
    }
}

/// `[+-]digits[.digits]`: nothing a spreadsheet would evaluate.
fn plain_number(s: &str) -> bool {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, "0"));
    !int.is_empty()
        && !frac.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
}

/// Text for a terminal: control characters (ESC sequences could move the cursor, rewrite
/// the title, hide text), line separators and bidi overrides shown escaped (`\u{1b}`)
/// instead of sent raw. CDRs are cleaned when built, but the database and the quarantine
/// may hold older or refused ones.
pub(crate) fn term(s: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = domain::unsafe_char;
    if !s.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_char(c) {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_it() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}
