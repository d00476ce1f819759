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
        }
    }
}
