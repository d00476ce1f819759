//! The accountant's write-ahead log side: the admission gate it closes while the log is at
//! its bound or failing ([`gate`], [`log_failed`]), bringing a failing log back
//! ([`repair`]), replaying it at start ([`recover`]), and the marks it takes (CDRs settled,
//! calls-seen counts written).

use std::io;
use std::path::Path;
use std::sync::atomic::Ordering;

use cluster::DirectorySource;
use domain::{Cdr, now_ms};
use tracing::{error, warn};

use super::write::Written;
use super::{CRASH_REASON, Sink};
use crate::seen::Seen;
use crate::wal::{self, Wal};

/// Closes the gate for new calls while the log is at its bound or failing, opens it when
/// a checkpoint has trimmed it (the waiting CDRs written) and it works.
pub(super) fn gate(sink: &Sink, wal: Option<&Wal>, max: u64, failed: bool) {
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
pub(super) fn log_failed(sink: &Sink, failed: &mut bool, op: &str, e: &io::Error) {
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
pub(super) fn repair(
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
pub(super) const SEEN_EVERY: u32 = 5;

/// Writes the calls-seen counts and marks the log; fails when the log does not take the
/// mark (a failing counts file is only logged: it is retried).
pub(super) fn flush_seen(seen: &mut Seen, wal: &mut Option<Wal>) -> io::Result<()> {
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
pub(super) fn mark_settled(wal: &mut Option<Wal>, w: &Written) -> io::Result<()> {
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

/// Replays the log: CDRs not committed and calls left open (closed now, at the last moment
/// the previous run was alive) become pending; then a fresh segment starts.
///
/// `builder` and `pending` are this run's calls in progress and CDRs waiting (none at
/// start; some when a log that could not be opened at start is opened later): they go into
/// the fresh segment too, and the log's CDRs are put in front of `pending`. Nothing changes
/// unless the fresh segment is written.
pub(super) fn recover(
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
