//! Local security (docs/SECURITY.md, "Local security") through the real `vts` binary: the
//! database password never in `--help`, a private data directory and control socket, a
//! control connection that sends nothing is closed, and a panic on the SIP thread ends the
//! process with an error.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use crate::common::*;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// `VTS_DB` may hold a password; clap prints env values in `--help` unless told not to.
#[test]
fn help_never_prints_the_database_password() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["cdr", "list", "--help"],
    ] {
        let out = std::process::Command::new(VTS)
            .args(args)
            .env("VTS_DB", "postgres://u:secret@h/db")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{args:?}");
        assert!(text.contains("--db"), "{args:?}: {text}");
        assert!(
            !text.contains("secret"),
            "{args:?} shows the password:\n{text}"
        );
    }
}

/// The data directory is 0700 and everything the switch writes in it 0600 — even when the
/// directory already existed with a looser mode; a control connection that sends no command
/// is closed after its timeout; the switch's own user gets its status.
#[test]
fn the_data_directory_and_control_socket_are_private() {
    let vts = Vts::new(VTS);
    std::fs::set_permissions(vts.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    vts.add_customer("acme", "127.0.0.1");
    let serve = vts.serve(&[format!("udp:127.0.0.1:{}", free_port())]);
    let dir = vts.dir.path();
    assert_eq!(mode(dir), 0o700);
    assert_eq!(mode(&dir.join("vts.sock")), 0o600);
    for f in ["vts.db", "vts.db-wal", "vts.db-shm"] {
        // (SQLite removes its -wal and -shm files when its last connection closes.)
        if f == "vts.db" || dir.join(f).exists() {
            assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
        }
    }
    // Accounting opens its log beside the ready line: wait for its first segment.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_dir(dir.join("wal")).map_or(true, |mut d| d.next().is_none()) {
        assert!(Instant::now() < deadline, "no write-ahead log segment");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(mode(&dir.join("wal")), 0o700);
    for e in std::fs::read_dir(dir.join("wal")).unwrap() {
        assert_eq!(mode(&e.unwrap().path()), 0o600);
    }
    // Silent for longer than the timeout: the switch closes the connection.
    let mut conn = std::os::unix::net::UnixStream::connect(dir.join("vts.sock")).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let started = Instant::now();
    let mut body = Vec::new();
    conn.read_to_end(&mut body).unwrap();
    assert!(body.is_empty());
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "closed after {took:?}");
    // The same user is answered.
    assert!(vts.status()["calls"].is_number());
    assert_eq!(vts.status()["cdr_quarantined"], 0);
    assert_eq!(vts.status()["cdr_log_failed"], false);
    let status = serve.stop();
    assert!(status.success(), "{status:?}");
}

/// A panic on the SIP thread (forced here by a switch that only debug builds read) ends the
/// process with a non-zero exit, so that systemd restarts it; today the process stayed up
/// with no SIP engine. The CDR path still stops cleanly.
#[test]
fn a_panic_on_the_sip_thread_exits_non_zero() {
    let mut vts = Vts::new(VTS);
    vts.env.push(("VTS_DEBUG_PANIC_SIP".into(), "1".into()));
    vts.add_customer("acme", "127.0.0.1");
    let mut serve = vts.serve(&[format!("udp:127.0.0.1:{}", free_port())]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = serve.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running after the SIP thread panicked:\n{}",
            serve.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success(), "{status:?}");
    let log = serve.log_text();
    assert!(log.contains("the SIP thread panicked"), "{log}");
    assert!(log.contains("accounting stopped"), "{log}");
}
