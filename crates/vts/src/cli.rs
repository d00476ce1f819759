//! The command line. Global options apply to every subcommand; each has an environment
//! variable, and flags override the environment, which overrides the configuration file.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ipnet::IpNet;
use proxy::ListenerSpec;

use crate::config::{Global, HttpListen};

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
}

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

fn parse_event_kind(s: &str) -> Result<String, String> {
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

#[derive(Debug, Subcommand)]
pub(crate) enum CustomerCmd {
    /// Add a customer; prints its id.
    Add {
        #[arg(long)]
        name: String,
        /// Source address or network (CIDR), repeatable.
        #[arg(long = "ip", required = true, value_name = "CIDR")]
        ips: Vec<IpOrNet>,
        #[command(flatten)]
        limits: NewLimits,
    },
    /// List customers.
    List,
    /// Suspend a customer: its calls get 403 Forbidden - Account Suspended.
    Suspend {
        id: i64,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Block a customer (fraud): its calls get 403 Forbidden - Account Blocked.
    Block {
        id: i64,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Let a suspended or blocked customer call again.
    Activate { id: i64 },
    /// Change a customer's limits (a number, or `unlimited`); the others stay as they are.
    Limits {
        id: i64,
        #[command(flatten)]
        limits: LimitsChange,
        /// Minutes a day (UTC), calls in progress counted.
        #[arg(long, value_parser = parse_limit, value_name = "N|unlimited")]
        daily_minutes: Option<Limit>,
        /// Minutes a month (UTC), calls in progress counted.
        #[arg(long, value_parser = parse_limit, value_name = "N|unlimited")]
        monthly_minutes: Option<Limit>,
    },
    /// How the customer sends numbers: format, country, forced CLI.
    Numbers {
        id: i64,
        /// e164, national (needs --country) or auto (national or international by length).
        #[arg(long, value_parser = parse_inbound)]
        format: Option<domain::InboundFormat>,
        /// The customer's country code (e.g. 44), or `none`.
        #[arg(long, value_name = "CC|none")]
        country: Option<String>,
        /// A CLI (E.164) put on every call instead of the customer's own, or `none`.
        #[arg(long, value_name = "NUMBER|none")]
        forced_cli: Option<String>,
    },
    /// How the customer's calls choose carriers: priority or lcr.
    Routing {
        id: i64,
        #[arg(value_parser = parse_routing)]
        mode: domain::RoutingMode,
    },
    /// Give the customer a dialing plan (`vts plan list`), or `none`.
    Plan {
        id: i64,
        #[arg(value_name = "PLAN_ID|none")]
        plan: String,
    },
    /// How the customer pays: off (never refused for money), prepaid (needs a balance above
    /// 0) or postpaid (may go down to minus the credit limit).
    Billing {
        id: i64,
        #[arg(value_parser = parse_billing)]
        mode: domain::BillingMode,
        /// Postpaid: how far below zero the balance may go (e.g. 500.00).
        #[arg(long, default_value = "0", value_parser = parse_money, value_name = "AMOUNT")]
        credit_limit: domain::Money,
        /// Suspend the customer when a charge leaves nothing to spend (a credit lifts it).
        #[arg(long)]
        suspend_at_zero: bool,
    },
    /// Add money to the customer's balance (a ledger credit).
    Credit {
        id: i64,
        #[arg(value_parser = parse_money, value_name = "AMOUNT")]
        amount: domain::Money,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Give money back to the customer (a ledger refund), with a note.
    Refund {
        id: i64,
        #[arg(value_parser = parse_money, value_name = "AMOUNT")]
        amount: domain::Money,
        #[arg(long, required = true)]
        note: String,
    },
    /// Correct the customer's balance by a signed amount (e.g. -1.50), with a note.
    Adjust {
        id: i64,
        #[arg(allow_hyphen_values = true, value_parser = parse_signed_money, value_name = "AMOUNT")]
        amount: domain::Money,
        #[arg(long, required = true)]
        note: String,
    },
    /// The zone of the customer's days and months (usage, minute caps): an IANA name such
    /// as Europe/Madrid, or UTC (the default).
    Timezone { id: i64, zone: String },
    /// The customer's balance and latest ledger rows.
    Ledger {
        id: i64,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Which headers cross between this customer and carriers (docs/ROUTING.md
    /// "Headers between customers and carriers"); prints what is set now (with no option
    /// given, changes nothing).
    Headers {
        id: i64,
        /// yes: the customer's identity headers (P-Asserted-Identity, P-Preferred-Identity,
        /// Remote-Party-ID, Privacy, Diversion, History-Info) reach carriers; no (the
        /// default): they are dropped.
        #[arg(long, value_parser = parse_yes_no, value_name = "yes|no")]
        trusted: Option<bool>,
        /// yes: carriers do not see the customer's Via headers or User-Agent.
        #[arg(long, value_parser = parse_yes_no, value_name = "yes|no")]
        hide_topology: Option<bool>,
    },
    /// Give the customer a rate plan (`vts rateplan list`), or `none`.
    Rateplan {
        id: i64,
        #[arg(value_name = "PLAN_ID|none")]
        plan: String,
    },
    /// Import the customer's own rates (sell prices; LCR never routes above them) from CSV:
    /// prefix, rate per minute, connection fee, increment s, minimum s, effective date.
    ImportRates { id: i64, file: PathBuf },
}

#[derive(Debug, Subcommand)]
pub(crate) enum RatePlanCmd {
    /// Add a rate plan; prints its id.
    Add {
        #[arg(long)]
        name: String,
        /// Price = cost plus this many percent where the plan has no rate (up to 4
        /// decimals; default 0).
        #[arg(long, default_value = "0", value_parser = parse_percent, value_name = "PERCENT")]
        markup: u32,
    },
    /// Import the plan's rates from CSV (the carrier rate format).
    ImportRates { id: i64, file: PathBuf },
    /// Every plan, its markup and how many rates it has.
    List,
}

fn parse_billing(s: &str) -> Result<domain::BillingMode, domain::Invalid> {
    s.parse()
}

fn parse_money(s: &str) -> Result<domain::Money, domain::Invalid> {
    domain::Money::parse(s)
}

fn parse_signed_money(s: &str) -> Result<domain::Money, domain::Invalid> {
    match s.trim().strip_prefix('-') {
        Some(rest) => domain::Money::parse(rest).map(|m| domain::Money(-m.0)),
        None => domain::Money::parse(s),
    }
}

/// A markup in percent (`25`, `12.5`) as parts per million.
fn parse_percent(s: &str) -> Result<u32, String> {
    let m = domain::Money::parse(s)
        .map_err(|_| format!("{s:?}: a percentage (digits, up to 4 decimals)"))?;
    if m.0 % 100 != 0 {
        return Err(format!("{s:?}: at most 4 decimals"));
    }
    u32::try_from(m.0 / 100)
        .ok()
        .filter(|ppm| *ppm <= 100_000_000)
        .ok_or_else(|| format!("{s:?}: at most 10000 %"))
}

#[derive(Debug, Subcommand)]
pub(crate) enum PlanCmd {
    /// Add a dialing plan; prints its id.
    Add {
        #[arg(long)]
        name: String,
        /// What a number no rule matches gets.
        #[arg(long, value_enum, default_value_t = Action::Allow)]
        default: Action,
        /// Refuse premium-rate and international-network destinations before any rule.
        #[arg(long)]
        block_premium: bool,
    },
    /// Add a rule; prints its id. Patterns: digits as a prefix, or with `*` (any digits)
    /// and `?` (one digit), then matched against the whole number.
    Rule {
        plan: i64,
        pattern: String,
        #[arg(value_enum)]
        action: Action,
        /// Lower is tried first.
        #[arg(long, default_value_t = 100)]
        priority: i32,
    },
    /// Remove a rule by its id.
    RemoveRule { rule: i64 },
    /// Every plan with its rules.
    List,
}

/// A dialing-plan rule's or default's action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Action {
    Allow,
    Deny,
}

impl Action {
    pub(crate) fn allows(self) -> bool {
        self == Action::Allow
    }
}

fn parse_inbound(s: &str) -> Result<domain::InboundFormat, domain::Invalid> {
    s.parse()
}

fn parse_outbound(s: &str) -> Result<domain::OutboundFormat, domain::Invalid> {
    s.parse()
}

/// `yes` or `no`.
pub(crate) fn parse_yes_no(s: &str) -> Result<bool, String> {
    match s.trim() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(format!("{s:?}: yes or no")),
    }
}

fn parse_routing(s: &str) -> Result<domain::RoutingMode, domain::Invalid> {
    s.parse()
}

/// A limit as typed: a whole number from 1, or `unlimited` (`None`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limit(pub(crate) Option<u32>);

/// A timer as typed: a whole number from 1, or `default` (`None`: the switch's setting).
fn parse_or_default(s: &str) -> Result<Limit, String> {
    whole_or(s, "default")
}

fn parse_limit(s: &str) -> Result<Limit, String> {
    whole_or(s, "unlimited")
}

/// A whole number from 1, or `word` for `None`.
fn whole_or(s: &str, word: &str) -> Result<Limit, String> {
    match s.trim() {
        w if w == word => Ok(Limit(None)),
        n => match n.parse::<u32>() {
            Ok(0) | Err(_) => Err(format!("{s:?}: a whole number from 1, or `{word}`")),
            Ok(n) => Ok(Limit(Some(n))),
        },
    }
}

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

/// A moment as typed: `YYYY-MM-DD` (midnight UTC) or an RFC 3339 time; epoch ms.
pub(crate) fn parse_time(text: &str) -> Result<i64, domain::Invalid> {
    domain::parse_instant(text)
}

fn parse_transport(s: &str) -> Result<domain::Transport, domain::Invalid> {
    s.parse()
}

/// An address (`192.0.2.1`, taken as /32 or /128) or a network (`192.0.2.0/24`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct IpOrNet(pub(crate) IpNet);

impl std::str::FromStr for IpOrNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(IpOrNet(net.trunc()));
        }
        s.parse::<std::net::IpAddr>()
            .map(|ip| IpOrNet(IpNet::from(ip)))
            .map_err(|_| format!("{s:?} is not an IP address or CIDR network"))
    }
}

/// A destination number as an operator types it: 1 to 32 digits, optionally a leading `+`.
fn parse_number(s: &str) -> Result<String, String> {
    let digits = s.trim().strip_prefix('+').unwrap_or(s.trim());
    if digits.is_empty() || digits.len() > 32 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{s:?} is not a number (1 to 32 digits, optionally a leading +)"
        ));
    }
    Ok(s.trim().to_string())
}

/// Channels and calls per second of a customer or carrier being added (default: unlimited).
#[derive(Debug, Args)]
pub(crate) struct NewLimits {
    /// Calls in progress at once (default: unlimited).
    #[arg(long)]
    pub(crate) max_channels: Option<u32>,
    /// New calls (for a carrier: attempts) per second (default: unlimited).
    #[arg(long)]
    pub(crate) max_cps: Option<u32>,
}

/// Channels and calls per second of a customer or carrier to change (a number, or
/// `unlimited`; an option not given stays as it is).
#[derive(Debug, Args)]
pub(crate) struct LimitsChange {
    /// Calls in progress at once.
    #[arg(long, value_parser = parse_limit, value_name = "N|unlimited")]
    pub(crate) max_channels: Option<Limit>,
    /// New calls (for a carrier: attempts) per second.
    #[arg(long, value_parser = parse_limit, value_name = "N|unlimited")]
    pub(crate) max_cps: Option<Limit>,
}
