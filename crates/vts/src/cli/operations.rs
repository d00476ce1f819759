//! The operator's commands that read or act on the running switch's records: the block list
//! and whitelist, settings, CDRs, usage, events and traces.

use clap::{Subcommand, ValueEnum};

use super::Format;
use super::values::{IpOrNet, parse_scope, parse_time};

#[derive(Debug, Subcommand)]
pub(crate) enum EventsCmd {
    /// Print events, oldest first: the last --limit, or those after --after; --follow
    /// waits for new ones.
    Tail {
        /// Keep printing events as they are appended (until interrupted).
        #[arg(long)]
        follow: bool,
        /// Only events of this kind (call.completed, carrier.down, ...).
        #[arg(long = "type", value_name = "KIND", value_parser = parse_event_kind)]
        kind: Option<String>,
        /// Start after this sequence number (default: the last --limit events).
        #[arg(long, value_name = "SEQ")]
        after: Option<i64>,
        /// How many events to print at first (with --consumer: at most this many, from its
        /// checkpoint).
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Read as this named consumer: start after its checkpoint, and move the checkpoint
        /// past each event once it is printed (a second run prints only what is new).
        #[arg(long, value_name = "NAME", conflicts_with = "after")]
        consumer: Option<String>,
        /// table, or json (one object a line).
        #[arg(long, value_enum, default_value_t = EventFormat::Table)]
        format: EventFormat,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum TraceFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum EventFormat {
    Table,
    Json,
}

pub(super) fn parse_event_kind(s: &str) -> Result<String, String> {
    if store::events::KINDS.contains(&s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?} is not an event kind ({})",
            store::events::KINDS.join(", ")
        ))
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum WhitelistCmd {
    /// Whitelist an address or network.
    Add {
        #[arg(value_name = "CIDR")]
        network: IpOrNet,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Remove the entry for exactly this address or network.
    Remove {
        #[arg(value_name = "CIDR")]
        network: IpOrNet,
    },
    /// Every entry.
    List,
}

#[derive(Debug, Subcommand)]
pub(crate) enum BlockCmd {
    /// Block an address or network.
    Add {
        #[arg(value_name = "CIDR")]
        network: IpOrNet,
        #[arg(long, default_value = "")]
        reason: String,
        /// Expire after this many seconds (default: permanent).
        #[arg(long = "for", value_name = "SECONDS")]
        for_secs: Option<u64>,
    },
    /// Remove the entry for exactly this address or network.
    Remove {
        #[arg(value_name = "CIDR")]
        network: IpOrNet,
    },
    /// Every entry.
    List,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SettingsCmd {
    /// Every known setting, its value and what it does.
    List,
    /// Set one (e.g. `limits.global_max_channels 500`; 0 is unlimited).
    Set { key: String, value: String },
}

#[derive(Debug, Subcommand)]
pub(crate) enum CdrCmd {
    /// Newest first; every filter given must hold.
    List {
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        customer: Option<i64>,
        #[arg(long)]
        carrier: Option<i64>,
        /// INVITE at or after: YYYY-MM-DD (UTC) or an RFC 3339 time.
        #[arg(long, value_parser = parse_time, value_name = "TIME")]
        since: Option<i64>,
        /// INVITE before: YYYY-MM-DD (UTC) or an RFC 3339 time.
        #[arg(long, value_parser = parse_time, value_name = "TIME")]
        until: Option<i64>,
        /// Final SIP code (e.g. 200, 486).
        #[arg(long, value_parser = clap::value_parser!(u16).range(100..700))]
        code: Option<u16>,
        /// Talk time of at least this many seconds.
        #[arg(long, value_name = "SECONDS")]
        min_duration: Option<u32>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// CDRs the database refused (kept in DATA_DIR/quarantine, counted in `vts status`),
    /// oldest first; read from the data directory (no running switch needed).
    Quarantine {
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Calls the switch saw against CDRs stored, per hour and minute of a UTC day; fails
    /// when a call seen has no CDR stored or waiting in the write-ahead log.
    Reconcile {
        /// YYYY-MM-DD (UTC); today when not given.
        #[arg(long)]
        day: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum UsageCmd {
    /// Each customer's calls, answered calls, billed minutes and price in a day or month of
    /// its own zone.
    Customers {
        /// A day (YYYY-MM-DD) or a month (YYYY-MM); today's UTC date when not given.
        #[arg(long)]
        period: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Each carrier's attempts, answered, failures, billed minutes and cost in a UTC day or
    /// month.
    Carriers {
        /// A day (YYYY-MM-DD) or a month (YYYY-MM); today (UTC) when not given.
        #[arg(long)]
        period: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Count every stored CDR again (after an upgrade, or a change of a customer's zone).
    Rebuild,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCmd {
    /// Create a token. Its secret is printed once, as the last line of stdout; only its
    /// SHA-256 is kept.
    Create {
        #[arg(long)]
        name: String,
        /// admin (everything), read (reads everything, changes nothing) or customer:ID (that
        /// customer's own resources only).
        #[arg(long, value_parser = parse_scope)]
        scope: domain::Scope,
        /// Days until it stops working (default: never).
        #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=3650))]
        expires: Option<u32>,
    },
    /// Every token: id, name, scope, created, expiry, last use, revoked.
    List {
        #[arg(long, value_enum, default_value_t = EventFormat::Table)]
        format: EventFormat,
    },
    /// Revoke a token: requests with it get 401 from now on.
    Revoke { id: i64 },
}
