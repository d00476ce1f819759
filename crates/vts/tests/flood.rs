//! A flood at the full rate this machine's flooder reaches, alone in its binary (so that no
//! other test shares the two cores with it): the switch must drop the flooder unread and
//! still complete every call of a customer.

/// The harness: testkit's real-process half, and the binary under test.
mod common {
    pub(crate) use testkit::process::*;
    pub(crate) use testkit::sipp::*;

    /// The `vts` binary under test.
    pub(crate) const VTS: &str = env!("CARGO_BIN_EXE_vts");
}

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// An INVITE from `ua` to the switch.
fn invite(ua: SocketAddr, switch: SocketAddr) -> String {
    format!(
        "INVITE sip:34911234567@{switch} SIP/2.0\r\n\
Via: SIP/2.0/UDP {ua};branch=z9hG4bK-flood;rport\r\n\
From: <sip:912013022@{ua}>;tag=flood\r\n\
To: <sip:34911234567@{switch}>\r\n\
Call-ID: flood\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:flood@{ua}>\r\n\
Max-Forwards: 70\r\n\
Content-Length: 0\r\n\r\n"
    )
}

fn int(c: &Value, field: &str) -> i64 {
    c[field]
        .as_i64()
        .unwrap_or_else(|| panic!("{field} missing in {c:#}"))
}

fn guard(v: &Vts, group: &str, name: &str) -> u64 {
    v.status()["guards"][group][name].as_u64().unwrap_or(0)
}

/// Sends: for 20 s, INVITEs from a stranger (127.0.0.3) as fast as one thread of this
/// machine can write them, while a customer at 127.0.0.2 places 20 calls at 1 a second
/// with sipp. Asserts: the flooder is blocked (one FLOOD or AUTH line), its datagrams are
/// dropped unread (counted), and every one of the customer's calls completes. The rate
/// the flooder reached is printed for the note.
#[test]
fn a_customers_calls_complete_during_a_20_s_flood_at_full_rate() {
    let vts = Vts::new(VTS);
    let calm = vts.add_customer("calm", "127.0.0.2");
    let port = free_port();
    vts.add_carrier("up", port, 1, "udp");
    let switch = at(free_port());
    let serve = vts.serve(&[format!("udp:{switch}")]);
    let carrier = Uas::new("uas_answer.xml", port).calls(20).spawn();
    let flood = std::thread::spawn(move || {
        let sock = std::net::UdpSocket::bind("127.0.0.3:0").unwrap();
        let me = sock.local_addr().unwrap();
        let msg = invite(me, switch);
        let started = Instant::now();
        let mut sent = 0u64;
        while started.elapsed() < Duration::from_secs(20) {
            for _ in 0..256 {
                if sock.send_to(msg.as_bytes(), switch).is_ok() {
                    sent += 1;
                }
            }
        }
        (sent, started.elapsed())
    });
    let (ok, err) = Uac::new("uac_call.xml", switch)
        .ip("127.0.0.2")
        .calls(20)
        .source_port(free_port())
        .run();
    let (sent, took) = flood.join().unwrap();
    let rate = sent as f64 / took.as_secs_f64();
    eprintln!(
        "flooder: {sent} INVITEs in {took:?} ({rate:.0}/s); the switch dropped {} unread; {}",
        guard(&vts, "counters", "blocked_dropped"),
        std::fs::read_to_string("/proc/net/snmp")
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("Udp:"))
            .collect::<Vec<_>>()
            .join(" / ")
    );
    assert!(
        ok,
        "the customer's calls during the flood: {err}\n{}",
        serve.log_text()
    );
    drop(carrier);
    let dropped = guard(&vts, "counters", "blocked_dropped");
    let log = serve.log_text();
    serve.stop();
    assert!(
        log.contains("FLOOD source=127.0.0.3") || log.contains("AUTH blocked source=127.0.0.3"),
        "{log}"
    );
    assert!(dropped > 1000, "{dropped} dropped unread of {sent}");
    let cdrs = vts.cdrs();
    let calm_cdrs: Vec<&Value> = cdrs
        .iter()
        .filter(|c| int(c, "customer_id") == calm)
        .collect();
    assert_eq!(calm_cdrs.len(), 20);
    assert!(calm_cdrs.iter().all(|c| int(c, "final_code") == 200));
}
