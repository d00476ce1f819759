//! Text for people and spreadsheets: CSV cells that a spreadsheet cannot take for a
//! formula, and terminal text with control characters shown escaped. Used by every command
//! that prints stored data (CDRs, usage, the quarantine).

use std::fmt::Write as _;

/// One CSV cell of a table the CLI writes by hand (usage): made safe for spreadsheets
/// (`accounting::export::safe_cell`), then quoted when it holds a comma, a quote or a line
/// break.
pub(crate) fn csv_field(s: &str) -> String {
    let s = accounting::export::safe_cell(s);
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.into_owned()
    }
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
