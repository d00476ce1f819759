//! The end-to-end tests of `vts`, in one binary (one link instead of eight): a real `vts
//! serve` on loopback, the `vts` CLI, real sipp, a raw UDP/TCP user agent, baresip and
//! PostgreSQL where a test says so. One module per subject; the harness is testkit's
//! process half (`testkit::{process, sipp, raw}`). The flood test is a binary of its own (`tests/flood.rs`) so that
//! no other test shares the two cores with it.

/// The harness: testkit's real-process half, and the binary under test.
mod common {
    pub(crate) use testkit::process::*;
    pub(crate) use testkit::raw::*;
    pub(crate) use testkit::sipp::*;

    /// The `vts` binary under test.
    pub(crate) const VTS: &str = env!("CARGO_BIN_EXE_vts");
}

mod accounting;
mod admission;
mod attacks;
mod calls;
mod doctor;
mod events;
mod hep;
mod http;
mod lifecycle;
mod security;
mod trace;
mod transport;
mod wire;
