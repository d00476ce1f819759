//! Parse → forwarding edits → re-parse keeps a sane request sane.
#![no_main]

#[path = "../../crates/sip-message/tests/support/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::edit_invariant(data));
