//! Issue 12's attacks on the call path, through real sockets against a real `vts serve`:
//! a raw UDP user agent in the test plays the attacker (or a customer whose messages must
//! be exact), real sipp plays carriers and honest customers. Each test says what it sends
//! and what it asserts.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// An INVITE from `ua` to the switch.
fn invite(ua: SocketAddr, switch: SocketAddr, call_id: &str, cseq: u32) -> String {
    let sdp = "v=0\no=- 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 4000 RTP/AVP 0\na=rtpmap:0 PCMU/8000\n";
    let body = sdp.replace('\n', "\r\n");
    format!(
        "INVITE sip:34911234567@{switch} SIP/2.0\n\
Via: SIP/2.0/UDP {ua};branch=z9hG4bK-raw-{call_id}-{cseq};rport\n\
From: <sip:912013022@{ua}>;tag=raw-{call_id}\n\
To: <sip:34911234567@{switch}>\n\
Call-ID: {call_id}\n\
CSeq: {cseq} INVITE\n\
Contact: <sip:raw@{ua}>\n\
Max-Forwards: 70\n\
Content-Type: application/sdp\n\
Content-Length: {}\n\n{body}",
        body.len()
    )
}

/// An in-dialog request written by the test: `method` to `uri`, with the given tags and
/// extra header lines.
#[allow(clippy::too_many_arguments)]
fn in_dialog(
    method: &str,
    uri: &str,
    ua: SocketAddr,
    (from_tag, to_tag): (&str, &str),
    call_id: &str,
    cseq: u32,
    branch: &str,
    extra: &str,
) -> String {
    format!(
        "{method} {uri} SIP/2.0\n\
Via: SIP/2.0/UDP {ua};branch=z9hG4bK-raw-{branch};rport\n\
{extra}\
From: <sip:912013022@{ua}>;tag={from_tag}\n\
To: <sip:34911234567@127.0.0.1>;tag={to_tag}\n\
Call-ID: {call_id}\n\
CSeq: {cseq} {method}\n\
Max-Forwards: 70\n\
Content-Length: 0\n\n"
    )
}

fn only_cdr(v: &Vts) -> Value {
    let cdrs = v.cdrs();
    assert_eq!(cdrs.len(), 1, "{cdrs:#?}");
    cdrs.into_iter().next().unwrap()
}

fn int(c: &Value, field: &str) -> i64 {
    c[field]
        .as_i64()
        .unwrap_or_else(|| panic!("{field} missing in {c:#}"))
}

fn guard(v: &Vts, group: &str, name: &str) -> u64 {
    v.status()["guards"][group][name].as_u64().unwrap_or(0)
}

/// A customer at 127.0.0.1 and one carrier; the switch on UDP loopback.
struct World {
    vts: Vts,
    carrier_port: u16,
    switch: SocketAddr,
}

fn world(env: &[(&str, &str)]) -> World {
    let mut vts = Vts::new(VTS);
    vts.env = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    vts.add_customer("acme", "127.0.0.1");
    let carrier_port = free_port();
    vts.add_carrier("carrier", carrier_port, 10, "udp");
    World {
        vts,
        carrier_port,
        switch: at(free_port()),
    }
}

