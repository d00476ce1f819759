//! The consumer of the engine's capture queue: each message goes to the HEP collector (when
//! one is set) and through the trace recorder (when traces are on), whose keeps are written
//! to the store in batches (500 messages, or every 200 ms). Nothing here waits on the engine:
//! the engine only `try_send`s into the queue, and this task drains it every 20 ms instead
//! of waiting on it, so that no message wakes a thread (a wake-up per message cost the SIP
//! thread a futex call each).
//!
//! A store that is away keeps the batch (up to [`HELD`] messages; past it the oldest go,
//! counted); every minute the stored traces are trimmed to `[trace] max_mb`, oldest first.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use store::{Store, TraceMessage};
use telemetry::capture::{Captured, Taken};
use telemetry::hep;
use telemetry::trace::Recorder;
use tracing::warn;

/// Trace messages held while the store is away.
pub const HELD: usize = 100_000;
const BATCH: usize = 500;
const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// How often the queue is drained.
const DRAIN_EVERY: Duration = Duration::from_millis(20);
const TRIM_EVERY: Duration = Duration::from_secs(60);

/// What the trace side did, for `/metrics`.
#[derive(Debug, Default)]
pub struct TraceCounts {
    /// Messages written to the store.
    pub written: AtomicU64,
    /// Messages dropped: held too long while the store was away, or trimmed to the budget.
    pub dropped: AtomicU64,
    /// Messages the recorder let go before their call's outcome (its memory bound).
    pub evicted: AtomicU64,
}

/// Stored traces: where, under which policy, within which budget.
pub struct Traces {
    pub store: Store,
    pub recorder: Recorder,
    /// Stored trace bytes are trimmed to this, oldest first.
    pub max_bytes: u64,
    pub counts: Arc<TraceCounts>,
}

/// Runs until the capture queue closes (the engine stopped), then writes what it holds.
pub async fn run(mut taken: Taken, mut hep: Option<hep::Sender>, mut traces: Option<Traces>) {
    let mut batch: Vec<Captured> = Vec::with_capacity(256);
    let mut keep: Vec<(Bytes, Captured)> = Vec::new();
    let mut pending: Vec<TraceMessage> = Vec::new();
    let mut flush = tokio::time::interval(FLUSH_EVERY);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut trim = tokio::time::interval(TRIM_EVERY);
    trim.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut drain = tokio::time::interval(DRAIN_EVERY);
    drain.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut open = true;
    while open {
        tokio::select! {
            _ = drain.tick() => {
                // Everything queued now (no waiting on the queue: see the module's note).
                loop {
                    match taken.rx.try_recv() {
                        Ok(c) => batch.push(c),
                        Err(tokio::sync::mpsc::error::TryRecvError::Empty) => break,
                        Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => {
                            open = false;
                            break;
                        }
                    }
                    if batch.len() >= 4096 {
                        break;
                    }
                }
                for c in batch.drain(..) {
                    if let Some(h) = hep.as_mut() {
                        h.send(&c).await;
                    }
                    if let Some(t) = traces.as_mut() {
                        t.recorder.push(c, &mut keep);
                    }
                }
                pending.extend(keep.drain(..).map(row));
                if let Some(t) = traces.as_mut()
                    && pending.len() >= BATCH
                {
                    write(t, &mut pending).await;
                }
            }
            _ = flush.tick() => {
                if let Some(t) = traces.as_mut() {
                    write(t, &mut pending).await;
                    t.counts.evicted.store(t.recorder.evicted(), Ordering::Relaxed);
                }
            }
            _ = trim.tick() => {
                if let Some(t) = traces.as_ref() {
                    match t.store.trim_traces(t.max_bytes).await {
                        Ok(n) => {
                            t.counts.dropped.fetch_add(n, Ordering::Relaxed);
                        }
                        Err(e) => warn!(error = %e, "SIP traces not trimmed to their budget (retried in a minute)"),
                    }
                }
            }
        }
    }
    if let Some(t) = traces.as_mut() {
        write(t, &mut pending).await;
    }
}

/// A kept message as a row.
fn row((call_id, c): (Bytes, Captured)) -> TraceMessage {
    TraceMessage {
        call_id: String::from_utf8_lossy(&call_id).into_owned(),
        at_us: i64::try_from(c.at_us).unwrap_or(i64::MAX),
        source: c.source.to_string(),
        destination: c.destination.to_string(),
        transport: if c.tcp { "tcp" } else { "udp" }.into(),
        message: c.bytes.to_vec(),
    }
}

/// Writes `pending` (cleared when written; held, up to [`HELD`], when not).
async fn write(t: &mut Traces, pending: &mut Vec<TraceMessage>) {
    if pending.is_empty() {
        return;
    }
    match t.store.insert_trace_messages(pending).await {
        Ok(()) => {
            t.counts
                .written
                .fetch_add(pending.len() as u64, Ordering::Relaxed);
            pending.clear();
        }
        Err(e) => {
            if pending.len() > HELD {
                let over = pending.len() - HELD;
                pending.drain(..over);
                t.counts.dropped.fetch_add(over as u64, Ordering::Relaxed);
            }
            warn!(error = %e, held = pending.len(), "SIP traces not written; kept for the next try");
        }
    }
}
