//! The command line. Global options apply to every subcommand; each has an environment
//! variable, and flags override the environment, which overrides the configuration file.

use clap::{Args, Parser, Subcommand, ValueEnum};
use proxy::ListenerSpec;

use crate::config::{Global, HttpListen};

mod carrier;
mod customer;
mod operations;
mod values;

pub(crate) use carrier::CarrierCmd;
pub(crate) use customer::{CustomerCmd, PlanCmd, RatePlanCmd};
pub(crate) use operations::{
    BlockCmd, CdrCmd, EventFormat, EventsCmd, SettingsCmd, TokenCmd, TraceFormat, UsageCmd,
    WhitelistCmd,
};
use values::parse_number;
pub(crate) use values::{LimitsChange, NewLimits};

#[derive(Debug, Parser)]
#[command(name = "vts", version, about = "A wholesale VoIP termination switch")]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the switch.
    Serve(ServeArgs),
    /// Apply database migrations.
    Migrate,
    /// Calls in progress per customer and per carrier, and the time messages spend inside
    /// the switch (asks the running switch).
    Status {
        #[arg(long, value_enum, default_value_t = StatusFormat::Table)]
        format: StatusFormat,
        /// Start the latency histograms again (benchmark steps).
        #[arg(long)]
        reset_latency: bool,
    },
    /// What the switch would do with a call: the customer's verdict and the carriers it
    /// would try, in order, with the reason each one is kept or skipped.
    Route {
        /// Customer id (`vts customer list`).
        #[arg(long)]
        customer: i64,
        /// Destination number as the customer would send it.
        #[arg(long, value_parser = parse_number)]
        number: String,
        /// CLI as the customer would send it.
        #[arg(long, default_value = "")]
        cli: String,
    },
    /// Dialing plans: which destinations a customer may call.
    #[command(subcommand)]
    Plan(PlanCmd),
    /// Rate plans: sell rates shared by customers, with a markup on cost where they have none.
    #[command(subcommand)]
    Rateplan(RatePlanCmd),
    /// Manage customers.
    #[command(subcommand)]
    Customer(CustomerCmd),
    /// Manage carriers.
    #[command(subcommand)]
    Carrier(CarrierCmd),
    /// Call records.
    #[command(subcommand)]
    Cdr(CdrCmd),
    /// Usage counters: customers per local day or month, carriers per UTC day or month.
    #[command(subcommand)]
    Usage(UsageCmd),
    /// Global settings (limits).
    #[command(subcommand)]
    Settings(SettingsCmd),
    /// The block list: sources whose requests get 403 Forbidden - Blacklisted.
    #[command(subcommand)]
    Block(BlockCmd),
    /// The whitelist: sources never blocked automatically (flood); manual blocks still apply.
    #[command(subcommand)]
    Whitelist(WhitelistCmd),
    /// Checks the configuration, the store and its migrations, the ports, the clock, the
    /// HTTPS certificate and the free disk space; each problem with what to do about it.
    /// Exits non-zero when a check fails. Takes `serve`'s listen flags, to check the
    /// addresses a start would use.
    Doctor(ServeArgs),
    /// The SIP trace of a call (the Call-ID of its CDR) as a ladder: customer, vts, each
    /// carrier; an arrow per message with its time from the first.
    Trace {
        call_id: String,
        #[arg(long, value_enum, default_value_t = TraceFormat::Text)]
        format: TraceFormat,
    },
    /// The durable event stream (calls completed, refusals, carriers up and down, status and
    /// balance changes, blocks, limit warnings): docs/EVENTS.md.
    #[command(subcommand)]
    Events(EventsCmd),
    /// API tokens: `Authorization: Bearer TOKEN` for the REST API (docs/API.md).
    #[command(subcommand)]
    Token(TokenCmd),
    /// The audit record: who changed what (CLI, API token, the switch), newest first, with
    /// the row before and after.
    Audit {
        /// Only the changes of one thing: customer:ID, carrier:ID, setting:KEY, token:ID...
        #[arg(long)]
        target: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long, value_enum, default_value_t = EventFormat::Table)]
        format: EventFormat,
    },
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Listen address, repeatable: udp:ADDR:PORT or tcp:ADDR:PORT
    /// (default: udp:0.0.0.0:5060 and tcp:0.0.0.0:5060).
    #[arg(
        long = "sip",
        env = "VTS_SIP",
        value_delimiter = ',',
        value_name = "TRANSPORT:ADDR:PORT"
    )]
    pub(crate) sip: Vec<ListenerSpec>,
    /// The HTTP server (health, readiness, metrics): ADDR:PORT, or off
    /// (default: 127.0.0.1:8080, or `[http] listen`).
    #[arg(long, env = "VTS_HTTP", value_name = "ADDR:PORT|off")]
    pub(crate) http: Option<HttpListen>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum StatusFormat {
    Table,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Table,
    Csv,
    Json,
}
