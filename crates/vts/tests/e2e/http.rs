//! The HTTP server of `vts serve` (issue 14 §1–2): health and readiness, `/metrics` checked
//! by promtool and counted against real sipp calls, the scrape token, a port already taken,
//! and HTTPS from a self-signed pair made here, reloaded on SIGHUP while a connection opened
//! before the reload keeps working.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;
use testkit::http;

/// The value of the sample `series` (name and labels exactly as rendered) in `text`.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

/// promtool's verdict on a scrape (its lint findings included).
fn promtool(text: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is not installed: run scripts/test (it installs Debian's prometheus)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn health_readiness_and_metrics_count_real_calls() {
    health_and_metrics(Vts::new(VTS));
}

#[test]
fn health_readiness_and_metrics_count_real_calls_on_postgres() {
    let Some(vts) = postgres_vts("http_metrics") else {
        return;
    };
    health_and_metrics(vts);
}

fn health_and_metrics(mut vts: Vts) {
    const CALLS: u32 = 20;
    let web = at(free_port());
    vts.http = Some(web.to_string());
    vts.add_customer("acme", "127.0.0.1");
    let carrier_port = free_port();
    let carrier = vts.add_carrier("up", carrier_port, 1, "udp");
    let switch = free_port();
    let serve = vts.serve(&[format!("udp:127.0.0.1:{switch}")]);

    let h = http::get(web, "/healthz", &[]);
    assert_eq!((h.status, h.body.as_str()), (200, r#"{"status":"ok"}"#));
    let r = http::get(web, "/readyz", &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body,
        r#"{"status":"ready","checks":{"cdr_log":"ok","sip":"ok","store":"ok"}}"#
    );

    let uas = Uas::new("uas_answer.xml", carrier_port)
        .calls(CALLS)
        .spawn();
    let (ok, err) = Uac::new("uac_call.xml", at(switch))
        .calls(CALLS)
        .rate(10)
        .source_port(free_port())
        .run();
    assert!(ok, "{err}");
    assert!(uas.wait(Duration::from_secs(30)).0);
    vts.await_cdrs(CALLS as usize, Duration::from_secs(30));
    // The CDRs are in the store; the counter of written CDRs moves at the same commit.
    let m = http::get(web, "/metrics", &[]);
    assert_eq!(m.status, 200);
    assert_eq!(
        m.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let (valid, findings) = promtool(&m.body);
    assert!(valid, "promtool check metrics:\n{findings}\n{}", m.body);
    let n = f64::from(CALLS);
    let text = &m.body;
    assert_eq!(
        sample(text, r#"vts_sip_requests_received_total{method="INVITE"}"#),
        n
    );
    assert_eq!(sample(text, "vts_calls_offered_total"), n);
    assert_eq!(sample(text, "vts_calls_answered_total"), n);
    assert_eq!(
        sample(
            text,
            &format!(r#"vts_carrier_attempts_total{{carrier="{carrier}"}}"#)
        ),
        n
    );
    assert_eq!(
        sample(
            text,
            &format!(r#"vts_carrier_answers_total{{carrier="{carrier}"}}"#)
        ),
        n
    );
    assert_eq!(sample(text, "vts_cdrs_written_total"), n);
    assert_eq!(sample(text, "vts_invite_seconds_count"), n);
    assert_eq!(sample(text, "vts_calls_in_progress"), 0.0);
    assert_eq!(
        sample(text, r#"vts_sip_requests_received_total{method="BYE"}"#),
        n,
        "sipp's customer hangs up every call"
    );
    assert!(!text.contains("127.0.0.1"), "no address is a label");

    assert_eq!(http::get(web, "/nothing", &[]).status, 404);
    assert!(serve.stop().success());
}

#[test]
fn a_refused_call_is_counted_by_reason() {
    let mut vts = Vts::new(VTS);
    let web = at(free_port());
    vts.http = Some(web.to_string());
    // No customer at 127.0.0.1: the INVITE is refused as ip_not_authorized.
    let switch = free_port();
    let serve = vts.serve(&[format!("udp:127.0.0.1:{switch}")]);
    let (ok, err) = Uac::new("uac_expect_403.xml", at(switch))
        .source_port(free_port())
        .run();
    assert!(ok, "{err}");
    let text = http::get(web, "/metrics", &[]).body;
    assert_eq!(
        sample(
            &text,
            r#"vts_admission_refusals_total{reason="ip_not_authorized"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(&text, r#"vts_admission_refusals_total{reason="no_routes"}"#),
        0.0,
        "every reason has its series from the start"
    );
    assert_eq!(
        sample(&text, r#"vts_sip_replies_sent_total{class="4xx"}"#),
        1.0
    );
    assert!(serve.stop().success());
}

#[test]
fn the_scrape_token_guards_metrics_only() {
    let mut vts = Vts::new(VTS);
    let web = at(free_port());
    vts.http = Some(web.to_string());
    vts.env.push((
        "VTS_HTTP_METRICS_TOKEN".into(),
        "scrape-token-of-this-test".into(),
    ));
    let serve = vts.serve(&[format!("udp:127.0.0.1:{}", free_port())]);
    let denied = http::get(web, "/metrics", &[]);
    assert_eq!(denied.status, 401);
    assert_eq!(
        denied.header("www-authenticate"),
        Some(r#"Bearer realm="metrics""#)
    );
    assert_eq!(
        http::get(
            web,
            "/metrics",
            &["Authorization: Bearer wrong-token-xxxxxxxx"]
        )
        .status,
        401
    );
    let ok = http::get(
        web,
        "/metrics",
        &["Authorization: Bearer scrape-token-of-this-test"],
    );
    assert_eq!(ok.status, 200);
    assert!(ok.body.contains("vts_calls_in_progress 0"));
    assert_eq!(http::get(web, "/healthz", &[]).status, 200);
    assert!(
        !serve.log_text().contains("scrape-token-of-this-test"),
        "the token is never logged"
    );
    assert!(serve.stop().success());
}

#[test]
fn an_http_port_in_use_stops_the_start_with_its_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let vts = Vts::new(VTS);
    let out = vts
        .command()
        .args(["serve", "--sip", &format!("udp:127.0.0.1:{}", free_port())])
        .args(["--http", &addr.to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("http listen {addr}")) && err.contains("in use"),
        "{err}"
    );
    let bad = vts
        .command()
        .args(["serve", "--http", "localhost:80"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("or off"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

/// A self-signed certificate for 127.0.0.1 and its key, written as PEM to `dir`.
fn self_signed(dir: &std::path::Path, name: &str) -> (String, String) {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", &format!("/CN={name}"), "-addext"])
        .args(["subjectAltName=IP:127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is not installed: run scripts/test");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        cert.to_string_lossy().into_owned(),
        key.to_string_lossy().into_owned(),
    )
}

/// `curl --cacert CA https://ADDR/healthz`: the body, or curl's error.
fn curl_https(addr: std::net::SocketAddr, ca: &str) -> Result<String, String> {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert", ca])
        .arg(format!("https://{addr}/healthz"))
        .output()
        .expect("curl is not installed: run scripts/test");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn https_from_pem_files_reloads_on_sighup_without_dropping_connections() {
    let mut vts = Vts::new(VTS);
    let web = at(free_port());
    vts.http = Some(web.to_string());
    let (cert, key) = self_signed(vts.dir.path(), "first");
    let config = vts.dir.path().join("vts.toml");
    std::fs::write(
        &config,
        format!("[http]\ntls_cert = {cert:?}\ntls_key = {key:?}\n"),
    )
    .unwrap();
    // A copy of the first pair: the switch's files are overwritten below.
    let first_ca = vts.dir.path().join("first-ca.crt");
    std::fs::copy(&cert, &first_ca).unwrap();
    let first_ca = first_ca.to_string_lossy().into_owned();
    let serve = {
        let mut c = vts.command();
        c.arg("--config").arg(&config).arg("serve");
        c.args(["--sip", &format!("udp:127.0.0.1:{}", free_port())]);
        c.args(["--http", &web.to_string()]);
        vts.spawn_serve(c)
    };
    assert_eq!(curl_https(web, &first_ca).unwrap(), r#"{"status":"ok"}"#);
    assert!(
        !plain_http_answers(web),
        "plain HTTP gets no answer on an HTTPS port"
    );

    // A connection opened before the reload, idle until after it.
    let mut early = Command::new("openssl")
        .args(["s_client", "-quiet", "-connect", &web.to_string()])
        .args(["-CAfile", &first_ca, "-verify_return_error"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The handshake is done once s_client prints nothing and the server has the connection:
    // a request through it proves both, later.
    let (second_cert, second_key) = self_signed(vts.dir.path(), "second");
    std::fs::copy(&second_cert, &cert).unwrap();
    std::fs::copy(&second_key, &key).unwrap();
    let pid = serve.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    serve.await_log("HTTPS certificate is reloaded", 1, Duration::from_secs(10));
    assert_eq!(
        curl_https(web, &second_cert).unwrap(),
        r#"{"status":"ok"}"#,
        "new connections get the new certificate"
    );
    let refused = curl_https(web, &first_ca).unwrap_err();
    assert!(refused.contains("certificate"), "{refused}");
    let mut stdin = early.stdin.take().unwrap();
    stdin
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    early
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut reply)
        .unwrap();
    let _ = early.wait();
    assert!(
        reply.starts_with("HTTP/1.1 200") && reply.ends_with(r#"{"status":"ok"}"#),
        "the connection opened before the reload still works: {reply:?}"
    );

    // A pair that does not load leaves the working one in place.
    std::fs::write(&key, "not a key").unwrap();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    serve.await_log(
        "HTTPS certificate is not reloaded",
        1,
        Duration::from_secs(10),
    );
    assert_eq!(curl_https(web, &second_cert).unwrap(), r#"{"status":"ok"}"#);
    assert!(serve.stop().success());
}

/// Whether a plain-HTTP request to `addr` gets an HTTP response.
fn plain_http_answers(addr: std::net::SocketAddr) -> bool {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    buf.starts_with(b"HTTP/1.1 200")
}
