//! Accounting: turns the engine's call events into CDRs, rates them, and writes them to the
//! store in batches. The SIP path only sends on an unbounded channel; it never waits for
//! this task. Every event goes to the write-ahead log (`wal.rs`) before it is applied and
//! every committed batch is marked there, so a crash loses no CDR: the next start writes
//! what was not committed and closes the calls that were open. A failed database write
//! keeps the batch and retries; on shutdown every CDR is written before the task returns.

use std::path::PathBuf;
use std::time::Duration;

use domain::{CallEvent, Cdr};
use proxy::DirectorySource;
use store::Store;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::wal::{self, Wal};

/// The reason on the CDRs of calls a crash left open.
const CRASH_REASON: &str = "Closed on restart (switch stopped without ending it)";

/// Runs until the event channel closes (the switch stopped), then flushes. Returns how many
/// CDRs were written. Starts by replaying the write-ahead log in `wal_dir`.
pub(crate) async fn run(
    store: Store,
    directory: DirectorySource,
    mut events: mpsc::UnboundedReceiver<CallEvent>,
    (batch, memory_queue): (usize, usize),
    every: Duration,
    wal_dir: PathBuf,
) -> u64 {
    let (mut wal, mut pending) = match recover(&wal_dir, &directory) {
        Ok(r) => r,
        Err(e) => {
            // Without a log the switch still writes CDRs; say loudly that a crash now
            // would lose the ones in flight.
            error!(dir = %wal_dir.display(), error = %e, "write-ahead log unavailable: CDRs in flight are not crash-safe");
            (None, Vec::new())
        }
    };
    let mut builder = domain::CdrBuilder::new();
    let mut written = 0u64;
    if !pending.is_empty() {
        written += flush(&store, &mut pending, &mut wal).await.unwrap_or(0);
    }
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut batch_events: Vec<CallEvent> = Vec::with_capacity(1024);
    let mut retry = Retry::default();
    let mut syncing: Option<tokio::task::JoinHandle<()>> = None;
    // More CDRs waited than memory holds: they were dropped from memory and wait in the log
    // only; no checkpoint may run until they are written (it would drop them).
    let mut spilled = false;
    loop {
        tokio::select! {
            n = events.recv_many(&mut batch_events, 1024) => {
                if n == 0 {
                    break;
                }
                if let Some(w) = wal.as_mut()
                    && let Err(e) = w.events(&batch_events)
                {
                    error!(error = %e, "write-ahead log append failed: CDRs in flight are not crash-safe");
                }
                for e in batch_events.drain(..) {
                    if let Some(mut cdr) = builder.apply(e) {
                        // Rated at the rates in force when the call started.
                        domain::rating::rate_cdr(&mut cdr, &directory.load());
                        pending.push(cdr);
                    }
                }
                if pending.len() > memory_queue && wal.is_some() {
                    if !spilled {
                        warn!(
                            target: "vts::accounting",
                            "CDR_SPILL queued={} memory_queue={memory_queue}: CDRs now wait in the write-ahead log only",
                            pending.len()
                        );
                    }
                    pending.clear();
                    spilled = true;
                }
                if !spilled && pending.len() >= batch && retry.due() {
                    written += retry.outcome(flush(&store, &mut pending, &mut wal).await);
                }
            }
            _ = tick.tick() => {
                if let Some(w) = wal.as_mut() {
                    match w.alive(now_ms()) {
                        // One sync at a time; a slow disk skips ticks instead of queueing.
                        Ok(file) if syncing.as_ref().is_none_or(|s| s.is_finished()) => {
                            syncing = Some(tokio::task::spawn_blocking(move || {
                                if let Err(e) = file.sync_data() {
                                    error!(error = %e, "write-ahead log sync failed");
                                }
                            }));
                        }
                        Ok(_) => {}
                        Err(e) => error!(error = %e, "write-ahead log append failed"),
                    }
                }
                if spilled && retry.due() {
                    match drain_log(&store, &directory, &mut wal, batch).await {
                        Some(n) => {
                            written += retry.outcome(Some(n));
                            pending.clear();
                            spilled = false;
                            info!(cdrs = n, "CDRs waiting in the write-ahead log are written");
                        }
                        None => {
                            retry.outcome(None);
                        }
                    }
                } else if !pending.is_empty() && retry.due() {
                    written += retry.outcome(flush(&store, &mut pending, &mut wal).await);
                }
                retry.report(if spilled { memory_queue.max(QUEUE_ALERT) } else { pending.len() });
                if !spilled && wal.as_ref().is_some_and(Wal::full) {
                    let dir = wal.as_ref().map(|w| w.dir().to_path_buf()).unwrap_or_default();
                    match tokio::task::block_in_place(|| Wal::checkpoint(&dir, &builder, &pending)) {
                        Ok(w) => wal = Some(w),
                        Err(e) => error!(error = %e, "write-ahead log checkpoint failed; the segment keeps growing"),
                    }
                }
            }
        }
    }
    if builder.open_calls() > 0 {
        warn!(
            calls = builder.open_calls(),
            "calls without an end event at shutdown"
        );
    }
    if spilled {
        match drain_log(&store, &directory, &mut wal, batch).await {
            Some(n) => {
                written += n;
                pending.clear();
                spilled = false;
            }
            None => {
                // Everything is in the log: the next start writes it.
                warn!(
                    "the database is not taking CDRs: they stay in the write-ahead log for the next start"
                );
                info!(written, "accounting stopped");
                return written;
            }
        }
    }
    let mut delay = Duration::from_millis(100);
    while !pending.is_empty() {
        let before = pending.len();
        written += flush(&store, &mut pending, &mut wal).await.unwrap_or(0);
        if pending.len() == before {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
    // A clean stop leaves a log with nothing owed.
    if let Some(w) = wal.as_ref().filter(|_| !spilled)
        && let Err(e) = Wal::checkpoint(w.dir(), &builder, &pending)
    {
        warn!(error = %e, "write-ahead log: final checkpoint failed (the next start replays it)");
    }
    info!(written, "accounting stopped");
    written
}

/// Writes every CDR the log holds that is not marked committed (after a spill), in
/// batches, each marked once committed. `None` when the database refused a batch (the
/// committed ones stay marked; the next try starts after them).
async fn drain_log(
    store: &Store,
    directory: &DirectorySource,
    wal: &mut Option<Wal>,
    batch: usize,
) -> Option<u64> {
    let dir = wal.as_ref()?.dir().to_path_buf();
    let mut owed = match tokio::task::block_in_place(|| Wal::recover(&dir)) {
        Ok(r) => r.pending,
        Err(e) => {
            error!(error = %e, "cannot read the write-ahead log back");
            return None;
        }
    };
    for cdr in &mut owed {
        domain::rating::rate_cdr(cdr, &directory.load());
    }
    let mut written = 0;
    for chunk in owed.chunks(batch.max(1)) {
        let mut part = chunk.to_vec();
        written += flush(store, &mut part, wal).await?;
    }
    Some(written)
}

/// Replays the log: CDRs not committed and calls left open (closed now, at the last moment
/// the previous run was alive) become pending; then a fresh segment starts.
fn recover(
    dir: &std::path::Path,
    directory: &DirectorySource,
) -> std::io::Result<(Option<Wal>, Vec<Cdr>)> {
    let mut r = Wal::recover(dir)?;
    wal::report(&r);
    let mut pending = std::mem::take(&mut r.pending);
    let open = r.builder.open_calls();
    if let Some(last) = r.last_ms {
        pending.extend(r.builder.close_all(last, CRASH_REASON));
    }
    for cdr in &mut pending {
        if cdr.cost.is_none() && cdr.price.is_none() {
            domain::rating::rate_cdr(cdr, &directory.load());
        }
    }
    if !pending.is_empty() || open > 0 {
        warn!(
            cdrs = pending.len(),
            open_calls = open,
            "write-ahead log: writing what the previous run had not (calls it left open are closed)"
        );
    }
    let wal = Wal::checkpoint(dir, &domain::CdrBuilder::new(), &pending)?;
    Ok((Some(wal), pending))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// While the database refuses writes: when to try again (100 ms, doubling to 5 s), and the
/// queue alert.
#[derive(Debug, Default)]
struct Retry {
    at: Option<tokio::time::Instant>,
    delay: Duration,
    last_report: Option<tokio::time::Instant>,
}

/// CDRs waiting for the database past which the log says so (every 10 s): every one of them
/// is in the write-ahead log, so nothing is lost, but an operator must know.
const QUEUE_ALERT: usize = 100_000;

impl Retry {
    fn due(&self) -> bool {
        self.at.is_none_or(|t| tokio::time::Instant::now() >= t)
    }

    /// Counts a flush: `None` (failed) pushes the next try back.
    fn outcome(&mut self, written: Option<u64>) -> u64 {
        match written {
            Some(n) => {
                if self.at.take().is_some() {
                    info!("CDR writes are going through again");
                }
                self.delay = Duration::ZERO;
                n
            }
            None => {
                self.delay =
                    (self.delay * 2).clamp(Duration::from_millis(100), Duration::from_secs(5));
                self.at = Some(tokio::time::Instant::now() + self.delay);
                0
            }
        }
    }

    fn report(&mut self, queued: usize) {
        let now = tokio::time::Instant::now();
        if queued >= QUEUE_ALERT
            && self
                .last_report
                .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(10))
        {
            self.last_report = Some(now);
            error!(
                target: "vts::accounting",
                "CDR_QUEUE queued={queued} alert_at={QUEUE_ALERT}: the database is not taking CDRs (all are in the write-ahead log)"
            );
        }
    }
}

/// Writes the pending CDRs; on success marks them committed in the log, clears them and
/// returns how many there were.
async fn flush(store: &Store, pending: &mut Vec<Cdr>, wal: &mut Option<Wal>) -> Option<u64> {
    match store.insert_cdrs(pending).await {
        Ok(_) => {
            if let Some(w) = wal.as_mut()
                && let Err(e) = w.committed(pending)
            {
                // Not fatal: a replay writes them again and the insert skips them.
                warn!(error = %e, "write-ahead log: cannot mark CDRs committed");
            }
            let n = pending.len() as u64;
            pending.clear();
            Some(n)
        }
        Err(e) => {
            error!(error = %e, queued = pending.len(), "CDR write failed; will retry");
            None
        }
    }
}
