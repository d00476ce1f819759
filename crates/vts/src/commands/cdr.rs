//! `vts cdr`: list (table, CSV, JSON), the quarantine (read from the data directory, no
//! database needed), and reconciliation of calls seen against CDRs stored.

use std::fmt::Write as _;

use domain::{CarrierId, Cdr, CustomerId};
use store::Store;

use crate::cli::{CdrCmd, Format};
use crate::config::Settings;
use accounting::export;

use crate::output::term;

pub(super) async fn run(store: &Store, settings: &Settings, cmd: CdrCmd) -> crate::error::Result {
    match cmd {
        CdrCmd::Quarantine { .. } => Ok(()),
        CdrCmd::Reconcile { day } => {
            let r = accounting::reconcile::reconcile(store, &settings.data_dir, day).await?;
            print_reconciliation(&r)
        }
        CdrCmd::List {
            limit,
            customer,
            carrier,
            since,
            until,
            code,
            min_duration,
            format,
        } => {
            let filter = store::CdrFilter {
                customer: customer.map(CustomerId),
                carrier: carrier.map(CarrierId),
                since_ms: since,
                until_ms: until,
                code,
                min_billable_ms: min_duration.map(|s| i64::from(s) * 1000),
            };
            let cdrs = store.find_cdrs(&filter, limit).await?;
            print!("{}", render_cdrs(&cdrs, format)?);
            Ok(())
        }
    }
}

/// `vts cdr quarantine`: read from the data directory (no database needed: it may be what
/// is failing).
pub(super) fn quarantine(settings: &Settings, format: Format) -> crate::error::Result {
    let dir = accounting::quarantine::dir_in(&settings.data_dir);
    let (entries, torn) =
        accounting::quarantine::read(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if torn > 0 {
        eprintln!("vts: {torn} unreadable line(s) in the quarantine skipped");
    }
    print!("{}", render_quarantine(&entries, format)?);
    Ok(())
}

fn render_cdrs(cdrs: &[Cdr], format: Format) -> crate::error::Result<String> {
    Ok(match format {
        Format::Json => {
            // Every stored field, and the derived ones the CSV has too.
            let mut list = Vec::with_capacity(cdrs.len());
            for c in cdrs {
                let mut v = serde_json::to_value(c)?;
                if let Some(o) = v.as_object_mut() {
                    o.insert("ring_ms".into(), c.ring_ms().into());
                    o.insert("total_ms".into(), c.total_ms().into());
                    o.insert("profit".into(), export::profit(c).map(|m| m.0).into());
                }
                list.push(v);
            }
            let mut s = serde_json::to_string_pretty(&list)?;
            s.push('\n');
            s
        }
        Format::Csv => {
            let mut out = Vec::new();
            export::write_csv(&mut out, &[], cdrs, |c| (Vec::new(), c))?;
            String::from_utf8_lossy(&out).into_owned()
        }
        Format::Table => {
            let mut out = format!(
                "{:<36} {:<8} {:<8} {:<16} {:<16} {:>5} {:>7} {:>8} {:<7} {:>3}\n",
                "ID",
                "CUSTOMER",
                "CARRIER",
                "CALLER",
                "CALLEE",
                "CODE",
                "PDD_MS",
                "BILL_S",
                "HANGUP",
                "ATT"
            );
            for c in cdrs {
                let _ = writeln!(
                    out,
                    "{:<36} {:<8} {:<8} {:<16} {:<16} {:>5} {:>7} {:>8} {:<7} {:>3}",
                    term(&c.id),
                    c.customer_id,
                    c.carrier_id
                        .map(|x| x.to_string())
                        .unwrap_or_else(|| "-".into()),
                    term(&c.caller),
                    term(&c.callee),
                    c.final_code,
                    c.pdd_ms
                        .map(|x| x.to_string())
                        .unwrap_or_else(|| "-".into()),
                    c.billable_secs,
                    c.hangup,
                    c.attempts
                );
            }
            out
        }
    })
}

/// The CDRs the database refused: when, why, and the CDR (JSON: every field as kept; CSV:
/// the CDR's columns after `quarantined_ms` and `error`; table: the main ones, escaped).
fn render_quarantine(
    entries: &[accounting::quarantine::Entry],
    format: Format,
) -> crate::error::Result<String> {
    Ok(match format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(entries)?;
            s.push('\n');
            s
        }
        Format::Csv => {
            let mut out = Vec::new();
            export::write_csv(&mut out, &["quarantined_ms", "error"], entries, |e| {
                (vec![e.at_ms.to_string(), e.error.clone()], &e.cdr)
            })?;
            String::from_utf8_lossy(&out).into_owned()
        }
        Format::Table => {
            let mut out = format!(
                "{:<36} {:<8} {:<16} {:<16} {:<24} {}\n",
                "ID", "CUSTOMER", "CALLER", "CALLEE", "QUARANTINED", "ERROR"
            );
            for e in entries {
                let when = jiff::Timestamp::from_millisecond(e.at_ms)
                    .map_or_else(|_| e.at_ms.to_string(), |t| t.to_string());
                let _ = writeln!(
                    out,
                    "{:<36} {:<8} {:<16} {:<16} {:<24} {}",
                    term(&e.cdr.id),
                    e.cdr.customer_id,
                    term(&e.cdr.caller),
                    term(&e.cdr.callee),
                    when,
                    term(&e.error)
                );
            }
            let _ = writeln!(out, "{} CDR(s) in quarantine", entries.len());
            out
        }
    })
}

