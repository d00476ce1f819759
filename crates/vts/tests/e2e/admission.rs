//! Admission and routing (issue 5): numbers, dialing plans, carrier profiles, LCR, carrier
//! health, channel leases and minute caps, through a real
//! `vts serve` with real sipp as customer and carriers.

use std::time::Duration;

use crate::common::{Uac, Uas, VTS, Vts, at, free_port};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

fn int(cdr: &Value, field: &str) -> i64 {
    cdr[field]
        .as_i64()
        .unwrap_or_else(|| panic!("{field} in {cdr}"))
}

fn text<'a>(cdr: &'a Value, field: &str) -> &'a str {
    cdr[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {cdr}"))
}

/// The first INVITE in a traced carrier's message log: (Request-URI, To line, From line,
/// body).
fn received_invite(messages: &str) -> (String, String, String, String) {
    let start = messages
        .find("INVITE sip:")
        .unwrap_or_else(|| panic!("no INVITE in\n{messages}"));
    let invite = &messages[start..];
    let invite = &invite[..invite.find("\n\n-----").unwrap_or(invite.len())];
    let line = |name: &str| {
        invite
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in\n{invite}"))
            .to_string()
    };
    let ruri = invite
        .lines()
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .to_string();
    let body = invite
        .split_once("\r\n\r\n")
        .or_else(|| invite.split_once("\n\n"))
        .map_or("", |(_, b)| b)
        .to_string();
    (ruri, line("To:"), line("From:"), body)
}

/// The failover request is rebuilt from the pristine INVITE with the second carrier's own
/// profile: nothing of the first carrier's tech prefix or format leaks into it.
#[test]
fn failover_rebuilds_the_number_for_each_carrier_from_the_pristine_invite() {
    let vts = Vts::new(VTS);
    let customer = vts.add_customer("acme", "127.0.0.1").to_string();
    vts.cli(&[
        "customer",
        "numbers",
        &customer,
        "--format",
        "national",
        "--country",
        "44",
    ]);
    let (pa, pb) = (free_port(), free_port());
    let a = vts.add_carrier("a", pa, 10, "udp").to_string();
    let b = vts.add_carrier("b", pb, 5, "udp").to_string();
    vts.cli(&[
        "carrier",
        "profile",
        &a,
        "--format",
        "national",
        "--country",
        "44",
        "--tech-prefix",
        "9901#",
        "--cli-format",
        "plus",
    ]);
    vts.cli(&[
        "carrier",
        "profile",
        &b,
        "--tech-prefix",
        "77",
        "--strip",
        "0",
    ]);
    let switch = free_port();
    let serve = vts.serve(&[format!("udp:127.0.0.1:{switch}")]);
    let first = Uas::new("uas_503.xml", pa).traced().spawn();
    let second = Uas::new("uas_answer.xml", pb).traced().spawn();
    let (ok, err) = Uac::new("uac_call.xml", at(switch))
        .source_port(free_port())
        .number("02079460018")
        .run();
    assert!(ok, "customer call failed: {err}\n{}", serve.log_text());
    let (ok, err, to_a) = first.wait_messages(WAIT);
    assert!(ok, "carrier a: {err}");
    let (ok, err, to_b) = second.wait_messages(WAIT);
    assert!(ok, "carrier b: {err}");
    serve.stop();

    let (ruri, to, from, _) = received_invite(&to_a);
    assert!(
        ruri.starts_with("sip:9901%2302079460018@127.0.0.1:"),
        "{ruri}"
    );
    assert!(to.contains("<sip:9901%2302079460018@"), "{to}");
    assert!(from.contains("<sip:+44912013022@"), "{from}");
    let (ruri, to, from, _) = received_invite(&to_b);
    assert!(ruri.starts_with("sip:77442079460018@127.0.0.1:"), "{ruri}");
    assert!(to.contains("<sip:77442079460018@"), "{to}");
    assert!(from.contains("<sip:44912013022@"), "{from}");

    let cdrs = vts.cdrs();
    assert_eq!(cdrs.len(), 1);
    let cdr = &cdrs[0];
    assert_eq!(int(cdr, "attempts"), 2);
    assert_eq!(text(cdr, "callee"), "02079460018", "as received");
    assert_eq!(text(cdr, "callee_out"), "77442079460018", "as sent last");
    assert_eq!(text(cdr, "caller_out"), "44912013022");
    assert_eq!(int(cdr, "final_code"), 200);
}

