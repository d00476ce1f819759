//! The accountant's state between two turns of its loop ([`Accountant`]), and what each
//! turn does: events in ([`Accountant::on_events`]), a write finished
//! ([`Accountant::on_written`]), a tick ([`Accountant::on_tick`]), the next write to start
//! ([`Accountant::start_write`]), and the final flush ([`Accountant::finish`]). The loop in
//! `mod.rs` only waits for the next of these; each is tested here on its own.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use cluster::DirectorySource;
use domain::{CallEvent, Cdr, CdrBuilder, now_ms};
use tokio::task::{JoinError, JoinHandle};
use tracing::{error, info, warn};

use super::log::{SEEN_EVERY, flush_seen, gate, log_failed, mark_settled, recover, repair};
use super::write::{Done, Job, QUEUE_ALERT, Retry, drain_log, write};
use super::{Limits, Sink};
use crate::quarantine;
use crate::seen::Seen;
use crate::wal::{self, Wal};

/// Everything the accountant holds between two turns of its loop.
pub(super) struct Accountant {
    sink: Sink,
    directory: DirectorySource,
    limits: Limits,
    wal_dir: PathBuf,
    /// A checkpoint trims the log at 64 MiB, or at half the bound when that is smaller.
    checkpoint_at: u64,
    /// Calls seen per minute, for `vts cdr reconcile`.
    seen: Seen,
    /// Calls in progress, made into CDRs as they end.
    builder: CdrBuilder,
    /// CDRs waiting for a write, in memory (all of them are in the log too).
    pending: Vec<Cdr>,
    /// The log; `None` while it could not be opened.
    wal: Option<Wal>,
    /// The log is failing: admission stays closed until it works again.
    failed: bool,
    /// CDRs written so far.
    written: u64,
    retry: Retry,
    /// The log's sync in progress (one at a time).
    syncing: Option<JoinHandle<io::Result<()>>>,
    /// The database write in progress (one at a time).
    pub(super) job: Option<JoinHandle<Done>>,
    /// CDRs in the running flush (they count against the memory queue too).
    in_job: usize,
    /// More CDRs waited than memory holds: they were dropped from memory and wait in the
    /// log only; no checkpoint may run until they are written (it would drop them).
    spilled: bool,
    /// A spill happened while a drain was reading the log: it may have missed those CDRs.
    spilled_again: bool,
    /// A part batch waits for the next tick (CDRs replayed at start go at once).
    flush_due: bool,
    ticks: u32,
}

/// The write in progress, awaited (the loop's guard makes sure there is one).
pub(super) async fn job_done(job: &mut Option<JoinHandle<Done>>) -> Result<Done, JoinError> {
    job.as_mut().expect("guarded by job.is_some()").await
}

impl Accountant {
    /// The calls in progress, oldest first (a customer's only when given), at most `limit`.
    pub(super) fn calls_in_progress(
        &self,
        customer: Option<domain::CustomerId>,
        limit: usize,
    ) -> Vec<domain::CallInProgress> {
        self.builder.live(customer, limit)
    }

    /// Recovers the log in `wal_dir` (what a previous run owes becomes pending) and sets
    /// the gate; a log that cannot be opened closes admission until it can.
    pub(super) fn start(
        sink: Sink,
        directory: DirectorySource,
        limits: Limits,
        wal_dir: PathBuf,
    ) -> Accountant {
        let mut seen = Seen::new(wal_dir.with_file_name("seen"));
        sink.state
            .0
            .quarantined
            .store(quarantine::count(&sink.quarantine), Ordering::Relaxed);
        let builder = CdrBuilder::new();
        let mut pending = Vec::new();
        let mut failed = false;
        let wal = match recover(&wal_dir, &directory, &mut seen, &builder, &mut pending) {
            Ok(w) => Some(w),
            Err(e) => {
                log_failed(&sink, &mut failed, "open", &e);
                None
            }
        };
        gate(&sink, wal.as_ref(), limits.log_max_bytes, failed);
        Accountant {
            checkpoint_at: wal::SEGMENT_BYTES.min(limits.log_max_bytes / 2),
            sink,
            directory,
            limits,
            wal_dir,
            seen,
            builder,
            pending,
            wal,
            failed,
            written: 0,
            retry: Retry::default(),
            syncing: None,
            job: None,
            in_job: 0,
            spilled: false,
            spilled_again: false,
            flush_due: true,
            ticks: 0,
        }
    }

