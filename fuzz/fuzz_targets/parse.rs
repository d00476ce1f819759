//! Any bytes: parse, sanity, views, edits and replies never panic.
#![no_main]

#[path = "../../crates/sip-message/tests/support/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::exercise_any(data));