/// The refusals of the numbers and dialing-plan stages, with their exact replies (the code
/// from sipp, the reason phrase from the CDR), and a change of plan reaching the running
/// switch.
#[test]
fn dialing_plans_and_unreadable_numbers_are_refused_with_their_replies() {
    let vts = Vts::new(VTS);
    let customer = vts.add_customer("acme", "127.0.0.1").to_string();
    let port = free_port();
    vts.add_carrier("a", port, 10, "udp");
    let plan = vts
        .cli(&[
            "plan",
            "add",
            "--name",
            "uk-only",
            "--default",
            "deny",
            "--block-premium",
        ])
        .trim()
        .to_string();
    vts.cli(&["plan", "rule", &plan, "44", "allow", "--priority", "20"]);
    let mobiles = vts
        .cli(&["plan", "rule", &plan, "447*", "deny", "--priority", "10"])
        .trim()
        .to_string();
    vts.cli(&["customer", "plan", &customer, &plan]);
    let switch = free_port();
    let serve = vts.serve(&[format!("udp:127.0.0.1:{switch}")]);
    let call = |scenario: &str, number: &str| {
        let (ok, err) = Uac::new(scenario, at(switch))
            .source_port(free_port())
            .number(number)
            .run();
        assert!(ok, "{number}: {err}\n{}", serve.log_text());
    };
    call("uac_expect_403.xml", "33142685300"); // the default: deny
    call("uac_expect_403.xml", "447700900123"); // rule 447*: deny
    call("uac_expect_403.xml", "449011234567"); // premium (UK 09)
    call("uac_expect_484.xml", "12ab34"); // not a number
    let carrier = Uas::new("uas_answer.xml", port).calls(2).spawn();
    call("uac_call.xml", "442079460018"); // rule 44: allow
    vts.change(&["plan", "remove-rule", &mobiles]);
    call("uac_call.xml", "447700900123"); // now allowed by 44
    let (ok, err) = carrier.wait(WAIT);
    assert!(ok, "carrier: {err}");
    serve.stop();
    let cdrs = vts.cdrs();
    let mut refused: Vec<(String, i64, String)> = cdrs
        .iter()
        .filter(|c| int(c, "final_code") != 200)
        .map(|c| {
            (
                text(c, "callee").to_string(),
                int(c, "final_code"),
                text(c, "final_reason").to_string(),
            )
        })
        .collect();
    refused.sort();
    assert_eq!(
        refused,
        vec![
            ("12ab34".into(), 484, "Address Incomplete".into()),
            (
                "33142685300".into(),
                403,
                "Forbidden - Destination Not Allowed".into()
            ),
            (
                "447700900123".into(),
                403,
                "Forbidden - Destination Not Allowed".into()
            ),
            (
                "449011234567".into(),
                403,
                "Forbidden - Destination Not Allowed".into()
            ),
        ]
    );
    assert_eq!(
        cdrs.iter().filter(|c| int(c, "final_code") == 200).count(),
        2
    );
}

fn write_rates(vts: &Vts, name: &str, rows: &str) -> String {
    let path = vts.dir.path().join(name);
    std::fs::write(&path, rows).unwrap();
    path.to_string_lossy().into_owned()
}

