//! Accounting (issue 6) through a real `vts serve` with real sipp: rating at CDR time.

use std::time::Duration;

use crate::common::{Sipp, Uac, Uas, VTS, Vts, at, free_port};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

/// The throw-away PostgreSQL server: tests that use it take this, because two of them stop
/// and start it under a running switch (the others would see an outage they did not make).
static PG_SERVER: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn pg_server() -> std::sync::MutexGuard<'static, ()> {
    PG_SERVER.lock().unwrap_or_else(|e| e.into_inner())
}

/// A switch on the throw-away PostgreSQL (database `url_var`) that a test may stop and
/// start, with a small memory queue (100: most of an outage's CDRs wait in the write-ahead
/// log only) and batches of 50.
struct Outage {
    vts: Vts,
    stop: String,
    start: String,
    _server: std::sync::MutexGuard<'static, ()>,
}

fn outage(url_var: &str) -> Option<Outage> {
    let (Ok(url), Ok(stop), Ok(start)) = (
        std::env::var(url_var),
        std::env::var("VTS_TEST_PG_STOP"),
        std::env::var("VTS_TEST_PG_START"),
    ) else {
        eprintln!("skipped: no throw-away PostgreSQL (scripts/test starts one)");
        return None;
    };
    let _server = pg_server();
    let mut vts = Vts::new(VTS);
    vts.db = Some(url);
    vts.env.push(("VTS_CDR_BATCH_SIZE".into(), "50".into()));
    vts.env.push(("VTS_CDR_MEMORY_QUEUE".into(), "100".into()));
    Some(Outage {
        vts,
        stop,
        start,
        _server,
    })
}

/// Customer `acme` at 127.0.0.1, one carrier answering up to `calls` calls (OPTIONS probes
/// count as sipp calls), and the switch running.
fn acme_and_one_carrier(vts: &Vts, calls: u32) -> (crate::common::Serve, u16, Sipp) {
    vts.add_customer("acme", "127.0.0.1");
    let port = free_port();
    vts.add_carrier("up", port, 1, "udp");
    let switch = free_port();
    let serve = vts.serve(&[format!("udp:127.0.0.1:{switch}")]);
    (
        serve,
        switch,
        Uas::new("uas_answer.xml", port).calls(calls).spawn(),
    )
}

