//! `vts doctor` (issue 14 §5): each line a check, each problem with what to do, a non-zero
//! exit when one fails.

use std::process::Command;

use crate::common::*;

/// `vts doctor`: (success, stdout).
fn doctor(vts: &Vts, http: &str, sip: &str, config: Option<&std::path::Path>) -> (bool, String) {
    let mut c = vts.command();
    if let Some(path) = config {
        c.arg("--config").arg(path);
    }
    let out = c
        .env("VTS_HTTP", http)
        .env("VTS_SIP", sip)
        .arg("doctor")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn line<'a>(report: &'a str, start: &str, name: &str) -> &'a str {
    report
        .lines()
        .find(|l| l.starts_with(start) && l[6..].starts_with(name))
        .unwrap_or_else(|| panic!("no {start:?} {name} line in\n{report}"))
}

#[test]
fn doctor_reports_each_check_and_fails_on_a_taken_port() {
    let vts = Vts::new(VTS);
    let http = at(free_port()).to_string();
    let sip = format!("udp:127.0.0.1:{}", free_port());
    // A fresh database: its migrations are pending (a warning, not a failure).
    let (ok, report) = doctor(&vts, &http, &sip, None);
    assert!(ok, "{report}");
    assert!(
        line(&report, "WARN", "migrations").contains("vts migrate"),
        "{report}"
    );
    vts.cli(&["migrate"]);
    let (ok, report) = doctor(&vts, &http, &sip, None);
    assert!(ok, "{report}");
    for name in ["config", "data dir", "store", "migrations", "clock", "disk"] {
        line(&report, "ok  ", name);
    }
    assert!(line(&report, "ok  ", "port").contains("free"), "{report}");

    // Another process on the HTTP port: a failure that says what to do.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_at = taken.local_addr().unwrap().to_string();
    let (ok, report) = doctor(&vts, &taken_at, &sip, None);
    assert!(!ok, "{report}");
    let port = line(&report, "FAIL", "port");
    assert!(
        port.contains(&taken_at) && port.contains("another process holds it"),
        "{port}"
    );

    // The running switch holds its own ports: fine.
    let mut running = Vts::new(VTS);
    running.http = Some(at(free_port()).to_string());
    let switch = format!("udp:127.0.0.1:{}", free_port());
    let serve = running.serve(std::slice::from_ref(&switch));
    let (ok, report) = doctor(&running, running.http.as_deref().unwrap(), &switch, None);
    assert!(ok, "{report}");
    assert!(
        line(&report, "ok  ", "port").contains("held by the running switch"),
        "{report}"
    );
    assert!(serve.stop().success());
}

#[test]
fn doctor_warns_of_a_certificate_near_its_end() {
    let vts = Vts::new(VTS);
    let cert = vts.dir.path().join("c.crt");
    let key = vts.dir.path().join("c.key");
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "3", "-subj", "/CN=vts", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success());
    let config = vts.dir.path().join("vts.toml");
    std::fs::write(
        &config,
        format!("[http]\ntls_cert = {:?}\ntls_key = {:?}\n", cert, key),
    )
    .unwrap();
    let http = at(free_port()).to_string();
    let sip = format!("udp:127.0.0.1:{}", free_port());
    let (ok, report) = doctor(&vts, &http, &sip, Some(&config));
    assert!(ok, "a warning is not a failure: {report}");
    let line = line(&report, "WARN", "certificate");
    assert!(
        line.contains("(2 days)") || line.contains("(3 days)"),
        "{line}"
    );
    assert!(line.contains("renew it"), "{line}");
}
