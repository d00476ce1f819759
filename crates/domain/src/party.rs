//! Customers (who send us calls, identified by source address) and carriers (where we send
//! them).

use crate::invalid::Invalid;
use std::fmt;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::dialplan::DialPlanId;
use crate::numbers::{InboundFormat, NumberProfile};

/// A customer's id in the store.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct CustomerId(pub i64);

/// A carrier's id in the store.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct CarrierId(pub i64);

impl fmt::Display for CustomerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for CarrierId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Whether a customer may place calls (SPEC.md "Call admission", stage "status").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CustomerStatus {
    #[default]
    Active,
    /// By an operator or by billing: 403 Forbidden - Account Suspended.
    Suspended,
    /// For fraud: 403 Forbidden - Account Blocked.
    Blocked,
}

impl CustomerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CustomerStatus::Active => "active",
            CustomerStatus::Suspended => "suspended",
            CustomerStatus::Blocked => "blocked",
        }
    }
}

impl FromStr for CustomerStatus {
    type Err = Invalid;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(CustomerStatus::Active),
            "suspended" => Ok(CustomerStatus::Suspended),
            "blocked" => Ok(CustomerStatus::Blocked),
            other => Err(format!(
                "unknown customer status {other:?} (active, suspended or blocked)"
            )
            .into()),
        }
    }
}

impl fmt::Display for CustomerStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A customer trunk.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Customer {
    pub id: CustomerId,
    pub name: String,
    /// A disabled customer's calls get 403 Forbidden - Account Suspended.
    pub active: bool,
    pub status: CustomerStatus,
    /// Why the customer is suspended or blocked.
    pub status_reason: Option<String>,
    /// Source addresses or networks the customer's calls come from.
    pub ips: Vec<IpNet>,
    /// Concurrent calls allowed; `None` is unlimited.
    pub max_channels: Option<u32>,
    /// New calls per second allowed; `None` is unlimited.
    pub max_cps: Option<u32>,
    /// Minutes a day (the customer's local day), calls in progress counted; `None` is
    /// unlimited.
    #[serde(default)]
    pub daily_minutes: Option<u32>,
    /// Minutes a month (the customer's local month), calls in progress counted; `None` is
    /// unlimited.
    #[serde(default)]
    pub monthly_minutes: Option<u32>,
    /// How the customer sends numbers.
    #[serde(default)]
    pub number_format: InboundFormat,
    /// The customer's country (national and auto number formats).
    #[serde(default)]
    pub country_code: Option<String>,
    /// CLI (E.164) put on every call instead of the customer's own.
    #[serde(default)]
    pub forced_cli: Option<String>,
    /// The dialing plan the customer's destinations must pass.
    #[serde(default)]
    pub dial_plan: Option<DialPlanId>,
    /// How carriers are chosen.
    #[serde(default)]
    pub routing: RoutingMode,
    /// Sell rates for destinations the customer has no own rate for.
    #[serde(default)]
    pub rate_plan: Option<crate::rates::RatePlanId>,
    /// Whether calls draw on a balance.
    #[serde(default)]
    pub billing: BillingMode,
    /// Postpaid: how far below zero the balance may go.
    #[serde(default)]
    pub credit_limit: crate::rates::Money,
    /// A `balance.low` event when the balance goes from above this to at or below it.
    pub low_balance: Option<crate::rates::Money>,
    /// Where the customer's days and months begin (usage counters, minute caps).
    #[serde(default)]
    pub timezone: crate::zone::Zone,
    /// Identity headers from this customer (P-Asserted-Identity, P-Preferred-Identity,
    /// Remote-Party-ID, Privacy, Diversion, History-Info) reach carriers. Off (the default),
    /// they are dropped: otherwise a forced CLI is bypassed through P-Asserted-Identity.
    #[serde(default)]
    pub trusted: bool,
    /// Carriers do not see this customer's topology: its Via headers (restored on the
    /// responses it gets), its User-Agent.
    #[serde(default)]
    pub hide_topology: bool,
}

/// How a customer pays (SPEC.md "Accounting and billing").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BillingMode {
    /// Calls are rated but never refused for money.
    #[default]
    Off,
    /// Calls need a balance above zero.
    Prepaid,
    /// Calls need a balance above minus the credit limit.
    Postpaid,
}

impl BillingMode {
    pub fn as_str(self) -> &'static str {
        match self {
            BillingMode::Off => "off",
            BillingMode::Prepaid => "prepaid",
            BillingMode::Postpaid => "postpaid",
        }
    }
}

impl FromStr for BillingMode {
    type Err = Invalid;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" => Ok(BillingMode::Off),
            "prepaid" => Ok(BillingMode::Prepaid),
            "postpaid" => Ok(BillingMode::Postpaid),
            other => Err(format!("unknown billing {other:?} (off, prepaid or postpaid)").into()),
        }
    }
}

