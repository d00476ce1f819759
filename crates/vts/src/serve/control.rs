//! The control socket (`DATA_DIR/vts.sock`): a running switch reads one command line per
//! connection — `status` (answered with one JSON document) or `reset-latency` (starts the
//! latency histograms again, for benchmark steps).

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use cluster::{BalanceSource, DirectorySource, StatusHandle};
use proxy::{GuardReport, Guards};
use serde::{Deserialize, Serialize};
use telemetry::latency::{Latency, Summary};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tracing::warn;

/// What `vts status` receives.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StatusReport {
    pub(crate) calls: u32,
    pub(crate) draining: bool,
    /// The configuration version of the snapshot the switch is using.
    pub(crate) config_version: i64,
    /// The block-list version of the snapshot the switch is using (a list of its own:
    /// blocks do not reload the configuration).
    #[serde(default)]
    pub(crate) blocklist_version: i64,
    pub(crate) by_customer: BTreeMap<i64, u32>,
    pub(crate) by_carrier: BTreeMap<i64, u32>,
    /// Each active carrier's health from the OPTIONS probes: up, suspect or down.
    #[serde(default)]
    pub(crate) health: BTreeMap<i64, String>,
    /// Balances admission uses, of billed customers (decimal).
    #[serde(default)]
    pub(crate) balances: BTreeMap<i64, String>,
    /// The switch's protective bounds (docs/SECURITY.md): times each cap was reached,
    /// what was dropped or refused, and how much of each bounded resource is in use.
    #[serde(default)]
    pub(crate) guards: GuardsReport,
    /// CDRs the database refused, kept in `DATA_DIR/quarantine` (`vts cdr quarantine`).
    #[serde(default)]
    pub(crate) cdr_quarantined: u64,
    /// The write-ahead log is failing: new calls are refused (`CDR_LOG_FAILED`).
    #[serde(default)]
    pub(crate) cdr_log_failed: bool,
    /// Arrival to forwarding of initial INVITEs, in microseconds.
    pub(crate) invite_latency: LatencyReport,
    /// Arrival to forwarding of responses, in microseconds.
    pub(crate) reply_latency: LatencyReport,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct GuardsReport {
    pub(crate) caps_reached: BTreeMap<String, u64>,
    pub(crate) counters: BTreeMap<String, u64>,
    pub(crate) in_use: BTreeMap<String, u64>,
}

