//! Test harness: a real `vts serve` process on loopback with its own data directory, the
//! `vts` CLI against the same directory, and real sipp (Debian `sip-tester`) processes as
//! customer and carriers, driven by the scenarios in `tests/sipp/`.

#![allow(dead_code)] // the flood binary uses part of the harness

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub(crate) const VTS: &str = env!("CARGO_BIN_EXE_vts");

pub(crate) fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
}

/// The switch's address on loopback.
pub(crate) fn at(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A free loopback port for both UDP and TCP (bound and released; loopback only).
pub(crate) fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A data directory and the CLI pointed at it.
pub(crate) struct Vts {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) db: Option<String>,
    pub(crate) env: Vec<(String, String)>,
}

impl Vts {
    pub(crate) fn new() -> Vts {
        Vts {
            dir: tempfile::tempdir().unwrap(),
            db: None,
            env: Vec::new(),
        }
    }

    pub(crate) fn command(&self) -> Command {
        let mut c = Command::new(VTS);
        c.arg("--data-dir").arg(self.dir.path());
        if let Some(db) = &self.db {
            c.arg("--db").arg(db);
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c.env_remove("VTS_SIP")
            .env_remove("VTS_DB")
            .env_remove("VTS_DATA_DIR");
        c
    }

    /// Runs a CLI command; panics with its stderr when it fails; returns stdout.
    pub(crate) fn cli(&self, args: &[&str]) -> String {
        let out = self.command().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "vts {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub(crate) fn add_customer(&self, name: &str, ip: &str) -> i64 {
        self.cli(&["customer", "add", "--name", name, "--ip", ip])
            .trim()
            .parse()
            .unwrap()
    }

    pub(crate) fn add_carrier(&self, name: &str, port: u16, priority: i32, transport: &str) -> i64 {
        let port = port.to_string();
        let prio = priority.to_string();
        self.cli(&[
            "carrier",
            "add",
            "--name",
            name,
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--priority",
            &prio,
            "--transport",
            transport,
        ])
        .trim()
        .parse()
        .unwrap()
    }

    /// Starts `vts serve` on the given listen specs and waits for its ready line.
    pub(crate) fn serve(&self, listen: &[String]) -> Serve {
        let mut c = self.command();
        c.arg("serve");
        for l in listen {
            c.arg("--sip").arg(l);
        }
        let log = self.dir.path().join("serve.log");
        let mut child = c
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(
            line.starts_with("vts: ready on"),
            "vts serve did not start: {line:?}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Serve {
            child,
            log,
            ready_after: started.elapsed(),
        }
    }

    /// The running switch's status (`vts status --format json`).
    pub(crate) fn status(&self) -> Value {
        serde_json::from_str(&self.cli(&["status", "--format", "json"])).unwrap()
    }

    /// Waits (bounded) until the running switch's status satisfies `ready`: the event to
    /// await instead of sleeping.
    pub(crate) fn await_status(&self, what: &str, ready: impl Fn(&Value) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = self.status();
            if ready(&status) {
                return;
            }
            assert!(Instant::now() < deadline, "never {what}: {status}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The configuration version the running switch is using.
    pub(crate) fn config_version(&self) -> i64 {
        self.status()["config_version"].as_i64().unwrap()
    }

    /// The versions of the configuration and of the block list the running switch uses.
    pub(crate) fn versions(&self) -> (i64, i64) {
        let s = self.status();
        (
            s["config_version"].as_i64().unwrap(),
            s["blocklist_version"].as_i64().unwrap(),
        )
    }

    /// Runs a CLI change (of the configuration or the block list) and waits (bounded) until
    /// the running switch uses it: the event to await instead of sleeping.
    pub(crate) fn change(&self, args: &[&str]) {
        let before = self.versions();
        self.cli(args);
        self.await_versions(&format!("vts {args:?}"), |v| v != before);
    }

    /// Waits (bounded: 5 s) until the versions the running switch uses pass `done`; returns
    /// them.
    pub(crate) fn await_versions(
        &self,
        what: &str,
        done: impl Fn((i64, i64)) -> bool,
    ) -> (i64, i64) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let v = self.versions();
            if done(v) {
                return v;
            }
            assert!(Instant::now() < deadline, "{what} never reached the switch");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn cdrs(&self) -> Vec<Value> {
        let out = self.cli(&["cdr", "list", "--limit", "100000", "--format", "json"]);
        serde_json::from_str(&out).unwrap()
    }
}

/// A running `vts serve`.
pub(crate) struct Serve {
    pub(crate) child: Child,
    pub(crate) log: PathBuf,
    pub(crate) ready_after: Duration,
}

impl Serve {
    /// SIGTERM, then wait for the exit (every CDR is written by then).
    pub(crate) fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "vts serve did not stop:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: the process dies where it stands (no drain, no flush).
    pub(crate) fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Waits (bounded) for the `n`th log line containing `needle`: the event to await.
    pub(crate) fn await_log(&self, needle: &str, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.log_text().matches(needle).count() < n {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} (#{n}) in the log within {timeout:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One sipp process.
pub(crate) struct Sipp {
    child: Child,
    dir: tempfile::TempDir,
}

pub(crate) fn sipp_available() {
    let ok = Command::new("sipp").arg("-v").output().is_ok();
    assert!(
        ok,
        "sipp is not installed: run scripts/test (it installs Debian's sip-tester)"
    );
}

fn sipp_command(
    scenario_file: &str,
    port: u16,
    transport: &str,
    extra: &[&str],
    dir: &Path,
) -> Command {
    sipp_command_at("127.0.0.1", scenario_file, port, transport, extra, dir)
}

fn sipp_command_at(
    ip: &str,
    scenario_file: &str,
    port: u16,
    transport: &str,
    extra: &[&str],
    dir: &Path,
) -> Command {
    sipp_available();
    let mut c = Command::new("sipp");
    c.current_dir(dir)
        .arg("-sf")
        .arg(scenario(scenario_file))
        .args([
            "-i",
            ip,
            "-p",
            &port.to_string(),
            "-t",
            transport,
            "-nostdin",
            "-trace_err",
        ])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

impl Sipp {
    /// A carrier: answers `calls` calls with `scenario_file`, then exits.
    pub(crate) fn uas(scenario_file: &str, port: u16, transport: &str, calls: u32) -> Sipp {
        let dir = tempfile::tempdir().unwrap();
        let calls = calls.to_string();
        // -aa: answer the switch's OPTIONS probes with 200, as a live carrier does.
        let child = sipp_command(
            scenario_file,
            port,
            transport,
            &["-aa", "-m", &calls],
            dir.path(),
        )
        .spawn()
        .unwrap();
        Sipp { child, dir }
    }

    /// A carrier like [`Sipp::uas`] that also logs every message it sees
    /// ([`Sipp::wait_messages`] returns them).
    pub(crate) fn uas_traced(scenario_file: &str, port: u16, transport: &str, calls: u32) -> Sipp {
        let dir = tempfile::tempdir().unwrap();
        let calls = calls.to_string();
        let child = sipp_command(
            scenario_file,
            port,
            transport,
            &["-aa", "-trace_msg", "-m", &calls],
            dir.path(),
        )
        .spawn()
        .unwrap();
        Sipp { child, dir }
    }

    /// A customer running in the background with every message logged (time stamps in
    /// UTC): `calls` calls at `rate` a second to `target`.
    pub(crate) fn uac_traced_background(
        scenario_file: &str,
        target: SocketAddr,
        calls: u32,
        rate: u32,
        source_port: u16,
    ) -> Sipp {
        let dir = tempfile::tempdir().unwrap();
        let (calls, rate, target) = (calls.to_string(), rate.to_string(), target.to_string());
        let child = sipp_command(
            scenario_file,
            source_port,
            "u1",
            &[
                "-s",
                "34911234567",
                "-m",
                &calls,
                "-r",
                &rate,
                "-trace_msg",
                "-timeout",
                "120",
                &target,
            ],
            dir.path(),
        )
        .env("TZ", "UTC")
        .spawn()
        .unwrap();
        Sipp { child, dir }
    }

    /// Stops the process and returns its message log.
    pub(crate) fn kill_messages(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        logs(self.dir.path(), "messages.log")
    }

    /// Like [`Sipp::wait`], with the message log of a traced carrier.
    pub(crate) fn wait_messages(mut self, timeout: Duration) -> (bool, String, String) {
        let (ok, err) = self.wait_ref(timeout);
        (ok, err, logs(self.dir.path(), "messages.log"))
    }

    /// Waits for the process to exit; `true` when sipp says every call succeeded.
    pub(crate) fn wait(mut self, timeout: Duration) -> (bool, String) {
        self.wait_ref(timeout)
    }

    fn wait_ref(&mut self, timeout: Duration) -> (bool, String) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status.success(), errors(self.dir.path()));
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                return (
                    false,
                    format!("sipp timed out\n{}", errors(self.dir.path())),
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn errors(dir: &Path) -> String {
    logs(dir, "errors.log")
}

/// sipp's log files in `dir` whose names end with `suffix`, concatenated.
fn logs(dir: &Path, suffix: &str) -> String {
    let mut s = String::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.file_name().to_string_lossy().ends_with(suffix) {
            s += &std::fs::read_to_string(e.path()).unwrap_or_default();
        }
    }
    s
}

/// A customer: runs `calls` calls of `scenario_file` at `rate` per second against `target`
/// and returns sipp's verdict (exit code 0 = all calls succeeded) and its error log.
pub(crate) fn uac(
    scenario_file: &str,
    target: SocketAddr,
    transport: &str,
    calls: u32,
    rate: u32,
    source_port: u16,
) -> (bool, String) {
    uac_number(
        scenario_file,
        target,
        transport,
        calls,
        rate,
        source_port,
        "34911234567",
    )
}

/// One call of `scenario_file` (a single INVITE) with every message logged: sipp's verdict,
/// its error log and the messages.
pub(crate) fn uac_traced(
    scenario_file: &str,
    target: SocketAddr,
    source_port: u16,
) -> (bool, String, String) {
    run_uac(
        scenario_file,
        target,
        UacRun {
            source_port,
            trace: true,
            timeout_s: 30,
            ..UacRun::default()
        },
    )
}

/// [`uac`] from another loopback address (`127.0.0.2`...), as a second customer.
pub(crate) fn uac_from(
    ip: &str,
    scenario_file: &str,
    target: SocketAddr,
    calls: u32,
    rate: u32,
    source_port: u16,
) -> (bool, String) {
    let (ok, err, _) = run_uac(
        scenario_file,
        target,
        UacRun {
            ip,
            calls,
            rate,
            source_port,
            ..UacRun::default()
        },
    );
    (ok, err)
}

/// [`uac`] dialling `number`.
pub(crate) fn uac_number(
    scenario_file: &str,
    target: SocketAddr,
    transport: &str,
    calls: u32,
    rate: u32,
    source_port: u16,
    number: &str,
) -> (bool, String) {
    let (ok, err, _) = run_uac(
        scenario_file,
        target,
        UacRun {
            transport,
            calls,
            rate,
            source_port,
            number,
            ..UacRun::default()
        },
    );
    (ok, err)
}

/// [`uac`] for runs longer than a minute: sipp gives up after `timeout_s` in all.
pub(crate) fn uac_long(
    scenario_file: &str,
    target: SocketAddr,
    calls: u32,
    rate: u32,
    source_port: u16,
    timeout_s: u32,
) -> (bool, String) {
    let (ok, err, _) = run_uac(
        scenario_file,
        target,
        UacRun {
            calls,
            rate,
            source_port,
            timeout_s,
            ..UacRun::default()
        },
    );
    (ok, err)
}

/// How a customer sipp runs.
struct UacRun<'a> {
    ip: &'a str,
    transport: &'a str,
    calls: u32,
    rate: u32,
    source_port: u16,
    number: &'a str,
    /// sipp gives up after this long in all.
    timeout_s: u32,
    /// Log every message (returned).
    trace: bool,
}

impl Default for UacRun<'_> {
    fn default() -> Self {
        UacRun {
            ip: "127.0.0.1",
            transport: "u1",
            calls: 1,
            rate: 1,
            source_port: 0,
            number: "34911234567",
            timeout_s: 60,
            trace: false,
        }
    }
}

/// Runs a customer to its end: sipp's verdict, its error log, its message log (when traced).
fn run_uac(scenario_file: &str, target: SocketAddr, run: UacRun<'_>) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (calls, rate) = (run.calls.to_string(), run.rate.to_string());
    let (timeout, target) = (run.timeout_s.to_string(), target.to_string());
    let mut args = vec![
        "-s", run.number, "-m", &calls, "-r", &rate, "-timeout", &timeout,
    ];
    if run.trace {
        args.push("-trace_msg");
    }
    args.extend(["-timeout_error", &target]);
    let out: Output = sipp_command_at(
        run.ip,
        scenario_file,
        run.source_port,
        run.transport,
        &args,
        dir.path(),
    )
    .output()
    .unwrap();
    let messages = if run.trace {
        logs(dir.path(), "messages.log")
    } else {
        String::new()
    };
    (out.status.success(), errors(dir.path()), messages)
}

/// A raw SIP endpoint on a loopback address: sends text, reads datagrams.
pub(crate) struct Raw {
    sock: UdpSocket,
}

impl Raw {
    pub(crate) fn bind(ip: &str) -> Raw {
        let sock = UdpSocket::bind((ip, 0)).unwrap();
        Raw { sock }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }

    pub(crate) fn send(&self, to: SocketAddr, msg: &str) {
        // SIP wants CRLF; the scenarios below are written with \n.
        let wire = msg.replace("\r\n", "\n").replace('\n', "\r\n");
        self.sock.send_to(wire.as_bytes(), to).unwrap();
    }

    /// The next datagram within `timeout`, if any.
    pub(crate) fn recv(&self, timeout: Duration) -> Option<String> {
        self.sock.set_read_timeout(Some(timeout)).unwrap();
        let mut buf = vec![0u8; 65536];
        match self.sock.recv_from(&mut buf) {
            Ok((n, _)) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(_) => None,
        }
    }

    /// The first datagram within `timeout` whose first line contains `start` (others are
    /// skipped: provisional responses, retransmissions).
    pub(crate) fn expect(&self, start: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no {start:?} within {timeout:?}");
            if let Some(m) = self.recv(left)
                && m.lines().next().is_some_and(|l| l.contains(start))
            {
                return m;
            }
        }
    }

    /// Every datagram that arrives within `window` (a bounded wait for an absence).
    pub(crate) fn drain(&self, window: Duration) -> Vec<String> {
        let deadline = Instant::now() + window;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return out;
            }
            match self.recv(left) {
                Some(m) => out.push(m),
                None => return out,
            }
        }
    }
}

/// The value of the first header `name` of a message.
pub(crate) fn header<'a>(msg: &'a str, name: &str) -> &'a str {
    msg.lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then_some(v.trim())
        })
        .unwrap_or_else(|| panic!("no {name} in\n{msg}"))
}

pub(crate) fn tag_of(value: &str) -> &str {
    value
        .split(";tag=")
        .nth(1)
        .map(|t| t.split(';').next().unwrap_or(t))
        .unwrap_or_else(|| panic!("no tag in {value}"))
}