/// Sends: a raw customer's call answered by a sipp carrier; then, inside the dialog, a BYE
/// with a wrong To tag (from the customer), a BYE with the right tags from another address
/// (127.0.0.2), and a BYE with the right tags whose Request-URI and Route name a "victim"
/// socket of the test. Asserts: the first two get 481 and end nothing; the third reaches
/// the carrier (not the victim, which receives nothing at all) and ends the call; the CDR
/// bills the whole call, hung up by the caller; the carrier saw exactly one BYE.
#[test]
fn in_dialog_requests_only_from_the_parties_and_only_along_the_dialog() {
    let w = world(&[]);
    let serve = w.vts.serve(&[format!("udp:{}", w.switch)]);
    let carrier = Uas::new("uas_answer.xml", w.carrier_port).spawn();
    let ua = Raw::bind("127.0.0.1");
    let stranger = Raw::bind("127.0.0.2");
    let victim = Raw::bind("127.0.0.1");
    let call_id = "attack-bye-1";
    ua.send(w.switch, &invite(ua.addr(), w.switch, call_id, 1));
    let ok = ua.expect("200 OK", WAIT);
    let to_tag = required_tag(required_header(&ok, "To")).to_string();
    let from_tag = format!("raw-{call_id}");
    let contact = required_header(&ok, "Contact");
    assert!(
        contact.contains(&w.switch.to_string()),
        "the customer sees the switch as the remote target: {contact}"
    );
    let target = format!("sip:{}", w.switch);
    ua.send(
        w.switch,
        &in_dialog(
            "ACK",
            &target,
            ua.addr(),
            (&from_tag, &to_tag),
            call_id,
            1,
            "ack",
            "",
        ),
    );
    let answered = Instant::now();

    // A BYE with a To tag of its own choosing.
    ua.send(
        w.switch,
        &in_dialog(
            "BYE",
            &target,
            ua.addr(),
            (&from_tag, "forged"),
            call_id,
            2,
            "bye1",
            "",
        ),
    );
    assert!(ua.expect("SIP/2.0", WAIT).starts_with("SIP/2.0 481"));
    // The right tags, from an address that is not the caller's.
    stranger.send(
        w.switch,
        &in_dialog(
            "BYE",
            &target,
            stranger.addr(),
            (&from_tag, &to_tag),
            call_id,
            3,
            "bye2",
            "",
        ),
    );
    assert!(stranger.expect("SIP/2.0", WAIT).starts_with("SIP/2.0 481"));
    assert_eq!(w.vts.status()["calls"], 1, "the call is still up");
    assert!(guard(&w.vts, "counters", "in_dialog_refused") >= 2);

    // The real hang-up, pointed at the victim by Request-URI and Route.
    let victim_uri = format!("sip:victim@{}", victim.addr());
    let route = format!("Route: <sip:{};lr>\n", victim.addr());
    ua.send(
        w.switch,
        &in_dialog(
            "BYE",
            &victim_uri,
            ua.addr(),
            (&from_tag, &to_tag),
            call_id,
            4,
            "bye3",
            &route,
        ),
    );
    let reply = ua.expect("SIP/2.0 2", WAIT);
    assert!(reply.starts_with("SIP/2.0 200"), "{reply}");
    let held = answered.elapsed();
    let (ok, err) = carrier.wait(WAIT);
    assert!(ok, "the carrier saw one clean call and one BYE: {err}");
    assert!(
        victim.drain(Duration::from_millis(300)).is_empty(),
        "nothing was relayed to an address the customer named"
    );
    assert!(serve.stop().success());
    let cdr = only_cdr(&w.vts);
    assert_eq!(cdr["hangup"], "caller");
    let billable = int(&cdr, "billable_ms");
    assert!(
        billable + 50 >= held.as_millis() as i64,
        "billed {billable} ms of a call held {held:?}: the refused BYEs ended nothing"
    );
}

/// Sends, from a stranger (127.0.0.9): an ACK whose Request-URI and Route name a victim
/// socket; a 200 OK whose top Via has a `vts`-looking branch with no valid MAC and whose
/// second Via names the victim; a 200 OK whose Vias are a chain of such branches ending at
/// the switch itself. Asserts: the victim receives nothing, the switch sends nothing
/// anywhere (the stranger gets no reply either), and the counters say why
/// (`stray_dropped`, `forged_branch`).
#[test]
fn stray_acks_and_responses_are_never_relayed_for_strangers() {
    let w = world(&[]);
    let serve = w.vts.serve(&[format!("udp:{}", w.switch)]);
    let stranger = Raw::bind("127.0.0.9");
    let victim = Raw::bind("127.0.0.1");
    let v = victim.addr();
    let s = stranger.addr();
    let route = format!("Route: <sip:{v};lr>\n");
    stranger.send(
        w.switch,
        &in_dialog(
            "ACK",
            &format!("sip:x@{v}"),
            s,
            ("a", "b"),
            "stray-1",
            1,
            "ack",
            &route,
        ),
    );
    let forged = |vias: &str, call_id: &str| {
        format!(
            "SIP/2.0 200 OK\n{vias}From: <sip:a@{s}>;tag=a\nTo: <sip:b@{v}>;tag=b\nCall-ID: {call_id}\nCSeq: 1 INVITE\nContent-Length: 0\n\n"
        )
    };
    stranger.send(
        w.switch,
        &forged(
            &format!(
                "Via: SIP/2.0/UDP {};branch=z9hG4bK-vts-0123456789abcdef0123456789abcdef\nVia: SIP/2.0/UDP {v};branch=z9hG4bK-x\n",
                w.switch
            ),
            "stray-2",
        ),
    );
    let chain: String = (0..5)
        .map(|i| {
            format!(
                "Via: SIP/2.0/UDP {};branch=z9hG4bK-vts-{i:032x}\n",
                w.switch
            )
        })
        .collect();
    stranger.send(w.switch, &forged(&chain, "stray-3"));
    assert!(victim.drain(Duration::from_millis(500)).is_empty());
    assert!(stranger.drain(Duration::from_millis(100)).is_empty());
    assert!(guard(&w.vts, "counters", "stray_dropped") >= 1);
    assert!(guard(&w.vts, "counters", "forged_branch") >= 2);
    serve.stop();
}