impl From<GuardReport> for GuardsReport {
    fn from(r: GuardReport) -> Self {
        GuardsReport {
            caps_reached: r
                .caps
                .into_iter()
                .map(|(c, n)| (c.as_str().to_string(), n))
                .collect(),
            counters: r
                .counters
                .into_iter()
                .map(|(c, n)| (c.as_str().to_string(), n))
                .collect(),
            in_use: r
                .gauges
                .into_iter()
                .map(|(g, n)| (g.as_str().to_string(), n))
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct LatencyReport {
    pub(crate) count: u64,
    pub(crate) p50_us: f64,
    pub(crate) p90_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) p999_us: f64,
    pub(crate) max_us: f64,
}

impl From<Summary> for LatencyReport {
    fn from(s: Summary) -> Self {
        LatencyReport {
            count: s.count,
            p50_us: s.p50_us,
            p90_us: s.p90_us,
            p99_us: s.p99_us,
            p999_us: s.p999_us,
            max_us: s.max_us,
        }
    }
}

/// How long a control connection may take to send its command line.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) fn bind(path: &Path) -> std::io::Result<UnixListener> {
    // A socket file left by a switch that died is stale: nothing answers on it.
    if path.exists() && std::os::unix::net::UnixStream::connect(path).is_err() {
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    // Only the switch's user (and root) may talk to it; the 0700 data directory already
    // keeps others out of the moment between bind and this.
    std::fs::set_permissions(
        path,
        std::fs::Permissions::from_mode(accounting::files::FILE_MODE),
    )?;
    Ok(listener)
}

/// Whether a peer of uid `peer` may use the control socket of a switch running as `own`:
/// the same user, or root.
fn peer_allowed(peer: u32, own: u32) -> bool {
    peer == own || peer == 0
}

/// The uid this process runs as: the owner of what it just created (std has no getuid
/// without `unsafe`).
fn own_uid(path: &Path) -> std::io::Result<u32> {
    Ok(std::fs::metadata(path)?.uid())
}

/// Accept errors (EMFILE, ENFILE, ENOBUFS…) are retried after a pause that doubles from
/// 100 ms to 1 s, logged at most once a second: a full descriptor table must not make the
/// loop spin on a core or flood the log.
#[derive(Debug)]
struct Backoff {
    delay: Duration,
    log: proxy::guard::Throttle,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(1);

    fn new() -> Backoff {
        Backoff {
            delay: Duration::ZERO,
            log: proxy::guard::Throttle::new(Duration::from_secs(1)),
        }
    }

    /// The pause after an error (and logs it, at most once a second).
    fn failed(&mut self, e: &std::io::Error) -> Duration {
        self.delay = (self.delay * 2).clamp(Self::FIRST, Self::MAX);
        if let Some(held) = self.log.allow() {
            warn!(error = %e, retry_ms = self.delay.as_millis() as u64, held_back = held, "control socket: accept failed");
        }
        self.delay
    }

    fn ok(&mut self) {
        self.delay = Duration::ZERO;
    }
}

pub(crate) async fn serve(
    listener: UnixListener,
    status: StatusHandle,
    latency: Latency,
    (directory, balances): (DirectorySource, BalanceSource),
    guards: Guards,
    cdr: accounting::CdrState,
) {
    let own = listener
        .local_addr()
        .ok()
        .and_then(|a| a.as_pathname().map(Path::to_path_buf))
        .and_then(|p| own_uid(&p).ok());
    let mut backoff = Backoff::new();
    loop {
        let conn = match listener.accept().await {
            Ok((conn, _)) => {
                backoff.ok();
                conn
            }
            Err(e) => {
                tokio::time::sleep(backoff.failed(&e)).await;
                continue;
            }
        };
        match (conn.peer_cred(), own) {
            (Ok(cred), Some(own)) if peer_allowed(cred.uid(), own) => {}
            (cred, _) => {
                warn!(
                    peer_uid = cred.ok().map(|c| c.uid()),
                    "control socket: a connection from another user refused"
                );
                continue;
            }
        }
        let (status, latency, directory, balances, guards, cdr) = (
            status.clone(),
            latency.clone(),
            directory.clone(),
            balances.clone(),
            guards.clone(),
            cdr.clone(),
        );
        tokio::spawn(async move {
            let sources = (&directory, &balances, &guards, &cdr);
            match tokio::time::timeout(READ_TIMEOUT, answer(conn, &status, &latency, sources)).await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => warn!(error = %e, "control socket"),
                Err(_) => warn!("control socket: a connection sent no command in time; closed"),
            }
        });
    }
}

async fn answer(
    mut conn: UnixStream,
    status: &StatusHandle,
    latency: &Latency,
    (directory, balances, guards, cdr): (
        &DirectorySource,
        &BalanceSource,
        &Guards,
        &accounting::CdrState,
    ),
) -> std::io::Result<()> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.len() < 64 && conn.read(&mut byte).await? == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    match line.as_slice() {
        b"reset-latency" => {
            latency.reset();
            conn.write_all(b"{}").await
        }
        b"status" | b"" => {
            let s = status.borrow().clone();
            let (invite, reply) = latency.summaries();
            let report = StatusReport {
                calls: s.calls,
                draining: s.draining,
                config_version: directory.load().version,
                blocklist_version: directory.blocklist_version(),
                by_customer: s.by_customer.iter().map(|(k, v)| (k.0, *v)).collect(),
                by_carrier: s.by_carrier.iter().map(|(k, v)| (k.0, *v)).collect(),
                health: s.health.iter().map(|(k, v)| (k.0, v.to_string())).collect(),
                balances: {
                    let d = directory.load();
                    d.customers()
                        .filter(|c| c.billing != domain::BillingMode::Off)
                        .map(|c| (c.id.0, balances.get(c.id).to_string()))
                        .collect()
                },
                guards: guards.report().into(),
                cdr_quarantined: cdr.quarantined(),
                cdr_log_failed: cdr.log_failed(),
                invite_latency: invite.into(),
                reply_latency: reply.into(),
            };
            conn.write_all(&serde_json::to_vec(&report).unwrap_or_default())
                .await
        }
        other => {
            conn.write_all(
                format!("unknown command {:?}", String::from_utf8_lossy(other)).as_bytes(),
            )
            .await
        }
    }
}

/// Sends one command and returns the reply.
pub(crate) async fn request(path: PathBuf, command: &str) -> Result<Vec<u8>, String> {
    let mut conn = UnixStream::connect(&path)
        .await
        .map_err(|e| format!("no running switch answers on {} ({e})", path.display()))?;
    conn.write_all(format!("{command}\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut body = Vec::new();
    conn.read_to_end(&mut body)
        .await
        .map_err(|e| e.to_string())?;
    Ok(body)
}

pub(crate) async fn query(path: PathBuf) -> Result<StatusReport, String> {
    let body = request(path, "status").await?;
    serde_json::from_slice(&body).map_err(|e| format!("bad status reply: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_switch_user_and_root_are_answered() {
        assert!(peer_allowed(1000, 1000));
        assert!(peer_allowed(0, 1000), "root");
        assert!(!peer_allowed(1001, 1000));
        assert!(
            !peer_allowed(65534, 0),
            "nobody, of a switch running as root"
        );
    }

    /// Accept errors back off from 100 ms, doubling to 1 s, and a success starts again.
    #[test]
    fn accept_errors_back_off_to_a_second() {
        let mut b = Backoff::new();
        let e = std::io::Error::from_raw_os_error(24); // EMFILE
        let delays: Vec<u64> = (0..6).map(|_| b.failed(&e).as_millis() as u64).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        b.ok();
        assert_eq!(b.failed(&e), Duration::from_millis(100));
    }
}
