//! HEPv3 export (issue 14 §3): every SIP message of a call, both legs, reaches a collector
//! as Kamailio's siptrace sends it. A UDP socket in the test is the collector and decodes
//! each packet (`testkit::hep`, written apart from the encoder); Debian's sngrep, listening
//! for HEP, writes the call to a pcap.

use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use testkit::hep::{self, Hep};

use crate::common::*;

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// A customer and a carrier on loopback, the switch exporting to `collector`; one call.
/// Returns the call's Call-ID and the ports: (customer, switch, carrier).
fn one_call_exported_to(collector: SocketAddr, agent: &str) -> (String, (u16, u16, u16)) {
    let mut vts = Vts::new(VTS);
    vts.env
        .push(("VTS_TRACE_HEP".into(), format!("udp:{collector}")));
    vts.env.push(("VTS_TRACE_HEP_ID".into(), agent.into()));
    vts.add_customer("acme", "127.0.0.1");
    let carrier = free_port();
    vts.add_carrier("up", carrier, 1, "udp");
    let switch = free_port();
    let serve = vts.serve(&[format!("udp:127.0.0.1:{switch}")]);
    let customer = free_port();
    let uas = Uas::new("uas_answer.xml", carrier).spawn();
    let (ok, err) = Uac::new("uac_call.xml", at(switch))
        .source_port(customer)
        .run();
    assert!(ok, "{err}");
    assert!(uas.wait(Duration::from_secs(30)).0);
    let cdrs = vts.await_cdrs(1, Duration::from_secs(30));
    let call_id = cdrs[0]["call_id"].as_str().unwrap().to_string();
    assert!(serve.stop().success());
    (call_id, (customer, switch, carrier))
}

#[test]
fn every_message_of_a_call_reaches_the_collector_with_addresses_and_times() {
    let collector = UdpSocket::bind("127.0.0.1:0").unwrap();
    collector
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let started = now_us();
    let (call_id, (customer, switch, carrier)) =
        one_call_exported_to(collector.local_addr().unwrap(), "4242");
    let ended = now_us();
    // Every packet sent (the switch has stopped): read until the socket is quiet.
    let mut packets: Vec<Hep> = Vec::new();
    let mut buf = [0u8; 65_536];
    while let Ok(n) = collector.recv(&mut buf) {
        packets.push(hep::decode(&buf[..n]));
        assert!(packets.len() < 10_000, "bounded");
    }
    let call: Vec<&Hep> = packets
        .iter()
        .filter(|p| p.correlation.as_deref() == Some(call_id.as_str()))
        .collect();
    let first_line = |p: &Hep| p.payload.lines().next().unwrap_or_default().to_string();
    let lines: Vec<String> = call.iter().map(|p| first_line(p)).collect();
    for p in &call {
        assert_eq!((p.family, p.protocol, p.payload_type), (2, 17, 1), "{p:?}");
        assert_eq!(p.agent_id, 4242);
        assert_eq!(p.password, None);
        let at = u64::from(p.seconds) * 1_000_000 + u64::from(p.micros);
        assert!(
            (started..=ended).contains(&at),
            "time {at} outside the test"
        );
        assert!(p.micros < 1_000_000);
        assert!(p.payload.contains(&format!("Call-ID: {call_id}")) || p.payload.contains(&call_id));
    }
    let times: Vec<u64> = call
        .iter()
        .map(|p| u64::from(p.seconds) * 1_000_000 + u64::from(p.micros))
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "in capture order");
    let leg = |from: u16, to: u16, start: &str| {
        call.iter().any(|p| {
            p.source.port() == from
                && p.destination.port() == to
                && first_line(p).starts_with(start)
        })
    };
    // The customer's leg and the carrier's, both ways.
    assert!(leg(customer, switch, "INVITE sip:"), "{lines:#?}");
    assert!(leg(switch, customer, "SIP/2.0 100"), "{lines:#?}");
    assert!(leg(switch, carrier, "INVITE sip:"), "{lines:#?}");
    assert!(leg(carrier, switch, "SIP/2.0 200"), "{lines:#?}");
    assert!(leg(switch, customer, "SIP/2.0 200"), "{lines:#?}");
    assert!(leg(customer, switch, "ACK sip:"), "{lines:#?}");
    assert!(leg(switch, carrier, "ACK sip:"), "{lines:#?}");
    assert!(leg(customer, switch, "BYE sip:"), "{lines:#?}");
    assert!(leg(switch, carrier, "BYE sip:"), "{lines:#?}");
    assert!(leg(carrier, switch, "SIP/2.0 200"), "{lines:#?}");
    assert!(
        call.iter()
            .all(|p| p.source.ip().is_loopback() && p.destination.ip().is_loopback())
    );
}

#[test]
fn sngrep_listening_for_hep_writes_the_call_to_a_pcap() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("call.pcap");
    let mut sngrep = Command::new("sngrep")
        .args(["-N", "-q", "-L", &format!("udp:127.0.0.1:{port}"), "-O"])
        .arg(&pcap)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sngrep is not installed: run scripts/test (it installs Debian's sngrep)");
    // sngrep binds its HEP port: wait (bounded) until the port is taken.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while UdpSocket::bind(("127.0.0.1", port)).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "sngrep never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (call_id, _) = one_call_exported_to(at(port), "2001");
    // sngrep writes each packet as it comes; SIGTERM ends it and closes the file.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let bytes = loop {
        let bytes = std::fs::read(&pcap).unwrap_or_default();
        let has = |s: &str| bytes.windows(s.len()).any(|w| w == s.as_bytes());
        if has(&call_id) && has("BYE sip:") {
            break bytes;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the call never reached the pcap"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = Command::new("kill")
        .args(["-TERM", &sngrep.id().to_string()])
        .status();
    let _ = sngrep.wait();
    assert_eq!(&bytes[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "a pcap file");
    for line in ["INVITE sip:", "SIP/2.0 200 OK", "ACK sip:", "BYE sip:"] {
        assert!(
            bytes.windows(line.len()).any(|w| w == line.as_bytes()),
            "{line} in the pcap"
        );
    }
}
