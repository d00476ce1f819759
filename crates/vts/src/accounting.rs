//! Accounting: turns the engine's call events into CDRs, rates them, and writes them to the
//! store in batches. The SIP path only sends on an unbounded channel; it never waits for
//! this task. Every event goes to the write-ahead log (`wal.rs`) before it is applied and
//! every committed batch is marked there, so a crash loses no CDR: the next start writes
//! what was not committed and closes the calls that were open. A failed database write
//! keeps the batch and retries; on shutdown every CDR is written before the task returns.

use std::path::PathBuf;
use std::time::Duration;

use domain::{CallEvent, Cdr};
use proxy::{AccountingGate, BalanceSource, DirectorySource};
use store::Store;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::seen::Seen;
use crate::wal::{self, Wal};

/// The reason on the CDRs of calls a crash left open.
const CRASH_REASON: &str = "Closed on restart (switch stopped without ending it)";

/// Where CDRs go: the store, and the balances whose held charges a commit releases.
#[derive(Clone)]
pub(crate) struct Sink {
    pub(crate) store: Store,
    pub(crate) balances: BalanceSource,
    /// Closed while the log is at its bound.
    pub(crate) gate: AccountingGate,
}

/// A database write running beside the event loop, so that appends to the log never wait
/// for the database.
enum Job {
    /// A batch of CDRs held in memory.
    Flush(Vec<Cdr>),
    /// Every CDR of the log not marked committed (after a spill).
    Drain,
}

/// What a write did: the CDRs committed (to mark in the log), those not written (a failed
/// flush's batch, to keep), and whether everything went through.
struct Done {
    job_was_drain: bool,
    committed: Vec<Cdr>,
    unwritten: Vec<Cdr>,
    ok: bool,
}

impl Job {
    fn spawn(
        self,
        sink: &Sink,
        directory: &DirectorySource,
        wal_dir: Option<PathBuf>,
        batch: usize,
    ) -> tokio::task::JoinHandle<Done> {
        let (sink, directory) = (sink.clone(), directory.clone());
        tokio::spawn(async move {
            match self {
                Job::Flush(cdrs) => {
                    let ok = write(&sink, &cdrs).await;
                    let (committed, unwritten) = if ok {
                        (cdrs, Vec::new())
                    } else {
                        (Vec::new(), cdrs)
                    };
                    Done {
                        job_was_drain: false,
                        committed,
                        unwritten,
                        ok,
                    }
                }
                Job::Drain => {
                    let (committed, ok) = match wal_dir {
                        Some(dir) => drain_log(&sink, &directory, dir, batch).await,
                        None => (Vec::new(), false),
                    };
                    Done {
                        job_was_drain: true,
                        committed,
                        unwritten: Vec::new(),
                        ok,
                    }
                }
            }
        })
    }
}

/// Runs until the event channel closes (the switch stopped), then flushes. Returns how many
/// CDRs were written. Starts by replaying the write-ahead log in `wal_dir`.
///
/// One loop owns the log and the CDR builder: it appends every event before applying it,
/// syncs the log each tick, and starts database writes as tasks of their own (one at a
/// time), marking what they committed when they finish. A slow or absent database never
/// holds up the log.
/// How much accounting holds: CDRs per database write, CDRs in memory while the database
/// is away, and the write-ahead log's bound on disk.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) batch: usize,
    pub(crate) memory_queue: usize,
    pub(crate) log_max_bytes: u64,
}