/// LCR: the cheapest carrier for the longest matching prefix, never one above the
/// customer's own rate, with effective dates honoured; `vts route` says why.
#[test]
fn lcr_routes_to_the_cheapest_carrier_within_the_customers_rate() {
    let vts = Vts::new(VTS);
    let customer = vts.add_customer("acme", "127.0.0.1").to_string();
    let (pa, pb, pc) = (free_port(), free_port(), free_port());
    // Priority would pick a, then c, then b.
    let a = vts.add_carrier("a", pa, 30, "udp").to_string();
    let b = vts.add_carrier("b", pb, 10, "udp").to_string();
    let c = vts.add_carrier("c", pc, 20, "udp").to_string();
    let rates = |id: &str, file: &str, rows: &str| {
        let path = write_rates(&vts, file, rows);
        vts.cli(&["carrier", "import-rates", id, &path]);
    };
    rates(
        &a,
        "a.csv",
        "prefix,rate,fee,increment,minimum,effective\n34,0.0500,0,1,0,\n",
    );
    // b: 0.02 for 349 from 2000 on; a later, cheaper row from 2999 is not in force yet.
    rates(
        &b,
        "b.csv",
        "34,0.0300\n349,0.0200,0,1,0,2000-01-01\n349,0.0001,0,1,0,2999-01-01\n",
    );
    // c: cheapest of all, but above the customer's own rate for 349.
    rates(&c, "c.csv", "3,0.0100\n349,0.0400\n");
    let sell = write_rates(&vts, "sell.csv", "349,0.0350\n");
    vts.cli(&["customer", "import-rates", &customer, &sell]);
    vts.cli(&["customer", "routing", &customer, "lcr"]);

    let out = vts.cli(&["route", "--customer", &customer, "--number", "34911234567"]);
    let line = |name: &str| {
        out.lines()
            .find(|l| l.contains(&format!(" {name} (#")))
            .unwrap_or_else(|| panic!("no {name}:\n{out}"))
            .to_string()
    };
    assert!(
        line("b").starts_with("1 ") && line("b").contains("0.020000"),
        "{out}"
    );
    assert!(
        line("a").starts_with("- ") && line("a").contains("above the customer's 0.035000"),
        "{out}"
    );
    assert!(
        line("c").starts_with("- ") && line("c").contains("above the customer's"),
        "{out}"
    );

    let switch = free_port();
    let serve = vts.serve(&[format!("udp:127.0.0.1:{switch}")]);
    let carrier = Uas::new("uas_answer.xml", pb).spawn();
    let (ok, err) = Uac::new("uac_call.xml", at(switch))
        .source_port(free_port())
        .run();
    assert!(ok, "customer: {err}\n{}", serve.log_text());
    let (ok, err) = carrier.wait(WAIT);
    assert!(ok, "carrier b: {err}");
    serve.stop();
    let cdrs = vts.cdrs();
    assert_eq!(int(&cdrs[0], "carrier_id").to_string(), b);
    assert_eq!(int(&cdrs[0], "attempts"), 1);

    // Bad rate files are refused whole, with the line.
    let bad = write_rates(&vts, "bad.csv", "34,0.01\n35,abc\n");
    let out = vts
        .command()
        .args(["carrier", "import-rates", &a, &bad])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2: rate"), "{err}");
    assert!(
        !vts.cli(&["carrier", "rates", &a]).contains("35 "),
        "nothing imported"
    );
}

/// The SDP codec allow-list: a carrier that takes none of the offered codecs is skipped;
/// the next gets the offer cut to its codecs.
#[test]
fn a_carrier_that_takes_none_of_the_offered_codecs_is_skipped() {
    let vts = Vts::new(VTS);
    vts.add_customer("acme", "127.0.0.1");
    let (pa, pb) = (free_port(), free_port());
    let a = vts.add_carrier("g729-only", pa, 10, "udp").to_string();
    let b = vts.add_carrier("alaw", pb, 5, "udp").to_string();
    vts.cli(&["carrier", "profile", &a, "--codecs", "G729"]);
    vts.cli(&["carrier", "profile", &b, "--codecs", "pcma,G722"]);
    let switch = free_port();
    let serve = vts.serve(&[format!("udp:127.0.0.1:{switch}")]);
    let carrier = Uas::new("uas_answer.xml", pb).traced().spawn();
    let (ok, err) = Uac::new("uac_call.xml", at(switch))
        .source_port(free_port())
        .run();
    assert!(ok, "customer: {err}\n{}", serve.log_text());
    let (ok, err, messages) = carrier.wait_messages(WAIT);
    assert!(ok, "carrier: {err}");
    let (_, _, _, body) = received_invite(&messages);
    assert!(
        body.contains("RTP/AVP 8\r\n") || body.contains("RTP/AVP 8\n"),
        "{body}"
    );
    assert!(body.contains("a=rtpmap:8 PCMA/8000"), "{body}");
    assert!(!body.contains("PCMU"), "{body}");
    // Nobody takes the offer: 488.
    vts.change(&["carrier", "profile", &b, "--codecs", "G722"]);
    let (ok, err) = Uac::new("uac_expect_488.xml", at(switch))
        .source_port(free_port())
        .run();
    assert!(ok, "customer: {err}\n{}", serve.log_text());
    serve.stop();
    let cdrs = vts.cdrs();
    let answered = cdrs.iter().find(|c| int(c, "final_code") == 200).unwrap();
    assert_eq!(int(answered, "carrier_id").to_string(), b);
    assert_eq!(
        int(answered, "attempts"),
        1,
        "the G.729 carrier got no INVITE"
    );
    let refused = cdrs.iter().find(|c| int(c, "final_code") == 488).unwrap();
    assert_eq!(text(refused, "final_reason"), "Not Acceptable Here");
}

