//! `vts customer`, `vts rateplan` and `vts plan`: customers, their prices and their dialing
//! plans.

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};

use super::values::{
    IpOrNet, Limit, LimitsChange, NewLimits, parse_billing, parse_inbound, parse_limit,
    parse_money, parse_percent, parse_routing, parse_signed_money, parse_yes_no,
};

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
        /// A `balance.low` event (webhooks, alerts) when a charge or an adjustment takes the
        /// balance from above this amount to at or below it (default: none).
        #[arg(long, value_parser = parse_signed_money, value_name = "AMOUNT")]
        low_balance: Option<domain::Money>,
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
