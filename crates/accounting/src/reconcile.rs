//! `vts cdr reconcile`: calls seen (the per-minute counts `seen.rs` keeps beside the
//! write-ahead log) against CDRs stored, for one UTC day. A call seen has its CDR stored,
//! or waiting in the write-ahead log (built and not yet written, or still in progress);
//! anything else is a lost CDR and makes the command fail.

use std::collections::BTreeMap;

use domain::Zone;
use store::Store;

use crate::config::Settings;
use crate::{seen, wal};

pub(crate) async fn run(
    store: &Store,
    settings: &Settings,
    day: Option<String>,
) -> Result<(), String> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let day = day.unwrap_or_else(|| Zone::utc().date(now_ms));
    let from = Zone::utc().start_of(&day)?;
    let until = from + 86_400_000;
    // The counts first: every call in them is in the log by then (or committed and trimmed).
    let seen = seen::read_day(&settings.data_dir.join("seen"), &day)
        .map_err(|e| format!("cannot read the calls seen: {e}"))?;
    // Then what the log still holds for the day, then the database: in that order, a CDR
    // committed meanwhile is counted twice (reported, harmless), never missed.
    let wal_dir = settings.data_dir.join("wal");
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
        let written = store
            .stored_cdr_ids(&ids)
            .await
            .map_err(|e| e.to_string())?;
        waiting = ids.iter().filter(|id| !written.contains(*id)).count() as i64;
        open = r
            .builder
            .drafts()
            .iter()
            .filter(|(_, cdr, _)| in_day(cdr.invite_ms))
            .count() as i64;
    }
    let stored = store
        .cdrs_per_minute(from, until)
        .await
        .map_err(|e| e.to_string())?;
    let seen_total: i64 = seen.values().map(|&n| n as i64).sum();
    let stored_total: i64 = stored.values().sum();
    println!(
        "day {day} (UTC): calls seen {seen_total}, CDRs stored {stored_total}, in the write-ahead log {} ({waiting} CDRs not yet written, {open} calls in progress or left open)",
        waiting + open
    );
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
    println!("{:<6} {:>8} {:>8}", "HOUR", "SEEN", "STORED");
    for (h, (s, c)) in &hours {
        println!("{:02}:00  {s:>8} {c:>8}", h);
    }
    let differ: Vec<_> = minutes.iter().filter(|(_, (s, c))| s != c).collect();
    if !differ.is_empty() {
        println!("minutes that differ (seen, stored):");
        for (m, (s, c)) in differ.iter().take(50) {
            let at = (**m * 60_000 - from) / 60_000;
            println!("  {:02}:{:02}  {s} {c}", at / 60, at % 60);
        }
    }
    let missing = seen_total - stored_total - waiting - open;
    if missing < 0 {
        println!(
            "{} CDRs stored with no call counted (stored before the counts began, or counts lost)",
            -missing
        );
    }
    if missing > 0 {
        return Err(format!(
            "{missing} calls seen without a CDR stored or waiting"
        ));
    }
    println!("reconciled: every call seen has its CDR (stored or waiting in the log)");
    Ok(())
}

/// Reads a live log: a checkpoint of the running switch may delete a segment between the
/// listing and the opening; then the read starts again (a few times).
fn read_log(dir: &std::path::Path) -> Result<wal::Recovered, String> {
    let mut tries = 0;
    loop {
        match wal::Wal::recover(dir) {
            Ok(r) => return Ok(r),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && tries < 5 => tries += 1,
            Err(e) => return Err(format!("cannot read the write-ahead log: {e}")),
        }
    }
}