/// A carrier that stops answering OPTIONS goes down after the threshold and gets no calls;
/// it comes back after it answers again; its health is in `vts status` and `vts carrier
/// list`, and survives a restart.
#[test]
fn a_carrier_that_stops_answering_options_goes_down_and_comes_back() {
    let vts = Vts::new(VTS);
    vts.add_customer("acme", "127.0.0.1");
    let (pa, pb) = (free_port(), free_port());
    let a = vts.add_carrier("a", pa, 10, "udp").to_string();
    let b = vts.add_carrier("b", pb, 5, "udp").to_string();
    vts.cli(&["settings", "set", "health.probe_interval_seconds", "1"]);
    let switch = free_port();
    // Both carriers answer probes (sipp -aa; each probe counts as one of sipp's calls, so
    // these are not waited for: the CDRs say where calls went).
    let carrier_b = Uas::new("uas_answer.xml", pb).calls(1000).spawn();
    let alive = Uas::new("uas_answer.xml", pa).calls(1000).spawn();
    let serve = vts.serve(&[format!("udp:127.0.0.1:{switch}")]);
    let health = |vts: &Vts, id: &str| vts.status()["health"][id].as_str().map(String::from);
    let change =
        |from: &str, to: &str| format!("HEALTH carrier={a} name=\"a\" from={from} to={to}");
    assert_eq!(health(&vts, &a).as_deref(), Some("up"));
    drop(alive);
    // Two failed probes: suspect, then down.
    serve.await_log(&change("up", "suspect"), 1, WAIT);
    serve.await_log(&change("suspect", "down"), 1, WAIT);
    assert_eq!(health(&vts, &a).as_deref(), Some("down"));
    assert_eq!(health(&vts, &b).as_deref(), Some("up"));
    // The store copy (what `vts carrier list` shows) follows the event.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let listed = vts.cli(&["carrier", "list"]);
        if listed
            .lines()
            .any(|l| l.starts_with(&format!("{a} ")) && l.contains(" down "))
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{listed}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A call goes straight to b (no attempt at a, no first-response timeout).
    let (ok, err) = Uac::new("uac_call.xml", at(switch))
        .source_port(free_port())
        .run();
    assert!(ok, "customer: {err}\n{}", serve.log_text());
    // a answers again: two answered probes bring it back, and a call goes to it.
    let back = Uas::new("uas_answer.xml", pa).calls(1000).spawn();
    serve.await_log(&change("down", "up"), 1, WAIT);
    let (ok, err) = Uac::new("uac_call.xml", at(switch))
        .source_port(free_port())
        .run();
    assert!(ok, "customer: {err}\n{}", serve.log_text());
    drop(back);
    serve.await_log(&change("suspect", "down"), 2, WAIT);
    serve.stop();
    drop(carrier_b);
    let cdrs = vts.cdrs();
    assert_eq!(cdrs.len(), 2);
    let by = |c: &Value| (int(c, "carrier_id").to_string(), int(c, "attempts"));
    let mut went: Vec<(String, i64)> = cdrs.iter().map(by).collect();
    went.sort();
    let mut expected = vec![(a.clone(), 1), (b.clone(), 1)];
    expected.sort();
    assert_eq!(went, expected);

    // After a restart a is still down (stored), so a call goes to b at once, before any
    // probe (the first comes one interval after the start).
    vts.cli(&["settings", "set", "health.probe_interval_seconds", "3600"]);
    let serve = vts.serve(&[format!("udp:127.0.0.1:{switch}")]);
    assert_eq!(health(&vts, &a).as_deref(), Some("down"));
    let carrier_b = Uas::new("uas_answer.xml", pb).spawn();
    let (ok, err) = Uac::new("uac_call.xml", at(switch))
        .source_port(free_port())
        .run();
    assert!(ok, "customer: {err}\n{}", serve.log_text());
    let (ok, err) = carrier_b.wait(WAIT);
    assert!(ok, "carrier b: {err}");
    assert!(!serve.log_text().contains("HEALTH"), "no probe yet");
    serve.stop();
    let cdrs = vts.cdrs();
    assert_eq!(cdrs.len(), 3);
    let newest = cdrs.iter().max_by_key(|c| int(c, "invite_ms")).unwrap();
    assert_eq!(by(newest), (b, 1));
}

