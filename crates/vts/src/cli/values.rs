//! The values an operator types, each parsed with an error that says what is accepted:
//! money, percentages, number formats, limits, times, transports, addresses and networks, and
//! the limit options customers and carriers share.

use clap::Args;
use ipnet::IpNet;

pub(super) fn parse_billing(s: &str) -> Result<domain::BillingMode, domain::Invalid> {
    s.parse()
}

pub(super) fn parse_money(s: &str) -> Result<domain::Money, domain::Invalid> {
    domain::Money::parse(s)
}

pub(super) fn parse_signed_money(s: &str) -> Result<domain::Money, domain::Invalid> {
    match s.trim().strip_prefix('-') {
        Some(rest) => domain::Money::parse(rest).map(|m| domain::Money(-m.0)),
        None => domain::Money::parse(s),
    }
}

/// A markup in percent (`25`, `12.5`) as parts per million.
pub(super) fn parse_percent(s: &str) -> Result<u32, String> {
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

pub(super) fn parse_inbound(s: &str) -> Result<domain::InboundFormat, domain::Invalid> {
    s.parse()
}

pub(super) fn parse_outbound(s: &str) -> Result<domain::OutboundFormat, domain::Invalid> {
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

pub(super) fn parse_routing(s: &str) -> Result<domain::RoutingMode, domain::Invalid> {
    s.parse()
}

/// A limit as typed: a whole number from 1, or `unlimited` (`None`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limit(pub(crate) Option<u32>);

/// A timer as typed: a whole number from 1, or `default` (`None`: the switch's setting).
pub(super) fn parse_or_default(s: &str) -> Result<Limit, String> {
    whole_or(s, "default")
}

pub(super) fn parse_limit(s: &str) -> Result<Limit, String> {
    whole_or(s, "unlimited")
}

/// A whole number from 1, or `word` for `None`.
pub(super) fn whole_or(s: &str, word: &str) -> Result<Limit, String> {
    match s.trim() {
        w if w == word => Ok(Limit(None)),
        n => match n.parse::<u32>() {
            Ok(0) | Err(_) => Err(format!("{s:?}: a whole number from 1, or `{word}`")),
            Ok(n) => Ok(Limit(Some(n))),
        },
    }
}

/// A moment as typed: `YYYY-MM-DD` (midnight UTC) or an RFC 3339 time; epoch ms.
pub(crate) fn parse_time(text: &str) -> Result<i64, domain::Invalid> {
    domain::parse_instant(text)
}

pub(super) fn parse_transport(s: &str) -> Result<domain::Transport, domain::Invalid> {
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
pub(super) fn parse_number(s: &str) -> Result<String, String> {
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

/// A token scope: admin, read or customer:ID.
pub(super) fn parse_scope(s: &str) -> Result<domain::Scope, domain::Invalid> {
    s.parse()
}
