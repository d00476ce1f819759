//! The durable event stream end to end (issue 14 §4): calls and operator changes become
//! events in the store; a kill -9 loses none of those written; each named consumer reads
//! each event once (`vts events tail --consumer`), and `--follow` sees a new one as it is
//! appended.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::common::*;

/// `vts events tail --consumer NAME --format json`: the events it prints.
fn read_as(vts: &Vts, consumer: &str) -> Vec<Value> {
    vts.cli(&[
        "events",
        "tail",
        "--consumer",
        consumer,
        "--format",
        "json",
        "--limit",
        "100000",
    ])
    .lines()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect()
}

fn kinds_of(events: &[Value], kind: &str) -> usize {
    events.iter().filter(|e| e["kind"] == kind).count()
}

#[test]
fn events_written_before_a_kill_9_are_read_after_restart_once_per_consumer() {
    kill_9_and_restart(Vts::new(VTS));
}

#[test]
fn events_written_before_a_kill_9_are_read_after_restart_once_per_consumer_on_postgres() {
    let Some(vts) = postgres_vts("events_kill_9") else {
        return;
    };
    kill_9_and_restart(vts);
}

/// Calls and a suspension, a kill -9, a restart: every event read once per consumer.
fn kill_9_and_restart(vts: Vts) {
    const CALLS: u32 = 5;
    let acme = vts.add_customer("acme", "127.0.0.1").to_string();
    let carrier_port = free_port();
    vts.add_carrier("up", carrier_port, 1, "udp");
    let switch = free_port();
    let listen = [format!("udp:127.0.0.1:{switch}")];
    let serve = vts.serve(&listen);
    let uas = Uas::new("uas_answer.xml", carrier_port)
        .calls(CALLS)
        .spawn();
    let (ok, err) = Uac::new("uac_call.xml", at(switch))
        .calls(CALLS)
        .rate(5)
        .source_port(free_port())
        .run();
    assert!(ok, "{err}");
    assert!(uas.wait(Duration::from_secs(30)).0);
    vts.await_cdrs(CALLS as usize, Duration::from_secs(30));
    vts.cli(&["customer", "suspend", &acme, "--reason", "unpaid"]);
    serve.kill9();

    let serve = vts.serve(&listen);
    let first = read_as(&vts, "billing");
    assert_eq!(
        kinds_of(&first, "call.completed"),
        CALLS as usize,
        "{first:#?}"
    );
    assert_eq!(kinds_of(&first, "customer.suspended"), 1);
    let completed = first
        .iter()
        .find(|e| e["kind"] == "call.completed")
        .unwrap();
    assert_eq!(
        completed["customer_id"].as_i64().map(|c| c.to_string()),
        Some(acme.clone())
    );
    assert_eq!(completed["body"]["final_code"], 200, "the CDR is the body");
    let seqs: Vec<i64> = first.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    assert!(read_as(&vts, "billing").is_empty(), "once per consumer");
    assert_eq!(
        read_as(&vts, "alerts"),
        first,
        "another consumer reads them all"
    );

    vts.cli(&["customer", "activate", &acme]);
    let next = read_as(&vts, "billing");
    let kinds: Vec<&str> = next.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["customer.activated"]);
    assert!(serve.stop().success());
}

#[test]
fn follow_prints_an_event_as_it_is_appended() {
    let vts = Vts::new(VTS);
    let acme = vts.add_customer("acme", "127.0.0.1").to_string();
    vts.cli(&[
        "customer",
        "block",
        &acme,
        "--reason",
        "before the follower",
    ]);
    // Start after the newest event now (the follower may start after the changes below).
    let newest: Value =
        serde_json::from_str(&vts.cli(&["events", "tail", "--format", "json", "--limit", "1"]))
            .unwrap();
    let after = newest["seq"].as_i64().unwrap().to_string();
    let mut tail = vts
        .command()
        .args(["events", "tail", "--follow", "--format", "json"])
        .args(["--type", "customer.blocked", "--after", &after])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = tail.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    // Not printed: another kind, and the block before the start.
    vts.cli(&["customer", "suspend", &acme]);
    vts.cli(&["customer", "block", &acme, "--reason", "fraud"]);
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the follower printed the new event");
    let e: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(e["kind"], "customer.blocked");
    assert_eq!(e["body"]["reason"], "fraud");
    assert!(
        rx.recv_timeout(Duration::from_millis(500)).is_err(),
        "one event only"
    );
    let _ = tail.kill();
    let _ = tail.wait();
    let bad = vts
        .command()
        .args(["events", "tail", "--type", "call.nothing"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not an event kind"));
}
