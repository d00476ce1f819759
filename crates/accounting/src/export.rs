//! CDRs as an operator's spreadsheet or billing system gets them: the columns (every stored
//! field and the derived ones: ring, total, profit, margin), each row's values, and CSV
//! written with the `csv` crate, with cells a spreadsheet would take for a formula
//! neutralised. `vts cdr list --format csv` and `vts cdr quarantine --format csv` use it, and
//! the API's CSV export will: one definition of the columns.

use std::borrow::Cow;
use std::io;

use domain::{Cdr, Money};

/// The CSV columns, in order.
pub const COLUMNS: &[&str] = &[
    "id",
    "call_id",
    "customer_id",
    "carrier_id",
    "carrier_addr",
    "source_addr",
    "caller",
    "callee",
    "caller_out",
    "callee_out",
    "user_agent",
    "invite_ms",
    "progress_ms",
    "answer_ms",
    "end_ms",
    "pdd_ms",
    "billable_ms",
    "billable_secs",
    "ring_ms",
    "total_ms",
    "final_code",
    "final_reason",
    "hangup",
    "attempts",
    "caller_e164",
    "callee_e164",
    "cost",
    "price",
    "profit",
    "margin_pct",
    "q850_cause",
    "codecs_offered",
    "codecs_answered",
    "attempt_log",
];

/// One CDR's values, in [`COLUMNS`] order (empty for what is unknown).
pub fn fields(c: &Cdr) -> Vec<String> {
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    let n = |v: Option<i64>| v.map(|x| x.to_string()).unwrap_or_default();
    vec![
        c.id.clone(),
        c.call_id.clone(),
        c.customer_id.to_string(),
        c.carrier_id.map(|x| x.to_string()).unwrap_or_default(),
        o(&c.carrier_addr),
        c.source_addr.clone(),
        c.caller.clone(),
        c.callee.clone(),
        o(&c.caller_out),
        o(&c.callee_out),
        o(&c.user_agent),
        c.invite_ms.to_string(),
        n(c.progress_ms),
        n(c.answer_ms),
        c.end_ms.to_string(),
        n(c.pdd_ms),
        c.billable_ms.to_string(),
        c.billable_secs.to_string(),
        n(c.ring_ms()),
        c.total_ms().to_string(),
        c.final_code.to_string(),
        c.final_reason.clone(),
        c.hangup.to_string(),
        c.attempts.to_string(),
        o(&c.caller_e164),
        o(&c.callee_e164),
        c.cost.map(|m| m.to_string()).unwrap_or_default(),
        c.price.map(|m| m.to_string()).unwrap_or_default(),
        profit(c).map(|m| m.to_string()).unwrap_or_default(),
        margin_pct(c).map(|m| format!("{m:.2}")).unwrap_or_default(),
        c.q850_cause.map(|q| q.to_string()).unwrap_or_default(),
        o(&c.codecs_offered),
        o(&c.codecs_answered),
        attempt_log(c),
    ]
}