/// 100 INVITEs at once against a channel limit of 10: exactly 10 calls up, the other 90
/// refused with 486 Busy Here - Channel Limit Exceeded; one 80 % warning, not one per call;
/// every channel back when the calls end.
#[test]
fn a_channel_limit_of_10_holds_under_100_simultaneous_invites() {
    let vts = Vts::new(VTS);
    let customer = vts.add_customer("acme", "127.0.0.1").to_string();
    vts.cli(&["customer", "limits", &customer, "--max-channels", "10"]);
    // 1000 INVITEs a second from one address would be a flood.
    vts.cli(&["whitelist", "add", "127.0.0.1"]);
    let port = free_port();
    vts.add_carrier("up", port, 1, "udp");
    let switch = free_port();
    let serve = vts.serve(&[format!("udp:127.0.0.1:{switch}")]);
    let carrier = Uas::new("uas_answer.xml", port).calls(11).spawn();
    // 100 calls at 1000 a second: all in before the first (held 1.5 s) ends.
    let (ok, err) = Uac::new("uac_hold_or_486.xml", at(switch))
        .calls(100)
        .rate(1000)
        .source_port(free_port())
        .run();
    assert!(ok, "{err}\n{}", serve.log_text());
    let status = vts.status();
    assert_eq!(status["calls"], 0, "every call ended: {status}");
    // The channels are back: one more call goes through.
    let (ok, err) = Uac::new("uac_call.xml", at(switch))
        .source_port(free_port())
        .run();
    assert!(ok, "{err}\n{}", serve.log_text());
    let (ok, err) = carrier.wait(WAIT);
    assert!(ok, "carrier: {err}");
    let log = serve.log_text();
    serve.stop();
    let cdrs = vts.cdrs();
    assert_eq!(cdrs.len(), 101);
    let answered = cdrs.iter().filter(|c| int(c, "final_code") == 200).count();
    let busy: Vec<&Value> = cdrs
        .iter()
        .filter(|c| int(c, "final_code") == 486)
        .collect();
    assert_eq!(answered, 11, "10 of the burst and the one after");
    assert_eq!(busy.len(), 90);
    assert!(
        busy.iter()
            .all(|c| text(c, "final_reason") == "Busy Here - Channel Limit Exceeded")
    );
    // Held calls overlapped: never more than 10 answered calls up at once.
    let mut edges: Vec<(i64, i64)> = cdrs
        .iter()
        .filter(|c| int(c, "final_code") == 200)
        .flat_map(|c| [(int(c, "answer_ms"), 1), (int(c, "end_ms"), -1)])
        .collect();
    edges.sort_by_key(|&(t, d)| (t, d));
    let peak = edges
        .iter()
        .scan(0, |n, (_, d)| {
            *n += d;
            Some(*n)
        })
        .max();
    assert_eq!(peak, Some(10));
    let warnings = log
        .matches(&format!("LIMIT_WARNING customer={customer} limit=channels"))
        .count();
    assert_eq!(warnings, 1, "{log}");
    assert!(log.contains(&format!(
        "LIMIT_WARNING customer={customer} limit=channels used=8 max=10"
    )));
}

