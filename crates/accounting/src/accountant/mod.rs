//! Accounting: turns the engine's call events into CDRs, rates them, and writes them to the
//! store in batches. The SIP path only sends on an unbounded channel; it never waits for
//! this task. Every event goes to the write-ahead log (`wal.rs`) before it is applied and
//! every committed batch is marked there, so a crash loses no CDR: the next start writes
//! what was not committed and closes the calls that were open. A database that is away
//! keeps the batch and retries; a database that refuses the data gets the batch split
//! until the records it refuses are alone, and those go to the quarantine
//! (`quarantine.rs`) so the others are written. A log that cannot be opened, appended or
//! synced closes admission (`CDR_LOG_FAILED`) until it works again. On shutdown every CDR is
//! written (or quarantined) before the task returns.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use cluster::{AccountingGate, BalanceSource, DirectorySource};
use domain::now_ms;
use domain::{CallEvent, Cdr};
use store::{Store, StoreError};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::quarantine;
use crate::seen::Seen;
use crate::wal::{self, Wal};

/// The reason on the CDRs of calls a crash left open.
const CRASH_REASON: &str = "Closed on restart (switch stopped without ending it)";

/// Where CDRs go: the store, and the balances whose held charges a commit releases.
#[derive(Clone)]
pub struct Sink {
    pub store: Store,
    pub balances: BalanceSource,
    /// Closed while the log is at its bound or failing.
    pub gate: AccountingGate,
    /// Where CDRs the database refuses go (`DATA_DIR/quarantine`).
    pub quarantine: PathBuf,
    /// What `vts status` shows of accounting.
    pub state: CdrState,
}

/// How accounting is doing, for `vts status`: CDRs in the quarantine, and whether the
/// write-ahead log is failing (admission closed).
#[derive(Debug, Clone, Default)]
pub struct CdrState(Arc<CdrStateInner>);

#[derive(Debug, Default)]
struct CdrStateInner {
    quarantined: AtomicU64,
    log_failed: AtomicBool,
}

impl CdrState {
    /// CDRs the quarantine file holds.
    pub fn quarantined(&self) -> u64 {
        self.0.quarantined.load(Ordering::Relaxed)
    }

    /// Whether the write-ahead log is failing (new calls are refused).
    pub fn log_failed(&self) -> bool {
        self.0.log_failed.load(Ordering::Relaxed)
    }
}

/// A database write running beside the event loop, so that appends to the log never wait
/// for the database.
enum Job {
    /// A batch of CDRs held in memory.
    Flush(Vec<Cdr>),
    /// Every CDR of the log not marked committed (after a spill).
    Drain,
}