    /// Starts a write when none is running and one is due: a drain of the log after a
    /// spill, else the pending CDRs once a batch is full or a tick has passed.
    pub(super) fn start_write(&mut self) {
        if self.job.is_some() || !self.retry.due() {
            return;
        }
        let batch = self.limits.batch;
        if self.spilled {
            // (Every append is handed to the kernel at once: the reader sees it.)
            self.spilled_again = false;
            let job = Job::Drain.spawn(
                &self.sink,
                &self.directory,
                Some(self.wal_dir.clone()),
                batch,
            );
            self.job = Some(job);
        } else if !self.pending.is_empty() && (self.pending.len() >= batch || self.flush_due) {
            self.flush_due = false;
            let cdrs: Vec<Cdr> = std::mem::take(&mut self.pending);
            self.in_job = cdrs.len();
            self.job = Some(Job::Flush(cdrs).spawn(&self.sink, &self.directory, None, batch));
        }
    }

    /// Events from the engine: appended to the log, then applied (a call's end makes its
    /// CDR, rated at the rates in force when it started). Past the memory queue the CDRs
    /// wait in the log only (a spill). Leaves `events` empty.
    pub(super) fn on_events(&mut self, events: &mut Vec<CallEvent>) {
        // While the log fails, events are not appended: the checkpoint that ends the
        // failure writes the calls and CDRs they made.
        if !self.failed
            && let Some(w) = self.wal.as_mut()
            && let Err(e) = w.events(events)
        {
            log_failed(&self.sink, &mut self.failed, "append", &e);
            self.gate();
        }
        for e in events.drain(..) {
            if let CallEvent::Started { at_ms, .. } = &e {
                self.seen.add(*at_ms);
            }
            if let Some(mut cdr) = self.builder.apply(e) {
                domain::rating::rate_cdr(&mut cdr, &self.directory.load());
                self.pending.push(cdr);
            }
        }
        let memory_queue = self.limits.memory_queue;
        // (A failing log cannot hold what memory drops.)
        if self.pending.len() + self.in_job > memory_queue && self.wal.is_some() && !self.failed {
            if !self.spilled {
                warn!(
                    target: "vts::accounting",
                    "CDR_SPILL queued={} memory_queue={memory_queue}: CDRs now wait in the write-ahead log only",
                    self.pending.len() + self.in_job
                );
            }
            self.pending.clear();
            self.spilled = true;
            self.spilled_again = true;
        }
    }

    /// The write in progress finished (or its task failed: then its CDRs are read back
    /// from the log).
    pub(super) fn on_written(&mut self, done: Result<Done, JoinError>) {
        self.job = None;
        self.in_job = 0;
        let Ok(done) = done else {
            // Its CDRs are in the log only now: drain them from there (no checkpoint may
            // drop them meanwhile).
            error!("a CDR write task failed; its CDRs will be read back from the write-ahead log");
            self.spilled = true;
            self.retry.outcome(None);
            return;
        };
        let ok = done.written.ok;
        let (n, marked) = self.settle(done);
        self.written += n;
        if let Err(e) = marked {
            log_failed(&self.sink, &mut self.failed, "append", &e);
        }
        self.written += self.retry.outcome(ok.then_some(0));
    }

