//! CDRs the database refuses (`DATA_DIR/quarantine/cdrs.jsonl`): one JSON object a line —
//! when, the database's error, the CDR as built. A batch the database refuses is split until
//! the records it refuses are alone; each of those is appended here and synced *before* the
//! write-ahead log marks it settled, so it is never lost and never blocks the CDRs after it.
//! `vts cdr quarantine` lists them; `vts status --format json` counts them
//! (`cdr_quarantined`); each one logs `CDR_QUARANTINED` (docs/EVENTS.md).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use domain::Cdr;
use serde::{Deserialize, Serialize};

use crate::files;

/// The file, in the quarantine directory.
const FILE: &str = "cdrs.jsonl";

/// One refused CDR.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// When it was quarantined (epoch ms).
    pub at_ms: i64,
    /// What the database said.
    pub error: String,
    pub cdr: Cdr,
}

/// The quarantine directory of a data directory.
pub fn dir_in(data_dir: &Path) -> PathBuf {
    data_dir.join("quarantine")
}

/// Appends `entries` and syncs the file (and the directory, when the file is new).
pub fn append(dir: &Path, entries: &[Entry]) -> io::Result<()> {
    files::private_dir(dir)?;
    let path = dir.join(FILE);
    let new = !path.exists();
    let mut file = files::private_append(&path)?;
    let mut out = Vec::new();
    for e in entries {
        serde_json::to_writer(&mut out, e).map_err(io::Error::other)?;
        out.push(b'\n');
    }
    file.write_all(&out)?;
    file.sync_data()?;
    if new {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Every entry in the file, oldest first, and how many lines could not be read (a torn
/// last line after a crash). No file: none.
pub fn read(dir: &Path) -> io::Result<(Vec<Entry>, usize)> {
    let file = match File::open(dir.join(FILE)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(e),
    };
    let (mut entries, mut bad) = (Vec::new(), 0);
    for line in BufReader::new(file).split(b'\n') {
        let line = line?;
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice::<Entry>(&line) {
            Ok(e) => entries.push(e),
            Err(_) => bad += 1,
        }
    }
    Ok((entries, bad))
}

/// How many CDRs the file holds (0 when it cannot be read).
pub fn count(dir: &Path) -> u64 {
    read(dir).map_or(0, |(e, _)| e.len() as u64)
}
