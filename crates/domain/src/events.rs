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

/// A bound the switch holds against floods, slow clients and mistakes (docs/SECURITY.md):
/// reaching one refuses, drops or closes instead of growing memory, connections or tasks.
/// Each has a setting, a counter (`vts status`) and a [`SwitchEvent::CapReached`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cap {
    /// Transactions in the table (`sip.max_transactions`): new requests get a stateless
    /// 503 (INVITE) or are dropped.
    Transactions,
    /// Calls being set up, not yet answered (`sip.max_calls_in_setup`): new INVITEs get a
    /// stateless 503.
    CallsInSetup,
    /// TCP connections in all (`sip.tcp_max_connections`): new ones are closed at accept.
    TcpConnections,
    /// TCP connections from one address (`sip.tcp_max_connections_per_address`).
    TcpConnectionsPerAddress,
    /// Bytes waiting to be written on one TCP connection (`sip.tcp_send_queue_bytes`): the
    /// connection is closed.
    TcpSendQueue,
    /// A TCP connection that sent no complete message head in time
    /// (`sip.tcp_header_timeout_ms`), or nothing at all for `sip.tcp_idle_timeout_secs`:
    /// closed.
    TcpTimeout,
    /// Outbound TCP connects in progress at once (`sip.tcp_max_connecting`); also counts
    /// connects that took longer than `sip.tcp_connect_timeout_ms`.
    OutboundConnects,
    /// Accept failed for want of file descriptors (or another resource): accepting pauses
    /// and backs off instead of spinning.
    AcceptBackoff,
    /// Background send tasks for UDP datagrams the socket buffer could not take at once
    /// (`sip.max_send_tasks`): past it, datagrams are dropped.
    SendTasks,
}

impl Cap {
    pub const ALL: [Cap; 9] = [
        Cap::Transactions,
        Cap::CallsInSetup,
        Cap::TcpConnections,
        Cap::TcpConnectionsPerAddress,
        Cap::TcpSendQueue,
        Cap::TcpTimeout,
        Cap::OutboundConnects,
        Cap::AcceptBackoff,
        Cap::SendTasks,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Cap::Transactions => "transactions",
            Cap::CallsInSetup => "calls_in_setup",
            Cap::TcpConnections => "tcp_connections",
            Cap::TcpConnectionsPerAddress => "tcp_connections_per_address",
            Cap::TcpSendQueue => "tcp_send_queue",
            Cap::TcpTimeout => "tcp_timeout",
            Cap::OutboundConnects => "outbound_connects",
            Cap::AcceptBackoff => "accept_backoff",
            Cap::SendTasks => "send_tasks",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchEvent {
    /// A bound of the switch was reached (at most one event per cap every few seconds;
    /// `hits` counts the times since the previous event).
    CapReached { cap: Cap, limit: u64, hits: u64 },
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