pub(crate) async fn run(
    sink: Sink,
    directory: DirectorySource,
    mut events: mpsc::UnboundedReceiver<CallEvent>,
    limits: Limits,
    every: Duration,
    wal_dir: PathBuf,
) -> u64 {
    let mut seen = Seen::new(wal_dir.with_file_name("seen"));
    let (mut wal, mut pending) = match recover(&wal_dir, &directory, &mut seen) {
        Ok(r) => r,
        Err(e) => {
            // Without a log the switch still writes CDRs; say loudly that a crash now
            // would lose the ones in flight.
            error!(dir = %wal_dir.display(), error = %e, "write-ahead log unavailable: CDRs in flight are not crash-safe");
            (None, Vec::new())
        }
    };
    let Limits {
        batch,
        memory_queue,
        log_max_bytes,
    } = limits;
    // A checkpoint trims the log at 64 MiB, or at half the bound when that is smaller.
    let checkpoint_at = wal::SEGMENT_BYTES.min(log_max_bytes / 2);
    let mut builder = domain::CdrBuilder::new();
    let mut written = 0u64;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut batch_events: Vec<CallEvent> = Vec::with_capacity(1024);
    let mut retry = Retry::default();
    let mut syncing: Option<tokio::task::JoinHandle<()>> = None;
    let mut job: Option<tokio::task::JoinHandle<Done>> = None;
    // CDRs in the running flush (they count against the memory queue too).
    let mut in_job = 0usize;
    // More CDRs waited than memory holds: they were dropped from memory and wait in the log
    // only; no checkpoint may run until they are written (it would drop them).
    let mut spilled = false;
    // A spill happened while a drain was reading the log: it may have missed those CDRs.
    let mut spilled_again = false;
    let wal_path = wal.as_ref().map(|w| w.dir().to_path_buf());
    // A part batch waits for the next tick (CDRs replayed at start go at once).
    let mut flush_due = true;
    let mut ticks = 0u32;
    loop {
        // Start a write when none is running and one is due.
        if job.is_none() && retry.due() {
            if spilled {
                // (Every append is handed to the kernel at once: the reader sees it.)
                spilled_again = false;
                job = Some(Job::Drain.spawn(&sink, &directory, wal_path.clone(), batch));
            } else if !pending.is_empty() && (pending.len() >= batch || flush_due) {
                flush_due = false;
                let cdrs: Vec<Cdr> = std::mem::take(&mut pending);
                in_job = cdrs.len();
                job = Some(Job::Flush(cdrs).spawn(&sink, &directory, None, batch));
            }
        }
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
                    if let CallEvent::Started { at_ms, .. } = &e {
                        seen.add(*at_ms);
                    }
                    if let Some(mut cdr) = builder.apply(e) {
                        // Rated at the rates in force when the call started.
                        domain::rating::rate_cdr(&mut cdr, &directory.load());
                        pending.push(cdr);
                    }
                }
                if pending.len() + in_job > memory_queue && wal.is_some() {
                    if !spilled {
                        warn!(
                            target: "vts::accounting",
                            "CDR_SPILL queued={} memory_queue={memory_queue}: CDRs now wait in the write-ahead log only",
                            pending.len() + in_job
                        );
                    }
                    pending.clear();
                    spilled = true;
                    spilled_again = true;
                }
            }
            done = async { job.as_mut().expect("guarded").await }, if job.is_some() => {
                job = None;
                in_job = 0;
                let Ok(done) = done else {
                    // Its CDRs are in the log only now: drain them from there (no
                    // checkpoint may drop them meanwhile).
                    error!("a CDR write task failed; its CDRs will be read back from the write-ahead log");
                    spilled = true;
                    retry.outcome(None);
                    continue;
                };
                let ok = done.ok;
                written += settle(done, &mut wal, &mut pending, &mut spilled, spilled_again);
                written += retry.outcome(ok.then_some(0));
            }
            _ = tick.tick() => {
                flush_due = true;
                ticks = ticks.wrapping_add(1);
                if ticks.is_multiple_of(SEEN_EVERY) {
                    flush_seen(&mut seen, &mut wal);
                }
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
                retry.report(if spilled { memory_queue.max(QUEUE_ALERT) } else { pending.len() + in_job });
                if !spilled
                    && job.is_none()
                    && wal
                        .as_ref()
                        .is_some_and(|w| w.due(checkpoint_at, builder.open_calls() + pending.len()))
                {
                    let dir = wal.as_ref().map(|w| w.dir().to_path_buf()).unwrap_or_default();
                    let owed = (&builder, pending.as_slice(), seen.pending());
                    match tokio::task::block_in_place(|| Wal::checkpoint(&dir, owed)) {
                        Ok(w) => wal = Some(w),
                        Err(e) => error!(error = %e, "write-ahead log checkpoint failed; the segment keeps growing"),
                    }
                }
                gate(&sink, wal.as_ref(), log_max_bytes);
            }
        }
    }
    if builder.open_calls() > 0 {
        warn!(
            calls = builder.open_calls(),
            "calls without an end event at shutdown"
        );
    }
    // The write in progress finishes first.
    if let Some(j) = job.take() {
        match j.await {
            Ok(done) => {
                written += settle(done, &mut wal, &mut pending, &mut spilled, spilled_again)
            }
            Err(_) => spilled = true,
        }
    }
    if spilled {
        let (committed, ok) = match wal_path.clone() {
            Some(dir) => drain_log(&sink, &directory, dir, batch).await,
            None => (Vec::new(), false),
        };
        written += mark_committed(&mut wal, &committed);
        if !ok {
            // Everything is in the log: the next start writes it.
            warn!(
                "the database is not taking CDRs: they stay in the write-ahead log for the next start"
            );
            info!(written, "accounting stopped");
            return written;
        }
        pending.clear();
        spilled = false;
    }
    let mut delay = Duration::from_millis(100);
    while !pending.is_empty() {
        let cdrs = pending.clone();
        if write(&sink, &cdrs).await {
            written += mark_committed(&mut wal, &cdrs);
            pending.clear();
        } else {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
    // A clean stop leaves a log with nothing owed.
    // (Counts not written go into the fresh segment, to be written at the next start.)
    flush_seen(&mut seen, &mut wal);
    if let Some(w) = wal.as_ref().filter(|_| !spilled)
        && let Err(e) = Wal::checkpoint(w.dir(), (&builder, &pending, seen.pending()))
    {
        warn!(error = %e, "write-ahead log: final checkpoint failed (the next start replays it)");
    }
    info!(written, "accounting stopped");
    written
}

/// Takes in what a finished write did: marks its CDRs committed; a drain's CDRs leave the
/// memory queue (and a complete drain ends the spill unless another spill happened while
/// it read the log); a failed flush's batch goes back to the front of the queue unless the
/// queue has spilled meanwhile (then they are in the log only). Returns how many it wrote.
fn settle(
    done: Done,
    wal: &mut Option<Wal>,
    pending: &mut Vec<Cdr>,
    spilled: &mut bool,
    spilled_again: bool,
) -> u64 {
    let written = mark_committed(wal, &done.committed);
    if done.job_was_drain {
        let ids: std::collections::HashSet<&str> =
            done.committed.iter().map(|c| c.id.as_str()).collect();
        pending.retain(|c| !ids.contains(c.id.as_str()));
        if done.ok {
            *spilled = spilled_again;
            info!(
                cdrs = written,
                "CDRs waiting in the write-ahead log are written"
            );
        }
    } else if !done.ok && !*spilled {
        let mut back = done.unwritten;
        back.append(pending);
        *pending = back;
    }
    written
}

/// Closes the gate for new calls while the log is at its bound, opens it when a
/// checkpoint has trimmed it (the waiting CDRs written).
fn gate(sink: &Sink, wal: Option<&Wal>, max: u64) {
    let Some(w) = wal else { return };
    let full = w.bytes() >= max;
    if full == sink.gate.is_full() {
        return;
    }
    sink.gate.set_full(full);
    if full {
        error!(
            target: "vts::accounting",
            "CDR_LOG_FULL bytes={} max={max}: new calls are refused (503) until the database takes the waiting CDRs",
            w.bytes()
        );
    } else {
        warn!(
            target: "vts::accounting",
            "CDR_LOG_OK bytes={} max={max}: the write-ahead log is below its bound; calls are taken again",
            w.bytes()
        );
    }
}

/// Calls-seen counts reach their files every this many ticks (a second).
const SEEN_EVERY: u32 = 5;

/// Writes the calls-seen counts and marks the log; whether every call so far is counted.
fn flush_seen(seen: &mut Seen, wal: &mut Option<Wal>) -> bool {
    if seen.is_empty() {
        return true;
    }
    match tokio::task::block_in_place(|| seen.flush()) {
        Ok(()) => {
            if let Some(w) = wal.as_mut()
                && let Err(e) = w.seen_flushed()
            {
                // Without the mark a crash counts these calls twice at the next start.
                error!(error = %e, "write-ahead log: cannot mark the calls-seen counts written");
            }
            true
        }
        Err(e) => {
            error!(error = %e, "calls-seen counts not written (vts cdr reconcile will miss them); will retry");
            false
        }
    }
}

/// Marks CDRs committed in the log; returns how many.
fn mark_committed(wal: &mut Option<Wal>, cdrs: &[Cdr]) -> u64 {
    if cdrs.is_empty() {
        return 0;
    }
    if let Some(w) = wal.as_mut()
        && let Err(e) = w.committed(cdrs)
    {
        // Not fatal: a replay writes them again and the insert skips them.
        warn!(error = %e, "write-ahead log: cannot mark CDRs committed");
    }
    cdrs.len() as u64
}

/// Writes every CDR the log holds that is not marked committed (after a spill), in
/// batches. Returns the CDRs committed (the caller marks them) and whether all were.
async fn drain_log(
    sink: &Sink,
    directory: &DirectorySource,
    dir: PathBuf,
    batch: usize,
) -> (Vec<Cdr>, bool) {
    let owed = match tokio::task::spawn_blocking(move || Wal::recover(&dir)).await {
        Ok(Ok(r)) => r.pending,
        Ok(Err(e)) => {
            error!(error = %e, "cannot read the write-ahead log back");
            return (Vec::new(), false);
        }
        Err(_) => return (Vec::new(), false),
    };
    let mut committed = Vec::with_capacity(owed.len());
    for chunk in owed.chunks(batch.max(1)) {
        let mut part = chunk.to_vec();
        for cdr in &mut part {
            domain::rating::rate_cdr(cdr, &directory.load());
        }
        if !write(sink, &part).await {
            return (committed, false);
        }
        committed.extend(part);
    }
    (committed, true)
}

/// Replays the log: CDRs not committed and calls left open (closed now, at the last moment
/// the previous run was alive) become pending; then a fresh segment starts.
fn recover(
    dir: &std::path::Path,
    directory: &DirectorySource,
    seen: &mut Seen,
) -> std::io::Result<(Option<Wal>, Vec<Cdr>)> {
    let mut r = Wal::recover(dir)?;
    wal::report(&r);
    // Calls the previous run appended but had not counted yet (the checkpoint below drops
    // their events).
    for (&minute, &n) in &r.unseen {
        seen.add_minute(minute, n);
    }
    if let Err(e) = seen.flush() {
        // The counts stay in memory for the next tick; the log itself must go on.
        error!(error = %e, "calls-seen counts not written; will retry");
    }
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
    // Counts still not written (the flush failed) go into the fresh segment.
    let wal = Wal::checkpoint(dir, (&domain::CdrBuilder::new(), &pending, seen.pending()))?;
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

/// Writes CDRs to the store; whether the database took them. Their held charges are
/// released at once (a drain of a long outage commits chunk after chunk for minutes, and
/// the balances polled meanwhile already include each chunk's charges).
async fn write(sink: &Sink, cdrs: &[Cdr]) -> bool {
    match sink.store.insert_cdrs(cdrs).await {
        Ok(_) => {
            sink.balances.committed(cdrs.iter().map(|c| c.id.as_str()));
            true
        }
        Err(e) => {
            error!(error = %e, queued = cdrs.len(), "CDR write failed; will retry");
            false
        }
    }
}
