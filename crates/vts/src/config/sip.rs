//! `[sip]`: the listen addresses, the proxy's timers and the bounds against floods and broken
//! peers (defaults from `proxy::Limits`), each with its `VTS_SIP_…` variable.

use std::time::Duration;

use proxy::{ListenerSpec, ProxyConfig};
use serde::Deserialize;

use super::env_override;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct SipSection {
    /// `udp:ADDR:PORT` / `tcp:ADDR:PORT`.
    listen: Vec<String>,
    pub(super) first_response_timeout_ms: u64,
    ring_timeout_ms: u64,
    max_attempts: u32,
    max_call_duration_secs: u64,
    pub(super) drain_secs: u64,
    t1_ms: u64,
    t2_ms: u64,
    t4_ms: u64,
    max_message_size: usize,
    user_agent: String,
    max_transactions: usize,
    max_calls_in_setup: usize,
    tcp_max_connections: usize,
    tcp_max_connections_per_address: usize,
    tcp_send_queue_bytes: usize,
    tcp_header_timeout_ms: u64,
    tcp_idle_timeout_secs: u64,
    tcp_connect_timeout_ms: u64,
    tcp_max_connecting: usize,
    max_send_tasks: usize,
}

impl Default for SipSection {
    fn default() -> Self {
        let l = proxy::Limits::default();
        SipSection {
            listen: vec!["udp:0.0.0.0:5060".into(), "tcp:0.0.0.0:5060".into()],
            first_response_timeout_ms: 5_000,
            ring_timeout_ms: 120_000,
            max_attempts: 5,
            max_call_duration_secs: 4 * 3600,
            drain_secs: 30,
            t1_ms: 500,
            t2_ms: 4_000,
            t4_ms: 5_000,
            max_message_size: 16 * 1024,
            user_agent: "vts".into(),
            max_transactions: l.max_transactions,
            max_calls_in_setup: l.max_calls_in_setup,
            tcp_max_connections: l.tcp_max_connections,
            tcp_max_connections_per_address: l.tcp_max_connections_per_address,
            tcp_send_queue_bytes: l.tcp_send_queue_bytes,
            tcp_header_timeout_ms: l.tcp_header_timeout.as_millis() as u64,
            tcp_idle_timeout_secs: l.tcp_idle_timeout.as_secs(),
            tcp_connect_timeout_ms: l.tcp_connect_timeout.as_millis() as u64,
            tcp_max_connecting: l.tcp_max_connecting,
            max_send_tasks: l.max_send_tasks,
        }
    }
}
/// The `[sip]` section with its `VTS_SIP_…` variables over it, checked, as the listen
/// addresses (`serve --sip` flags win when given) and the proxy's configuration.
pub(super) fn resolve(
    mut sip: SipSection,
    listen_flags: &[ListenerSpec],
) -> Result<(Vec<ListenerSpec>, ProxyConfig), String> {
    env_override(&mut sip.ring_timeout_ms, "VTS_SIP_RING_TIMEOUT_MS")?;
    env_override(&mut sip.max_attempts, "VTS_SIP_MAX_ATTEMPTS")?;
    if sip.max_attempts == 0 {
        return Err("sip.max_attempts must be at least 1".into());
    }
    env_override(
        &mut sip.first_response_timeout_ms,
        "VTS_SIP_FIRST_RESPONSE_TIMEOUT_MS",
    )?;
    env_override(
        &mut sip.max_call_duration_secs,
        "VTS_SIP_MAX_CALL_DURATION_SECS",
    )?;
    env_override(&mut sip.drain_secs, "VTS_SIP_DRAIN_SECS")?;
    env_override(&mut sip.t1_ms, "VTS_SIP_T1_MS")?;
    env_override(&mut sip.t2_ms, "VTS_SIP_T2_MS")?;
    env_override(&mut sip.t4_ms, "VTS_SIP_T4_MS")?;
    env_override(&mut sip.max_message_size, "VTS_SIP_MAX_MESSAGE_SIZE")?;
    env_override(&mut sip.user_agent, "VTS_SIP_USER_AGENT")?;
    env_override(&mut sip.max_transactions, "VTS_SIP_MAX_TRANSACTIONS")?;
    env_override(&mut sip.max_calls_in_setup, "VTS_SIP_MAX_CALLS_IN_SETUP")?;
    env_override(&mut sip.tcp_max_connections, "VTS_SIP_TCP_MAX_CONNECTIONS")?;
    env_override(
        &mut sip.tcp_max_connections_per_address,
        "VTS_SIP_TCP_MAX_CONNECTIONS_PER_ADDRESS",
    )?;
    env_override(
        &mut sip.tcp_send_queue_bytes,
        "VTS_SIP_TCP_SEND_QUEUE_BYTES",
    )?;
    env_override(
        &mut sip.tcp_header_timeout_ms,
        "VTS_SIP_TCP_HEADER_TIMEOUT_MS",
    )?;
    env_override(
        &mut sip.tcp_idle_timeout_secs,
        "VTS_SIP_TCP_IDLE_TIMEOUT_SECS",
    )?;
    env_override(
        &mut sip.tcp_connect_timeout_ms,
        "VTS_SIP_TCP_CONNECT_TIMEOUT_MS",
    )?;
    env_override(&mut sip.tcp_max_connecting, "VTS_SIP_TCP_MAX_CONNECTING")?;
    env_override(&mut sip.max_send_tasks, "VTS_SIP_MAX_SEND_TASKS")?;
    for (key, value) in [
        ("sip.max_transactions", sip.max_transactions),
        ("sip.max_calls_in_setup", sip.max_calls_in_setup),
        ("sip.tcp_max_connections", sip.tcp_max_connections),
        (
            "sip.tcp_max_connections_per_address",
            sip.tcp_max_connections_per_address,
        ),
        ("sip.tcp_max_connecting", sip.tcp_max_connecting),
        ("sip.max_send_tasks", sip.max_send_tasks),
    ] {
        if value == 0 {
            return Err(format!("{key} must be at least 1"));
        }
    }
    if sip.tcp_send_queue_bytes < sip.max_message_size {
        return Err(format!(
            "sip.tcp_send_queue_bytes ({}) must hold at least one message of \
                 sip.max_message_size ({})",
            sip.tcp_send_queue_bytes, sip.max_message_size
        ));
    }
    if !(1024..=65_535).contains(&sip.max_message_size) {
        return Err(format!(
            "sip.max_message_size must be between 1024 and 65535 bytes (got {})",
            sip.max_message_size
        ));
    }
    if sip.tcp_header_timeout_ms == 0
        || sip.tcp_idle_timeout_secs == 0
        || sip.tcp_connect_timeout_ms == 0
    {
        return Err("sip.tcp_header_timeout_ms, sip.tcp_idle_timeout_secs and \
                 sip.tcp_connect_timeout_ms must be above 0"
            .into());
    }
    let listen = if listen_flags.is_empty() {
        sip.listen
            .iter()
            .map(|s| s.parse().map_err(|e| format!("sip.listen: {e}")))
            .collect::<Result<Vec<ListenerSpec>, String>>()?
    } else {
        listen_flags.to_vec()
    };
    if listen.is_empty() {
        return Err("sip.listen: at least one listen address is needed".into());
    }
    if sip.t1_ms == 0 || sip.t2_ms < sip.t1_ms {
        return Err(format!(
            "sip: t1_ms must be > 0 and t2_ms >= t1_ms (got {} and {})",
            sip.t1_ms, sip.t2_ms
        ));
    }
    let mut proxy = ProxyConfig {
        first_response_timeout: Duration::from_millis(sip.first_response_timeout_ms),
        ring_timeout: Duration::from_millis(sip.ring_timeout_ms),
        max_attempts: sip.max_attempts,
        max_call_duration: Duration::from_secs(sip.max_call_duration_secs),
        drain_timeout: Duration::from_secs(sip.drain_secs),
        user_agent: sip.user_agent,
        ..ProxyConfig::default()
    };
    proxy.timers.t1 = Duration::from_millis(sip.t1_ms);
    proxy.timers.t2 = Duration::from_millis(sip.t2_ms);
    proxy.timers.t4 = Duration::from_millis(sip.t4_ms);
    proxy.sanity.max_message_size = sip.max_message_size;
    proxy.limits = proxy::Limits {
        max_transactions: sip.max_transactions,
        max_calls_in_setup: sip.max_calls_in_setup,
        tcp_max_connections: sip.tcp_max_connections,
        tcp_max_connections_per_address: sip.tcp_max_connections_per_address,
        tcp_send_queue_bytes: sip.tcp_send_queue_bytes,
        tcp_header_timeout: Duration::from_millis(sip.tcp_header_timeout_ms),
        tcp_idle_timeout: Duration::from_secs(sip.tcp_idle_timeout_secs),
        tcp_connect_timeout: Duration::from_millis(sip.tcp_connect_timeout_ms),
        tcp_max_connecting: sip.tcp_max_connecting,
        max_send_tasks: sip.max_send_tasks,
    };
    Ok((listen, proxy))
}