/// `vts cdr reconcile`'s report; an error when calls were seen without a CDR.
fn print_reconciliation(r: &accounting::reconcile::Reconciliation) -> crate::error::Result {
    println!(
        "day {} (UTC): calls seen {}, CDRs stored {}, in the write-ahead log {} ({} CDRs not yet written, {} calls in progress or left open)",
        r.day,
        r.seen,
        r.stored,
        r.waiting + r.open,
        r.waiting,
        r.open
    );
    println!("{:<6} {:>8} {:>8}", "HOUR", "SEEN", "STORED");
    for (h, (s, c)) in &r.hours {
        println!("{h:02}:00  {s:>8} {c:>8}");
    }
    if !r.differing_minutes.is_empty() {
        println!("minutes that differ (seen, stored):");
        for (at, s, c) in r.differing_minutes.iter().take(50) {
            println!("  {:02}:{:02}  {s} {c}", at / 60, at % 60);
        }
    }
    let missing = r.missing();
    if missing < 0 {
        println!(
            "{} CDRs stored with no call counted (stored before the counts began, or counts lost)",
            -missing
        );
    }
    if missing > 0 {
        return Err(format!("{missing} calls seen without a CDR stored or waiting").into());
    }
    println!("reconciled: every call seen has its CDR (stored or waiting in the log)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::csv_field;

    fn cdr(caller: &str, user_agent: &str) -> Cdr {
        let mut b = domain::CdrBuilder::new();
        b.apply(domain::CallEvent::Started {
            call: domain::CallRef(1),
            cdr_id: "cdr-1".into(),
            at_ms: 1_000,
            call_id: "c@h".into(),
            customer: CustomerId(1),
            source: "192.0.2.1:5060".into(),
            caller: "100".into(),
            callee: "200".into(),
            user_agent: None,
            codecs: Vec::new(),
        });
        let mut c = b
            .apply(domain::CallEvent::Ended {
                call: domain::CallRef(1),
                at_ms: 2_000,
                code: 486,
                reason: "Busy Here".into(),
                hangup: domain::HangupSide::Callee,
                q850: None,
            })
            .unwrap();
        // As an older version (or another tool) may have stored them: not cleaned.
        c.caller = caller.into();
        c.user_agent = Some(user_agent.into());
        c
    }

    /// A caller, user agent or reason a peer chose must not become a formula in the
    /// operator's spreadsheet; numbers (a negative profit, a +E.164 number) stay numbers.
    #[test]
    fn csv_cells_that_look_like_formulas_are_neutralised() {
        assert_eq!(
            csv_field("=HYPERLINK(\"http://x\")"),
            "\"'=HYPERLINK(\"\"http://x\"\")\""
        );
        assert_eq!(csv_field("+1+cmd|' /C calc'!A0"), "'+1+cmd|' /C calc'!A0");
        assert_eq!(csv_field("-2+3"), "'-2+3");
        assert_eq!(csv_field("@SUM(A1:A9)"), "'@SUM(A1:A9)");
        assert_eq!(csv_field("\t=1"), "'\t=1");
        assert_eq!(
            csv_field("-0.0150"),
            "-0.0150",
            "a negative amount stays a number"
        );
        assert_eq!(csv_field("+4930123456"), "+4930123456");
        assert_eq!(csv_field("-"), "'-");
        let mut c = cdr("=cmd|' /C calc'!A0", "@evil");
        c.price = Some(domain::Money(100));
        c.cost = Some(domain::Money(250));
        let loss = export::profit(&c).unwrap().to_string();
        assert!(loss.starts_with('-'), "{loss}");
        let csv = render_cdrs(&[c], Format::Csv).unwrap();
        let row = csv.lines().nth(1).unwrap();
        assert!(row.contains(",'=cmd|' /C calc'!A0,"), "{row}");
        assert!(row.contains(",'@evil,"), "{row}");
        assert!(
            row.contains(&format!(",{loss},")),
            "the negative profit as it is: {row}"
        );
    }

    /// ESC sequences and other controls in a CDR's text reach the terminal escaped.
    #[test]
    fn table_output_escapes_control_characters() {
        let c = cdr("\u{1b}]0;owned\u{7}\u{1b}[2J100", "\u{1b}[31mred");
        let table = render_cdrs(std::slice::from_ref(&c), Format::Table).unwrap();
        assert!(
            !table.contains('\u{1b}') && !table.contains('\u{7}'),
            "{table:?}"
        );
        assert!(table.contains("\\u{1b}]0;owned"), "{table}");
        let entry = accounting::quarantine::Entry {
            at_ms: 1_000,
            error: "bad\u{1b}[0m".into(),
            cdr: c,
        };
        let table = render_quarantine(&[entry], Format::Table).unwrap();
        assert!(!table.contains('\u{1b}'), "{table:?}");
        assert!(table.contains("bad\\u{1b}[0m"), "{table}");
        assert_eq!(term("ünïcode +49"), "ünïcode +49");
    }
}
