//! Accounting (issue 6) through a real `vts serve` with real sipp: rating at CDR time.

mod common;

use std::time::Duration;

use common::{Sipp, Vts, at, free_port, uac, uac_from};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

fn write(vts: &Vts, name: &str, text: &str) -> String {
    let path = vts.dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

/// Cost from the carrier's rate, price from the customer's own rate, else its rate plan's
/// markup on cost; numbers in E.164 on the CDR; profit in the CSV export.
#[test]
fn calls_are_rated_when_their_cdr_is_written() {
    let vts = Vts::new();
    let own = vts.add_customer("own-rates", "127.0.0.1").to_string();
    let planned = vts.add_customer("planned", "127.0.0.2").to_string();
    let port = free_port();
    let carrier = vts.add_carrier("up", port, 1, "udp").to_string();
    // Minute increments: a call held 1 s bills 60 s whatever its exact length.
    let cost = write(&vts, "cost.csv", "34,0.0200,0,60,60\n");
    vts.cli(&["carrier", "import-rates", &carrier, &cost]);
    let sell = write(&vts, "sell.csv", "34,0.0500,0.0100,60,60\n");
    vts.cli(&["customer", "import-rates", &own, &sell]);
    let plan = vts
        .cli(&["rateplan", "add", "--name", "retail", "--markup", "25"])
        .trim()
        .to_string();
    let plan_rates = write(&vts, "plan.csv", "44,0.0300,0,60,60\n");
    vts.cli(&["rateplan", "import-rates", &plan, &plan_rates]);
    vts.cli(&["customer", "rateplan", &planned, &plan]);
    let switch = free_port();
    let serve = vts.serve(&[format!("udp:127.0.0.1:{switch}")]);
    let uas = Sipp::uas("uas_answer.xml", port, "u1", 2);
    let (ok, err) = uac("uac_call.xml", at(switch), "u1", 1, 1, free_port());
    assert!(ok, "{err}\n{}", serve.log_text());
    let (ok, err) = uac_from("127.0.0.2", "uac_call.xml", at(switch), 1, 1, free_port());
    assert!(ok, "{err}\n{}", serve.log_text());
    assert!(uas.wait(WAIT).0);
    serve.stop();
    let cdrs = vts.cdrs();
    let of = |customer: &str| -> &Value {
        cdrs.iter()
            .find(|c| c["customer_id"].as_i64() == customer.parse().ok())
            .unwrap_or_else(|| panic!("no CDR of {customer}: {cdrs:?}"))
    };
    let a = of(&own);
    assert_eq!(a["callee_e164"], "34911234567");
    assert_eq!(a["cost"], 20_000, "0.02 a minute, one minute");
    assert_eq!(a["price"], 60_000, "0.05 a minute + 0.01 connection");
    let b = of(&planned);
    assert_eq!(b["cost"], 20_000);
    assert_eq!(b["price"], 25_000, "no plan rate for 34: cost + 25 %");
    let csv = vts.cli(&["cdr", "list", "--format", "csv"]);
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let row = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>())
        .find(|r| r[col("customer_id")] == own)
        .unwrap();
    assert_eq!(row[col("cost")], "0.020000");
    assert_eq!(row[col("price")], "0.060000");
    assert_eq!(row[col("profit")], "0.040000");
    assert_eq!(row[col("margin_pct")], "66.67");
    // Bad markups are refused.
    let out = vts
        .command()
        .args(["rateplan", "add", "--name", "x", "--markup", "12.34567"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at most 4 decimals"));
}
