//! Operations under bad conditions (issue 14 "Done means", §5): a malformed or oversized HTTP
//! request gets a 4xx and never stops the SIP side; a HEP collector with nothing listening
//! holds up no call and only moves a counter; `VTS_LOG_FORMAT=json` writes every log line as
//! one JSON object, and a format it does not know stops the start with the variable named.

use std::time::Duration;

use serde_json::Value;
use testkit::http;

use crate::common::*;

/// The value of the sample `series` (name and labels exactly as rendered) in `text`.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

/// One answered call through the switch at `switch` to the carrier at `carrier`.
fn one_call(switch: u16, carrier: u16) {
    let uas = Uas::new("uas_answer.xml", carrier).spawn();
    let (ok, err) = Uac::new("uac_call.xml", at(switch))
        .source_port(free_port())
        .run();
    assert!(ok, "{err}");
    assert!(uas.wait(Duration::from_secs(30)).0);
}

#[test]
fn malformed_http_requests_get_a_4xx_and_calls_go_on() {
    let mut vts = Vts::new(VTS);
    let web = at(free_port());
    vts.http = Some(web.to_string());
    vts.add_customer("acme", "127.0.0.1");
    let carrier = free_port();
    vts.add_carrier("up", carrier, 1, "udp");
    let switch = free_port();
    let serve = vts.serve(&[format!("udp:127.0.0.1:{switch}")]);

    let garbage = http::raw(web, b"\x16\x03\x01 NOT HTTP AT ALL\r\n\r\n").expect("a response");
    assert_eq!(garbage.status, 400, "{garbage:?}");
    let bad_header = http::raw(
        web,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    )
    .expect("a response");
    assert_eq!(bad_header.status, 400, "{bad_header:?}");
    // 200 headers: past hyper's limit of 100.
    let mut many = String::from("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    for i in 0..200 {
        many.push_str(&format!("X-Filler-{i}: {}\r\n", "a".repeat(20)));
    }
    many.push_str("\r\n");
    let too_many = http::raw(web, many.as_bytes()).expect("a response");
    assert_eq!(too_many.status, 431, "{too_many:?}");
    // A body announced past [http] body_limit_bytes (1 MiB by default): refused from its
    // Content-Length, before anything is buffered.
    let mut big = b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n".to_vec();
    big.extend(std::iter::repeat_n(b'x', 64 * 1024));
    let post = http::raw(web, &big).expect("a response");
    assert_eq!(post.status, 413, "{post:?}");
    let unicode = http::get(web, "/metrics%00%E2%80%AE'%20OR%201=1--", &[]);
    assert_eq!(unicode.status, 404);

    one_call(switch, carrier);
    vts.await_cdrs(1, Duration::from_secs(30));
    let h = http::get(web, "/healthz", &[]);
    assert_eq!(h.status, 200, "the server still answers");
    assert!(serve.stop().success());
}

#[test]
fn a_hep_collector_with_nothing_listening_costs_a_counter_not_a_call() {
    // A loopback port nothing listens on: the packets go out and are lost.
    let collector = at(free_port());
    let mut vts = Vts::new(VTS);
    vts.env
        .push(("VTS_TRACE_HEP".into(), format!("udp:{collector}")));
    let web = at(free_port());
    vts.http = Some(web.to_string());
    vts.add_customer("acme", "127.0.0.1");
    let carrier = free_port();
    vts.add_carrier("up", carrier, 1, "udp");
    let switch = free_port();
    let serve = vts.serve(&[format!("udp:127.0.0.1:{switch}")]);
    for _ in 0..3 {
        one_call(switch, carrier);
    }
    let cdrs = vts.await_cdrs(3, Duration::from_secs(30));
    assert!(cdrs.iter().all(|c| c["final_code"] == 200), "{cdrs:?}");
    // Each call is at least INVITE, 100, 180, 200, ACK, BYE, 200 on each leg.
    let metrics = http::get(web, "/metrics", &[]).body;
    let sent = sample(&metrics, r#"vts_hep_packets_total{result="sent"}"#);
    let failed = sample(&metrics, r#"vts_hep_packets_total{result="failed"}"#);
    assert!(sent + failed >= 3.0 * 14.0, "sent {sent}, failed {failed}");
    assert_eq!(sample(&metrics, "vts_capture_dropped_total"), 0.0);
    assert!(serve.stop().success());
}

#[test]
fn json_logs_are_one_object_a_line() {
    let mut vts = Vts::new(VTS);
    vts.env.push(("VTS_LOG_FORMAT".into(), "json".into()));
    let switch = free_port();
    let serve = vts.serve(&[format!("udp:127.0.0.1:{switch}")]);
    // A stranger's INVITE: a security line (the one fail2ban reads in text form).
    let stranger = Raw::bind("127.0.0.2");
    let ua = stranger.addr();
    let invite = format!(
        "INVITE sip:34911234567@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {ua};branch=z9hG4bK-json-1\r\n\
         From: <sip:100@{ua}>;tag=json\r\nTo: <sip:34911234567@127.0.0.1>\r\nCall-ID: json-1\r\n\
         CSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    stranger.send(at(switch), &invite);
    stranger.expect("SIP/2.0 403", Duration::from_secs(10));
    serve.await_log("AUTH unauthorized", 1, Duration::from_secs(10));
    assert!(serve.stop().success());
    let log = std::fs::read_to_string(vts.dir.path().join("serve.log")).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    assert!(lines.len() >= 2, "{log}");
    for l in &lines {
        assert!(
            l["timestamp"].is_string() && l["level"].is_string() && l["target"].is_string(),
            "{l}"
        );
        assert!(l["fields"].is_object(), "{l}");
    }
    let refusal = lines
        .iter()
        .find(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("AUTH unauthorized"))
        })
        .expect("the refusal");
    assert_eq!(refusal["target"], "vts::security", "{refusal}");

    // A format it does not know: the start stops, naming the variable.
    let out = vts
        .command()
        .env("VTS_LOG_FORMAT", "xml")
        .args(["serve", "--http", "off", "--sip"])
        .arg(format!("udp:127.0.0.1:{}", free_port()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("VTS_LOG_FORMAT=\"xml\": text or json"),
        "{err}"
    );
}
