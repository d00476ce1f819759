//! `vts doctor`: checks what a start needs and what a running switch depends on, one line
//! each, every problem with what to do about it; exits non-zero when any check fails.
//! Nothing is changed (no migration is applied, no file written but a probe in the data
//! directory, removed at once).

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::time::Duration;

use domain::Transport;
use store::Store;

use crate::config::{Settings, redact};
use crate::serve::control;

/// A check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Ok(String),
    /// Works now, but needs attention soon.
    Warn(String),
    Fail(String),
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Check {
    pub(crate) name: &'static str,
    pub(crate) verdict: Verdict,
}

/// Free space below this fails the disk check; below [`DISK_WARN`] it warns.
const DISK_FAIL: u64 = 100 * 1024 * 1024;
const DISK_WARN: u64 = 1024 * 1024 * 1024;
/// A certificate expiring sooner than this warns.
const CERT_WARN_DAYS: i64 = 14;
/// The database's clock may differ from ours by this much.
const CLOCK_SKEW_MS: i64 = 2_000;

pub(crate) async fn run(settings: &Settings) -> crate::error::Result {
    let checks = checks(settings).await;
    let mut failed = 0;
    for c in &checks {
        let (mark, text) = match &c.verdict {
            Verdict::Ok(t) => ("ok  ", t),
            Verdict::Warn(t) => ("WARN", t),
            Verdict::Fail(t) => {
                failed += 1;
                ("FAIL", t)
            }
        };
        println!("{mark}  {:<12} {text}", c.name);
    }
    if failed > 0 {
        return Err(format!("{failed} check(s) failed").into());
    }
    Ok(())
}

/// Every check, in order.
pub(crate) async fn checks(settings: &Settings) -> Vec<Check> {
    let mut out = vec![Check {
        name: "config",
        verdict: Verdict::Ok("read (file, environment and flags agree)".into()),
    }];
    out.push(data_dir(&settings.data_dir));
    let store = match tokio::time::timeout(Duration::from_secs(5), Store::connect(&settings.db_url))
        .await
    {
        Ok(Ok(s)) => {
            out.push(ok(
                "store",
                format!("{} reachable", redact(&settings.db_url)),
            ));
            Some(s)
        }
        Ok(Err(e)) => {
            out.push(fail(
                "store",
                format!(
                    "{}: {e}: check --db / VTS_DB and that the database server runs",
                    redact(&settings.db_url)
                ),
            ));
            None
        }
        Err(_) => {
            out.push(fail(
                "store",
                format!(
                    "{}: no answer within 5 s: is the server up and reachable?",
                    redact(&settings.db_url)
                ),
            ));
            None
        }
    };
    if let Some(store) = &store {
        out.push(migrations(store).await);
    }
    out.extend(ports(settings).await);
    out.push(clock(store.as_ref()).await);
    if let Some(tls) = settings.http.as_ref().and_then(|h| h.tls.as_ref()) {
        out.push(certificate(&tls.cert, domain::now_ms()));
    }
    out.push(disk(&settings.data_dir, settings));
    out
}

fn ok(name: &'static str, text: impl Into<String>) -> Check {
    Check {
        name,
        verdict: Verdict::Ok(text.into()),
    }
}

fn warn(name: &'static str, text: impl Into<String>) -> Check {
    Check {
        name,
        verdict: Verdict::Warn(text.into()),
    }
}

fn fail(name: &'static str, text: impl Into<String>) -> Check {
    Check {
        name,
        verdict: Verdict::Fail(text.into()),
    }
}

/// The data directory exists (or can be made) and takes a file.
fn data_dir(dir: &Path) -> Check {
    if let Err(e) = std::fs::create_dir_all(dir) {
        return fail(
            "data dir",
            format!("{}: {e}: create it, or set --data-dir", dir.display()),
        );
    }
    let probe = dir.join(".doctor-probe");
    match std::fs::write(&probe, b"probe") {
        Ok(()) => {
            let _ = std::fs::remove_file(&probe);
            ok("data dir", format!("{} writable", dir.display()))
        }
        Err(e) => fail(
            "data dir",
            format!(
                "{}: {e}: the switch writes its CDR log there; fix its owner or mode",
                dir.display()
            ),
        ),
    }
}

