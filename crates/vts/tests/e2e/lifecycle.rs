//! The switch's own endings of a call (maximum duration, shutdown after the drain period),
//! its shutdown with calls in progress, and sanity replies on the wire.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use crate::common::*;

const WAIT: Duration = Duration::from_secs(30);

/// Waits (bounded) until `vts status` shows `calls` calls in progress.
fn wait_for_calls(vts: &Vts, calls: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let want = format!("calls in progress: {calls}");
    loop {
        let out = vts.cli(&["status"]);
        if out.starts_with(&want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "status never showed {calls} calls:\n{out}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A customer whose carrier answers and never hangs up; the customer waits for a BYE.
fn held_call(env: &[(&str, &str)]) -> (Vts, u16, u16) {
    let mut vts = Vts::new(VTS);
    vts.env = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    vts.add_customer("acme", "127.0.0.1");
    let carrier_port = free_port();
    vts.add_carrier("up", carrier_port, 1, "udp");
    (vts, carrier_port, free_port())
}

#[test]
fn the_maximum_duration_ends_a_call_with_bye_to_both_sides() {
    let (vts, carrier_port, port) = held_call(&[("VTS_SIP_MAX_CALL_DURATION_SECS", "1")]);
    let serve = vts.serve(&[format!("udp:127.0.0.1:{port}")]);
    // The carrier expects a BYE (from the switch); so does the customer.
    let uas = Uas::new("uas_answer.xml", carrier_port).spawn();
    let (ok, err) = Uac::new("uac_callee_hangs_up.xml", at(port))
        .source_port(free_port())
        .run();
    assert!(ok, "customer got no BYE: {err}\n{}", serve.log_text());
    let (ok, err) = uas.wait(WAIT);
    assert!(ok, "carrier got no BYE: {err}");
    serve.stop();
    let cdrs = vts.cdrs();
    assert_eq!(cdrs.len(), 1);
    let cdr = &cdrs[0];
    assert_eq!(cdr["hangup"], "switch");
    assert_eq!(cdr["final_reason"], "Max Duration");
    let billable = cdr["billable_ms"].as_i64().unwrap();
    assert!(
        (1000..1500).contains(&billable),
        "cut at 1 s: {billable} ms"
    );
}

#[test]
fn shutdown_lets_calls_finish_within_the_drain_period() {
    let (vts, carrier_port, port) = held_call(&[("VTS_SIP_DRAIN_SECS", "30")]);
    let serve = vts.serve(&[format!("udp:127.0.0.1:{port}")]);
    let uas = Uas::new("uas_answer.xml", carrier_port).spawn();
    let source = free_port();
    let caller =
        std::thread::spawn(move || Uac::new("uac_call.xml", at(port)).source_port(source).run());
    wait_for_calls(&vts, 1);
    let stopped = std::thread::spawn(move || serve.stop());
    // The caller hangs up 1 s after the answer, inside the drain period.
    let (ok, err) = caller.join().unwrap();
    assert!(ok, "{err}");
    assert!(uas.wait(WAIT).0);
    assert!(stopped.join().unwrap().success());
    let cdrs = vts.cdrs();
    assert_eq!(cdrs.len(), 1, "the CDR is written before the switch exits");
    assert_eq!(cdrs[0]["hangup"], "caller");
}

#[test]
fn shutdown_ends_calls_still_up_after_the_drain_period() {
    let (vts, carrier_port, port) = held_call(&[("VTS_SIP_DRAIN_SECS", "1")]);
    let serve = vts.serve(&[format!("udp:127.0.0.1:{port}")]);
    let uas = Uas::new("uas_answer.xml", carrier_port).spawn();
    let source = free_port();
    let caller = std::thread::spawn(move || {
        Uac::new("uac_callee_hangs_up.xml", at(port))
            .source_port(source)
            .run()
    });
    wait_for_calls(&vts, 1);
    let began = Instant::now();
    assert!(serve.stop().success());
    let took = began.elapsed();
    let (ok, err) = caller.join().unwrap();
    assert!(ok, "customer got no BYE: {err}");
    assert!(uas.wait(WAIT).0, "carrier got no BYE");
    assert!(
        took >= Duration::from_secs(1),
        "stopped before the drain period: {took:?}"
    );
    let cdrs = vts.cdrs();
    assert_eq!(cdrs.len(), 1);
    assert_eq!(cdrs[0]["hangup"], "switch");
    assert_eq!(cdrs[0]["final_reason"], "Shutdown");
}

/// Sanity rejects on the wire. sipp cannot send malformed messages, so a plain UDP socket
/// sends RFC 4475 torture messages and reads the status line of the reply.
#[test]
fn sanity_rejects_go_out_as_replies_or_silent_drops() {
    let vts = Vts::new(VTS);
    let port = free_port();
    let serve = vts.serve(&[format!("udp:127.0.0.1:{port}")]);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../sip-message/tests/fixtures/rfc4475");
    let ask = |bytes: &[u8]| -> Option<String> {
        sock.send_to(bytes, at(port)).unwrap();
        let mut buf = [0u8; 65536];
        let (n, _) = sock.recv_from(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    };
    for (file, status) in [
        ("badvers", "505"),
        ("unkscm", "416"),
        ("zeromf", "483"),
        ("mcl01", "400"),
        ("lwsstart", "400"),
        ("bext01", "420"),
    ] {
        let raw = std::fs::read(fixtures.join(format!("{file}.dat"))).unwrap();
        let reply = ask(&raw).unwrap_or_else(|| panic!("{file}: no reply"));
        assert!(
            reply.starts_with(&format!("SIP/2.0 {status} ")),
            "{file}: {reply}"
        );
        if file == "bext01" {
            assert!(
                reply.contains("Unsupported: noProxiesSupportThis, norDoAnyProxiesSupportThis\r\n"),
                "{reply}"
            );
        }
    }
    // Larger than 16 KiB: 513.
    let big = format!(
        "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{0};branch=z9hG4bKbig\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: big\r\nCSeq: 1 OPTIONS\r\nX-Pad: {1}\r\nContent-Length: 0\r\n\r\n",
        sock.local_addr().unwrap().port(),
        "a".repeat(17_000)
    );
    let reply = ask(big.as_bytes()).expect("no reply to the large message");
    assert!(reply.starts_with("SIP/2.0 513 "), "{reply}");
    // A malformed response is dropped, never answered.
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let raw = std::fs::read(fixtures.join("bigcode.dat")).unwrap();
    assert!(ask(&raw).is_none(), "a response must not be answered");
    serve.stop();
}

#[test]
fn ringing_past_the_ring_timeout_ends_the_call_with_408_and_cancels_the_carrier() {
    let (vts, carrier_port, port) = held_call(&[("VTS_SIP_RING_TIMEOUT_MS", "1000")]);
    vts.add_carrier("backup-never-tried", free_port(), 0, "udp");
    let serve = vts.serve(&[format!("udp:127.0.0.1:{port}")]);
    // This carrier rings and never answers; it expects a CANCEL.
    let uas = Uas::new("uas_cancel.xml", carrier_port).spawn();
    let (ok, err) = Uac::new("uac_expect_408.xml", at(port))
        .source_port(free_port())
        .run();
    assert!(ok, "{err}\n{}", serve.log_text());
    let (ok, err) = uas.wait(WAIT);
    assert!(ok, "the carrier got no CANCEL: {err}");
    serve.stop();
    let cdrs = vts.cdrs();
    assert_eq!(cdrs.len(), 1);
    let cdr = &cdrs[0];
    assert_eq!(cdr["final_code"], 408);
    assert_eq!(cdr["final_reason"], "Request Timeout - Ring Timeout");
    assert_eq!(cdr["hangup"], "switch");
    assert_eq!(cdr["attempts"], 1, "a ring timeout does not fail over");
    let rang = cdr["end_ms"].as_i64().unwrap() - cdr["progress_ms"].as_i64().unwrap();
    assert!((900..2500).contains(&rang), "ended {rang} ms after the 180");
}

/// A carrier's own timers override the switch's (`sip.*`, defaults 5 s and 120 s).
#[test]
fn a_carriers_own_ring_timeout_ends_the_call_with_408() {
    let vts = Vts::new(VTS);
    vts.add_customer("acme", "127.0.0.1");
    let carrier_port = free_port();
    vts.cli(&[
        "carrier",
        "add",
        "--name",
        "short-ring",
        "--host",
        "127.0.0.1",
        "--port",
        &carrier_port.to_string(),
        "--ring-timeout",
        "1",
    ]);
    let port = free_port();
    let serve = vts.serve(&[format!("udp:127.0.0.1:{port}")]);
    let uas = Uas::new("uas_cancel.xml", carrier_port).spawn();
    let (ok, err) = Uac::new("uac_expect_408.xml", at(port))
        .source_port(free_port())
        .run();
    assert!(ok, "{err}\n{}", serve.log_text());
    assert!(uas.wait(WAIT).0, "the carrier got no CANCEL");
    serve.stop();
    let cdr = &vts.cdrs()[0];
    assert_eq!(cdr["final_reason"], "Request Timeout - Ring Timeout");
    let rang = int(cdr, "end_ms") - int(cdr, "progress_ms");
    assert!((900..2500).contains(&rang), "ended {rang} ms after the 180");
}

#[test]
fn a_carriers_own_first_response_timeout_fails_over_early() {
    let vts = Vts::new(VTS);
    vts.add_customer("acme", "127.0.0.1");
    let (silent_port, backup_port) = (free_port(), free_port());
    vts.cli(&[
        "carrier",
        "add",
        "--name",
        "black-hole",
        "--host",
        "127.0.0.1",
        "--port",
        &silent_port.to_string(),
        "--priority",
        "10",
        "--first-response-ms",
        "400",
    ]);
    vts.add_carrier("backup", backup_port, 1, "udp");
    let port = free_port();
    let serve = vts.serve(&[format!("udp:127.0.0.1:{port}")]);
    let silent = Uas::new("uas_silent.xml", silent_port).spawn();
    let uas = Uas::new("uas_answer.xml", backup_port).spawn();
    let (ok, err) = Uac::new("uac_call.xml", at(port))
        .source_port(free_port())
        .run();
    assert!(ok, "{err}\n{}", serve.log_text());
    assert!(uas.wait(WAIT).0);
    drop(silent);
    serve.stop();
    let cdr = &vts.cdrs()[0];
    assert_eq!(cdr["attempts"], 2);
    assert_eq!(cdr["final_code"], 200);
    // 400 ms of silence, then the backup answers at once; the default would be 5 s.
    let waited = int(cdr, "answer_ms") - int(cdr, "invite_ms");
    assert!(
        (350..2500).contains(&waited),
        "answered {waited} ms after the INVITE"
    );
}

fn int(cdr: &serde_json::Value, field: &str) -> i64 {
    cdr[field]
        .as_i64()
        .unwrap_or_else(|| panic!("{field} missing: {cdr:#}"))
}
