//! Calls seen, counted per UTC minute of their INVITE in small local files
//! (`DATA_DIR/seen/YYYY-MM-DD.json`), from the events as they are appended to the
//! write-ahead log: independent of the CDR builder and of the database, so that
//! `vts cdr reconcile` can compare them with the CDRs stored.
//!
//! A count reaches its file at most a second after the event (then the log gets a
//! `seen_flushed` mark); after a crash, the `Started` events after the last mark are counted
//! at the next start, so each call is counted once. A checkpoint writes the counts not yet
//! in their files into the fresh segment (it holds no events to count again).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use domain::Zone;

const MINUTE_MS: i64 = 60_000;

/// The minute (epoch ms / 60,000) of `at_ms`.
pub(crate) fn minute_of(at_ms: i64) -> i64 {
    at_ms.div_euclid(MINUTE_MS)
}

/// Counts not yet in their files.
#[derive(Debug)]
pub(crate) struct Seen {
    dir: PathBuf,
    /// By minute (epoch ms / 60,000).
    pending: BTreeMap<i64, u64>,
}

impl Seen {
    pub(crate) fn new(dir: PathBuf) -> Seen {
        Seen {
            dir,
            pending: BTreeMap::new(),
        }
    }

    /// A call whose INVITE arrived at `at_ms`.
    pub(crate) fn add(&mut self, at_ms: i64) {
        self.add_minute(minute_of(at_ms), 1);
    }

    /// `n` calls whose INVITE arrived in `minute` (epoch ms / 60,000).
    pub(crate) fn add_minute(&mut self, minute: i64, n: u64) {
        *self.pending.entry(minute).or_default() += n;
    }

    /// Counts not in their files yet (a checkpoint keeps them in the log).
    pub(crate) fn pending(&self) -> &BTreeMap<i64, u64> {
        &self.pending
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Adds the pending counts to their days' files (each rewritten whole, synced, renamed
    /// into place).
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        crate::files::private_dir(&self.dir)?;
        let mut by_day: BTreeMap<String, Vec<(i64, u64)>> = BTreeMap::new();
        for (&minute, &n) in &self.pending {
            by_day
                .entry(Zone::utc().date(minute * MINUTE_MS))
                .or_default()
                .push((minute, n));
        }
        for (day, counts) in by_day {
            let mut file = read_day(&self.dir, &day)?;
            for (minute, n) in counts {
                *file.entry(minute).or_default() += n;
            }
            let path = day_path(&self.dir, &day);
            let tmp = path.with_extension("json.tmp");
            let mut f = crate::files::private_create(&tmp)?;
            f.write_all(&serde_json::to_vec(&file).map_err(io::Error::other)?)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
        }
        self.pending.clear();
        Ok(())
    }
}

fn day_path(dir: &Path, day: &str) -> PathBuf {
    dir.join(format!("{day}.json"))
}

/// The counts of a UTC day (`YYYY-MM-DD`) by minute (epoch ms / 60,000); empty when none
/// were recorded.
pub(crate) fn read_day(dir: &Path, day: &str) -> io::Result<BTreeMap<i64, u64>> {
    match std::fs::read(day_path(dir, day)) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", day_path(dir, day).display()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_per_minute_across_flushes_and_days() {
        let dir = tempfile::tempdir().unwrap();
        let mut seen = Seen::new(dir.path().join("seen"));
        // 2026-11-26T23:59:30Z and 23:59:50Z, then 2026-11-27T00:00:10Z.
        let late = 1_795_737_570_000;
        seen.add(late);
        seen.add(late + 20_000);
        seen.add(late + 40_000);
        seen.flush().unwrap();
        assert!(seen.is_empty());
        seen.add(late);
        seen.flush().unwrap();
        let day = read_day(&dir.path().join("seen"), "2026-11-26").unwrap();
        assert_eq!(
            day.into_iter().collect::<Vec<_>>(),
            vec![(late / 60_000, 3)]
        );
        let next = read_day(&dir.path().join("seen"), "2026-11-27").unwrap();
        assert_eq!(next.values().sum::<u64>(), 1);
        assert!(
            read_day(&dir.path().join("seen"), "2026-11-28")
                .unwrap()
                .is_empty()
        );
    }
}