/// Sends, from a stranger, once each: a CANCEL that matches no INVITE, a BYE with a To tag
/// for no dialog, a REGISTER and an OPTIONS (T1 = 100 ms, so a transaction's Timer G would
/// retransmit within the window). Asserts: exactly one response to each (481, 481, 405,
/// 200) and no transaction left in the switch.
#[test]
fn requests_that_open_nothing_get_exactly_one_stateless_reply() {
    let w = world(&[("VTS_SIP_T1_MS", "100")]);
    let serve = w.vts.serve(&[format!("udp:{}", w.switch)]);
    let stranger = Raw::bind("127.0.0.9");
    let s = stranger.addr();
    let uri = format!("sip:{}", w.switch);
    let out_of_dialog = |method: &str, n: u32| {
        format!(
            "{method} {uri} SIP/2.0\nVia: SIP/2.0/UDP {s};branch=z9hG4bK-ood-{n}\nFrom: <sip:a@{s}>;tag=a{n}\nTo: <{uri}>\nCall-ID: ood-{n}\nCSeq: 1 {method}\nMax-Forwards: 70\nContent-Length: 0\n\n"
        )
    };
    for (msg, want) in [
        (out_of_dialog("CANCEL", 1), "SIP/2.0 481"),
        (
            in_dialog("BYE", &uri, s, ("a", "b"), "nodialog", 2, "nd", ""),
            "SIP/2.0 481",
        ),
        (out_of_dialog("REGISTER", 3), "SIP/2.0 405"),
        (out_of_dialog("OPTIONS", 4), "SIP/2.0 200"),
    ] {
        stranger.send(w.switch, &msg);
        let replies = stranger.drain(Duration::from_millis(1500));
        assert_eq!(replies.len(), 1, "one reply to {msg}: {replies:#?}");
        assert!(replies[0].starts_with(want), "{}", replies[0]);
    }
    assert_eq!(
        w.vts.status()["guards"]["in_use"]["transactions"],
        0,
        "nothing kept"
    );
    serve.stop();
}

