//! Accounting: turns the engine's call events into CDRs, rates them, and writes them to the
//! store in batches. The SIP path only sends on an unbounded channel; it never waits for this task.
//! A failed write keeps the batch and retries; on shutdown every CDR is written before the
//! task returns. (The on-disk write-ahead log comes with the accounting issue.)

use std::time::Duration;

use domain::{CallEvent, Cdr, CdrBuilder};
use proxy::DirectorySource;
use store::Store;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

/// Runs until the event channel closes (the switch stopped), then flushes. Returns how many
/// CDRs were written.
pub(crate) async fn run(
    store: Store,
    directory: DirectorySource,
    mut events: mpsc::UnboundedReceiver<CallEvent>,
    batch: usize,
    every: Duration,
) -> u64 {
    let mut builder = CdrBuilder::new();
    let mut pending: Vec<Cdr> = Vec::new();
    let mut written = 0u64;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(e) => {
                    if let Some(mut cdr) = builder.apply(e) {
                        // Rated at the rates in force when the call started.
                        domain::rating::rate_cdr(&mut cdr, &directory.load());
                        pending.push(cdr);
                        if pending.len() >= batch {
                            written += flush(&store, &mut pending).await;
                        }
                    }
                }
                None => break,
            },
            _ = tick.tick() => {
                if !pending.is_empty() {
                    written += flush(&store, &mut pending).await;
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
    let mut delay = Duration::from_millis(100);
    while !pending.is_empty() {
        let before = pending.len();
        written += flush(&store, &mut pending).await;
        if pending.len() == before {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
    info!(written, "accounting stopped");
    written
}

/// Writes the pending CDRs; on success clears them and returns how many there were.
async fn flush(store: &Store, pending: &mut Vec<Cdr>) -> u64 {
    match store.insert_cdrs(pending).await {
        Ok(_) => {
            let n = pending.len() as u64;
            pending.clear();
            n
        }
        Err(e) => {
            error!(error = %e, queued = pending.len(), "CDR write failed; will retry");
            0
        }
    }
}