async fn migrations(store: &Store) -> Check {
    match store.pending_migrations().await {
        Ok(p) if p.is_empty() => ok("migrations", "all applied"),
        Ok(p) => warn(
            "migrations",
            format!(
                "{} pending ({}): `vts migrate` applies them (every command does)",
                p.len(),
                p.iter()
                    .map(|(v, d)| format!("{v} {d}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        Err(e) => fail("migrations", format!("cannot read them: {e}")),
    }
}

/// The SIP and HTTP addresses can be bound, or are held by the running switch.
async fn ports(settings: &Settings) -> Vec<Check> {
    let running = control::query(settings.control_socket()).await.is_ok();
    let mut out = Vec::new();
    let mut addrs: Vec<(String, Transport, SocketAddr)> = settings
        .listen
        .iter()
        .map(|l| (format!("sip {l}"), l.transport, l.addr))
        .collect();
    if let Some(h) = &settings.http {
        addrs.push((format!("http {}", h.listen), Transport::Tcp, h.listen));
    }
    for (what, transport, addr) in addrs {
        let bound = match transport {
            Transport::Udp => UdpSocket::bind(addr).map(drop),
            Transport::Tcp => TcpListener::bind(addr).map(drop),
        };
        out.push(match bound {
            Ok(()) => ok("port", format!("{what} free")),
            Err(_) if running => ok("port", format!("{what} held by the running switch")),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => fail(
                "port",
                format!("{what}: {e}: ports below 1024 need CAP_NET_BIND_SERVICE (deploy/systemd/vts.service)"),
            ),
            Err(e) => fail(
                "port",
                format!("{what}: {e}: another process holds it (ss -lntup), or change the address"),
            ),
        });
    }
    out
}

/// The clock is past this build, and (PostgreSQL) agrees with the database server's.
async fn clock(store: Option<&Store>) -> Check {
    let now = domain::now_ms();
    // 2026-01-01: a clock before it is wrong.
    if now < 1_767_225_600_000 {
        return fail(
            "clock",
            "the system clock is in the past: set it (NTP: systemd-timesyncd or chrony)",
        );
    }
    if let Some(store) = store
        && let Ok(Some(db)) = store.database_now_ms().await
    {
        let skew = db - now;
        if skew.abs() > CLOCK_SKEW_MS {
            return fail(
                "clock",
                format!(
                    "differs from the database server's by {skew} ms: CDR times would disagree; run NTP on both"
                ),
            );
        }
        return ok(
            "clock",
            format!("agrees with the database server's ({skew:+} ms)"),
        );
    }
    ok("clock", "set (no database clock to compare with)")
}

/// The HTTPS certificate reads and is not near its end.
pub(crate) fn certificate(path: &Path, now_ms: i64) -> Check {
    let pem = match std::fs::read(path) {
        Ok(p) => p,
        Err(e) => return fail("certificate", format!("{}: {e}", path.display())),
    };
    let not_after = match x509_parser::pem::parse_x509_pem(&pem) {
        Ok((_, pem)) => match pem.parse_x509() {
            Ok(cert) => cert.validity().not_after.timestamp(),
            Err(e) => {
                return fail(
                    "certificate",
                    format!("{}: not a certificate: {e}", path.display()),
                );
            }
        },
        Err(e) => return fail("certificate", format!("{}: not PEM: {e}", path.display())),
    };
    let days = (not_after * 1000 - now_ms).div_euclid(86_400_000);
    let when = jiff::Timestamp::from_second(not_after)
        .map_or_else(|_| not_after.to_string(), |t| t.to_string());
    if days < 0 {
        fail(
            "certificate",
            format!(
                "{} expired on {when}: renew it, then `systemctl reload vts` (SIGHUP)",
                path.display()
            ),
        )
    } else if days < CERT_WARN_DAYS {
        warn(
            "certificate",
            format!(
                "{} expires on {when} ({days} days): renew it, then SIGHUP",
                path.display()
            ),
        )
    } else {
        ok(
            "certificate",
            format!("{} valid until {when} ({days} days)", path.display()),
        )
    }
}

/// Free space where the CDR log, the database (SQLite) and the traces live.
fn disk(dir: &Path, settings: &Settings) -> Check {
    let free = match nix::sys::statvfs::statvfs(dir) {
        Ok(s) => s.blocks_available().saturating_mul(s.fragment_size()),
        Err(e) => return fail("disk", format!("{}: {e}", dir.display())),
    };
    let need = settings.cdr_log_max_bytes
        + settings.traces.map_or(0, |t| {
            if settings.db_url.starts_with("sqlite") {
                t.max_bytes
            } else {
                0
            }
        });
    let gib = |b: u64| b as f64 / (1024.0 * 1024.0 * 1024.0);
    let text = format!("{:.1} GiB free in {}", gib(free), dir.display());
    if free < DISK_FAIL {
        fail(
            "disk",
            format!("{text}: the CDR log may stop (new calls refused); free space"),
        )
    } else if free < DISK_WARN.max(need) {
        warn(
            "disk",
            format!(
                "{text}, less than the CDR log and traces may take ({:.1} GiB): free space or lower cdr.log_max_mb / trace.max_mb",
                gib(need)
            ),
        )
    } else {
        ok("disk", text)
    }
}
