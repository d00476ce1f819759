//! Stored SIP traces and `vts trace` (issue 14 §3): a failed call's messages, both legs, are
//! kept and drawn as a ladder; an answered call's are not (mode `failed`), unless the switch
//! is quiet (`all_below_cps`).

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

/// A customer, a carrier answering with `carrier_scenario`, one call of `customer_scenario`;
/// the CDR.
fn one_call(vts: &Vts, carrier_scenario: &str, customer_scenario: &str) -> Value {
    let carrier = free_port();
    vts.add_carrier("c", carrier, 1, "udp");
    let switch = free_port();
    let serve = vts.serve(&[format!("udp:127.0.0.1:{switch}")]);
    let uas = Uas::new(carrier_scenario, carrier).spawn();
    let (ok, err) = Uac::new(customer_scenario, at(switch))
        .source_port(free_port())
        .run();
    assert!(ok, "{err}");
    let _ = uas.wait(Duration::from_secs(30));
    let cdr = vts.await_cdrs(1, Duration::from_secs(30)).remove(0);
    assert!(
        serve.stop().success(),
        "the stop writes what the recorder holds"
    );
    cdr
}

/// `vts trace CALL-ID [--format F]`: (success, stdout, stderr).
fn trace(vts: &Vts, call_id: &str, format: &str) -> (bool, String, String) {
    let out = vts
        .command()
        .args(["trace", call_id, "--format", format])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_failed_call_is_traced_on_both_legs_and_drawn_as_a_ladder() {
    failed_call_traced(Vts::new(VTS));
}

#[test]
fn a_failed_call_is_traced_on_both_legs_and_drawn_as_a_ladder_on_postgres() {
    let Some(vts) = postgres_vts("trace_failed") else {
        return;
    };
    failed_call_traced(vts);
}

fn failed_call_traced(mut vts: Vts) {
    vts.env.push(("VTS_TRACE_ALL_BELOW_CPS".into(), "0".into()));
    vts.add_customer("acme", "127.0.0.1");
    let cdr = one_call(&vts, "uas_486.xml", "uac_expect_486.xml");
    assert_eq!(cdr["final_code"], 486);
    let call_id = cdr["call_id"].as_str().unwrap();
    let (ok, text, err) = trace(&vts, call_id, "text");
    assert!(ok, "{err}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].contains("customer") && lines[0].contains("vts") && lines[0].contains("carrier 1"),
        "{text}"
    );
    let arrows = &lines[2..];
    let has = |label: &str, right: bool| {
        arrows.iter().any(|l| {
            l.contains(label)
                && if right {
                    l.contains("->|")
                } else {
                    l.contains("|<-")
                }
        })
    };
    assert!(has("INVITE", true), "{text}");
    assert!(has("486 Busy Here", false), "{text}");
    assert!(has("ACK", true), "{text}");
    let (ok, json, err) = trace(&vts, call_id, "json");
    assert!(ok, "{err}");
    let ladder: Value = serde_json::from_str(&json).unwrap();
    let names: Vec<&str> = ladder["parties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["customer", "vts", "carrier 1"]);
    let arrows = ladder["arrows"].as_array().unwrap();
    // The INVITE both ways along the legs: customer -> vts, then vts -> carrier.
    let invites: Vec<(i64, i64)> = arrows
        .iter()
        .filter(|a| a["label"] == "INVITE")
        .map(|a| (a["from"].as_i64().unwrap(), a["to"].as_i64().unwrap()))
        .collect();
    assert_eq!(invites, [(0, 1), (1, 2)]);
    assert!(
        arrows
            .iter()
            .all(|a| a["message"].as_str().unwrap().contains(call_id))
    );
    let offsets: Vec<f64> = arrows
        .iter()
        .map(|a| a["offset_ms"].as_f64().unwrap())
        .collect();
    assert_eq!(offsets[0], 0.0);
    assert!(offsets.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn an_answered_call_is_not_kept_unless_the_switch_is_quiet() {
    let mut busy = Vts::new(VTS);
    busy.env
        .push(("VTS_TRACE_ALL_BELOW_CPS".into(), "0".into()));
    busy.add_customer("acme", "127.0.0.1");
    let cdr = one_call(&busy, "uas_answer.xml", "uac_call.xml");
    assert_eq!(cdr["final_code"], 200);
    let (ok, _, err) = trace(&busy, cdr["call_id"].as_str().unwrap(), "text");
    assert!(!ok);
    assert!(err.contains("no trace of call"), "{err}");

    // The default: below 5 new calls a second every call is kept whole, BYE included.
    let quiet = Vts::new(VTS);
    quiet.add_customer("acme", "127.0.0.1");
    let cdr = one_call(&quiet, "uas_answer.xml", "uac_call.xml");
    let started = Instant::now();
    let (ok, text, err) = trace(&quiet, cdr["call_id"].as_str().unwrap(), "text");
    assert!(ok, "{err} after {:?}", started.elapsed());
    assert!(text.contains("BYE") && text.contains("200 OK"), "{text}");
}
