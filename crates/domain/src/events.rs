//! Events of the switch for operators (alerts, webhooks and the panel consume them later):
//! blocks, refusals, limit warnings and carrier health changes. The proxy sends them on one
//! channel; `vts serve` records what must be stored (blocks, health) and logs every one as
//! a structured line (docs/EVENTS.md).

use std::net::IpAddr;

use crate::blocklist::SecurityEvent;
use crate::health::Health;
use crate::party::{CarrierId, CustomerId};

/// A limit that warns at 80 % of its use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKind {
    Cps,
    Channels,
    DailyMinutes,
    MonthlyMinutes,
}

impl LimitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::Cps => "cps",
            LimitKind::Channels => "channels",
            LimitKind::DailyMinutes => "daily_minutes",
            LimitKind::MonthlyMinutes => "monthly_minutes",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchEvent {
    /// The switch blocked an address (flood, auth failures).
    Security(SecurityEvent),
    /// A new call was refused by admission or routing.
    Refused {
        /// `None`: the source is no customer's.
        customer: Option<CustomerId>,
        source: IpAddr,
        code: u16,
        reason: &'static str,
    },
    /// A customer reached 80 % of a limit (once per window: a second for CPS, the day or
    /// month for minutes; channels again only after falling below 80 %).
    LimitWarning {
        customer: CustomerId,
        limit: LimitKind,
        used: u64,
        max: u64,
    },
    /// A carrier's health changed (OPTIONS probes).
    HealthChanged {
        carrier: CarrierId,
        name: String,
        from: Health,
        to: Health,
        at_ms: i64,
    },
}
