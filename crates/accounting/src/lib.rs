//! # accounting
//!
//! What happens to a call after the engine reports it: the accountant ([`run`]) turns call
//! events into rated CDRs and writes them to the store in batches, behind a write-ahead log
//! (`wal.rs`) so that no CDR is lost to a crash or a database outage; records the database
//! refuses go to the [`quarantine`]; calls seen are counted per minute beside the log
//! (`seen.rs`), so that [`reconcile`] can prove every call has its CDR. Rate sheets (the
//! CSV of rates the CLI and the API import) are read and checked by [`rate_sheet`].
//!
//! This crate never imports the proxy: the engine's events arrive on a channel, and the
//! state both sides share (balances, the accounting gate, the directory) comes from
//! `cluster`.

mod accountant;
pub mod export;
pub mod files;
pub mod quarantine;
pub mod rate_sheet;
pub mod reconcile;
mod seen;
mod wal;

pub use accountant::{CdrSnapshot, CdrState, Limits, Sink, run};
