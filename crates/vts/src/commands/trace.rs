//! `vts trace CALL-ID`: the stored SIP trace of a call (the Call-ID its CDR carries) as a
//! ladder (`telemetry::ladder`), or as JSON for tools and the panel.

use store::Store;
use telemetry::ladder::{Ladder, Step};

use crate::cli::TraceFormat;

pub(crate) async fn run(store: &Store, call_id: &str, format: TraceFormat) -> crate::error::Result {
    let messages = store.trace(call_id).await?;
    if messages.is_empty() {
        return Err(format!(
            "no trace of call {call_id:?} (traces keep failed calls by default: [trace] mode; \
             they are deleted after trace.retention_days)"
        )
        .into());
    }
    let steps: Vec<Step<'_>> = messages
        .iter()
        .map(|m| Step {
            at_us: m.at_us,
            source: &m.source,
            destination: &m.destination,
            message: &m.message,
        })
        .collect();
    let ladder = Ladder::new(call_id, &steps);
    match format {
        TraceFormat::Text => print!("{}", ladder.text()),
        TraceFormat::Json => println!("{}", serde_json::to_string_pretty(&ladder)?),
    }
    Ok(())
}
