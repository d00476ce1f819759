//! # proxy
//!
//! The switch itself: UDP and TCP transports ([`transport`]), and the engine that owns the
//! transaction table, the calls and their dialogs (`engine`). The engine reads configuration
//! only from a [`Directory`](domain::Directory) snapshot ([`cluster::DirectorySource`]) and reports
//! every state change of a call as a [`CallEvent`](domain::CallEvent) on a channel; it never
//! touches a database.
//!
//! Start reading at [`Switch`], then `engine/mod.rs`.

mod admission;
mod config;
mod drops;
mod engine;
pub mod guard;
pub mod sdp;
pub mod transport;

pub use config::{BranchKey, Limits, ProxyConfig};
pub use domain::Reject;
pub use engine::{Shared, Switch};
pub use guard::{Counter, Gauge, GuardReport, Guards};
pub use transport::{Listener, ListenerSpec};
