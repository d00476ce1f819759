//! The accountant's database side: a write of CDRs ([`write`]), which splits a batch the
//! database refuses until each refused record is alone and sets it aside in the
//! quarantine; a read-back of what the log owes after a spill ([`drain_log`]); a write as
//! a task beside the event loop ([`Job`]); and when to try again while the database is
//! away ([`Retry`]).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use cluster::DirectorySource;
use domain::{Cdr, now_ms};
use store::StoreError;
use tracing::{error, info, warn};

use super::Sink;
use crate::quarantine;
use crate::wal::Wal;

/// A database write running beside the event loop, so that appends to the log never wait
/// for the database.
pub(super) enum Job {
    /// A batch of CDRs held in memory.
    Flush(Vec<Cdr>),
    /// Every CDR of the log not marked committed (after a spill).
    Drain,
}

/// What a write did: the CDRs committed and those quarantined (both to mark settled in the
/// log), those not written (the database away: to keep), and whether everything went
/// through.
pub(super) struct Done {
    pub(super) job_was_drain: bool,
    pub(super) written: Written,
}

impl Job {
    pub(super) fn spawn(
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

/// Writes every CDR the log holds that is not marked committed (after a spill), in
/// batches. Returns what it committed and quarantined (the caller marks them) and whether
/// all went through.
pub(super) async fn drain_log(
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

/// While the database refuses writes: when to try again (100 ms, doubling to 5 s), and the
/// queue alert.
#[derive(Debug, Default)]
pub(super) struct Retry {
    at: Option<tokio::time::Instant>,
    delay: Duration,
    last_report: Option<tokio::time::Instant>,
}

/// CDRs waiting for the database past which the log says so (every 10 s): every one of them
/// is in the write-ahead log, so nothing is lost, but an operator must know.
pub(super) const QUEUE_ALERT: usize = 100_000;

impl Retry {
    pub(super) fn due(&self) -> bool {
        self.at.is_none_or(|t| tokio::time::Instant::now() >= t)
    }

    /// Counts a flush: `None` (failed) pushes the next try back.
    pub(super) fn outcome(&mut self, written: Option<u64>) -> u64 {
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

    pub(super) fn report(&mut self, queued: usize) {
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
pub(super) struct Written {
    /// In the database.
    pub(super) committed: Vec<Cdr>,
    /// Refused by the database, in the quarantine file (synced).
    pub(super) quarantined: Vec<Cdr>,
    /// Not written: the database is away (or the quarantine file could not be written).
    pub(super) unwritten: Vec<Cdr>,
    /// Whether nothing is left unwritten.
    pub(super) ok: bool,
}

/// Writes CDRs to the store. A database that is away leaves the rest of the batch unwritten
/// (the caller retries it whole); one that refuses the data gets the batch split in halves
/// until each record it refuses is alone, and that record goes to the quarantine — so one
/// bad record can neither hold up the others nor be retried for ever. Held charges are
/// released as each part commits (a drain of a long outage commits chunk after chunk for
/// minutes, and the balances polled meanwhile already include each chunk's charges); a
/// quarantined CDR's too (its charge never reaches the database).
pub(super) async fn write(sink: &Sink, cdrs: Vec<Cdr>) -> Written {
    let mut w = Written::default();
    let mut parts = vec![cdrs];
    let mut away = false;
    let mut split = false;
    while let Some(part) = parts.pop() {
        if away {
            w.unwritten.extend(part);
            continue;
        }
        let started = std::time::Instant::now();
        let result = sink.store.insert_cdrs(&part).await;
        let committed = if result.is_ok() { part.len() } else { 0 };
        sink.state.wrote(started.elapsed(), committed);
        match result {
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
