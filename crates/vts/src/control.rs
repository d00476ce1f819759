//! The control socket (`DATA_DIR/vts.sock`): a running switch answers each connection with
//! its status as one JSON document; `vts status` reads it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use proxy::StatusHandle;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tracing::warn;

/// What `vts status` receives.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StatusReport {
    pub(crate) calls: u32,
    pub(crate) draining: bool,
    pub(crate) by_customer: BTreeMap<i64, u32>,
    pub(crate) by_carrier: BTreeMap<i64, u32>,
}

pub(crate) fn bind(path: &Path) -> std::io::Result<UnixListener> {
    // A socket file left by a switch that died is stale: nothing answers on it.
    if path.exists() && std::os::unix::net::UnixStream::connect(path).is_err() {
        std::fs::remove_file(path)?;
    }
    UnixListener::bind(path)
}

pub(crate) async fn serve(listener: UnixListener, status: StatusHandle) {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            continue;
        };
        let s = status.borrow().clone();
        let report = StatusReport {
            calls: s.calls,
            draining: s.draining,
            by_customer: s.by_customer.iter().map(|(k, v)| (k.0, *v)).collect(),
            by_carrier: s.by_carrier.iter().map(|(k, v)| (k.0, *v)).collect(),
        };
        let body = serde_json::to_vec(&report).unwrap_or_default();
        if let Err(e) = conn.write_all(&body).await {
            warn!(error = %e, "status reply failed");
        }
    }
}

pub(crate) async fn query(path: PathBuf) -> Result<StatusReport, String> {
    let mut conn = UnixStream::connect(&path)
        .await
        .map_err(|e| format!("no running switch answers on {} ({e})", path.display()))?;
    let mut body = Vec::new();
    conn.read_to_end(&mut body)
        .await
        .map_err(|e| e.to_string())?;
    serde_json::from_slice(&body).map_err(|e| format!("bad status reply: {e}"))
}
