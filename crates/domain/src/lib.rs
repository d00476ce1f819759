//! # domain
//!
//! Plain types every vts crate shares, with no I/O: customers and carriers as configured
//! ([`Customer`], [`Carrier`]), the immutable [`Directory`] snapshot the SIP path reads,
//! the [`CallEvent`]s the proxy emits, and the [`Cdr`] that accounting builds from them
//! ([`CdrBuilder`]).

mod blocklist;
mod call;
mod directory;
mod party;
mod settings;

pub use blocklist::{Block, BlockList, SecurityEvent};
pub use call::{CallEvent, CallRef, Cdr, CdrBuilder, HangupSide};
pub use directory::Directory;
pub use party::{
    Carrier, CarrierId, Customer, CustomerId, CustomerStatus, PrefixVerdict, Transport,
    checked_prefix,
};
pub use settings::{Setting, Settings};
