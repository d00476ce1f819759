//! The end-to-end tests of `vts`, in one binary (one link instead of eight): a real `vts
//! serve` on loopback, the `vts` CLI, real sipp, a raw UDP/TCP user agent, baresip and
//! PostgreSQL where a test says so. One module per subject; the harness is
//! `tests/common/mod.rs`. The flood test is a binary of its own (`tests/flood.rs`) so that
//! no other test shares the two cores with it.

#[path = "../common/mod.rs"]
mod common;

mod accounting;
mod admission;
mod attacks;
mod calls;
mod lifecycle;
mod security;
mod transport;
mod wire;