/// A daily cap of 2 minutes: in a burst of 5 calls the first 2 each reserve a minute and the
/// other 3 get 486 Busy Here - Daily Minutes Exhausted; once the 2 end (a few seconds of
/// talk), calls pass again. Minutes used before a restart count after it (a monthly cap of
/// 1 minute refuses once any time is used).
#[test]
fn minute_caps_count_calls_in_progress_and_survive_a_restart() {
    let vts = Vts::new(VTS);
    let customer = vts.add_customer("acme", "127.0.0.1").to_string();
    vts.cli(&["customer", "limits", &customer, "--daily-minutes", "2"]);
    let port = free_port();
    vts.add_carrier("up", port, 1, "udp");
    let switch = free_port();
    let serve = vts.serve(&[format!("udp:127.0.0.1:{switch}")]);
    let carrier = Uas::new("uas_answer.xml", port).calls(3).spawn();
    let (ok, err) = Uac::new("uac_hold_or_486.xml", at(switch))
        .calls(5)
        .rate(1000)
        .source_port(free_port())
        .run();
    assert!(ok, "{err}\n{}", serve.log_text());
    let (ok, err) = Uac::new("uac_call.xml", at(switch))
        .source_port(free_port())
        .run();
    assert!(ok, "after the burst: {err}\n{}", serve.log_text());
    let (ok, err) = carrier.wait(WAIT);
    assert!(ok, "carrier: {err}");
    let log = serve.log_text();
    serve.stop();
    let cdrs = vts.cdrs();
    let busy: Vec<&Value> = cdrs
        .iter()
        .filter(|c| int(c, "final_code") == 486)
        .collect();
    assert_eq!(busy.len(), 3, "{cdrs:?}");
    assert!(
        busy.iter()
            .all(|c| text(c, "final_reason") == "Busy Here - Daily Minutes Exhausted")
    );
    assert_eq!(
        cdrs.iter().filter(|c| int(c, "final_code") == 200).count(),
        3
    );
    assert_eq!(
        log.matches(&format!(
            "LIMIT_WARNING customer={customer} limit=daily_minutes"
        ))
        .count(),
        1,
        "{log}"
    );

    // A restart starts the counters from the stored calls.
    vts.cli(&[
        "customer",
        "limits",
        &customer,
        "--daily-minutes",
        "unlimited",
        "--monthly-minutes",
        "1",
    ]);
    let serve = vts.serve(&[format!("udp:127.0.0.1:{switch}")]);
    let (ok, err) = Uac::new("uac_expect_486.xml", at(switch))
        .source_port(free_port())
        .run();
    assert!(ok, "{err}\n{}", serve.log_text());
    serve.stop();
    let cdrs = vts.cdrs();
    let newest = cdrs.iter().max_by_key(|c| int(c, "invite_ms")).unwrap();
    assert_eq!(
        text(newest, "final_reason"),
        "Busy Here - Monthly Minutes Exhausted"
    );
}