/// Sends: a raw customer's INVITE answered by a sipp carrier, and never an ACK (T1 =
/// 100 ms, so 64×T1 = 6.4 s). Asserts: the switch sends BYE to the customer (answered 200
/// here) and to the carrier (its scenario expects it), and the CDR ends with reason
/// "No ACK", hung up by the switch, billed about 6.4 s.
#[test]
fn a_2xx_never_acked_ends_both_legs_after_64_t1() {
    let w = world(&[("VTS_SIP_T1_MS", "100")]);
    let serve = w.vts.serve(&[format!("udp:{}", w.switch)]);
    let carrier = Uas::new("uas_answer_no_ack.xml", w.carrier_port).spawn();
    let ua = Raw::bind("127.0.0.1");
    ua.send(w.switch, &invite(ua.addr(), w.switch, "no-ack-1", 1));
    ua.expect("200 OK", WAIT);
    let bye = ua.expect("BYE ", Duration::from_secs(20));
    let reply = bye
        .lines()
        .filter(|l| {
            ["Via", "From", "To", "Call-ID", "CSeq"]
                .iter()
                .any(|h| l.starts_with(&format!("{h}:")))
        })
        .collect::<Vec<_>>()
        .join("\n");
    ua.send(
        w.switch,
        &format!("SIP/2.0 200 OK\n{reply}\nContent-Length: 0\n\n"),
    );
    let (ok, err) = carrier.wait(WAIT);
    assert!(ok, "the carrier got the switch's BYE: {err}");
    assert!(serve.stop().success());
    let cdr = only_cdr(&w.vts);
    assert_eq!(cdr["hangup"], "switch", "{cdr:#}");
    assert_eq!(cdr["final_reason"], "No ACK", "{cdr:#}");
    let billable = int(&cdr, "billable_ms");
    assert!((6_000..8_000).contains(&billable), "{billable} ms");
}

