//! The engine's settings, with their defaults written down.

use std::time::Duration;

use sip_message::sanity::SanityConfig;

/// Proxy settings.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// No response at all from a carrier within this long: try the next one (default 5 s).
    pub first_response_timeout: Duration,
    /// A carrier that has answered with a provisional response but not a final one within
    /// this long: the call ends with 408 to the customer and CANCEL to the carrier, without
    /// failover (default 120 s).
    pub ring_timeout: Duration,
    /// Carriers tried at most per call (default 5).
    pub max_attempts: u32,
    /// A confirmed call longer than this is ended with BYE to both sides (default 4 h).
    pub max_call_duration: Duration,
    /// On shutdown, calls in progress get this long to end by themselves (default 30 s).
    pub drain_timeout: Duration,
    /// RFC 3261 T1, T2, T4.
    pub timers: sip_transaction::Config,
    pub sanity: SanityConfig,
    /// Sent in the Server and User-Agent headers of messages the switch writes.
    pub user_agent: String,
    /// Bounds on state and resources (docs/SECURITY.md).
    pub limits: Limits,
    /// Keys the MAC in the branches the switch issues (a per-install secret; `vts serve`
    /// keeps it in `DATA_DIR/branch.key`).
    pub branch_key: BranchKey,
}

/// Bounds on what strangers and broken peers can make the switch hold. Each one reached is
/// a [`domain::Cap`]: counted, reported by an event, and refused or dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Transactions in the table (`sip.max_transactions`, default 1,000,000). Each call
    /// keeps three to four for up to 64×T1 (32 s) after it ends (RFC 6026's Accepted state,
    /// Timer J), so steady load holds about 100 per call per second: the default leaves room
    /// for 10,000 cps, above what one node carries, and bounds what a stuck peer can pile up.
    pub max_transactions: usize,
    /// Calls being set up (not yet answered) at once (`sip.max_calls_in_setup`, default
    /// 20,000).
    pub max_calls_in_setup: usize,
    /// TCP connections in all, accepted and opened (`sip.tcp_max_connections`, default
    /// 4,096; also held under the process's file descriptor limit).
    pub tcp_max_connections: usize,
    /// TCP connections from one remote address (`sip.tcp_max_connections_per_address`,
    /// default 64).
    pub tcp_max_connections_per_address: usize,
    /// Bytes queued for writing on one TCP connection before it is closed
    /// (`sip.tcp_send_queue_bytes`, default 1 MiB).
    pub tcp_send_queue_bytes: usize,
    /// A TCP connection must deliver a complete message head this soon after it opens or
    /// after its previous message began (`sip.tcp_header_timeout_ms`, default 10 s).
    pub tcp_header_timeout: Duration,
    /// A TCP connection with no traffic either way for this long is closed
    /// (`sip.tcp_idle_timeout_secs`, default 600 s).
    pub tcp_idle_timeout: Duration,
    /// An outbound TCP connect that takes longer fails (`sip.tcp_connect_timeout_ms`,
    /// default 3 s).
    pub tcp_connect_timeout: Duration,
    /// Outbound TCP connects in progress at once (`sip.tcp_max_connecting`, default 128).
    pub tcp_max_connecting: usize,
    /// Background tasks sending UDP datagrams the socket buffer could not take at once
    /// (`sip.max_send_tasks`, default 1,024).
    pub max_send_tasks: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_transactions: 1_000_000,
            max_calls_in_setup: 20_000,
            tcp_max_connections: 4_096,
            tcp_max_connections_per_address: 64,
            tcp_send_queue_bytes: 1024 * 1024,
            tcp_header_timeout: Duration::from_secs(10),
            tcp_idle_timeout: Duration::from_secs(600),
            tcp_connect_timeout: Duration::from_secs(3),
            tcp_max_connecting: 128,
            max_send_tasks: 1_024,
        }
    }
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            first_response_timeout: Duration::from_secs(5),
            ring_timeout: Duration::from_secs(120),
            max_attempts: 5,
            max_call_duration: Duration::from_secs(4 * 3600),
            drain_timeout: Duration::from_secs(30),
            timers: sip_transaction::Config::default(),
            sanity: SanityConfig::default(),
            user_agent: "vts".to_string(),
            limits: Limits::default(),
            branch_key: BranchKey::random(),
        }
    }
}

/// The per-install secret that keys the MAC in every branch the switch issues.
#[derive(Clone)]
pub struct BranchKey([u8; 32]);

impl BranchKey {
    pub fn new(secret: [u8; 32]) -> BranchKey {
        BranchKey(secret)
    }

    /// The secret itself (to be kept where it was made; never logged).
    pub fn secret(&self) -> &[u8] {
        &self.0
    }

    /// A fresh random key (tests, and a switch started without a data directory).
    pub fn random() -> BranchKey {
        use rand::Rng as _;
        let mut k = [0u8; 32];
        rand::rng().fill_bytes(&mut k);
        BranchKey(k)
    }
}

impl std::fmt::Debug for BranchKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BranchKey(<redacted>)")
    }
}
