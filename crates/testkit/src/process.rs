//! The real switch as a process: a data directory with the `vts` CLI pointed at it
//! ([`Vts`]), and a running `vts serve` ([`Serve`]) with waiters for what it does (status,
//! configuration versions, CDRs, log lines), so that tests await events instead of
//! sleeping. Every wait is bounded.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// An address on loopback (`127.0.0.1:port`).
pub fn at(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A free loopback port for both UDP and TCP (bound and released; loopback only).
pub fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A data directory and the CLI pointed at it.
pub struct Vts {
    /// The `vts` binary under test (`env!("CARGO_BIN_EXE_vts")` in the test crate).
    pub binary: PathBuf,
    pub dir: tempfile::TempDir,
    /// `--db` for every command (PostgreSQL tests); the data directory's SQLite otherwise.
    pub db: Option<String>,
    /// Extra environment for every command.
    pub env: Vec<(String, String)>,
    /// `serve --http` (`127.0.0.1:PORT`); `None`: `--http off`, so that parallel tests do not
    /// meet on the default port.
    pub http: Option<String>,
}

impl Vts {
    /// A fresh data directory for the `vts` binary at `binary`.
    pub fn new(binary: impl Into<PathBuf>) -> Vts {
        Vts {
            binary: binary.into(),
            dir: tempfile::tempdir().unwrap(),
            db: None,
            env: Vec::new(),
            http: None,
        }
    }

    /// A `vts` command on this data directory (and database), with the caller's
    /// environment variables for the switch removed.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--data-dir").arg(self.dir.path());
        if let Some(db) = &self.db {
            c.arg("--db").arg(db);
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c.env_remove("VTS_SIP")
            .env_remove("VTS_HTTP")
            .env_remove("VTS_DB")
            .env_remove("VTS_DATA_DIR");
        c
    }

    /// Runs a CLI command; panics with its stderr when it fails; returns stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = self.command().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "vts {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `vts customer add` with one IP; the new id.
    pub fn add_customer(&self, name: &str, ip: &str) -> i64 {
        self.cli(&["customer", "add", "--name", name, "--ip", ip])
            .trim()
            .parse()
            .unwrap()
    }

    /// `vts carrier add` on loopback; the new id.
    pub fn add_carrier(&self, name: &str, port: u16, priority: i32, transport: &str) -> i64 {
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
    pub fn serve(&self, listen: &[String]) -> Serve {
        let mut c = self.command();
        c.arg("serve");
        for l in listen {
            c.arg("--sip").arg(l);
        }
        c.arg("--http").arg(self.http.as_deref().unwrap_or("off"));
        self.spawn_serve(c)
    }

    /// Spawns a `vts serve` command prepared by the caller (from [`Vts::command`]), its
    /// stderr in `serve.log`, and waits for its ready line.
    pub fn spawn_serve(&self, mut c: Command) -> Serve {
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
    pub fn status(&self) -> Value {
        serde_json::from_str(&self.cli(&["status", "--format", "json"])).unwrap()
    }

    /// Waits (bounded: 30 s) until the running switch's status satisfies `ready`: the event
    /// to await instead of sleeping.
    pub fn await_status(&self, what: &str, ready: impl Fn(&Value) -> bool) {
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
    pub fn config_version(&self) -> i64 {
        self.status()["config_version"].as_i64().unwrap()
    }

    /// The versions of the configuration and of the block list the running switch uses.
    pub fn versions(&self) -> (i64, i64) {
        let s = self.status();
        (
            s["config_version"].as_i64().unwrap(),
            s["blocklist_version"].as_i64().unwrap(),
        )
    }

    /// Runs a CLI change (of the configuration or the block list) and waits (bounded) until
    /// the running switch uses it: the event to await instead of sleeping.
    pub fn change(&self, args: &[&str]) {
        let before = self.versions();
        self.cli(args);
        self.await_versions(&format!("vts {args:?}"), |v| v != before);
    }

    /// Waits (bounded: 5 s) until the versions the running switch uses pass `done`; returns
    /// them.
    pub fn await_versions(&self, what: &str, done: impl Fn((i64, i64)) -> bool) -> (i64, i64) {
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

    /// Every CDR in the store (`vts cdr list --format json`), newest first.
    pub fn cdrs(&self) -> Vec<Value> {
        let out = self.cli(&["cdr", "list", "--limit", "100000", "--format", "json"]);
        serde_json::from_str(&out).unwrap()
    }

    /// Waits (bounded by `timeout`) until the store holds at least `n` CDRs; returns them.
    pub fn await_cdrs(&self, n: usize, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let cdrs = self.cdrs();
            if cdrs.len() >= n {
                return cdrs;
            }
            assert!(
                Instant::now() < deadline,
                "{} CDRs of {n} within {timeout:?}",
                cdrs.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A running `vts serve` (killed when dropped).
pub struct Serve {
    pub child: Child,
    /// Its stderr (the log).
    pub log: PathBuf,
    /// From spawn to the ready line.
    pub ready_after: Duration,
}

impl Serve {
    /// SIGTERM, then wait (bounded: 60 s) for the exit (every CDR is written by then).
    pub fn stop(mut self) -> std::process::ExitStatus {
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

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: the process dies where it stands (no drain, no flush).
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Waits (bounded) for the `n`th log line containing `needle`: the event to await.
    pub fn await_log(&self, needle: &str, n: usize, timeout: Duration) {
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
