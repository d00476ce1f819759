//! # testkit
//!
//! Dev-only helpers for tests of the switch (never a normal dependency: `scripts/check-deps`
//! checks it):
//! - [`World`]: customers and carriers built in code, as the directory the engine reads;
//! - [`TestSwitch`]: the engine and its UDP transport started inside the test's own Tokio
//!   runtime, so a test with `#[tokio::test(start_paused = true)]` drives every timer of
//!   the switch (ring timeout, failover, session reaper) in virtual time: seconds of
//!   timers run in milliseconds;
//! - [`Ua`]: a scripted SIP user agent on a tokio UDP socket (customer or carrier side),
//!   with builders for the messages tests send;
//! - [`process`]: the real `vts` binary as a process: a data directory and its CLI
//!   ([`process::Vts`]), a running `vts serve` ([`process::Serve`]), and waiters for its
//!   status, configuration versions, CDRs and log lines;
//! - [`sipp`]: real sipp as carriers ([`sipp::Uas`]) and customers ([`sipp::Uac`]) with
//!   named arguments, on the scenarios in `sipp/`;
//! - [`raw`]: a raw SIP endpoint on a blocking UDP socket, for tests against a process;
//! - [`http`]: a plain HTTP/1.1 client for the switch's HTTP server;
//! - [`hep`]: a HEPv3 decoder, written apart from the switch's encoder.

pub mod hep;
pub mod http;
pub mod process;
pub mod raw;
pub mod sipp;
mod switch;
mod ua;
mod world;

pub use switch::TestSwitch;
pub use ua::{Ua, header, invite, response, tag_of};
pub use world::World;
