//! `vts events tail`: the durable event stream, oldest first; `--follow` waits for new
//! events (woken by PostgreSQL's NOTIFY, or polling SQLite every 250 ms) until interrupted;
//! `--consumer NAME` reads from that consumer's checkpoint and moves it.

use std::io::Write as _;
use std::time::Duration;

use store::{Event, Store};

use crate::cli::{EventFormat, EventsCmd};

/// How often a follower without a wake-up (SQLite, another process) looks again.
const POLL: Duration = Duration::from_millis(250);
/// Events read at a time.
const PAGE: u32 = 500;

pub(crate) async fn run(store: &Store, cmd: EventsCmd) -> crate::error::Result {
    let EventsCmd::Tail {
        follow,
        kind,
        after,
        limit,
        consumer,
        format,
    } = cmd;
    let kind = kind.as_deref();
    let mut after = match (&consumer, after) {
        (Some(name), _) => store.event_checkpoint(name).await?,
        (None, Some(seq)) => seq,
        (None, None) => store.events_tail_start(limit, kind).await?,
    };
    let mut subscription = if follow {
        Some(store.subscribe_events().await?)
    } else {
        None
    };
    let mut printed = 0u32;
    loop {
        let page = store.events_after(after, PAGE, kind).await?;
        let mut out = std::io::stdout().lock();
        let mut done = false;
        for e in &page {
            if !follow && printed >= limit {
                done = true;
                break;
            }
            writeln!(out, "{}", line(e, format)?)?;
            printed += 1;
            after = e.seq;
        }
        out.flush()?;
        drop(out);
        // Printed (and flushed) first, then the checkpoint: a crash between the two prints
        // those events again, never skips one.
        if let Some(name) = &consumer {
            store.save_event_checkpoint(name, after).await?;
        }
        if done {
            return Ok(());
        }
        if page.len() as u32 == PAGE {
            continue;
        }
        match subscription.as_mut() {
            Some(s) => s.wait(POLL).await,
            None => return Ok(()),
        }
    }
}

fn line(e: &Event, format: EventFormat) -> crate::error::Result<String> {
    Ok(match format {
        EventFormat::Json => serde_json::to_string(e)?,
        EventFormat::Table => {
            let at = jiff::Timestamp::from_millisecond(e.at_ms)
                .map_or_else(|_| e.at_ms.to_string(), |t| t.to_string());
            let id = |v: Option<i64>| v.map_or_else(|| "-".into(), |v| v.to_string());
            format!(
                "{:>8}  {at}  {:<18}  customer {:<6}  carrier {:<6}  {}",
                e.seq,
                e.kind,
                id(e.customer_id),
                id(e.carrier_id),
                e.body
            )
        }
    })
}
