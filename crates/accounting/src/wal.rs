//! The accounting write-ahead log (`DATA_DIR/wal/`): every call event is appended before it
//! is applied, and every batch of CDRs the database committed is marked, so that a crash
//! (`kill -9`, power loss after the last sync) loses nothing that was accepted:
//!
//! - on start, the segments are replayed: CDRs built but not marked committed are written
//!   again (inserts are idempotent by CDR id), and calls still open are closed at the last
//!   moment the switch was known alive, with the switch as the hangup side;
//! - a checkpoint (at start, when a segment passes [`SEGMENT_BYTES`], at a clean stop) writes
//!   the calls in progress and the uncommitted CDRs into a fresh segment, syncs it, and
//!   deletes the older ones.
//!
//! One JSON object a line. Appends go to the page cache at once (a killed process loses
//! nothing); the file is synced every accounting tick (200 ms, on a blocking thread, so that
//! appends never wait for the disk) and at checkpoints. A torn last line is ignored on
//! replay.

use std::collections::HashMap;
use std::fs::File;
#[cfg(test)]
use std::fs::OpenOptions;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use domain::{CallEvent, CallRef, Cdr, CdrBuilder};
use serde::{Deserialize, Serialize};
use tracing::warn;

/// A segment is checkpointed into a fresh one past this size.
pub(crate) const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "r", rename_all = "snake_case")]
enum Record {
    /// A call event, before accounting applies it.
    Event { e: CallEvent },
    /// CDRs settled: committed by the database, or quarantined (`quarantine.rs`).
    Committed { ids: Vec<String> },
    /// The switch was alive at this time (epoch ms).
    Alive { at_ms: i64 },
    /// A call in progress at a checkpoint.
    Open {
        call: CallRef,
        cdr: Box<Cdr>,
        attempt_ms: Option<i64>,
    },
    /// A CDR not yet committed at a checkpoint.
    Pending { cdr: Box<Cdr> },
    /// Every call started before this line is counted in the calls-seen files (`seen.rs`).
    SeenFlushed,
    /// Calls counted but not yet in the calls-seen files at a checkpoint, by minute.
    Unseen { minutes: Vec<(i64, u64)> },
}

/// What a replay found.
#[derive(Debug, Default)]
pub(crate) struct Recovered {
    /// Calls open in the log, restored.
    pub(crate) builder: CdrBuilder,
    /// CDRs built and not marked committed, in log order.
    pub(crate) pending: Vec<Cdr>,
    /// The last moment the previous run was known alive.
    pub(crate) last_ms: Option<i64>,
    /// Lines that could not be read (a torn last line is normal after a crash).
    pub(crate) bad_lines: usize,
    /// Calls started after the last `SeenFlushed` mark, by minute of their INVITE: not yet
    /// in the calls-seen files.
    pub(crate) unseen: std::collections::BTreeMap<i64, u64>,
}

pub(crate) struct Wal {
    dir: PathBuf,
    file: io::BufWriter<File>,
    bytes: u64,
    /// Bytes and records the segment started with (its checkpoint's calls in progress and
    /// CDRs owed): what a record costs in a checkpoint.
    base: u64,
    base_records: u64,
}

