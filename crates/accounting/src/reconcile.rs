//! Reconciliation: calls seen (the per-minute counts `seen.rs` keeps beside the write-ahead
//! log) against CDRs stored, for one UTC day. A call seen has its CDR stored, or waiting in
//! the write-ahead log (built and not yet written, or still in progress); anything else is
//! a lost CDR. This module computes; `vts cdr reconcile` prints.

use std::collections::BTreeMap;
use std::path::Path;

use domain::Zone;
use store::{Store, StoreError};

use crate::{seen, wal};

/// Why a reconciliation could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("{0}")]
    Day(domain::Invalid),
    #[error("cannot read the calls seen: {0}")]
    Seen(std::io::Error),
    #[error("cannot read the write-ahead log: {0}")]
    Log(std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One day's calls seen against CDRs stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciliation {
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    pub seen: i64,
    pub stored: i64,
    /// CDRs built and in the log, not yet in the database.
    pub waiting: i64,
    /// Calls of the day in progress (or left open by a crash) in the log.
    pub open: i64,
    /// Per hour of the day (0 to 23): calls seen, CDRs stored.
    pub hours: BTreeMap<i64, (i64, i64)>,
    /// The minutes (from midnight) where the two differ: seen, stored.
    pub differing_minutes: Vec<(i64, i64, i64)>,
}

impl Reconciliation {
    /// Calls seen with no CDR stored or waiting (negative: CDRs stored with no call counted,
    /// as when they were stored before the counts began).
    pub fn missing(&self) -> i64 {
        self.seen - self.stored - self.waiting - self.open
    }
}

/// Reconciles `day` (today, UTC, when `None`) for the switch whose data directory is
/// `data_dir`.
pub async fn reconcile(
    store: &Store,
    data_dir: &Path,
    day: Option<String>,
) -> Result<Reconciliation, ReconcileError> {
    let now_ms = domain::now_ms();
    let day = day.unwrap_or_else(|| Zone::utc().date(now_ms));
    let from = Zone::utc().start_of(&day).map_err(ReconcileError::Day)?;
    let until = from + 86_400_000;
    // The counts first: every call in them is in the log by then (or committed and trimmed).
    let seen = seen::read_day(&data_dir.join("seen"), &day).map_err(ReconcileError::Seen)?;
    // Then what the log still holds for the day, then the database: in that order, a CDR
    // committed meanwhile is counted twice (reported, harmless), never missed.
    let wal_dir = data_dir.join("wal");
    let (mut waiting, mut open) = (0i64, 0i64);
    if wal_dir.is_dir() {
        let r = read_log(&wal_dir)?;
        let in_day = |ms: i64| (from..until).contains(&ms);
        let ids: Vec<String> = r
            .pending
            .iter()
            .filter(|c| in_day(c.invite_ms))
            .map(|c| c.id.clone())
            .collect();
        let written = store.stored_cdr_ids(&ids).await?;
        waiting = ids.iter().filter(|id| !written.contains(*id)).count() as i64;
        open = r
            .builder
            .drafts()
            .iter()
            .filter(|(_, cdr, _)| in_day(cdr.invite_ms))
            .count() as i64;
    }
    let stored = store.cdrs_per_minute(from, until).await?;
    // Per hour, then the minutes that differ.
    let mut hours: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    let mut minutes: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for (&m, &n) in &seen {
        hours.entry((m * 60_000 - from) / 3_600_000).or_default().0 += n as i64;
        minutes.entry(m).or_default().0 += n as i64;
    }
    for (&m, &n) in &stored {
        hours.entry((m * 60_000 - from) / 3_600_000).or_default().1 += n;
        minutes.entry(m).or_default().1 += n;
    }
    Ok(Reconciliation {
        day,
        seen: seen.values().map(|&n| n as i64).sum(),
        stored: stored.values().sum(),
        waiting,
        open,
        hours,
        differing_minutes: minutes
            .iter()
            .filter(|(_, (s, c))| s != c)
            .map(|(m, (s, c))| ((m * 60_000 - from) / 60_000, *s, *c))
            .collect(),
    })
}

/// Reads a live log: a checkpoint of the running switch may delete a segment between the
/// listing and the opening; then the read starts again (a few times).
fn read_log(dir: &Path) -> Result<wal::Recovered, ReconcileError> {
    let mut tries = 0;
    loop {
        match wal::Wal::recover(dir) {
            Ok(r) => return Ok(r),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && tries < 5 => tries += 1,
            Err(e) => return Err(ReconcileError::Log(e)),
        }
    }
}
