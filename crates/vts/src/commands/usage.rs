//! `vts usage`: the usage counters (docs/CDR.md "Usage") as a table, CSV or JSON.

use domain::{Directory, Money, Zone};
use serde_json::json;
use store::Store;

use crate::cli::{Format, UsageCmd};

pub(crate) async fn run(store: &Store, cmd: UsageCmd) -> crate::error::Result {
    let today = || {
        let now = domain::now_ms();
        Zone::utc().date(now)
    };
    match cmd {
        UsageCmd::Customers { period, format } => {
            let period = period.unwrap_or_else(today);
            let rows = store.customer_usage(&period).await?;
            let directory = store.load_directory().await?;
            let head = [
                "customer", "name", "zone", "period", "calls", "answered", "seconds", "minutes",
                "price",
            ];
            let rows: Vec<Vec<String>> = rows
                .iter()
                .map(|u| {
                    let c = directory.customer(u.customer_id);
                    vec![
                        u.customer_id.0.to_string(),
                        c.map(|c| c.name.clone()).unwrap_or_default(),
                        c.map(|c| c.timezone.to_string()).unwrap_or_default(),
                        u.period.clone(),
                        u.calls.to_string(),
                        u.answered.to_string(),
                        u.seconds.to_string(),
                        minutes(u.seconds),
                        u.price.to_string(),
                    ]
                })
                .collect();
            print!("{}", render(&head, &rows, format));
        }
        UsageCmd::Carriers { period, format } => {
            let period = period.unwrap_or_else(today);
            let rows = store.carrier_usage(&period).await?;
            let directory = store.load_directory().await?;
            let head = [
                "carrier", "name", "period", "attempts", "answered", "failures", "seconds",
                "minutes", "cost",
            ];
            let rows: Vec<Vec<String>> = rows
                .iter()
                .map(|u| {
                    vec![
                        u.carrier_id.0.to_string(),
                        carrier_name(&directory, u.carrier_id),
                        u.period.clone(),
                        u.attempts.to_string(),
                        u.answered.to_string(),
                        u.failures.to_string(),
                        u.seconds.to_string(),
                        minutes(u.seconds),
                        Money(u.cost.0).to_string(),
                    ]
                })
                .collect();
            print!("{}", render(&head, &rows, format));
        }
        UsageCmd::Rebuild => {
            let n = store.rebuild_usage().await?;
            println!("usage counted again from {n} CDRs");
        }
    }
    Ok(())
}

fn carrier_name(directory: &Directory, id: domain::CarrierId) -> String {
    directory
        .routes()
        .iter()
        .find(|c| c.id == id)
        .map(|c| c.name.clone())
        .unwrap_or_default()
}

/// Seconds as minutes with two decimals (display only: counters keep whole seconds).
fn minutes(seconds: i64) -> String {
    let hundredths = seconds * 100 / 60;
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

fn render(head: &[&str], rows: &[Vec<String>], format: Format) -> String {
    match format {
        Format::Json => {
            let list: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    let mut o = serde_json::Map::new();
                    for (k, v) in head.iter().zip(r) {
                        // Counts as numbers; names, periods and money as strings.
                        let value = match *k {
                            "calls" | "answered" | "seconds" | "attempts" | "failures"
                            | "customer" | "carrier" => {
                                v.parse::<i64>().map_or_else(|_| json!(v), |n| json!(n))
                            }
                            _ => json!(v),
                        };
                        o.insert((*k).to_string(), value);
                    }
                    serde_json::Value::Object(o)
                })
                .collect();
            let mut s = serde_json::to_string_pretty(&list).unwrap_or_default();
            s.push('\n');
            s
        }
        Format::Csv => {
            let mut out = head.join(",");
            out.push('\n');
            for r in rows {
                let fields: Vec<String> = r.iter().map(|f| crate::output::csv_field(f)).collect();
                out.push_str(&fields.join(","));
                out.push('\n');
            }
            out
        }
        Format::Table => {
            let widths: Vec<usize> = (0..head.len())
                .map(|i| {
                    rows.iter()
                        .map(|r| r[i].chars().count())
                        .chain([head[i].len()])
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            let line = |cells: Vec<String>| {
                let parts: Vec<String> = cells
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect();
                format!("{}\n", parts.join("  ").trim_end())
            };
            let mut out = line(head.iter().map(|h| h.to_uppercase()).collect());
            for r in rows {
                out.push_str(&line(r.clone()));
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_have_two_decimals() {
        assert_eq!(minutes(0), "0.00");
        assert_eq!(minutes(61), "1.01");
        assert_eq!(minutes(90), "1.50");
        assert_eq!(minutes(3_600), "60.00");
    }
}