pub(crate) fn segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(seq) = name
            .strip_prefix("wal-")
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse::<u64>().ok())
        {
            out.push((seq, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

impl Wal {
    /// Replays every segment in `dir` (created when missing).
    pub(crate) fn recover(dir: &Path) -> io::Result<Recovered> {
        crate::files::private_dir(dir)?;
        let mut r = Recovered::default();
        // Pending CDRs by id, in the order they were built.
        let mut pending: HashMap<String, (usize, Cdr)> = HashMap::new();
        let mut order = 0usize;
        for (_, path) in segments(dir)? {
            // Bytes, not `lines()`: a line torn by a crash or a bad disk may not be UTF-8,
            // and it must cost that line only, not the whole replay.
            for line in BufReader::new(File::open(&path)?).split(b'\n') {
                let line = line?;
                if line.is_empty() {
                    continue;
                }
                let Ok(record) = serde_json::from_slice::<Record>(&line) else {
                    r.bad_lines += 1;
                    continue;
                };
                match record {
                    Record::Event { e } => {
                        if let CallEvent::Started { at_ms, .. } = &e {
                            *r.unseen.entry(crate::seen::minute_of(*at_ms)).or_default() += 1;
                        }
                        if let Some(at) = event_ms(&e) {
                            r.last_ms = Some(r.last_ms.map_or(at, |l| l.max(at)));
                        }
                        if let Some(cdr) = r.builder.apply(e) {
                            order += 1;
                            pending.insert(cdr.id.clone(), (order, cdr));
                        }
                    }
                    Record::Committed { ids } => {
                        for id in ids {
                            pending.remove(&id);
                        }
                    }
                    Record::Alive { at_ms } => {
                        r.last_ms = Some(r.last_ms.map_or(at_ms, |l| l.max(at_ms)));
                    }
                    Record::Open {
                        call,
                        cdr,
                        attempt_ms,
                    } => r.builder.restore(call, *cdr, attempt_ms),
                    Record::Pending { cdr } => {
                        order += 1;
                        pending.insert(cdr.id.clone(), (order, *cdr));
                    }
                    Record::SeenFlushed => r.unseen.clear(),
                    Record::Unseen { minutes } => {
                        for (m, n) in minutes {
                            *r.unseen.entry(m).or_default() += n;
                        }
                    }
                }
            }
        }
        let mut pending: Vec<(usize, Cdr)> = pending.into_values().collect();
        pending.sort_by_key(|(n, _)| *n);
        r.pending = pending.into_iter().map(|(_, c)| c).collect();
        Ok(r)
    }

    /// Starts a fresh segment holding what is still owed — `builder`'s calls in progress,
    /// the `pending` CDRs, the calls-seen counts not yet in their files — synced, then
    /// deletes every older segment.
    pub(crate) fn checkpoint(
        dir: &Path,
        (builder, pending, unseen): (&CdrBuilder, &[Cdr], &std::collections::BTreeMap<i64, u64>),
    ) -> io::Result<Wal> {
        crate::files::private_dir(dir)?;
        let old = segments(dir)?;
        let seq = old.last().map_or(1, |(s, _)| s + 1);
        let path = dir.join(format!("wal-{seq:016}.log"));
        let wal = match Self::fresh(dir, &path, (builder, pending, unseen)) {
            Ok(w) => w,
            Err(e) => {
                // A partial segment must not stay: the next checkpoint would number past it
                // and a replay would read a half-written copy of what is owed.
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        for (s, path) in old {
            if s < seq {
                std::fs::remove_file(path)?;
            }
        }
        // The deletions themselves must survive a power loss.
        File::open(dir)?.sync_all()?;
        Ok(wal)
    }

    /// Writes and syncs the segment a checkpoint starts.
    fn fresh(
        dir: &Path,
        path: &Path,
        (builder, pending, unseen): (&CdrBuilder, &[Cdr], &std::collections::BTreeMap<i64, u64>),
    ) -> io::Result<Wal> {
        let file = crate::files::private_append(path)?;
        let mut wal = Wal {
            dir: dir.to_path_buf(),
            file: io::BufWriter::with_capacity(256 * 1024, file),
            bytes: 0,
            base: 0,
            base_records: 0,
        };
        for (call, cdr, attempt_ms) in builder.drafts() {
            wal.write(&Record::Open {
                call,
                cdr: Box::new(cdr),
                attempt_ms,
            })?;
        }
        for cdr in pending {
            wal.write(&Record::Pending {
                cdr: Box::new(cdr.clone()),
            })?;
        }
        if !unseen.is_empty() {
            wal.write(&Record::Unseen {
                minutes: unseen.iter().map(|(&m, &n)| (m, n)).collect(),
            })?;
        }
        wal.sync()?;
        wal.base = wal.bytes;
        wal.base_records = (builder.open_calls() + pending.len()) as u64;
        Ok(wal)
    }

    fn write(&mut self, record: &Record) -> io::Result<()> {
        #[cfg(test)]
        faults::check(&self.dir)?;
        let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
        line.push(b'\n');
        self.bytes += line.len() as u64;
        self.file.write_all(&line)
    }

    /// Appends call events (before accounting applies them) and hands them to the kernel.
    pub(crate) fn events(&mut self, events: &[CallEvent]) -> io::Result<()> {
        for e in events {
            self.write(&Record::Event { e: e.clone() })?;
        }
        self.file.flush()
    }

    /// Marks that every call started so far is in the calls-seen files.
    pub(crate) fn seen_flushed(&mut self) -> io::Result<()> {
        self.write(&Record::SeenFlushed)?;
        self.file.flush()
    }

    /// Marks CDRs settled: committed by the database or quarantined.
    pub(crate) fn committed<'a>(
        &mut self,
        cdrs: impl IntoIterator<Item = &'a Cdr>,
    ) -> io::Result<()> {
        let ids = cdrs.into_iter().map(|c| c.id.clone()).collect();
        self.write(&Record::Committed { ids })?;
        self.file.flush()
    }

    /// Records that the switch is alive now and hands the segment to the kernel; returns a
    /// handle on the file for the caller to sync off the accounting task (an fsync can take
    /// long on a busy disk, and appends must not wait for it).
    pub(crate) fn alive(&mut self, at_ms: i64) -> io::Result<File> {
        self.write(&Record::Alive { at_ms })?;
        self.file.flush()?;
        self.file.get_ref().try_clone()
    }

    fn sync(&mut self) -> io::Result<()> {
        #[cfg(test)]
        faults::check(&self.dir)?;
        self.file.flush()?;
        self.file.get_ref().sync_data()
    }

    /// Bytes in the segment (what the log holds on disk since its last checkpoint).
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Whether a checkpoint is worth it: the segment has passed `at` and is at least twice
    /// what a fresh one holding `records` (calls in progress and CDRs owed) would be —
    /// else a checkpoint of many calls in progress, or of many CDRs waiting for an absent
    /// database, would rewrite them every tick.
    pub(crate) fn due(&self, at: u64, records: usize) -> bool {
        let per_record = self.base.checked_div(self.base_records).unwrap_or(1024);
        let fresh = per_record.saturating_mul(records as u64);
        self.bytes >= at && self.bytes >= fresh.saturating_mul(2)
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Injected write errors, for tests: every write and sync to a log in a failing directory
/// fails as a full or broken disk would (tests run as root, where `chmod` stops nothing).
#[cfg(test)]
pub(crate) mod faults {
    use std::collections::HashSet;
    use std::io;
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    static FAILING: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

    pub(crate) fn set(dir: &Path, failing: bool) {
        let mut f = FAILING.lock().unwrap();
        let set = f.get_or_insert_with(HashSet::new);
        if failing {
            set.insert(dir.to_path_buf());
        } else {
            set.remove(dir);
        }
    }

    pub(crate) fn check(dir: &Path) -> io::Result<()> {
        let f = FAILING.lock().unwrap();
        if f.as_ref().is_some_and(|s| s.contains(dir)) {
            return Err(io::Error::other("injected: no space left on device"));
        }
        Ok(())
    }
}

fn event_ms(e: &CallEvent) -> Option<i64> {
    match e {
        CallEvent::Started { at_ms, .. }
        | CallEvent::AttemptStarted { at_ms, .. }
        | CallEvent::Progress { at_ms, .. }
        | CallEvent::Answered { at_ms, .. }
        | CallEvent::Ended { at_ms, .. } => Some(*at_ms),
        CallEvent::Numbers { .. } | CallEvent::AttemptEnded { .. } => None,
    }
}

/// Logs what a replay found worth an operator's attention.
pub(crate) fn report(r: &Recovered) {
    if r.bad_lines > 0 {
        warn!(
            lines = r.bad_lines,
            "write-ahead log: unreadable lines skipped (a torn last line after a crash is expected)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{CustomerId, HangupSide};

    fn started(call: u64, at: i64) -> CallEvent {
        CallEvent::Started {
            call: CallRef(call),
            cdr_id: format!("cdr-{call}"),
            at_ms: at,
            call_id: format!("c{call}@h"),
            customer: CustomerId(1),
            source: "192.0.2.1:5060".into(),
            caller: "100".into(),
            callee: "200".into(),
            user_agent: None,
            codecs: Vec::new(),
        }
    }

    fn ended(call: u64, at: i64) -> CallEvent {
        CallEvent::Ended {
            call: CallRef(call),
            at_ms: at,
            code: 200,
            reason: "OK".into(),
            hangup: HangupSide::Caller,
            q850: None,
        }
    }

    #[test]
    fn calls_seen_after_the_last_mark_are_returned_and_checkpoints_pay_off() {
        let none = std::collections::BTreeMap::new();
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::checkpoint(dir.path(), (&CdrBuilder::new(), &[], &none)).unwrap();
        wal.events(&[started(1, 1_000), started(2, 1_100)]).unwrap();
        wal.seen_flushed().unwrap();
        wal.events(&[started(3, 61_200), ended(1, 61_300)]).unwrap();
        drop(wal);
        let r = Wal::recover(dir.path()).unwrap();
        let unseen: Vec<(i64, u64)> = r.unseen.into_iter().collect();
        assert_eq!(unseen, [(1, 1)], "1 and 2 were counted before the mark");
        // Counts not yet written survive a checkpoint, and add up with later calls.
        let counts = std::collections::BTreeMap::from([(1, 1), (7, 4)]);
        let mut wal = Wal::checkpoint(dir.path(), (&CdrBuilder::new(), &[], &counts)).unwrap();
        wal.events(&[started(4, 7 * 60_000)]).unwrap();
        drop(wal);
        let unseen: Vec<(i64, u64)> = Wal::recover(dir.path())
            .unwrap()
            .unseen
            .into_iter()
            .collect();
        assert_eq!(unseen, [(1, 1), (7, 5)]);

        // A segment that started with 10 CDRs owed is checkpointed once it is twice what a
        // fresh one with the records owed now would be.
        let mut b = CdrBuilder::new();
        let owed: Vec<Cdr> = (10..20)
            .flat_map(|n| [started(n, 5_000), ended(n, 6_000)])
            .filter_map(|e| b.apply(e))
            .collect();
        let mut wal = Wal::checkpoint(dir.path(), (&CdrBuilder::new(), &owed, &none)).unwrap();
        let base = wal.bytes();
        assert!(base > 0);
        assert!(!wal.due(1, 10), "no smaller yet");
        assert!(
            wal.due(1, 0),
            "nothing owed: a fresh segment would be empty"
        );
        while wal.bytes() < 2 * base {
            wal.alive(7_000).unwrap();
        }
        assert!(wal.due(1, 10));
        assert!(!wal.due(1, 20), "20 records owed: not yet");
        assert!(!wal.due(u64::MAX, 0), "below the size that asks for one");
    }

    /// A segment whose last line is not UTF-8 (a torn write, a bad sector), or torn JSON,
    /// costs that line only: everything before it is recovered. Today `lines()` failed on
    /// the invalid UTF-8 and the whole replay with it.
    #[test]
    fn a_last_line_of_invalid_utf8_or_torn_json_is_skipped() {
        for tail in [
            &b"{\"r\":\"alive\",\"at_ms\":\xff\xfe\xfd"[..],
            b"\xc3\x28\n",
            b"{\"r\":\"event\",\"e\":{\"ev",
        ] {
            let dir = tempfile::tempdir().unwrap();
            let mut wal =
                Wal::checkpoint(dir.path(), (&CdrBuilder::new(), &[], &Default::default()))
                    .unwrap();
            wal.events(&[started(1, 1_000), ended(1, 2_000), started(2, 2_500)])
                .unwrap();
            wal.alive(3_000).unwrap();
            drop(wal);
            let last = segments(dir.path()).unwrap().last().unwrap().1.clone();
            OpenOptions::new()
                .append(true)
                .open(&last)
                .unwrap()
                .write_all(tail)
                .unwrap();
            let r = Wal::recover(dir.path()).unwrap();
            assert_eq!(r.bad_lines, 1, "{tail:?}");
            let ids: Vec<&str> = r.pending.iter().map(|c| c.id.as_str()).collect();
            assert_eq!(ids, ["cdr-1"]);
            assert_eq!(r.builder.open_calls(), 1);
            assert_eq!(r.last_ms, Some(3_000));
        }
    }

    /// A checkpoint that fails (the disk full) removes the segment it started: the old ones
    /// stay the log, whole.
    #[test]
    fn a_failed_checkpoint_leaves_no_partial_segment() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal =
            Wal::checkpoint(dir.path(), (&CdrBuilder::new(), &[], &Default::default())).unwrap();
        wal.events(&[started(1, 1_000), ended(1, 2_000)]).unwrap();
        drop(wal);
        let before = segments(dir.path()).unwrap();
        let owed = Wal::recover(dir.path()).unwrap().pending;
        faults::set(dir.path(), true);
        let failed = Wal::checkpoint(dir.path(), (&CdrBuilder::new(), &owed, &Default::default()));
        faults::set(dir.path(), false);
        assert!(failed.is_err());
        assert_eq!(segments(dir.path()).unwrap(), before);
        assert_eq!(Wal::recover(dir.path()).unwrap().pending.len(), 1);
    }

    #[test]
    fn replay_returns_uncommitted_cdrs_and_open_calls() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal =
            Wal::checkpoint(dir.path(), (&CdrBuilder::new(), &[], &Default::default())).unwrap();
        let mut b = CdrBuilder::new();
        let events = vec![
            started(1, 1_000),
            started(2, 1_100),
            CallEvent::Answered {
                call: CallRef(2),
                at_ms: 2_000,
                codecs: Vec::new(),
            },
            ended(1, 3_000),
            started(3, 3_100),
            ended(3, 3_200),
        ];
        wal.events(&events).unwrap();
        let done: Vec<Cdr> = events.into_iter().filter_map(|e| b.apply(e)).collect();
        assert_eq!(done.len(), 2);
        wal.committed(&done[..1]).unwrap();
        wal.alive(9_000).unwrap();
        // A torn line, as a crash mid-write leaves.
        OpenOptions::new()
            .append(true)
            .open(&segments(dir.path()).unwrap().last().unwrap().1)
            .unwrap()
            .write_all(b"{\"r\":\"event\",\"e\":{\"ev")
            .unwrap();
        drop(wal);

        let mut r = Wal::recover(dir.path()).unwrap();
        assert_eq!(r.bad_lines, 1);
        assert_eq!(r.last_ms, Some(9_000));
        let ids: Vec<&str> = r.pending.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["cdr-3"], "committed CDRs are not written again");
        let closed = r.builder.close_all(9_000, "Closed on restart");
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].id, "cdr-2");
        assert_eq!(
            closed[0].billable_ms, 7_000,
            "answered at 2 s, alive until 9 s"
        );
        assert_eq!(closed[0].hangup, HangupSide::Switch);

        // A checkpoint keeps what is still owed and drops the old segments.
        let mut b = CdrBuilder::new();
        b.apply(started(7, 10_000));
        let wal = Wal::checkpoint(dir.path(), (&b, &r.pending, &Default::default())).unwrap();
        assert_eq!(segments(dir.path()).unwrap().len(), 1);
        drop(wal);
        let mut again = Wal::recover(dir.path()).unwrap();
        assert_eq!(again.pending.len(), 1);
        assert_eq!(again.builder.open_calls(), 1);
        assert_eq!(again.builder.close_all(10_500, "x")[0].id, "cdr-7");
    }
}