/// Attempts as `carrier@address code pdd_ms` joined by `; `.
fn attempt_log(c: &Cdr) -> String {
    c.attempt_log
        .iter()
        .map(|a| {
            let code = a.code.map_or("-".to_string(), |c| c.to_string());
            let pdd = a.pdd_ms.map_or("-".to_string(), |p| format!("{p}ms"));
            format!("{}@{} {code} {pdd}", a.carrier_id, a.carrier_addr)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Price minus cost, when both are known.
pub fn profit(c: &Cdr) -> Option<Money> {
    Some(Money(c.price?.0.saturating_sub(c.cost?.0)))
}

/// Profit as a share of the price, in percent (for display only: money stays integer).
pub fn margin_pct(c: &Cdr) -> Option<f64> {
    let price = c.price?.0;
    (price != 0).then(|| profit(c).map(|p| p.0 as f64 * 100.0 / price as f64))?
}

/// A cell as a spreadsheet must get it (OWASP "CSV injection"): one starting with `=`, `+`,
/// `-`, `@`, a tab or a carriage return gets a leading `'`, unless it is a plain number
/// (`-12.5`, `+4930123`), which a spreadsheet reads as a number and which must stay
/// readable (money, a negative profit, an E.164 number). Quoting is the CSV writer's.
pub fn safe_cell(s: &str) -> Cow<'_, str> {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) && !plain_number(s) {
        Cow::Owned(format!("'{s}"))
    } else {
        Cow::Borrowed(s)
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

/// Writes a header (`before` columns, then [`COLUMNS`]) and one row per item: `before`
/// values from `prefix`, then the CDR's [`fields`]; every cell made [`safe_cell`].
pub fn write_csv<'a, T: 'a, W: io::Write>(
    out: W,
    before: &[&str],
    items: impl IntoIterator<Item = &'a T>,
    row: impl Fn(&T) -> (Vec<String>, &Cdr),
) -> io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    let header: Vec<&str> = before.iter().chain(COLUMNS).copied().collect();
    w.write_record(&header)?;
    for item in items {
        let (mut cells, cdr) = row(item);
        cells.extend(fields(cdr));
        w.write_record(cells.iter().map(|c| safe_cell(c).into_owned()))?;
    }
    w.flush()
}

/// One page of an export: the header first when `header`, then one row per CDR, cells made
/// [`safe_cell`]. Pages written one after another make one CSV (the API streams them).
pub fn write_page<W: io::Write>(out: W, header: bool, cdrs: &[Cdr]) -> io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    if header {
        w.write_record(COLUMNS)?;
    }
    for cdr in cdrs {
        for cell in fields(cdr) {
            w.write_field(safe_cell(&cell).as_bytes())?;
        }
        w.write_record(None::<&[u8]>)?;
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Text a peer chose (commas, quotes, line breaks, a formula) comes back from a CSV
    /// reader cell for cell, the formula neutralised; money stays a number.
    #[test]
    fn rows_read_back_cell_for_cell_with_formulas_neutralised() {
        let mut b = domain::CdrBuilder::new();
        b.apply(domain::CallEvent::Started {
            call: domain::CallRef(1),
            cdr_id: "cdr-1".into(),
            at_ms: 1_000,
            call_id: "c@h".into(),
            customer: domain::CustomerId(1),
            source: "192.0.2.1:5060".into(),
            caller: "100".into(),
            callee: "200".into(),
            user_agent: None,
            codecs: Vec::new(),
        });
        let mut cdr = b
            .apply(domain::CallEvent::Ended {
                call: domain::CallRef(1),
                at_ms: 2_000,
                code: 486,
                reason: "Busy Here".into(),
                hangup: domain::HangupSide::Callee,
                q850: None,
            })
            .unwrap();
        // As another tool may have stored them: not cleaned.
        cdr.caller = "=cmd|' /C calc'!A0".into();
        cdr.final_reason = "Busy, \"really\"\nbusy".into();
        cdr.price = Some(Money(100));
        cdr.cost = Some(Money(250));
        let mut out = Vec::new();
        write_csv(&mut out, &["n"], [&cdr], |c| (vec!["1".into()], c)).unwrap();
        let mut reader = csv::Reader::from_reader(out.as_slice());
        let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(header.len(), COLUMNS.len() + 1);
        assert_eq!(header[0], "n");
        let row: Vec<String> = reader
            .records()
            .next()
            .unwrap()
            .unwrap()
            .iter()
            .map(String::from)
            .collect();
        let at = |name: &str| &row[1 + COLUMNS.iter().position(|c| *c == name).unwrap()];
        assert_eq!(at("caller"), "'=cmd|' /C calc'!A0");
        assert_eq!(at("final_reason"), "Busy, \"really\"\nbusy");
        assert_eq!(at("profit"), &profit(&cdr).unwrap().to_string());
        assert!(at("profit").starts_with('-'), "a loss stays a number");
    }
}