    /// A tick: a part batch is due; the calls-seen counts are written every
    /// [`SEEN_EVERY`] ticks; the log is synced (or, while failing, repaired); the queue
    /// alert; a checkpoint when the log is due one; the gate.
    pub(super) async fn on_tick(&mut self) {
        self.flush_due = true;
        self.ticks = self.ticks.wrapping_add(1);
        if !self.failed
            && self.ticks.is_multiple_of(SEEN_EVERY)
            && let Err(e) = flush_seen(&mut self.seen, &mut self.wal)
        {
            log_failed(&self.sink, &mut self.failed, "append", &e);
        }
        // The last sync's outcome.
        if let Some(s) = self.syncing.take_if(|s| s.is_finished()) {
            let failure = match s.await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(_) => Some(io::Error::other("the sync task failed")),
            };
            if let Some(e) = failure {
                log_failed(&self.sink, &mut self.failed, "sync", &e);
            }
        }
        if self.failed {
            // (Not while a write runs: its CDRs are in neither the builder nor the queue,
            // so a checkpoint now would miss them.)
            if self.job.is_none() {
                let back = repair(
                    &mut self.wal,
                    (&self.wal_dir, &self.directory, &mut self.seen),
                    (&self.builder, &mut self.pending, self.spilled),
                );
                if back {
                    self.failed = false;
                    self.sink.state.0.log_failed.store(false, Ordering::Relaxed);
                    warn!(target: "vts::accounting", "write-ahead log works again");
                }
            }
        } else if let Some(w) = self.wal.as_mut() {
            match w.alive(now_ms()) {
                // One sync at a time; a slow disk skips ticks instead of queueing.
                Ok(file) if self.syncing.is_none() => {
                    self.syncing = Some(tokio::task::spawn_blocking(move || file.sync_data()));
                }
                Ok(_) => {}
                Err(e) => log_failed(&self.sink, &mut self.failed, "append", &e),
            }
        }
        self.retry.report(if self.spilled {
            self.limits.memory_queue.max(QUEUE_ALERT)
        } else {
            self.pending.len() + self.in_job
        });
        if !self.spilled && !self.failed && self.job.is_none() && self.checkpoint_due() {
            let dir = self
                .wal
                .as_ref()
                .map(|w| w.dir().to_path_buf())
                .unwrap_or_default();
            let owed = (&self.builder, self.pending.as_slice(), self.seen.pending());
            match tokio::task::block_in_place(|| Wal::checkpoint(&dir, owed)) {
                Ok(w) => self.wal = Some(w),
                Err(e) => log_failed(&self.sink, &mut self.failed, "checkpoint", &e),
            }
        }
        self.gate();
        let queued = if self.spilled {
            self.limits
                .memory_queue
                .max(self.pending.len() + self.in_job)
        } else {
            self.pending.len() + self.in_job
        };
        self.sink
            .state
            .levels(queued, self.wal.as_ref().map_or(0, Wal::bytes));
    }

    fn checkpoint_due(&self) -> bool {
        let owed = self.builder.open_calls() + self.pending.len();
        self.wal
            .as_ref()
            .is_some_and(|w| w.due(self.checkpoint_at, owed))
    }

    fn gate(&self) {
        gate(
            &self.sink,
            self.wal.as_ref(),
            self.limits.log_max_bytes,
            self.failed,
        );
    }

    /// The events have ended (the engine stopped): the write in progress finishes, then
    /// every CDR is written (retrying while the database is away), and a clean log that
    /// owes nothing is left — unless the database does not take CDRs after a spill: then
    /// they stay in the log for the next start. Returns the CDRs written in all.
    pub(super) async fn finish(mut self) -> u64 {
        if self.builder.open_calls() > 0 {
            warn!(
                calls = self.builder.open_calls(),
                "calls without an end event at shutdown"
            );
        }
        if let Some(j) = self.job.take() {
            match j.await {
                Ok(done) => self.written += self.settle(done).0,
                Err(_) => self.spilled = true,
            }
        }
        if self.spilled {
            let dir = self.wal_dir.clone();
            let w = drain_log(&self.sink, &self.directory, dir, self.limits.batch).await;
            let _ = mark_settled(&mut self.wal, &w);
            self.written += w.committed.len() as u64;
            if !w.ok {
                // Everything is in the log: the next start writes it.
                warn!(
                    "the database is not taking CDRs: they stay in the write-ahead log for the next start"
                );
                info!(written = self.written, "accounting stopped");
                return self.written;
            }
            self.pending.clear();
            self.spilled = false;
        }
        let mut delay = Duration::from_millis(100);
        while !self.pending.is_empty() {
            let w = write(&self.sink, std::mem::take(&mut self.pending)).await;
            let _ = mark_settled(&mut self.wal, &w);
            self.written += w.committed.len() as u64;
            if !w.ok {
                self.pending = w.unwritten;
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
        // A clean stop leaves a log with nothing owed.
        // (Counts not written go into the fresh segment, to be written at the next start.)
        let _ = flush_seen(&mut self.seen, &mut self.wal);
        if let Some(w) = self.wal.as_ref().filter(|_| !self.spilled && !self.failed)
            && let Err(e) =
                Wal::checkpoint(w.dir(), (&self.builder, &self.pending, self.seen.pending()))
        {
            warn!(error = %e, "write-ahead log: final checkpoint failed (the next start replays it)");
        }
        info!(written = self.written, "accounting stopped");
        self.written
    }

    /// Takes in what a finished write did: marks its CDRs settled (committed or
    /// quarantined); a drain's CDRs leave the memory queue (and a complete drain ends the
    /// spill unless another spill happened while it read the log); a failed flush's
    /// unwritten CDRs go back to the front of the queue unless the queue has spilled
    /// meanwhile (then they are in the log only). Returns how many it wrote, and whether
    /// the log took the mark.
    fn settle(&mut self, done: Done) -> (u64, io::Result<()>) {
        let marked = mark_settled(&mut self.wal, &done.written);
        let written = done.written.committed.len() as u64;
        if done.job_was_drain {
            let ids: std::collections::HashSet<&str> = done
                .written
                .committed
                .iter()
                .chain(&done.written.quarantined)
                .map(|c| c.id.as_str())
                .collect();
            self.pending.retain(|c| !ids.contains(c.id.as_str()));
            if done.written.ok {
                self.spilled = self.spilled_again;
                info!(
                    cdrs = written,
                    "CDRs waiting in the write-ahead log are written"
                );
            }
        } else if !done.written.ok && !self.spilled {
            let mut back = done.written.unwritten;
            back.append(&mut self.pending);
            self.pending = back;
        }
        (written, marked)
    }
}

/// Each turn of the loop on its own, driven by hand (no loop, no timer): a SQLite store in
/// memory and a log in a temporary directory, both real.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::accountant::tests::{cdrs, ended, sink, sqlite, started};
    use crate::accountant::write::Written;

    async fn accountant(limits: Limits) -> (Accountant, tempfile::TempDir) {
        let data = tempfile::tempdir().unwrap();
        let sink = sink(sqlite().await, data.path());
        let directory = DirectorySource::new(domain::Directory::default());
        let a = Accountant::start(sink, directory, limits, data.path().join("wal"));
        (a, data)
    }

    fn limits(batch: usize, memory_queue: usize) -> Limits {
        Limits {
            batch,
            memory_queue,
            log_max_bytes: 1 << 30,
        }
    }

    /// Runs the write `start_write` started to its end and takes it in.
    async fn finish_job(a: &mut Accountant) {
        let done = job_done(&mut a.job).await;
        a.on_written(done);
    }

    fn calls(from: u64, n: u64) -> Vec<CallEvent> {
        (from..from + n)
            .flat_map(|i| [started(i, &format!("c-{i}")), ended(i)])
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn events_reach_the_log_before_they_become_pending_cdrs() {
        let (mut a, data) = accountant(limits(100, 1_000)).await;
        let mut events = vec![started(1, "c-1")];
        a.on_events(&mut events);
        assert!(events.is_empty(), "the batch is taken");
        assert!(a.pending.is_empty(), "a call in progress has no CDR yet");
        let log = Wal::recover(&data.path().join("wal")).unwrap();
        assert_eq!(log.builder.open_calls(), 1, "the start is in the log");

        a.on_events(&mut vec![ended(1)]);
        assert_eq!(a.pending.len(), 1);
        assert_eq!(a.pending[0].id, "c-1");
        let log = Wal::recover(&data.path().join("wal")).unwrap();
        assert_eq!(log.pending.len(), 1, "the end is in the log too");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_part_batch_waits_for_the_tick_and_a_full_one_goes_at_once() {
        let (mut a, _data) = accountant(limits(2, 1_000)).await;
        a.on_events(&mut calls(0, 1));
        a.start_write();
        assert!(
            a.job.is_some(),
            "the first write goes at once (flush due at start)"
        );
        finish_job(&mut a).await;
        assert_eq!(a.written, 1);

        a.on_events(&mut calls(1, 1));
        a.start_write();
        assert!(
            a.job.is_none(),
            "one CDR of a batch of two waits for the tick"
        );
        a.on_events(&mut calls(2, 1));
        a.start_write();
        assert!(a.job.is_some(), "a full batch goes without the tick");
        finish_job(&mut a).await;
        assert_eq!(a.written, 3);

        a.on_events(&mut calls(3, 1));
        a.start_write();
        assert!(a.job.is_none());
        a.on_tick().await;
        a.start_write();
        assert!(a.job.is_some(), "the tick sends the part batch");
        finish_job(&mut a).await;
        assert_eq!(a.written, 4);
        assert_eq!(a.sink.store.list_cdrs(10).await.unwrap().len(), 4);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn past_the_memory_queue_cdrs_wait_in_the_log_and_a_drain_writes_them() {
        let (mut a, _data) = accountant(limits(100, 2)).await;
        a.on_events(&mut calls(0, 3));
        assert!(a.spilled, "three CDRs over a memory queue of two");
        assert!(
            a.pending.is_empty(),
            "memory let them go: the log holds them"
        );
        a.start_write();
        assert!(a.job.is_some(), "a drain of the log starts");
        finish_job(&mut a).await;
        assert!(!a.spilled, "the drain wrote everything: the spill is over");
        assert_eq!(a.written, 3);
        assert_eq!(a.sink.store.list_cdrs(10).await.unwrap().len(), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flush_the_database_did_not_take_goes_back_in_front_and_waits() {
        let (mut a, _data) = accountant(limits(100, 1_000)).await;
        a.on_events(&mut calls(1, 1));
        let failed = Done {
            job_was_drain: false,
            written: Written {
                unwritten: cdrs("away", 1),
                ..Written::default()
            },
        };
        a.on_written(Ok(failed));
        let ids: Vec<&str> = a.pending.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["away-0", "c-1"], "the unwritten CDR first, in order");
        a.start_write();
        assert!(a.job.is_none(), "no write before the retry delay");
        assert_eq!(a.written, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn finish_writes_every_cdr_and_leaves_a_log_that_owes_nothing() {
        let (mut a, data) = accountant(limits(100, 1_000)).await;
        let store = a.sink.store.clone();
        a.on_events(&mut calls(0, 5));
        a.on_events(&mut vec![started(9, "open")]);
        assert_eq!(a.finish().await, 5);
        assert_eq!(store.list_cdrs(10).await.unwrap().len(), 5);
        let log = Wal::recover(&data.path().join("wal")).unwrap();
        assert!(log.pending.is_empty(), "nothing owed");
        assert_eq!(
            log.builder.open_calls(),
            1,
            "the call without an end stays open for the next start to close"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_log_that_cannot_open_closes_admission_and_a_tick_repairs_it() {
        let data = tempfile::tempdir().unwrap();
        let wal_dir = data.path().join("wal");
        let sink = sink(sqlite().await, data.path());
        let directory = DirectorySource::new(domain::Directory::default());
        wal::faults::set(&wal_dir, true);
        let mut a = Accountant::start(sink.clone(), directory, limits(100, 1_000), wal_dir.clone());
        assert!(a.failed && a.wal.is_none());
        assert!(sink.gate.is_full() && sink.state.log_failed());
        a.on_tick().await;
        assert!(a.failed, "still failing: still closed");
        wal::faults::set(&wal_dir, false);
        a.on_tick().await;
        assert!(!a.failed && a.wal.is_some());
        assert!(!sink.gate.is_full() && !sink.state.log_failed());
    }
}