/// What a write did: the CDRs committed and those quarantined (both to mark settled in the
/// log), those not written (the database away: to keep), and whether everything went
/// through.
struct Done {
    job_was_drain: bool,
    written: Written,
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
                Job::Flush(cdrs) => Done {
                    job_was_drain: false,
                    written: write(&sink, cdrs).await,
                },
                Job::Drain => Done {
                    job_was_drain: true,
                    written: match wal_dir {
                        Some(dir) => drain_log(&sink, &directory, dir, batch).await,
                        None => Written::default(),
                    },
                },
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
pub struct Limits {
    pub batch: usize,
    pub memory_queue: usize,
    pub log_max_bytes: u64,
}

/// Runs accounting until `events` closes (the engine stopped), then writes every CDR it
/// holds; returns how many CDRs it wrote. The log lives in `wal_dir` (the calls-seen
/// counts beside it), recovered first: CDRs of a previous run not committed are written,
/// calls it left open are closed.
pub async fn run(
    sink: Sink,
    directory: DirectorySource,
    mut events: mpsc::UnboundedReceiver<CallEvent>,
    limits: Limits,
    every: Duration,
    wal_dir: PathBuf,
) -> u64 {
    let mut seen = Seen::new(wal_dir.with_file_name("seen"));
    sink.state
        .0
        .quarantined
        .store(quarantine::count(&sink.quarantine), Ordering::Relaxed);
    let mut builder = domain::CdrBuilder::new();
    let mut pending = Vec::new();
    // Whether the log is failing: admission stays closed until it works again.
    let mut failed = false;
    let mut wal = match recover(&wal_dir, &directory, &mut seen, &builder, &mut pending) {
        Ok(w) => Some(w),
        Err(e) => {
            log_failed(&sink, &mut failed, "open", &e);
            None
        }
    };
    gate(&sink, wal.as_ref(), limits.log_max_bytes, failed);
    let Limits {
        batch,
        memory_queue,
        log_max_bytes,
    } = limits;
    // A checkpoint trims the log at 64 MiB, or at half the bound when that is smaller.
    let checkpoint_at = wal::SEGMENT_BYTES.min(log_max_bytes / 2);
    let mut written = 0u64;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut batch_events: Vec<CallEvent> = Vec::with_capacity(1024);
    let mut retry = Retry::default();
    let mut syncing: Option<tokio::task::JoinHandle<io::Result<()>>> = None;
    let mut job: Option<tokio::task::JoinHandle<Done>> = None;
    // CDRs in the running flush (they count against the memory queue too).
    let mut in_job = 0usize;
    // More CDRs waited than memory holds: they were dropped from memory and wait in the log
    // only; no checkpoint may run until they are written (it would drop them).
    let mut spilled = false;
    // A spill happened while a drain was reading the log: it may have missed those CDRs.
    let mut spilled_again = false;
    let wal_path = Some(wal_dir.clone());
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
                // While the log fails, events are not appended: the checkpoint that ends the
                // failure writes the calls and CDRs they made.
                if !failed
                    && let Some(w) = wal.as_mut()
                    && let Err(e) = w.events(&batch_events)
                {
                    log_failed(&sink, &mut failed, "append", &e);
                    gate(&sink, wal.as_ref(), log_max_bytes, failed);
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
                // (A failing log cannot hold what memory drops.)
                if pending.len() + in_job > memory_queue && wal.is_some() && !failed {
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
                let ok = done.written.ok;
                let (n, marked) = settle(done, &mut wal, &mut pending, &mut spilled, spilled_again);
                written += n;
                if let Err(e) = marked {
                    log_failed(&sink, &mut failed, "append", &e);
                }
                written += retry.outcome(ok.then_some(0));
            }
            _ = tick.tick() => {
                flush_due = true;
                ticks = ticks.wrapping_add(1);
                if !failed && ticks.is_multiple_of(SEEN_EVERY)
                    && let Err(e) = flush_seen(&mut seen, &mut wal)
                {
                    log_failed(&sink, &mut failed, "append", &e);
                }
                // The last sync's outcome.
                if let Some(s) = syncing.take_if(|s| s.is_finished()) {
                    match s.await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => log_failed(&sink, &mut failed, "sync", &e),
                        Err(_) => log_failed(&sink, &mut failed, "sync", &io::Error::other("the sync task failed")),
                    }
                }
                if failed {
                    // (Not while a write runs: its CDRs are in neither the builder nor the
                    // queue, so a checkpoint now would miss them.)
                    if job.is_none() {
                        let back = repair(
                            &mut wal,
                            (&wal_dir, &directory, &mut seen),
                            (&builder, &mut pending, spilled),
                        );
                        if back {
                            failed = false;
                            sink.state.0.log_failed.store(false, Ordering::Relaxed);
                            warn!(target: "vts::accounting", "write-ahead log works again");
                        }
                    }
                } else if let Some(w) = wal.as_mut() {
                    match w.alive(now_ms()) {
                        // One sync at a time; a slow disk skips ticks instead of queueing.
                        Ok(file) if syncing.is_none() => {
                            syncing = Some(tokio::task::spawn_blocking(move || file.sync_data()));
                        }
                        Ok(_) => {}
                        Err(e) => log_failed(&sink, &mut failed, "append", &e),
                    }
                }
                retry.report(if spilled { memory_queue.max(QUEUE_ALERT) } else { pending.len() + in_job });
                if !spilled
                    && !failed
                    && job.is_none()
                    && wal
                        .as_ref()
                        .is_some_and(|w| w.due(checkpoint_at, builder.open_calls() + pending.len()))
                {
                    let dir = wal.as_ref().map(|w| w.dir().to_path_buf()).unwrap_or_default();
                    let owed = (&builder, pending.as_slice(), seen.pending());
                    match tokio::task::block_in_place(|| Wal::checkpoint(&dir, owed)) {
                        Ok(w) => wal = Some(w),
                        Err(e) => log_failed(&sink, &mut failed, "checkpoint", &e),
                    }
                }
                gate(&sink, wal.as_ref(), log_max_bytes, failed);
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
                written += settle(done, &mut wal, &mut pending, &mut spilled, spilled_again).0
            }
            Err(_) => spilled = true,
        }
    }
    if spilled {
        let w = match wal_path.clone() {
            Some(dir) => drain_log(&sink, &directory, dir, batch).await,
            None => Written::default(),
        };
        let _ = mark_settled(&mut wal, &w);
        written += w.committed.len() as u64;
        if !w.ok {
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
        let w = write(&sink, std::mem::take(&mut pending)).await;
        let _ = mark_settled(&mut wal, &w);
        written += w.committed.len() as u64;
        if !w.ok {
            pending = w.unwritten;
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
    // A clean stop leaves a log with nothing owed.
    // (Counts not written go into the fresh segment, to be written at the next start.)
    let _ = flush_seen(&mut seen, &mut wal);
    if let Some(w) = wal.as_ref().filter(|_| !spilled && !failed)
        && let Err(e) = Wal::checkpoint(w.dir(), (&builder, &pending, seen.pending()))
    {
        warn!(error = %e, "write-ahead log: final checkpoint failed (the next start replays it)");
    }
    info!(written, "accounting stopped");
    written
}

/// Takes in what a finished write did: marks its CDRs settled (committed or
/// quarantined); a drain's CDRs leave the memory queue (and a complete drain ends the spill
/// unless another spill happened while it read the log); a failed flush's unwritten CDRs go
/// back to the front of the queue unless the queue has spilled meanwhile (then they are in
/// the log only). Returns how many it wrote, and whether the log took the mark.
fn settle(
    done: Done,
    wal: &mut Option<Wal>,
    pending: &mut Vec<Cdr>,
    spilled: &mut bool,
    spilled_again: bool,
) -> (u64, io::Result<()>) {
    let marked = mark_settled(wal, &done.written);
    let written = done.written.committed.len() as u64;
    if done.job_was_drain {
        let ids: std::collections::HashSet<&str> = done
            .written
            .committed
            .iter()
            .chain(&done.written.quarantined)
            .map(|c| c.id.as_str())
            .collect();
        pending.retain(|c| !ids.contains(c.id.as_str()));
        if done.written.ok {
            *spilled = spilled_again;
            info!(
                cdrs = written,
                "CDRs waiting in the write-ahead log are written"
            );
        }
    } else if !done.written.ok && !*spilled {
        let mut back = done.written.unwritten;
        back.append(pending);
        *pending = back;
    }
    (written, marked)
}

/// Closes the gate for new calls while the log is at its bound or failing, opens it when
/// a checkpoint has trimmed it (the waiting CDRs written) and it works.
fn gate(sink: &Sink, wal: Option<&Wal>, max: u64, failed: bool) {
    let bytes = wal.map_or(0, Wal::bytes);
    let full = bytes >= max;
    let closed = full || failed;
    if closed == sink.gate.is_full() {
        return;
    }
    sink.gate.set_full(closed);
    if full {
        error!(
            target: "vts::accounting",
            "CDR_LOG_FULL bytes={bytes} max={max}: new calls are refused (503) until the database takes the waiting CDRs",
        );
    } else if !failed {
        warn!(
            target: "vts::accounting",
            "CDR_LOG_OK bytes={bytes} max={max}: the write-ahead log works and is below its bound; calls are taken again",
        );
    }
    // (A failure closed it with CDR_LOG_FAILED, logged where it happened.)
}

/// The log failed (`op`: open, append, sync, checkpoint): the first failure closes
/// admission and logs `CDR_LOG_FAILED`; CDRs keep being written from memory meanwhile, but
/// a crash now would lose the ones in flight, so no new call may start.
fn log_failed(sink: &Sink, failed: &mut bool, op: &str, e: &io::Error) {
    if *failed {
        return;
    }
    *failed = true;
    sink.state.0.log_failed.store(true, Ordering::Relaxed);
    sink.gate.set_full(true);
    error!(
        target: "vts::accounting",
        "CDR_LOG_FAILED op={op} error={e}: new calls are refused (503) until the write-ahead log works again"
    );
}

/// Tries to bring a failing log back (each tick): a log never opened is replayed and
/// checkpointed; else a checkpoint writes what is owed into a fresh segment (the appends
/// that failed are not needed then) — unless CDRs wait in the log only (a spill), which a
/// checkpoint would drop: then an append and a sync must go through. Whether it works.
fn repair(
    wal: &mut Option<Wal>,
    (dir, directory, seen): (&Path, &DirectorySource, &mut Seen),
    (builder, pending, spilled): (&domain::CdrBuilder, &mut Vec<Cdr>, bool),
) -> bool {
    tokio::task::block_in_place(|| match wal.as_mut() {
        None => match recover(dir, directory, seen, builder, pending) {
            Ok(w) => {
                *wal = Some(w);
                true
            }
            Err(_) => false,
        },
        Some(w) if spilled => w.alive(now_ms()).and_then(|f| f.sync_data()).is_ok(),
        Some(w) => match Wal::checkpoint(w.dir(), (builder, pending, seen.pending())) {
            Ok(fresh) => {
                *wal = Some(fresh);
                true
            }
            Err(_) => false,
        },
    })
}

/// Calls-seen counts reach their files every this many ticks (a second).
const SEEN_EVERY: u32 = 5;

/// Writes the calls-seen counts and marks the log; fails when the log does not take the
/// mark (a failing counts file is only logged: it is retried).
fn flush_seen(seen: &mut Seen, wal: &mut Option<Wal>) -> io::Result<()> {
    if seen.is_empty() {
        return Ok(());
    }
    match tokio::task::block_in_place(|| seen.flush()) {
        // Without the mark a crash counts these calls twice at the next start.
        Ok(()) => wal.as_mut().map_or(Ok(()), Wal::seen_flushed),
        Err(e) => {
            error!(error = %e, "calls-seen counts not written (vts cdr reconcile will miss them); will retry");
            Ok(())
        }
    }
}

/// Marks the CDRs a write committed or quarantined settled in the log (a replay does not
/// offer them again).
fn mark_settled(wal: &mut Option<Wal>, w: &Written) -> io::Result<()> {
    if w.committed.is_empty() && w.quarantined.is_empty() {
        return Ok(());
    }
    let Some(log) = wal.as_mut() else {
        return Ok(());
    };
    // Without the mark a replay writes them again: the insert skips them, and a
    // quarantined one would be quarantined again (nothing lost either way).
    log.committed(w.committed.iter().chain(&w.quarantined))
}

/// Writes every CDR the log holds that is not marked committed (after a spill), in
/// batches. Returns what it committed and quarantined (the caller marks them) and whether
/// all went through.
async fn drain_log(
    sink: &Sink,
    directory: &DirectorySource,
    dir: PathBuf,
    batch: usize,
) -> Written {
    let mut done = Written::default();
    let owed = match tokio::task::spawn_blocking(move || Wal::recover(&dir)).await {
        Ok(Ok(r)) => r.pending,
        Ok(Err(e)) => {
            error!(error = %e, "cannot read the write-ahead log back");
            return done;
        }
        Err(_) => return done,
    };
    for chunk in owed.chunks(batch.max(1)) {
        let mut part = chunk.to_vec();
        for cdr in &mut part {
            cdr.clean();
            domain::rating::rate_cdr(cdr, &directory.load());
        }
        let w = write(sink, part).await;
        done.committed.extend(w.committed);
        done.quarantined.extend(w.quarantined);
        if !w.ok {
            return done;
        }
    }
    done.ok = true;
    done
}

/// Replays the log: CDRs not committed and calls left open (closed now, at the last moment
/// the previous run was alive) become pending; then a fresh segment starts.
///
/// `builder` and `pending` are this run's calls in progress and CDRs waiting (none at
/// start; some when a log that could not be opened at start is opened later): they go into
/// the fresh segment too, and the log's CDRs are put in front of `pending`. Nothing changes
/// unless the fresh segment is written.
fn recover(
    dir: &Path,
    directory: &DirectorySource,
    seen: &mut Seen,
    builder: &domain::CdrBuilder,
    pending: &mut Vec<Cdr>,
) -> io::Result<Wal> {
    let mut r = Wal::recover(dir)?;
    wal::report(&r);
    let mut owed = std::mem::take(&mut r.pending);
    let open = r.builder.open_calls();
    if let Some(last) = r.last_ms {
        owed.extend(r.builder.close_all(last, CRASH_REASON));
    }
    let ours: std::collections::HashSet<&str> = pending.iter().map(|c| c.id.as_str()).collect();
    owed.retain(|c| !ours.contains(c.id.as_str()));
    for cdr in &mut owed {
        // A log written before CDRs were cleaned may hold text the database refuses.
        cdr.clean();
        if cdr.cost.is_none() && cdr.price.is_none() {
            domain::rating::rate_cdr(cdr, &directory.load());
        }
    }
    // Calls the previous run appended but had not counted yet (the checkpoint below drops
    // their events): in the fresh segment with those not written yet.
    let mut unseen = seen.pending().clone();
    for (&minute, &n) in &r.unseen {
        *unseen.entry(minute).or_default() += n;
    }
    let all: Vec<Cdr> = owed.iter().chain(pending.iter()).cloned().collect();
    let wal = Wal::checkpoint(dir, (builder, &all, &unseen))?;
    for (&minute, &n) in &r.unseen {
        seen.add_minute(minute, n);
    }
    if let Err(e) = seen.flush() {
        // The counts stay in memory for the next tick; the log itself must go on.
        error!(error = %e, "calls-seen counts not written; will retry");
    }
    if !owed.is_empty() || open > 0 {
        warn!(
            cdrs = owed.len(),
            open_calls = open,
            "write-ahead log: writing what the previous run had not (calls it left open are closed)"
        );
    }
    *pending = all;
    Ok(wal)
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

/// What a write of CDRs did.
#[derive(Debug, Default)]
struct Written {
    /// In the database.
    committed: Vec<Cdr>,
    /// Refused by the database, in the quarantine file (synced).
    quarantined: Vec<Cdr>,
    /// Not written: the database is away (or the quarantine file could not be written).
    unwritten: Vec<Cdr>,
    /// Whether nothing is left unwritten.
    ok: bool,
}

/// Writes CDRs to the store. A database that is away leaves the rest of the batch unwritten
/// (the caller retries it whole); one that refuses the data gets the batch split in halves
/// until each record it refuses is alone, and that record goes to the quarantine — so one
/// bad record can neither hold up the others nor be retried for ever. Held charges are
/// released as each part commits (a drain of a long outage commits chunk after chunk for
/// minutes, and the balances polled meanwhile already include each chunk's charges); a
/// quarantined CDR's too (its charge never reaches the database).
async fn write(sink: &Sink, cdrs: Vec<Cdr>) -> Written {
    let mut w = Written::default();
    let mut parts = vec![cdrs];
    let mut away = false;
    let mut split = false;
    while let Some(part) = parts.pop() {
        if away {
            w.unwritten.extend(part);
            continue;
        }
        match sink.store.insert_cdrs(&part).await {
            Ok(_) => {
                sink.balances.committed(part.iter().map(|c| c.id.as_str()));
                w.committed.extend(part);
            }
            Err(e) if e.is_refusal() && part.len() > 1 => {
                if !split {
                    split = true;
                    warn!(cdrs = part.len(), error = %e, "the database refuses a batch of CDRs: splitting it to set aside the records it refuses");
                }
                let mut first = part;
                let second = first.split_off(first.len() / 2);
                parts.push(second);
                parts.push(first);
            }
            Err(e) if e.is_refusal() => {
                let mut part = part;
                let cdr = part.pop().expect("one CDR");
                let (cdr, kept) = set_aside(sink, cdr, &e);
                if kept {
                    sink.balances.committed(std::iter::once(cdr.id.as_str()));
                    w.quarantined.push(cdr);
                } else {
                    away = true;
                    w.unwritten.push(cdr);
                }
            }
            Err(e) => {
                error!(error = %e, queued = part.len(), "CDR write failed; will retry");
                away = true;
                w.unwritten.extend(part);
            }
        }
    }
    w.ok = !away;
    w
}

/// Appends a CDR the database refuses to the quarantine file (synced before the caller
/// marks it settled in the log), counts it and logs `CDR_QUARANTINED`. Gives it back with
/// whether it is kept: not when the file cannot be written (it stays owed, and is retried).
fn set_aside(sink: &Sink, cdr: Cdr, error: &StoreError) -> (Cdr, bool) {
    // The error may quote the value: cleaned, it is safe in the log and the file.
    let error = domain::clean_text(&error.to_string(), 512).into_owned();
    let entry = quarantine::Entry {
        at_ms: now_ms(),
        error,
        cdr,
    };
    let dir = sink.quarantine.clone();
    match tokio::task::block_in_place(|| quarantine::append(&dir, std::slice::from_ref(&entry))) {
        Ok(()) => {
            sink.state.0.quarantined.fetch_add(1, Ordering::Relaxed);
            error!(
                target: "vts::accounting",
                "CDR_QUARANTINED id={} error={}: the database refuses this CDR; it is kept in {} (vts cdr quarantine)",
                domain::clean_text(&entry.cdr.id, 64),
                entry.error,
                dir.display()
            );
            (entry.cdr, true)
        }
        Err(e) => {
            error!(error = %e, dir = %dir.display(), "cannot quarantine a CDR the database refuses; it stays owed and is retried");
            (entry.cdr, false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{CallRef, CustomerId, HangupSide};

    fn sink(store: Store, data: &Path) -> Sink {
        Sink {
            store,
            balances: BalanceSource::default(),
            gate: AccountingGate::default(),
            quarantine: quarantine::dir_in(data),
            state: CdrState::default(),
        }
    }

    async fn sqlite() -> Store {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        store.migrate().await.unwrap();
        store
    }

    fn started(call: u64, id: &str) -> CallEvent {
        CallEvent::Started {
            call: CallRef(call),
            cdr_id: id.into(),
            at_ms: 1_000,
            call_id: format!("{id}@h"),
            customer: CustomerId(1),
            source: "192.0.2.1:5060".into(),
            caller: "100".into(),
            callee: "200".into(),
            user_agent: None,
            codecs: Vec::new(),
        }
    }

    fn ended(call: u64) -> CallEvent {
        CallEvent::Ended {
            call: CallRef(call),
            at_ms: 2_000,
            code: 486,
            reason: "Busy Here".into(),
            hangup: HangupSide::Callee,
            q850: None,
        }
    }

    /// CDRs as the builder makes them, with ids `{prefix}-{n}`.
    fn cdrs(prefix: &str, n: u64) -> Vec<Cdr> {
        let mut b = domain::CdrBuilder::new();
        (0..n)
            .flat_map(|i| [started(i, &format!("{prefix}-{i}")), ended(i)])
            .filter_map(|e| b.apply(e))
            .collect()
    }

    async fn until(what: &str, ready: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !ready() {
            assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// A batch PostgreSQL refuses (one CDR with a NUL byte in its user agent, made directly
    /// as a log written before CDRs were cleaned could hold it): the database refuses the
    /// whole batch; today that batch was retried for ever and every CDR after it waited. Now
    /// the four good ones are written, the bad one is quarantined (in the file, counted),
    /// and the next batch flows.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_refusing_a_record_quarantines_it_and_writes_the_rest() {
        let Ok(url) = std::env::var("VTS_TEST_POSTGRES_URL") else {
            eprintln!("skipped: no throw-away PostgreSQL (scripts/test starts one)");
            return;
        };
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let data = tempfile::tempdir().unwrap();
        let sink = sink(store.clone(), data.path());
        let run = format!("q{}-{}", std::process::id(), now_ms());
        let mut batch = cdrs(&format!("{run}-a"), 5);
        batch[2].user_agent = Some("evil\0agent".into());
        let bad = batch[2].id.clone();
        let err = store.insert_cdrs(&batch[2..3]).await.unwrap_err();
        assert!(err.is_refusal(), "PostgreSQL refuses a NUL: {err}");

        let w = write(&sink, batch).await;
        assert!(w.ok);
        assert_eq!(w.committed.len(), 4);
        let quarantined: Vec<&str> = w.quarantined.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(quarantined, [bad.as_str()]);
        assert!(w.unwritten.is_empty());
        let (entries, torn) = quarantine::read(&sink.quarantine).unwrap();
        assert_eq!((entries.len(), torn), (1, 0));
        assert_eq!(entries[0].cdr.id, bad);
        assert_eq!(entries[0].cdr.user_agent.as_deref(), Some("evil\0agent"));
        assert!(entries[0].error.contains("0x00"), "{}", entries[0].error);
        assert_eq!(sink.state.quarantined(), 1);

        let later = cdrs(&format!("{run}-b"), 3);
        let w = write(&sink, later).await;
        assert!(w.ok && w.quarantined.is_empty());
        assert_eq!(w.committed.len(), 3);
        let stored: Vec<String> = store
            .list_cdrs(10_000)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .filter(|id| id.starts_with(&run))
            .collect();
        assert_eq!(stored.len(), 7, "{stored:?}");
        assert!(!stored.contains(&bad));
    }

    /// The whole path on SQLite (which refuses a CDR without an id): a log holding a batch
    /// with one such CDR replays at start; the others are written, the refused one is
    /// quarantined and marked settled in the log (a second start offers it no more), and
    /// calls after it are written.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_cdr_in_the_log_is_quarantined_once_and_calls_flow() {
        let data = tempfile::tempdir().unwrap();
        let wal_dir = data.path().join("wal");
        let mut owed = cdrs("log", 4);
        owed[1].id = String::new();
        drop(
            Wal::checkpoint(
                &wal_dir,
                (&domain::CdrBuilder::new(), &owed, &Default::default()),
            )
            .unwrap(),
        );
        let store = sqlite().await;
        let sink = sink(store.clone(), data.path());
        let limits = Limits {
            batch: 100,
            memory_queue: 1_000,
            log_max_bytes: 1 << 30,
        };
        let directory = DirectorySource::new(domain::Directory::default());
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(
            sink.clone(),
            directory.clone(),
            rx,
            limits,
            Duration::from_millis(20),
            wal_dir.clone(),
        ));
        tx.send(started(1, "later-1")).unwrap();
        tx.send(ended(1)).unwrap();
        drop(tx);
        assert_eq!(task.await.unwrap(), 4, "three from the log, one call");
        let mut ids: Vec<String> = store
            .list_cdrs(100)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        ids.sort();
        assert_eq!(ids, ["later-1", "log-0", "log-2", "log-3"]);
        assert_eq!(quarantine::count(&sink.quarantine), 1);
        assert_eq!(sink.state.quarantined(), 1);
        // Settled: the next start has nothing to write again.
        assert!(Wal::recover(&wal_dir).unwrap().pending.is_empty());
    }

    /// A log that cannot be written closes admission (the gate the engine answers 503 with)
    /// and says so in the status; when it works again a checkpoint writes what is owed and
    /// admission reopens — at start (the log cannot be opened) and while running (an append
    /// fails). Today a failing log was only logged, and calls kept coming without a durable
    /// record.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_log_closes_admission_until_it_works() {
        let data = tempfile::tempdir().unwrap();
        let wal_dir = data.path().join("wal");
        let store = sqlite().await;
        let sink = sink(store.clone(), data.path());
        let limits = Limits {
            batch: 100,
            memory_queue: 1_000,
            log_max_bytes: 1 << 30,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        wal::faults::set(&wal_dir, true);
        let task = tokio::spawn(run(
            sink.clone(),
            DirectorySource::new(domain::Directory::default()),
            rx,
            limits,
            Duration::from_millis(20),
            wal_dir.clone(),
        ));
        until("closed at start", || {
            sink.gate.is_full() && sink.state.log_failed()
        })
        .await;
        assert!(
            wal::segments(&wal_dir).unwrap().is_empty(),
            "the failed checkpoint left no partial segment"
        );
        wal::faults::set(&wal_dir, false);
        until("open again", || {
            !sink.gate.is_full() && !sink.state.log_failed()
        })
        .await;

        // A call starts; then appends fail: the next event closes admission.
        tx.send(started(1, "c-1")).unwrap();
        until("the call is in the log", || {
            Wal::recover(&wal_dir).unwrap().builder.open_calls() == 1
        })
        .await;
        wal::faults::set(&wal_dir, true);
        tx.send(started(2, "c-2")).unwrap();
        until("closed on a failed append", || sink.gate.is_full()).await;
        assert!(sink.state.log_failed());
        wal::faults::set(&wal_dir, false);
        until("open again", || !sink.gate.is_full()).await;
        // The checkpoint that reopened it holds both calls (the second's event never reached
        // the log itself).
        assert_eq!(Wal::recover(&wal_dir).unwrap().builder.open_calls(), 2);
        tx.send(ended(1)).unwrap();
        tx.send(ended(2)).unwrap();
        drop(tx);
        assert_eq!(task.await.unwrap(), 2);
    }
}
