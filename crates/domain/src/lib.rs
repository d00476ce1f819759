//! # domain
//!
//! Plain types every vts crate shares, with no I/O: customers and carriers as configured
//! ([`Customer`], [`Carrier`]), the immutable [`Directory`] snapshot the SIP path reads,
//! the [`CallEvent`]s the proxy emits, and the [`Cdr`] that accounting builds from them
//! ([`CdrBuilder`]).

mod access;
mod admission;
mod blocklist;
mod call;
mod cdr;
mod dialplan;
mod directory;
mod events;
mod health;
mod invalid;
pub mod numbers;
mod party;
mod rates;
pub mod rating;
pub mod routing;
mod settings;
pub mod spend;
mod zone;

pub use access::Scope;
pub use admission::Reject;
pub use blocklist::{Block, BlockList, SecurityEvent};
pub use call::{CallEvent, CallRef, HangupSide};
pub use cdr::{
    AttemptRecord, CallInProgress, Cdr, CdrBuilder, REPLACEMENT, clean_text, limits as cdr_limits,
    unsafe_char,
};
pub use dialplan::{DialPlan, DialPlanId, DialRule, PREMIUM_PREFIXES, Pattern, Verdict};
pub use directory::Directory;
pub use events::{Cap, LimitKind, SwitchEvent};
pub use health::{Health, HealthTracker, probe_alive};
pub use invalid::Invalid;
pub use numbers::{InboundFormat, NumberProfile, OutboundFormat};
pub use party::{
    BillingMode, Carrier, CarrierId, Customer, CustomerId, CustomerStatus, PrefixVerdict,
    RoutingMode, Transport, checked_prefix,
};
pub use rates::{Money, Rate, RatePlan, RatePlanId, RateTable};
pub use settings::{Setting, Settings};
pub use spend::{LiveCall, Spending};
pub use zone::{Zone, now_ms, parse_instant};
