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
//!   with builders for the messages tests send.

mod switch;
mod ua;
mod world;

pub use switch::TestSwitch;
pub use ua::{Ua, header, invite, response, tag_of};
pub use world::World;
