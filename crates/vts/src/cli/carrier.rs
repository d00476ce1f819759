//! `vts carrier`: carriers, their limits, prefix lists, number profiles, header policy and
//! rates.

use std::path::PathBuf;

use clap::Subcommand;

use super::values::{
    Limit, LimitsChange, NewLimits, parse_or_default, parse_outbound, parse_transport, parse_yes_no,
};

#[derive(Debug, Subcommand)]
pub(crate) enum CarrierCmd {
    /// Add a carrier; prints its id.
    Add {
        #[arg(long)]
        name: String,
        /// IP address of the carrier.
        #[arg(long)]
        host: String,
        #[arg(long, default_value_t = 5060)]
        port: u16,
        #[arg(long, default_value = "udp", value_parser = parse_transport)]
        transport: domain::Transport,
        /// Higher is tried first.
        #[arg(long, default_value_t = 0)]
        priority: i32,
        /// Among equal priorities, higher is tried first.
        #[arg(long, default_value_t = 0)]
        weight: i32,
        #[command(flatten)]
        limits: NewLimits,
        /// No response this long after the INVITE: fail over, ms (default: sip's setting).
        #[arg(long, value_name = "MS")]
        first_response_ms: Option<u32>,
        /// Ringing this long ends the call with 408, seconds (default: sip's setting).
        #[arg(long, value_name = "SECONDS")]
        ring_timeout: Option<u32>,
    },
    /// List carriers.
    List,
    /// Add destination prefixes this carrier takes (only matching numbers go to it).
    Allow {
        id: i64,
        #[arg(required = true, value_name = "PREFIX")]
        prefixes: Vec<String>,
    },
    /// Add destination prefixes this carrier never gets.
    Deny {
        id: i64,
        #[arg(required = true, value_name = "PREFIX")]
        prefixes: Vec<String>,
    },
    /// How this carrier wants numbers and which codecs it takes (options not given stay).
    Profile {
        id: i64,
        /// Leading digits removed after formatting.
        #[arg(long)]
        strip: Option<u8>,
        /// Put in front of the destination after stripping (digits, `#`, `*`), or `none`.
        #[arg(long, value_name = "PREFIX|none")]
        tech_prefix: Option<String>,
        /// Destination format: international, plus or national (needs --country).
        #[arg(long, value_parser = parse_outbound)]
        format: Option<domain::OutboundFormat>,
        /// CLI format: international, plus or national.
        #[arg(long, value_parser = parse_outbound)]
        cli_format: Option<domain::OutboundFormat>,
        /// The carrier's country code, or `none`.
        #[arg(long, value_name = "CC|none")]
        country: Option<String>,
        /// Codecs the carrier may be offered (e.g. PCMA,G729), or `any`.
        #[arg(long, value_name = "LIST|any")]
        codecs: Option<String>,
    },
    /// Change a carrier's limits and timers (the others stay as they are).
    Limits {
        id: i64,
        #[command(flatten)]
        limits: LimitsChange,
        /// First-response timeout (failover), ms, or `default` (sip's setting).
        #[arg(long, value_parser = parse_or_default, value_name = "MS|default")]
        first_response_ms: Option<Limit>,
        /// Ring timeout (408, no failover), seconds, or `default`.
        #[arg(long, value_parser = parse_or_default, value_name = "SECONDS|default")]
        ring_timeout: Option<Limit>,
    },
    /// Which of this carrier's headers customers see (docs/ROUTING.md "Headers between
    /// customers and carriers"); prints what is set now.
    Headers {
        id: i64,
        /// yes: customers do not see the carrier's Record-Route entries, Server, Warning
        /// or User-Agent.
        #[arg(long, required = true, action = clap::ArgAction::Set, value_parser = parse_yes_no, value_name = "yes|no")]
        hide_topology: bool,
    },
    /// Take a carrier out of routing and probing.
    Disable { id: i64 },
    /// Put a disabled carrier back.
    Enable { id: i64 },
    /// Remove prefixes from the carrier's allow list.
    RemoveAllow {
        id: i64,
        #[arg(required = true, value_name = "PREFIX")]
        prefixes: Vec<String>,
    },
    /// Remove prefixes from the carrier's deny list.
    RemoveDeny {
        id: i64,
        #[arg(required = true, value_name = "PREFIX")]
        prefixes: Vec<String>,
    },
    /// Import the carrier's rates from CSV: prefix, rate per minute, connection fee,
    /// increment s, minimum s, effective date (YYYY-MM-DD or RFC 3339, UTC; empty: always).
    ImportRates { id: i64, file: PathBuf },
    /// The carrier's rates.
    Rates { id: i64 },
}