/// Sends: one call from a sipp customer while the only carrier is configured at the
/// switch's own address and port. Asserts: the call is refused (482 Loop Detected) with one
/// CDR, not looped; the customer is not blocked.
#[test]
fn a_carrier_at_the_switchs_own_address_is_never_called() {
    let vts = Vts::new(VTS);
    vts.add_customer("acme", "127.0.0.1");
    let switch = free_port();
    vts.add_carrier("myself", switch, 10, "udp");
    let serve = vts.serve(&[format!("udp:127.0.0.1:{switch}")]);
    let ua = Raw::bind("127.0.0.1");
    ua.send(at(switch), &invite(ua.addr(), at(switch), "loop-1", 1));
    let last = ua.expect("SIP/2.0 4", WAIT);
    assert!(last.starts_with("SIP/2.0 482"), "{last}");
    assert!(serve.stop().success());
    let cdrs = vts.cdrs();
    assert_eq!(cdrs.len(), 1, "one CDR, no loop: {cdrs:#?}");
    assert!(!vts.cli(&["block", "list"]).contains("127.0.0.1"));
    // And the CLI refuses such a carrier (the default listener is 0.0.0.0:5060).
    let out = vts
        .command()
        .args([
            "carrier",
            "add",
            "--name",
            "me",
            "--host",
            "127.0.0.1",
            "--port",
            "5060",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the switch's own listen address"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sends: a raw customer's INVITE to a raw "carrier" socket of the test, which sends the
/// INVITE it received back to the switch (as a misconfigured peer would, with its own Via
/// on top). Asserts: the switch answers that looped INVITE 482 Loop Detected.
#[test]
fn a_request_carrying_the_switchs_own_via_gets_482() {
    let vts = Vts::new(VTS);
    vts.add_customer("acme", "127.0.0.1");
    let carrier = Raw::bind("127.0.0.1");
    vts.add_carrier("raw", carrier.addr().port(), 10, "udp");
    let switch = at(free_port());
    let serve = vts.serve(&[format!("udp:{switch}")]);
    let ua = Raw::bind("127.0.0.1");
    ua.send(switch, &invite(ua.addr(), switch, "loop-2", 1));
    let got = carrier.expect("INVITE ", WAIT);
    let c = carrier.addr();
    let looped = got.replacen(
        "Via: ",
        &format!("Via: SIP/2.0/UDP {c};branch=z9hG4bK-carrier-1\r\nVia: "),
        1,
    );
    carrier.send(switch, &looped);
    let reply = carrier.expect("SIP/2.0 482", WAIT);
    assert!(reply.contains("Loop Detected"), "{reply}");
    serve.stop();
}

/// Sends: a call from a compliant customer (the raw UA sends its ACK and BYE where RFC
/// 3261 says: the 200's Contact, there being no Record-Route in it; sipp cannot, it sends
/// everything to the address it was given) through Debian sipp's built-in UAS, which
/// copies no Record-Route into its 2xx. Asserts: the 200's Contact is the switch, so the
/// switch sees the hang-up: the CDR is hung up by the caller and billed about the 1 s held,
/// not until shutdown.
#[test]
fn the_switch_stays_in_the_path_when_the_carrier_drops_record_route() {
    let w = world(&[]);
    let serve = w.vts.serve(&[format!("udp:{}", w.switch)]);
    let dir = tempfile::tempdir().unwrap();
    let mut uas = std::process::Command::new("sipp")
        .current_dir(dir.path())
        .args([
            "-sn",
            "uas",
            "-i",
            "127.0.0.1",
            "-p",
            &w.carrier_port.to_string(),
            "-m",
            "1",
            "-nostdin",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ua = Raw::bind("127.0.0.1");
    let call_id = "no-rr-1";
    ua.send(w.switch, &invite(ua.addr(), w.switch, call_id, 1));
    let ok = ua.expect("200 OK", WAIT);
    assert!(
        !ok.lines().any(|l| l.starts_with("Record-Route")),
        "the carrier copied no Record-Route: {ok}"
    );
    // The remote target: the Contact's host and port.
    let contact = required_header(&ok, "Contact");
    let uri = contact.trim_start_matches('<').split('>').next().unwrap();
    let hostport = uri.trim_start_matches("sip:").rsplit('@').next().unwrap();
    let hostport = hostport.split(';').next().unwrap();
    let target: SocketAddr = hostport.parse().unwrap();
    let (from_tag, to_tag) = (
        format!("raw-{call_id}"),
        required_tag(required_header(&ok, "To")).to_string(),
    );
    let tags = (from_tag.as_str(), to_tag.as_str());
    ua.send(
        target,
        &in_dialog("ACK", uri, ua.addr(), tags, call_id, 1, "ack", ""),
    );
    let answered = Instant::now();
    std::thread::sleep(Duration::from_millis(1000)); // the call is held 1 s
    ua.send(
        target,
        &in_dialog("BYE", uri, ua.addr(), tags, call_id, 2, "bye", ""),
    );
    ua.expect("SIP/2.0 200", WAIT);
    let held = answered.elapsed();
    let deadline = Instant::now() + WAIT;
    while uas.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = uas.kill();
    assert_eq!(
        target, w.switch,
        "the customer's remote target is the switch"
    );
    assert!(serve.stop().success());
    let cdr = only_cdr(&w.vts);
    assert_eq!(cdr["hangup"], "caller", "{cdr:#}");
    let billable = int(&cdr, "billable_ms");
    assert!(
        billable <= held.as_millis() as i64 + 500,
        "billed {billable} ms of a call held {held:?}"
    );
}

/// The same with a real, compliant customer UA (Debian's baresip, which follows the 200's
/// Contact as RFC 3261 says): baresip dials the switch, the call is answered by sipp's
/// built-in UAS (no Record-Route in its 2xx), and baresip hangs up when it quits 4 s after
/// it starts. Asserts: baresip saw the call established and terminated; the carrier got the
/// BYE (sipp's one call ends successfully) through the switch; the CDR is hung up by the
/// caller and billed no longer than baresip ran, not until shutdown.
#[test]
fn baresip_hangs_up_through_the_switch_when_the_carrier_drops_record_route() {
    let w = world(&[]);
    let serve = w.vts.serve(&[format!("udp:{}", w.switch)]);
    let dir = tempfile::tempdir().unwrap();
    let mut uas = std::process::Command::new("sipp")
        .current_dir(dir.path())
        .args(["-sn", "uas", "-i", "127.0.0.1", "-p"])
        .arg(w.carrier_port.to_string())
        .args(["-m", "1", "-nostdin"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ua_port = free_port();
    // A sine source (48 kHz stereo is all ausine makes), no audio player: no sound device.
    std::fs::write(
        dir.path().join("config"),
        format!(
            "sip_listen 127.0.0.1:{ua_port}\nsip_transports udp\n\
             module_path /usr/lib/baresip/modules\nmodule g711.so\nmodule ausine.so\n\
             module_app account.so\nmodule_app menu.so\naudio_source ausine,440\n\
             ausrc_srate 48000\nausrc_channels 2\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("accounts"),
        "<sip:912013022@127.0.0.1>;regint=0\n",
    )
    .unwrap();
    let started = Instant::now();
    let out = std::process::Command::new("baresip")
        .arg("-f")
        .arg(dir.path())
        .args([
            "-e",
            &format!("/dial sip:34911234567@{}", w.switch),
            "-t",
            "4",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("baresip is not installed: run scripts/test (it installs Debian's baresip-core)");
    let ran = started.elapsed();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Call established"), "baresip:\n{text}");
    assert!(text.contains("terminated"), "baresip:\n{text}");
    let deadline = Instant::now() + WAIT;
    let carrier = loop {
        if let Some(status) = uas.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = uas.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        carrier.is_some_and(|s| s.success()),
        "the carrier's call never ended with the BYE: {carrier:?}\n{}",
        serve.log_text()
    );
    assert!(serve.stop().success());
    let cdr = only_cdr(&w.vts);
    assert_eq!(cdr["hangup"], "caller", "{cdr:#}");
    let billable = int(&cdr, "billable_ms");
    assert!(
        billable > 0 && billable <= ran.as_millis() as i64,
        "billed {billable} ms of a baresip run of {ran:?}"
    );
}

/// Sends: 20 short calls (held 1 s) with T1 = 100 ms, so an ended call is forgotten 7.4 s
/// after its end. Asserts: once they are forgotten, the engine holds no call and no call
/// timer (before, each call's 4-hour max-duration timer stayed for 4 hours).
#[test]
fn ended_calls_leave_no_timers_behind() {
    let w = world(&[("VTS_SIP_T1_MS", "100")]);
    let serve = w.vts.serve(&[format!("udp:{}", w.switch)]);
    let carrier = Uas::new("uas_answer.xml", w.carrier_port).calls(20).spawn();
    let (ok, err) = Uac::new("uac_call.xml", w.switch)
        .calls(20)
        .rate(20)
        .source_port(free_port())
        .run();
    assert!(ok, "{err}");
    assert!(carrier.wait(WAIT).0);
    w.vts
        .await_status("calls forgotten", |s| s["guards"]["in_use"]["calls"] == 0);
    assert_eq!(w.vts.status()["guards"]["in_use"]["timers"], 0);
    serve.stop();
}

/// A response to `request` written by a raw peer of the test: its Via, From, To (with a
/// tag), Call-ID and CSeq, and `extra` header lines.
fn answer(request: &str, status: &str, extra: &str) -> String {
    let mut out = format!("SIP/2.0 {status}\n");
    for line in request.lines() {
        let name = line.split(':').next().unwrap_or_default();
        match name {
            "Via" | "From" | "Call-ID" | "CSeq" | "Record-Route" => out += &format!("{line}\n"),
            "To" => out += &format!("{line};tag=carrier-1\n"),
            _ => {}
        }
    }
    format!("{out}{extra}Content-Length: 0\n\n")
}

/// Sends: a raw customer's INVITE carrying P-Asserted-Identity, Remote-Party-ID, Privacy
/// and Diversion headers and a Route after the switch's own, to a raw carrier socket.
/// Asserts: the carrier's INVITE has none of them (the customer is not trusted: a forced
/// CLI cannot be bypassed), no Route at all, and the switch's Contact instead of the
/// customer's.
#[test]
fn identity_headers_and_routes_from_a_customer_never_reach_a_carrier() {
    let vts = Vts::new(VTS);
    vts.add_customer("acme", "127.0.0.1");
    let carrier = Raw::bind("127.0.0.1");
    vts.add_carrier("raw", carrier.addr().port(), 10, "udp");
    let switch = at(free_port());
    let serve = vts.serve(&[format!("udp:{switch}")]);
    let ua = Raw::bind("127.0.0.1");
    let extra = format!(
        "Route: <sip:{switch};lr>, <sip:10.9.9.9:5060;lr>\n\
P-Asserted-Identity: <sip:+12125550100@evil>\n\
Remote-Party-ID: <sip:+12125550100@evil>;party=calling\n\
Privacy: id\n\
Diversion: <sip:+12125550199@evil>;reason=unconditional\n"
    );
    let inv = invite(ua.addr(), switch, "identity-1", 1).replacen(
        "Max-Forwards",
        &format!("{extra}Max-Forwards"),
        1,
    );
    ua.send(switch, &inv);
    let got = carrier.expect("INVITE ", WAIT);
    for name in [
        "P-Asserted-Identity",
        "Remote-Party-ID",
        "Privacy",
        "Diversion",
        "Route",
    ] {
        assert!(
            !got.lines().any(|l| l.starts_with(&format!("{name}:"))),
            "{name} reached the carrier:\n{got}"
        );
    }
    assert!(
        required_header(&got, "Contact").contains(&switch.to_string()),
        "{got}"
    );
    carrier.send(switch, &answer(&got, "486 Busy Here", ""));
    ua.expect("SIP/2.0 486", WAIT);
    serve.stop();
}

/// Sends: a call from a customer marked trusted and hiding its topology, to a raw carrier
/// marked hiding its topology. The customer's INVITE has two Vias (its own and an inner
/// proxy's), a User-Agent and a P-Asserted-Identity; the carrier's 200 has a Server, a
/// Warning and a Record-Route entry of its own before the switch's. Asserts: the carrier
/// sees the identity (trusted), one Via (the switch's) and no User-Agent; the customer gets
/// its own two Vias back, no Server or Warning, the switch's Record-Route but not the
/// carrier's, and the switch's Contact.
#[test]
fn topology_hiding_per_customer_and_carrier_and_trusted_identity() {
    let vts = Vts::new(VTS);
    let customer = vts.add_customer("acme", "127.0.0.1").to_string();
    let carrier = Raw::bind("127.0.0.1");
    let carrier_id = vts
        .add_carrier("raw", carrier.addr().port(), 10, "udp")
        .to_string();
    vts.cli(&[
        "customer",
        "headers",
        &customer,
        "--trusted",
        "yes",
        "--hide-topology",
        "yes",
    ]);
    vts.cli(&["carrier", "headers", &carrier_id, "--hide-topology", "yes"]);
    let switch = at(free_port());
    let serve = vts.serve(&[format!("udp:{switch}")]);
    let ua = Raw::bind("127.0.0.1");
    let inner = "Via: SIP/2.0/UDP 10.0.0.7:5060;branch=z9hG4bK-inner\n";
    let extra = "User-Agent: SecretPBX 1.0\nP-Asserted-Identity: <sip:+12125550100@acme>\n";
    let inv = invite(ua.addr(), switch, "hide-1", 1)
        .replacen("From:", &format!("{inner}From:"), 1)
        .replacen("Max-Forwards", &format!("{extra}Max-Forwards"), 1);
    ua.send(switch, &inv);
    let got = carrier.expect("INVITE ", WAIT);
    assert!(got.contains("P-Asserted-Identity:"), "trusted: {got}");
    assert_eq!(
        got.lines().filter(|l| l.starts_with("Via:")).count(),
        1,
        "{got}"
    );
    assert!(
        !got.contains("10.0.0.7") && !got.contains("SecretPBX"),
        "{got}"
    );
    let extra = "Server: CarrierSBC 9.9\nWarning: 399 sbc.carrier \"internal\"\nContact: <sip:10.2.2.2:5060>\n";
    let ok = answer(&got, "200 OK", extra).replacen(
        "Record-Route:",
        "Record-Route: <sip:10.1.1.1;lr>\nRecord-Route:",
        1,
    );
    carrier.send(switch, &ok);
    let reply = ua.expect("200 OK", WAIT);
    let vias: Vec<&str> = reply.lines().filter(|l| l.starts_with("Via:")).collect();
    assert_eq!(vias.len(), 2, "{reply}");
    assert!(
        vias[0].contains(&ua.addr().to_string()) && vias[1].contains("10.0.0.7"),
        "{reply}"
    );
    assert!(
        !reply.contains("CarrierSBC") && !reply.contains("Warning:"),
        "{reply}"
    );
    assert!(
        !reply.contains("10.1.1.1") && !reply.contains("10.2.2.2"),
        "{reply}"
    );
    assert!(
        required_header(&reply, "Record-Route").contains(&switch.to_string()),
        "{reply}"
    );
    assert!(
        required_header(&reply, "Contact").contains(&switch.to_string()),
        "{reply}"
    );
    serve.stop();
}