/// The replies of the table that leave no CDR (the source is refused before a call exists)
/// and the system CPS limit, each with its exact status line as the customer receives it.
#[test]
fn refusals_before_a_call_exists_have_their_exact_status_lines() {
    let vts = Vts::new(VTS);
    vts.add_customer("acme", "127.0.0.2");
    let port = free_port();
    vts.add_carrier("up", port, 1, "udp");
    let switch = free_port();
    let serve = vts.serve(&[format!("udp:127.0.0.1:{switch}")]);
    let status_line = |scenario: &str| {
        let (ok, err, messages) = Uac::new(scenario, at(switch))
            .source_port(free_port())
            .timeout_s(30)
            .run_traced();
        assert!(ok, "{err}\n{}", serve.log_text());
        messages
            .lines()
            .find(|l| l.starts_with("SIP/2.0 4") || l.starts_with("SIP/2.0 5"))
            .unwrap_or_else(|| panic!("no final response in\n{messages}"))
            .trim_end()
            .to_string()
    };
    assert_eq!(
        status_line("uac_expect_403.xml"),
        "SIP/2.0 403 Forbidden - IP Not Authorized"
    );
    vts.change(&["block", "add", "127.0.0.1", "--reason", "test"]);
    assert_eq!(
        status_line("uac_expect_403.xml"),
        "SIP/2.0 403 Forbidden - Blacklisted"
    );
    serve.stop();

    // The switch's CPS: 20 calls at 40 a second against 5 a second.
    let vts = Vts::new(VTS);
    vts.add_customer("acme", "127.0.0.1");
    vts.add_carrier("up", port, 1, "udp");
    vts.cli(&["settings", "set", "limits.global_max_cps", "5"]);
    let serve = vts.serve(&[format!("udp:127.0.0.1:{switch}")]);
    let carrier = Uas::new("uas_answer.xml", port).calls(20).spawn();
    let (ok, err) = Uac::new("uac_cps.xml", at(switch))
        .calls(20)
        .rate(40)
        .source_port(free_port())
        .run();
    assert!(ok, "{err}\n{}", serve.log_text());
    drop(carrier);
    serve.stop();
    let cdrs = vts.cdrs();
    let refused: Vec<&Value> = cdrs
        .iter()
        .filter(|c| int(c, "final_code") == 503)
        .collect();
    let answered = cdrs.iter().filter(|c| int(c, "final_code") == 200).count();
    assert!((5..=10).contains(&answered), "{answered} answered");
    assert_eq!(refused.len() + answered, 20);
    assert!(
        refused
            .iter()
            .all(|c| text(c, "final_reason") == "Service Unavailable - System CPS Limit")
    );
}

/// The carrier commands an operator changes routing with, seen through `vts route`: limits
/// and timers, removing prefix-list entries, disabling and enabling; bad values refused.
#[test]
fn carrier_limits_prefix_removal_and_disabling() {
    let vts = Vts::new(VTS);
    let customer = vts.add_customer("acme", "127.0.0.1").to_string();
    let a = vts.add_carrier("a", free_port(), 10, "udp").to_string();
    let b = vts.add_carrier("b", free_port(), 5, "udp").to_string();
    let route = || vts.cli(&["route", "--customer", &customer, "--number", "34911234567"]);
    let line = |out: &str, name: &str| {
        out.lines()
            .find(|l| l.contains(&format!(" {name} (#")))
            .map(str::to_string)
    };
    vts.cli(&["carrier", "deny", &a, "349", "44"]);
    assert!(line(&route(), "a").unwrap().contains("deny list"));
    vts.cli(&["carrier", "remove-deny", &a, "349"]);
    let out = route();
    assert!(line(&out, "a").unwrap().starts_with("1 "), "{out}");
    vts.cli(&[
        "carrier",
        "limits",
        &a,
        "--max-channels",
        "5",
        "--max-cps",
        "2",
        "--first-response-ms",
        "1500",
    ]);
    assert!(line(&route(), "a").unwrap().contains("channels 5, cps 2"));
    vts.cli(&["carrier", "disable", &a]);
    let out = route();
    assert!(line(&out, "a").is_none(), "{out}");
    assert!(line(&out, "b").unwrap().starts_with("1 "), "{out}");
    assert!(
        vts.cli(&["carrier", "list"])
            .lines()
            .any(|l| l.starts_with(&format!("{a} ")) && l.contains(" false "))
    );
    vts.cli(&["carrier", "enable", &a]);
    assert!(line(&route(), "a").unwrap().starts_with("1 "));
    for (args, error) in [
        (
            vec!["carrier", "limits", &a, "--max-cps", "0"],
            "a whole number from 1",
        ),
        (
            vec!["carrier", "limits", &a, "--first-response-ms", "50"],
            "100 to 60000 ms",
        ),
        (vec!["carrier", "limits", &a], "nothing to change"),
        (vec!["carrier", "disable", "999"], "no carrier with id 999"),
        (
            vec!["carrier", "remove-allow", &b, "4x"],
            "not a destination prefix",
        ),
    ] {
        let out = vts.command().args(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(error), "{args:?}: {err}");
    }
}