impl fmt::Display for BillingMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Customer {
    /// What this customer may still spend with a balance of `balance`: all of it when
    /// prepaid, the balance plus the credit limit when postpaid; `None` when billing is off
    /// (no limit).
    pub fn spendable(&self, balance: crate::rates::Money) -> Option<crate::rates::Money> {
        match self.billing {
            BillingMode::Off => None,
            BillingMode::Prepaid => Some(balance),
            BillingMode::Postpaid => Some(crate::rates::Money(
                balance.0.saturating_add(self.credit_limit.0),
            )),
        }
    }

    /// The customer's local clock at `epoch_ms` (epoch ms shifted by its zone's offset then):
    /// its days and months are those of this clock.
    pub fn local_ms(&self, epoch_ms: i64) -> i64 {
        epoch_ms + self.timezone.offset_ms(epoch_ms)
    }

    /// Whether a balance of `balance` still lets this customer call: something left to
    /// spend.
    pub fn may_spend(&self, balance: crate::rates::Money) -> bool {
        self.spendable(balance).is_none_or(|left| left.0 > 0)
    }
}

/// How a customer's calls choose carriers (SPEC.md "Routing").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoutingMode {
    /// Higher priority first; equal priorities share by weight.
    #[default]
    Priority,
    /// Cheapest carrier rate for the longest matching prefix, never above the customer's
    /// own rate for the destination.
    Lcr,
}

impl RoutingMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RoutingMode::Priority => "priority",
            RoutingMode::Lcr => "lcr",
        }
    }
}

impl FromStr for RoutingMode {
    type Err = Invalid;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "priority" => Ok(RoutingMode::Priority),
            "lcr" => Ok(RoutingMode::Lcr),
            other => Err(format!("unknown routing mode {other:?} (priority or lcr)").into()),
        }
    }
}

impl fmt::Display for RoutingMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How we reach a carrier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    #[default]
    Udp,
    Tcp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Transport {
    type Err = Invalid;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "udp" => Ok(Transport::Udp),
            "tcp" => Ok(Transport::Tcp),
            other => Err(format!("unknown transport {other:?} (expected udp or tcp)").into()),
        }
    }
}

/// An upstream carrier.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Carrier {
    pub id: CarrierId,
    pub name: String,
    /// Host name or IP address.
    pub host: String,
    pub port: u16,
    pub transport: Transport,
    /// Higher is tried first.
    pub priority: i32,
    /// Among equal priorities, higher is tried first.
    pub weight: i32,
    /// Inactive carriers get no calls.
    pub active: bool,
    /// Calls in progress through this carrier; `None` is unlimited. Checked per attempt.
    pub max_channels: Option<u32>,
    /// New attempts per second to this carrier; `None` is unlimited. Checked per attempt.
    pub max_cps: Option<u32>,
    /// First-response timeout (failover), ms; `None`: the switch's default.
    #[serde(default)]
    pub first_response_ms: Option<u32>,
    /// Ring timeout (408 to the customer, no failover), seconds; `None`: the switch's default.
    #[serde(default)]
    pub ring_timeout_s: Option<u32>,
    /// Destination prefixes this carrier takes (empty: every destination not denied).
    #[serde(default)]
    pub allow: Vec<String>,
    /// Destination prefixes this carrier never gets.
    #[serde(default)]
    pub deny: Vec<String>,
    /// How this carrier wants numbers.
    #[serde(default)]
    pub numbers: NumberProfile,
    /// Codecs (SDP encoding names, e.g. `PCMA`) this carrier may be offered; empty: any.
    #[serde(default)]
    pub codecs: Vec<String>,
    /// Customers do not see this carrier's topology: its Record-Route entries, its Server,
    /// Warning and User-Agent headers.
    #[serde(default)]
    pub hide_topology: bool,
}

/// What a carrier's prefix lists say about a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefixVerdict {
    Allowed,
    Denied,
    NotAllowed,
}

impl Carrier {
    /// Checks a destination (E.164 digits, a leading `+` ignored) against the lists: deny
    /// first, then allow when the carrier has an allow list.
    pub fn prefix_verdict(&self, number: &str) -> PrefixVerdict {
        let number = number.strip_prefix('+').unwrap_or(number);
        if self.deny.iter().any(|p| number.starts_with(p.as_str())) {
            PrefixVerdict::Denied
        } else if !self.allow.is_empty()
            && !self.allow.iter().any(|p| number.starts_with(p.as_str()))
        {
            PrefixVerdict::NotAllowed
        } else {
            PrefixVerdict::Allowed
        }
    }
}

/// Checks a destination prefix: digits only (1 to 20 of them), a leading `+` dropped.
pub fn checked_prefix(prefix: &str) -> Result<String, Invalid> {
    let p = prefix.trim();
    let p = p.strip_prefix('+').unwrap_or(p);
    if p.is_empty() || p.len() > 20 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{prefix:?} is not a destination prefix (1 to 20 digits)").into());
    }
    Ok(p.to_string())
}