/// Runs a shell command (the test's PostgreSQL stop and start); panics when it fails.
fn sh(cmd: &str) {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write(vts: &Vts, name: &str, text: &str) -> String {
    let path = vts.dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

/// Cost from the carrier's rate, price from the customer's own rate, else its rate plan's
/// markup on cost; numbers in E.164 on the CDR; profit in the CSV export.
#[test]
fn calls_are_rated_when_their_cdr_is_written() {
    let vts = Vts::new(VTS);
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
    let uas = Uas::new("uas_answer.xml", port).calls(2).spawn();
    let (ok, err) = Uac::new("uac_call.xml", at(switch))
        .source_port(free_port())
        .run();
    assert!(ok, "{err}\n{}", serve.log_text());
    let (ok, err) = Uac::new("uac_call.xml", at(switch))
        .ip("127.0.0.2")
        .source_port(free_port())
        .run();
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
    assert_eq!(a["profit"], 40_000);
    let ms = |f: &str| a[f].as_i64().unwrap_or_else(|| panic!("{f}: {a}"));
    assert_eq!(ms("total_ms"), ms("end_ms") - ms("invite_ms"));
    assert_eq!(ms("ring_ms"), ms("answer_ms") - ms("progress_ms"));
    assert!(
        (50..1_000).contains(&ms("pdd_ms")) && ms("ring_ms") < 1_000,
        "the carrier sends 180 after 60 ms and answers at once: {a}"
    );
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

/// The Call-IDs a traced customer saw answered (a 200 to its INVITE), with the time it
/// arrived (epoch ms, from sipp's UTC time stamps).
fn answered_at(messages: &str) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for entry in messages
        .split("----------------------------------------------- ")
        .skip(1)
    {
        let mut lines = entry.lines();
        let stamp = lines
            .next()
            .unwrap_or_default()
            .trim()
            .replacen(' ', "T", 1);
        let body: Vec<&str> = lines.collect();
        let received = body.first().is_some_and(|l| l.contains("received"));
        let ok = body.iter().any(|l| l.starts_with("SIP/2.0 200"));
        let invite = body
            .iter()
            .any(|l| l.starts_with("CSeq:") && l.contains("INVITE"));
        if !(received && ok && invite) {
            continue;
        }
        let call_id = body
            .iter()
            .find_map(|l| l.strip_prefix("Call-ID:"))
            .map(|c| c.trim().to_string())
            .unwrap();
        let at = stamp
            .parse::<jiff::civil::DateTime>()
            .unwrap()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .unwrap()
            .timestamp()
            .as_millisecond();
        if !out.iter().any(|(c, _)| *c == call_id) {
            out.push((call_id, at));
        }
    }
    out
}

/// `kill -9` of `vts serve` in the middle of 200 calls at 50 a second, then a restart: every
/// call the customer saw answered (before the kill, allowing 100 ms for the event to leave
/// the engine) has exactly one CDR, with its answer time; the calls that were up are closed
/// by the switch at the last moment it was known alive; no CDR is written twice.
#[test]
fn a_kill_9_loses_no_cdr_and_duplicates_none() {
    let vts = Vts::new(VTS);
    let (serve, switch, carrier) = acme_and_one_carrier(&vts, 200);
    let customer = Uac::new("uac_call.xml", at(switch))
        .calls(200)
        .rate(50)
        .source_port(free_port())
        .timeout_s(120)
        .spawn_traced();
    // Wait until calls are up (an event, not a pause): at 50 a second, held 1 s, ~50 are.
    vts.await_status("30 calls up", |s| s["calls"].as_u64().unwrap_or(0) >= 30);
    let killed_ms = jiff::Timestamp::now().as_millisecond();
    let log = serve.log.clone();
    serve.kill9();
    let first_run = std::fs::read_to_string(&log).unwrap_or_default();
    let messages = customer.kill_messages();
    drop(carrier);
    let answered = answered_at(&messages);
    assert!(answered.len() >= 20, "{} answered", answered.len());

    let serve = vts.serve(&[format!("udp:127.0.0.1:{switch}")]);
    let log = serve.log.clone();
    serve.stop();
    let second_run = std::fs::read_to_string(&log).unwrap_or_default();
    let cdrs = vts.cdrs();
    let mut ids: Vec<&str> = cdrs.iter().map(|c| c["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), cdrs.len(), "a CDR written twice");
    let mut call_ids: Vec<&str> = cdrs
        .iter()
        .map(|c| c["call_id"].as_str().unwrap())
        .collect();
    call_ids.sort_unstable();
    call_ids.dedup();
    assert_eq!(call_ids.len(), cdrs.len(), "two CDRs for one call");
    let mut closed = 0;
    for (call_id, at) in answered.iter().filter(|(_, at)| *at + 100 < killed_ms) {
        let cdr = cdrs
            .iter()
            .find(|c| c["call_id"] == call_id.as_str())
            .unwrap_or_else(|| {
                panic!(
                    "no CDR for {call_id}, answered at {at}, killed at {killed_ms}, {} CDRs\nfirst run:\n{first_run}\nsecond run:\n{second_run}",
                    cdrs.len()
                )
            });
        assert!(cdr["answer_ms"].is_i64(), "{cdr}");
        if cdr["final_reason"]
            .as_str()
            .unwrap()
            .starts_with("Closed on restart")
        {
            closed += 1;
            assert_eq!(cdr["hangup"], "switch");
            assert!(cdr["end_ms"].as_i64().unwrap() <= killed_ms + 50, "{cdr}");
        }
    }
    assert!(closed > 0, "some calls were up at the kill");
    // Every call counted as seen (those counted only after the restart included) has its
    // CDR, and none is counted twice.
    let report = vts.cli(&["cdr", "reconcile"]);
    assert!(
        report.contains(&format!("calls seen {n}, CDRs stored {n},", n = cdrs.len())),
        "{report}"
    );
}

/// PostgreSQL stopped for 60 s under steady traffic (10 calls a second, each held 1 s), then
/// started again: every call has exactly one CDR once the switch has caught up, though most
/// of them waited in the write-ahead log only (a memory queue of 100). Runs
/// against the throw-away server `scripts/test` starts (it exports how to stop and start it);
/// skipped without one.
#[test]
fn a_database_outage_of_60_s_loses_and_duplicates_no_cdr() {
    let Some(Outage {
        vts,
        stop,
        start,
        _server,
    }) = outage("VTS_TEST_POSTGRES_OUTAGE_URL")
    else {
        return;
    };
    let (serve, switch, carrier) = acme_and_one_carrier(&vts, 1_000);
    let calls = 900;
    let customer = std::thread::spawn(move || {
        Uac::new("uac_call.xml", at(switch))
            .calls(calls)
            .rate(10)
            .source_port(free_port())
            .timeout_s(240)
            .run()
    });
    // Some CDRs written before the outage.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !serve.log_text().contains("listening") || vts.cdrs().len() < 20 {
        assert!(std::time::Instant::now() < deadline, "{}", serve.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    sh(&stop);
    // The outage itself: 60 s of traffic with no database (the scenario, not a wait for an
    // event).
    std::thread::sleep(Duration::from_secs(60));
    let failed_writes = serve.log_text().matches("CDR write failed").count();
    assert!(
        serve.log_text().contains("CDR_SPILL"),
        "{}",
        serve.log_text()
    );
    sh(&start);
    let (ok, err) = customer.join().unwrap();
    assert!(ok, "calls went on through the outage: {err}");
    drop(carrier);
    serve.stop();
    assert!(failed_writes > 0, "the outage was seen");
    let cdrs = vts.cdrs();
    assert_eq!(cdrs.len(), calls as usize, "one CDR per call");
    let mut ids: Vec<&str> = cdrs
        .iter()
        .map(|c| c["call_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), calls as usize, "no call twice");
    assert!(cdrs.iter().all(|c| c["final_code"] == 200));
}

/// A prepaid customer: refused with 402 at no balance; a credit lets it call within a
/// second; every answered call is charged its price once, with a ledger row; when what is
/// left cannot pay a call's first minute and fee, the next call is refused again (403 when
/// `billing.refuse_code` says so).
#[test]
fn prepaid_balances_are_checked_at_admission_and_charged_per_cdr() {
    let vts = Vts::new(VTS);
    let customer = vts.add_customer("prepaid", "127.0.0.1").to_string();
    let port = free_port();
    let carrier = vts.add_carrier("up", port, 1, "udp").to_string();
    let cost = write(&vts, "cost.csv", "34,0.0200,0,60,60\n");
    vts.cli(&["carrier", "import-rates", &carrier, &cost]);
    let sell = write(&vts, "sell.csv", "34,0.0500,0.0100,60,60\n");
    vts.cli(&["customer", "import-rates", &customer, &sell]);
    vts.cli(&["customer", "billing", &customer, "prepaid"]);
    let switch = free_port();
    let serve = vts.serve(&[format!("udp:127.0.0.1:{switch}")]);
    let balance_is = |want: &str| {
        vts.await_status(&format!("balance {want}"), |s| {
            s["balances"][&customer] == want
        });
    };
    let call = |scenario: &str| {
        let (ok, err) = Uac::new(scenario, at(switch))
            .source_port(free_port())
            .run();
        assert!(ok, "{scenario}: {err}\n{}", serve.log_text());
    };
    balance_is("0.000000");
    call("uac_expect_402.xml");
    vts.cli(&["customer", "credit", &customer, "0.10", "--note", "top-up"]);
    balance_is("0.100000");
    let uas = Uas::new("uas_answer.xml", port).spawn();
    call("uac_call.xml");
    assert!(uas.wait(WAIT).0);
    balance_is("0.040000");
    // 0.04 left cannot pay the first minute and the fee (0.06): refused, not cut at once.
    call("uac_expect_402.xml");
    vts.change(&["settings", "set", "billing.refuse_code", "403"]);
    call("uac_expect_403.xml");
    serve.stop();
    let reasons: Vec<String> = vts
        .cdrs()
        .iter()
        .filter(|c| c["final_code"] != 200)
        .map(|c| {
            format!(
                "{} {}",
                c["final_code"],
                c["final_reason"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(reasons.len(), 3);
    assert_eq!(
        reasons
            .iter()
            .filter(|r| *r == "402 Payment Required")
            .count(),
        2
    );
    assert!(reasons.contains(&"403 Forbidden - Insufficient Balance".to_string()));
    vts.cli(&[
        "customer", "refund", &customer, "0.01", "--note", "bad call",
    ]);
    vts.cli(&[
        "customer", "adjust", &customer, "-0.005", "--note", "rounding",
    ]);
    let ledger = vts.cli(&["customer", "ledger", &customer]);
    assert!(ledger.contains("balance 0.045000"), "{ledger}");
    assert!(
        ledger
            .lines()
            .any(|l| l.contains(" refund ") && l.contains("bad call"))
    );
    assert!(
        ledger
            .lines()
            .any(|l| l.contains(" adjustment ") && l.contains("-0.005000"))
    );
    for (args, error) in [
        (
            vec!["customer", "credit", &customer, "-1"],
            "unexpected argument '-1'",
        ),
        (
            vec!["customer", "credit", &customer, "0"],
            "positive amount",
        ),
        (vec!["customer", "adjust", &customer, "1"], "--note"),
        (
            vec!["customer", "credit", "999", "1"],
            "no customer with id 999",
        ),
    ] {
        let out = vts.command().args(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(error), "{args:?}: {err}");
    }
    assert_eq!(
        ledger.lines().filter(|l| l.contains(" charge ")).count(),
        1,
        "{ledger}"
    );
    assert!(
        ledger
            .lines()
            .any(|l| l.contains(" credit ") && l.contains("top-up")),
        "{ledger}"
    );
}

/// A call that negotiated a session interval (Session-Expires: 3) and is never refreshed
/// is reaped after the interval and its grace (4 s): BYE to both sides, and a CDR that says
/// the switch ended it and why.
#[test]
fn a_call_whose_session_is_never_refreshed_is_reaped() {
    let vts = Vts::new(VTS);
    let (serve, switch, carrier) = acme_and_one_carrier(&vts, 1);
    let (ok, err) = Uac::new("uac_session_expires.xml", at(switch))
        .source_port(free_port())
        .run();
    assert!(
        ok,
        "the customer got the switch's BYE: {err}\n{}",
        serve.log_text()
    );
    let (ok, err) = carrier.wait(WAIT);
    assert!(ok, "the carrier got the switch's BYE: {err}");
    serve.stop();
    let cdrs = vts.cdrs();
    let cdr = &cdrs[0];
    assert_eq!(cdr["hangup"], "switch");
    assert_eq!(cdr["final_reason"], "Reaper - Session Expired");
    let billable = cdr["billable_ms"].as_i64().unwrap();
    assert!((3_900..6_000).contains(&billable), "{billable} ms");
}

/// The last millisecond at which calls answered at `answers` (epoch ms), each at 0.01 a
/// second billed per second, cost no more than `left_millionths` together.
fn last_paid_ms(answers: &[i64], left_millionths: i64) -> i64 {
    let cost = |t: i64| -> i64 {
        answers
            .iter()
            .map(|a| ((t - a).max(0) + 999) / 1000 * 10_000)
            .sum()
    };
    let mut t = *answers.iter().max().unwrap();
    while cost(t + 1) <= left_millionths {
        t += 1;
    }
    t
}

/// A prepaid customer with 10.00 at 0.01 a second (per-second billing) and 50 calls up at
/// once: the calls share the balance and all end with BYE to both sides within a second of
/// the moment the money runs out (about 20 s), and the balance never goes below zero.
fn fifty_calls_share_a_balance_and_are_cut_when_it_runs_out(vts: Vts) {
    let customer = vts.add_customer("prepaid", "127.0.0.1").to_string();
    let port = free_port();
    let carrier = vts.add_carrier("up", port, 1, "udp").to_string();
    let cost = write(&vts, "cost.csv", "34,0.1000,0,1,1\n");
    vts.cli(&["carrier", "import-rates", &carrier, &cost]);
    let sell = write(&vts, "sell.csv", "34,0.6000,0,1,1\n");
    vts.cli(&["customer", "import-rates", &customer, &sell]);
    vts.cli(&["customer", "billing", &customer, "prepaid"]);
    vts.cli(&["customer", "credit", &customer, "10"]);
    let switch = free_port();
    let serve = vts.serve(&[format!("udp:127.0.0.1:{switch}")]);
    let uas = Uas::new("uas_answer.xml", port).calls(50).spawn();
    let (ok, err) = Uac::new("uac_until_bye.xml", at(switch))
        .calls(50)
        .rate(25)
        .source_port(free_port())
        .timeout_s(90)
        .run();
    assert!(
        ok,
        "every customer leg got the switch's BYE: {err}\n{}",
        serve.log_text()
    );
    let (ok, err) = uas.wait(WAIT);
    assert!(ok, "every carrier leg got the switch's BYE: {err}");
    assert!(serve.log_text().contains("BALANCE_CUT customer="));
    serve.stop();
    let cdrs = vts.cdrs();
    assert_eq!(cdrs.len(), 50);
    let answers: Vec<i64> = cdrs
        .iter()
        .map(|c| c["answer_ms"].as_i64().unwrap())
        .collect();
    let exact = last_paid_ms(&answers, 10_000_000);
    let mut worst = 0;
    for c in &cdrs {
        assert_eq!(c["hangup"], "switch", "{c}");
        assert_eq!(c["final_reason"], "Balance Exhausted", "{c}");
        let off = c["end_ms"].as_i64().unwrap() - exact;
        worst = worst.max(off.abs());
    }
    eprintln!("cut-off: the worst call ended {worst} ms from the exact moment");
    assert!(worst <= 1_000, "{worst} ms from the exact moment");
    let span = answers.iter().max().unwrap() - answers.iter().min().unwrap();
    let talk = exact - answers.iter().max().unwrap();
    assert!(
        span > 1_000 && talk > 15_000,
        "staggered calls sharing: {span} {talk}"
    );
    // Charged within the balance, and no more than a second of the 50 calls left unused.
    let ledger = vts.cli(&["customer", "ledger", &customer, "--limit", "100"]);
    let balance = ledger
        .split("balance ")
        .nth(1)
        .and_then(|b| b.split_whitespace().next())
        .unwrap_or_else(|| panic!("{ledger}"))
        .to_string();
    let left: f64 = balance.parse().unwrap();
    assert!((0.0..0.5).contains(&left), "left {balance}\n{ledger}");
    assert_eq!(
        ledger.lines().filter(|l| l.contains(" charge ")).count(),
        50
    );
}

#[test]
fn balance_cut_off_on_sqlite() {
    fifty_calls_share_a_balance_and_are_cut_when_it_runs_out(Vts::new(VTS));
}

#[test]
fn balance_cut_off_on_postgres() {
    let Ok(url) = std::env::var("VTS_TEST_POSTGRES_BALANCE_URL") else {
        eprintln!("skipped: no throw-away PostgreSQL (scripts/test starts one)");
        return;
    };
    let _server = pg_server();
    let mut vts = Vts::new(VTS);
    vts.db = Some(url);
    fifty_calls_share_a_balance_and_are_cut_when_it_runs_out(vts);
}

/// A credit during a call moves its end: 0.05 at 0.01 a second pays 5 s; 0.10 more,
/// credited while the call is up, makes it 15 s.
#[test]
fn a_credit_during_a_call_extends_it() {
    let vts = Vts::new(VTS);
    let customer = vts.add_customer("prepaid", "127.0.0.1").to_string();
    let port = free_port();
    vts.add_carrier("up", port, 1, "udp");
    let sell = write(&vts, "sell.csv", "34,0.6000,0,1,1\n");
    vts.cli(&["customer", "import-rates", &customer, &sell]);
    vts.cli(&["customer", "billing", &customer, "prepaid"]);
    vts.cli(&["customer", "credit", &customer, "0.05"]);
    let switch = free_port();
    let serve = vts.serve(&[format!("udp:127.0.0.1:{switch}")]);
    let uas = Uas::new("uas_answer.xml", port).spawn();
    let uac = Uac::new("uac_until_bye.xml", at(switch))
        .source_port(free_port())
        .timeout_s(120)
        .spawn_traced();
    vts.await_status("the call is up", |s| s["calls"] == 1);
    vts.cli(&["customer", "credit", &customer, "0.10"]);
    let (ok, _, err) = uac.wait_messages(WAIT);
    assert!(ok, "{err}\n{}", serve.log_text());
    assert!(uas.wait(WAIT).0);
    serve.stop();
    let cdrs = vts.cdrs();
    let billable = cdrs[0]["billable_ms"].as_i64().unwrap();
    assert_eq!(cdrs[0]["final_reason"], "Balance Exhausted");
    assert!(
        (14_000..=15_000).contains(&billable),
        "15 s paid, {billable} ms talked"
    );
}

/// Usage counters through real calls: two calls that fail over from a carrier answering
/// 503 to one that answers count for the customer on its own local day (a zone of UTC+14)
/// and for each carrier on the UTC day (attempts, failures, answered, billed seconds); a
/// rebuild counts the same; bad input is refused.
#[test]
fn usage_counters_follow_calls_customer_days_and_carrier_attempts() {
    let vts = Vts::new(VTS);
    let customer = vts.add_customer("far", "127.0.0.1").to_string();
    let zone = "Pacific/Kiritimati";
    vts.cli(&["customer", "timezone", &customer, zone]);
    let (busy_port, good_port) = (free_port(), free_port());
    let busy = vts.add_carrier("busy", busy_port, 2, "udp").to_string();
    let good = vts.add_carrier("good", good_port, 1, "udp").to_string();
    // A backup of the database from before the calls (restored at the end).
    let db_files = |to: &std::path::Path| {
        std::fs::create_dir_all(to).unwrap();
        for f in ["vts.db", "vts.db-wal", "vts.db-shm"] {
            let _ = std::fs::remove_file(to.join(f));
        }
    };
    let backup = vts.dir.path().join("backup");
    db_files(&backup);
    for f in ["vts.db", "vts.db-wal", "vts.db-shm"] {
        let _ = std::fs::copy(vts.dir.path().join(f), backup.join(f));
    }
    let switch = free_port();
    let serve = vts.serve(&[format!("udp:127.0.0.1:{switch}")]);
    let refusing = Uas::new("uas_503.xml", busy_port).calls(2).spawn();
    let answering = Uas::new("uas_answer.xml", good_port).calls(2).spawn();
    let (ok, err) = Uac::new("uac_call.xml", at(switch))
        .calls(2)
        .source_port(free_port())
        .run();
    assert!(ok, "{err}\n{}", serve.log_text());
    let (refused, err_a) = refusing.wait(Duration::from_secs(5));
    let (answered, err_b) = answering.wait(WAIT);
    serve.stop();
    let cdrs = vts.cdrs();
    assert!(refused && answered, "{err_a}\n{err_b}\n{cdrs:?}");
    assert_eq!(cdrs.len(), 2);
    let seconds: i64 = cdrs
        .iter()
        .map(|c| c["billable_secs"].as_i64().unwrap())
        .sum();
    let invite = jiff::Timestamp::from_millisecond(cdrs[0]["invite_ms"].as_i64().unwrap()).unwrap();
    let utc_day = invite.to_zoned(jiff::tz::TimeZone::UTC).date().to_string();
    let local_day = invite
        .to_zoned(jiff::tz::TimeZone::get(zone).unwrap())
        .date()
        .to_string();
    let usage = |what: &str, period: &str| -> Vec<Value> {
        let out = vts.cli(&["usage", what, "--period", period, "--format", "json"]);
        serde_json::from_str(&out).unwrap()
    };
    let check = || {
        let mine = usage("customers", &local_day);
        assert_eq!(mine.len(), 1, "{mine:?}");
        assert_eq!(mine[0]["customer"].as_i64(), customer.parse().ok());
        assert_eq!(mine[0]["zone"], zone);
        assert_eq!(mine[0]["calls"], 2);
        assert_eq!(mine[0]["answered"], 2);
        assert_eq!(mine[0]["seconds"], seconds);
        if local_day != utc_day {
            assert!(
                usage("customers", &utc_day).is_empty(),
                "counted on its own day only"
            );
        }
        let month = &local_day[..7];
        assert_eq!(usage("customers", month)[0]["calls"], 2);
        let carriers = usage("carriers", &utc_day);
        let of = |id: &str| {
            carriers
                .iter()
                .find(|c| c["carrier"].as_i64() == id.parse().ok())
                .unwrap_or_else(|| panic!("{id}: {carriers:?}"))
                .clone()
        };
        let b = of(&busy);
        assert_eq!(
            (&b["attempts"], &b["failures"], &b["answered"]),
            (&2.into(), &2.into(), &0.into())
        );
        let g = of(&good);
        assert_eq!(
            (&g["attempts"], &g["failures"], &g["answered"]),
            (&2.into(), &0.into(), &2.into())
        );
        assert_eq!(g["seconds"], seconds);
    };
    check();
    assert!(vts.cli(&["usage", "rebuild"]).contains("from 2 CDRs"));
    check();
    // Reconcile: the two calls seen have their CDRs.
    let report = vts.cli(&["cdr", "reconcile", "--day", &utc_day]);
    assert!(
        report.contains("calls seen 2, CDRs stored 2") && report.contains("reconciled"),
        "{report}"
    );
    // The database restored from the backup taken before the calls: both CDRs are gone,
    // and reconcile says so and fails.
    db_files(vts.dir.path());
    for f in ["vts.db", "vts.db-wal", "vts.db-shm"] {
        let _ = std::fs::copy(backup.join(f), vts.dir.path().join(f));
    }
    let out = vts
        .command()
        .args(["cdr", "reconcile", "--day", &utc_day])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("calls seen 2, CDRs stored 0"), "{stdout}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("2 calls seen without a CDR"),
        "{stdout}"
    );
    for (args, error) in [
        (
            vec!["usage", "customers", "--period", "2026-13"],
            "bad period",
        ),
        (vec!["cdr", "reconcile", "--day", "26/11/2026"], "bad date"),
        (
            vec!["customer", "timezone", &customer, "Mars/Olympus"],
            "unknown time zone",
        ),
    ] {
        let out = vts.command().args(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(error), "{args:?}: {err}");
    }
}

/// The write-ahead log's bound (1 MiB here) reached while PostgreSQL is stopped under 40
/// calls a second: new calls are refused with `503 Service Unavailable - CDR Log Full`
/// instead of being carried without a record; when the database is back the waiting CDRs
/// are written, the log is trimmed and calls are taken again. Every call seen has its CDR.
#[test]
fn a_full_cdr_log_refuses_new_calls_until_the_database_returns() {
    let Some(Outage {
        mut vts,
        stop,
        start,
        _server,
    }) = outage("VTS_TEST_POSTGRES_LOG_URL")
    else {
        return;
    };
    vts.env.push(("VTS_CDR_LOG_MAX_MB".into(), "1".into()));
    let (serve, switch, carrier) = acme_and_one_carrier(&vts, 100_000);
    sh(&stop);
    // Calls until the log is full (about 2 KB of log a call: some 500 calls).
    let customer = Uac::new("uac_call.xml", at(switch))
        .calls(3_000)
        .rate(40)
        .source_port(free_port())
        .timeout_s(120)
        .spawn_traced();
    serve.await_log("CDR_LOG_FULL", 1, Duration::from_secs(90));
    let (ok, err, messages) = Uac::new("uac_expect_503.xml", at(switch))
        .source_port(free_port())
        .timeout_s(30)
        .run_traced();
    assert!(ok, "{err}");
    assert!(
        messages.contains("SIP/2.0 503 Service Unavailable - CDR Log Full"),
        "{messages}"
    );
    drop(customer.kill_messages());
    sh(&start);
    serve.await_log("CDR_LOG_OK", 1, Duration::from_secs(60));
    let (ok, err) = Uac::new("uac_call.xml", at(switch))
        .source_port(free_port())
        .run();
    assert!(ok, "calls are taken again: {err}\n{}", serve.log_text());
    drop(carrier);
    serve.stop();
    let cdrs = vts.cdrs();
    let mut ids: Vec<&str> = cdrs
        .iter()
        .map(|c| c["call_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), cdrs.len(), "no call twice");
    assert!(cdrs.len() > 300, "{} CDRs", cdrs.len());
    let report = vts.cli(&["cdr", "reconcile"]);
    assert!(
        report.contains(&format!("calls seen {n}, CDRs stored {n},", n = cdrs.len())),
        "{report}"
    );
}

/// A customer whose From user carries NUL bytes and an ESC (`%00%00912013022%1b`, which the
/// switch unescapes): today PostgreSQL refused that CDR, its batch was retried for ever and
/// every CDR after it waited. Now the CDR is stored, cleaned (each control character a
/// U+FFFD), nothing is quarantined, and a normal call after it is stored too.
#[test]
fn a_from_user_with_nul_bytes_ends_in_a_clean_cdr_on_postgres() {
    let Ok(url) = std::env::var("VTS_TEST_POSTGRES_URL") else {
        eprintln!("skipped: no throw-away PostgreSQL (scripts/test starts one)");
        return;
    };
    let _server = pg_server();
    let mut vts = Vts::new(VTS);
    vts.db = Some(url);
    // The shared database may hold customers of earlier runs: a name and address of our own.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let ip = format!(
        "127.{}.{}.{}",
        1 + nanos % 250,
        1 + (nanos / 250) % 250,
        1 + std::process::id() % 250
    );
    vts.add_customer(&format!("nul-{nanos}"), &ip);
    let port = free_port();
    vts.add_carrier(&format!("nul-up-{nanos}"), port, 1, "udp");
    let switch = free_port();
    let serve = vts.serve(&[format!("udp:127.0.0.1:{switch}")]);
    let uas = Uas::new("uas_answer.xml", port).calls(2).spawn();
    let (ok, err) = Uac::new("uac_nul_from.xml", at(switch))
        .ip(&ip)
        .source_port(free_port())
        .run();
    assert!(ok, "{err}\n{}", serve.log_text());
    let (ok, err) = Uac::new("uac_call.xml", at(switch))
        .ip(&ip)
        .source_port(free_port())
        .run();
    assert!(ok, "{err}\n{}", serve.log_text());
    assert!(uas.wait(WAIT).0);
    assert!(serve.stop().success());
    let log = std::fs::read_to_string(vts.dir.path().join("serve.log")).unwrap();
    assert!(!log.contains("CDR_QUARANTINED"), "{log}");
    assert!(!log.contains("CDR write failed"), "{log}");
    let ours: Vec<Value> = vts
        .cdrs()
        .into_iter()
        .filter(|c| {
            c["source_addr"]
                .as_str()
                .is_some_and(|s| s.starts_with(&format!("{ip}:")))
        })
        .collect();
    assert_eq!(ours.len(), 2, "{ours:#?}");
    let callers: Vec<&str> = ours.iter().filter_map(|c| c["caller"].as_str()).collect();
    assert!(
        callers.contains(&"\u{FFFD}\u{FFFD}912013022\u{FFFD}"),
        "{callers:?}"
    );
    assert!(callers.contains(&"912013022"), "{callers:?}");
    assert_eq!(
        vts.cli(&["cdr", "quarantine", "--format", "json"]).trim(),
        "[]"
    );
}

/// Sends: 5 INVITEs at once from a prepaid customer whose balance (0.10) pays one first
/// increment (a minute at 0.05 and a 0.01 fee: 0.06), to a carrier that answers each
/// after 60 ms. Asserts: every admitted call holds its first increment until answered, so
/// exactly one call is answered and four are refused with 402 (before, all five were
/// admitted on the same 0.10 and the balance went below zero).
#[test]
fn simultaneous_invites_cannot_spend_a_prepaid_balance_twice() {
    let vts = Vts::new(VTS);
    let customer = vts.add_customer("prepaid", "127.0.0.1").to_string();
    let port = free_port();
    let carrier = vts.add_carrier("up", port, 1, "udp").to_string();
    let cost = write(&vts, "cost.csv", "34,0.0200,0,60,60\n");
    vts.cli(&["carrier", "import-rates", &carrier, &cost]);
    let sell = write(&vts, "sell.csv", "34,0.0500,0.0100,60,60\n");
    vts.cli(&["customer", "import-rates", &customer, &sell]);
    vts.cli(&["customer", "billing", &customer, "prepaid"]);
    vts.cli(&["customer", "credit", &customer, "0.10", "--note", "top-up"]);
    let switch = free_port();
    let serve = vts.serve(&[format!("udp:127.0.0.1:{switch}")]);
    vts.await_status("balance", |s| s["balances"][&customer] == "0.100000");
    let uas = Uas::new("uas_answer.xml", port).spawn();
    let (ok, err) = Uac::new("uac_hold_or_402.xml", at(switch))
        .calls(5)
        .rate(1000)
        .source_port(free_port())
        .run();
    assert!(ok, "{err}\n{}", serve.log_text());
    assert!(uas.wait(WAIT).0);
    serve.stop();
    let cdrs = vts.cdrs();
    let codes: Vec<i64> = cdrs
        .iter()
        .map(|c| c["final_code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 402).count(), 4, "{codes:?}");
}
