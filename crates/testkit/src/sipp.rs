//! Real sipp (Debian `sip-tester`) as customers and carriers, with named arguments:
//! [`Uas`] builds a carrier, [`Uac`] a customer; both run the scenarios in `sipp/` beside
//! this crate. [`Sipp`] is a running process (killed when dropped).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The path of a scenario in `crates/testkit/sipp/`.
pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sipp")
        .join(name)
}

/// Panics with the way to install sipp when it is missing.
pub fn sipp_available() {
    let ok = Command::new("sipp").arg("-v").output().is_ok();
    assert!(
        ok,
        "sipp is not installed: run scripts/test (it installs Debian's sip-tester)"
    );
}

/// sipp on `ip:port` running `scenario_file`, its logs in `dir`.
fn sipp_command(
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

/// A carrier: answers `calls` calls (default 1) of a scenario on 127.0.0.1:`port`, then
/// exits. It answers the switch's OPTIONS probes with 200 (`-aa`), as a live carrier does.
pub struct Uas<'a> {
    scenario: &'a str,
    port: u16,
    transport: &'a str,
    calls: u32,
    trace: bool,
}

impl<'a> Uas<'a> {
    pub fn new(scenario: &'a str, port: u16) -> Uas<'a> {
        Uas {
            scenario,
            port,
            transport: "u1",
            calls: 1,
            trace: false,
        }
    }

    /// sipp's `-t`: `u1` (UDP, the default) or `t1` (TCP).
    pub fn transport(mut self, transport: &'a str) -> Self {
        self.transport = transport;
        self
    }

    /// Calls to answer before exiting.
    pub fn calls(mut self, calls: u32) -> Self {
        self.calls = calls;
        self
    }

    /// Logs every message ([`Sipp::wait_messages`] returns them).
    pub fn traced(mut self) -> Self {
        self.trace = true;
        self
    }

    pub fn spawn(self) -> Sipp {
        let dir = tempfile::tempdir().unwrap();
        let calls = self.calls.to_string();
        let mut args = vec!["-aa"];
        if self.trace {
            args.push("-trace_msg");
        }
        args.extend(["-m", &calls]);
        let child = sipp_command(
            "127.0.0.1",
            self.scenario,
            self.port,
            self.transport,
            &args,
            dir.path(),
        )
        .spawn()
        .unwrap();
        Sipp { child, dir }
    }
}

/// A customer: `calls` calls (default 1) of a scenario at `rate` a second (default 1) to
/// `target`, from `ip:source_port` (default 127.0.0.1, any port), dialling `number`.
pub struct Uac<'a> {
    scenario: &'a str,
    target: SocketAddr,
    ip: &'a str,
    transport: &'a str,
    calls: u32,
    rate: u32,
    source_port: u16,
    number: &'a str,
    timeout_s: u32,
}

impl<'a> Uac<'a> {
    pub fn new(scenario: &'a str, target: SocketAddr) -> Uac<'a> {
        Uac {
            scenario,
            target,
            ip: "127.0.0.1",
            transport: "u1",
            calls: 1,
            rate: 1,
            source_port: 0,
            number: "34911234567",
            timeout_s: 60,
        }
    }

    /// The local address to send from (`127.0.0.2`...: another customer).
    pub fn ip(mut self, ip: &'a str) -> Self {
        self.ip = ip;
        self
    }

    /// sipp's `-t`: `u1` (UDP, the default) or `t1` (TCP).
    pub fn transport(mut self, transport: &'a str) -> Self {
        self.transport = transport;
        self
    }

    pub fn calls(mut self, calls: u32) -> Self {
        self.calls = calls;
        self
    }

    /// Calls a second.
    pub fn rate(mut self, rate: u32) -> Self {
        self.rate = rate;
        self
    }

    pub fn source_port(mut self, port: u16) -> Self {
        self.source_port = port;
        self
    }

    /// The number dialled (the Request-URI user).
    pub fn number(mut self, number: &'a str) -> Self {
        self.number = number;
        self
    }

    /// sipp gives up after this long in all (default 60 s).
    pub fn timeout_s(mut self, seconds: u32) -> Self {
        self.timeout_s = seconds;
        self
    }

    /// Runs to the end: sipp's verdict (exit code 0 = every call succeeded) and its error
    /// log.
    pub fn run(self) -> (bool, String) {
        let (ok, err, _) = self.run_logged(false);
        (ok, err)
    }

    /// [`Uac::run`] with every message logged: the verdict, the error log, the messages.
    pub fn run_traced(self) -> (bool, String, String) {
        self.run_logged(true)
    }

    fn run_logged(self, trace: bool) -> (bool, String, String) {
        let dir = tempfile::tempdir().unwrap();
        let (calls, rate) = (self.calls.to_string(), self.rate.to_string());
        let (timeout, target) = (self.timeout_s.to_string(), self.target.to_string());
        let mut args = vec![
            "-s",
            self.number,
            "-m",
            &calls,
            "-r",
            &rate,
            "-timeout",
            &timeout,
        ];
        if trace {
            args.push("-trace_msg");
        }
        args.extend(["-timeout_error", &target]);
        let out: Output = sipp_command(
            self.ip,
            self.scenario,
            self.source_port,
            self.transport,
            &args,
            dir.path(),
        )
        .output()
        .unwrap();
        let messages = if trace {
            logs(dir.path(), "messages.log")
        } else {
            String::new()
        };
        (out.status.success(), errors(dir.path()), messages)
    }

    /// Starts the customer in the background with every message logged (time stamps in
    /// UTC); [`Sipp::kill_messages`] and [`Sipp::wait_messages`] return them.
    pub fn spawn_traced(self) -> Sipp {
        let dir = tempfile::tempdir().unwrap();
        let (calls, rate) = (self.calls.to_string(), self.rate.to_string());
        let (timeout, target) = (self.timeout_s.to_string(), self.target.to_string());
        let child = sipp_command(
            self.ip,
            self.scenario,
            self.source_port,
            self.transport,
            &[
                "-s",
                self.number,
                "-m",
                &calls,
                "-r",
                &rate,
                "-trace_msg",
                "-timeout",
                &timeout,
                &target,
            ],
            dir.path(),
        )
        .env("TZ", "UTC")
        .spawn()
        .unwrap();
        Sipp { child, dir }
    }
}

/// One running sipp process and its log directory.
pub struct Sipp {
    child: Child,
    dir: tempfile::TempDir,
}

impl Sipp {
    /// Stops the process and returns its message log.
    pub fn kill_messages(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        logs(self.dir.path(), "messages.log")
    }

    /// Like [`Sipp::wait`], with the message log of a traced sipp.
    pub fn wait_messages(mut self, timeout: Duration) -> (bool, String, String) {
        let (ok, err) = self.wait_ref(timeout);
        (ok, err, logs(self.dir.path(), "messages.log"))
    }

    /// Waits (bounded) for the process to exit; `true` when sipp says every call
    /// succeeded, with its error log.
    pub fn wait(mut self, timeout: Duration) -> (bool, String) {
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
