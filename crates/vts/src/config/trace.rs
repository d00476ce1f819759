//! `[trace]` (which calls' SIP messages are stored, and the HEP collector) and `[events]`
//! (how long the event stream keeps its events).

use std::time::Duration;

use serde::Deserialize;

use super::env_override;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct TraceSection {
    /// `failed` (default), `all`, `sample` or `off`: which calls' SIP messages are stored.
    mode: String,
    /// With `sample`: the percent of calls.
    sample_percent: u8,
    /// Below this many new calls a second every call is stored whole (0: never).
    all_below_cps: u32,
    /// Trace messages older than this many days are deleted (0: kept, within `max_mb`).
    retention_days: u32,
    /// Stored trace messages hold at most this many MiB; the oldest go first.
    max_mb: u64,
    /// Messages waiting for their call's outcome hold at most this many MiB.
    memory_mb: usize,
    /// `udp:IP:PORT`: send every SIP message as HEPv3 to this collector.
    hep: Option<String>,
    /// The capture agent id in every HEP packet.
    hep_id: u32,
    hep_password: Option<String>,
}

impl Default for TraceSection {
    fn default() -> Self {
        TraceSection {
            mode: "failed".into(),
            sample_percent: 10,
            all_below_cps: 5,
            retention_days: 7,
            max_mb: 1024,
            memory_mb: 64,
            hep: None,
            hep_id: 2001,
            hep_password: None,
        }
    }
}

/// Stored SIP traces, resolved (`None` in [`Settings`] when `mode = "off"`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct TraceSettings {
    pub(crate) policy: telemetry::trace::Policy,
    pub(crate) retention: Option<Duration>,
    pub(crate) max_bytes: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct EventsSection {
    /// Events older than this many days are deleted; 0 keeps them for ever.
    pub(super) retention_days: u32,
}

impl Default for EventsSection {
    fn default() -> Self {
        EventsSection { retention_days: 30 }
    }
}

/// The `[trace]` settings of stored traces (`VTS_TRACE_MODE` over `mode`).
pub(super) fn trace_settings(trace: &TraceSection) -> Result<Option<TraceSettings>, String> {
    let mode = std::env::var("VTS_TRACE_MODE").unwrap_or_else(|_| trace.mode.clone());
    if mode.trim() == "off" {
        return Ok(None);
    }
    let mode = match mode
        .parse()
        .map_err(|e| format!("trace.mode: {e} or off"))?
    {
        telemetry::trace::Mode::Sample(_) => {
            if trace.sample_percent > 100 {
                return Err(format!(
                    "trace.sample_percent must be 0 to 100 (got {})",
                    trace.sample_percent
                ));
            }
            telemetry::trace::Mode::Sample(trace.sample_percent)
        }
        m => m,
    };
    let mut all_below_cps = trace.all_below_cps;
    env_override(&mut all_below_cps, "VTS_TRACE_ALL_BELOW_CPS")?;
    if trace.max_mb == 0 || trace.memory_mb == 0 {
        return Err("trace.max_mb and trace.memory_mb must be at least 1".into());
    }
    Ok(Some(TraceSettings {
        policy: telemetry::trace::Policy {
            mode,
            all_below_cps,
            memory_bytes: trace.memory_mb.saturating_mul(1024 * 1024),
        },
        retention: (trace.retention_days > 0)
            .then(|| Duration::from_secs(u64::from(trace.retention_days) * 86_400)),
        max_bytes: trace.max_mb.saturating_mul(1024 * 1024),
    }))
}

/// The `[trace]` HEP settings (`VTS_TRACE_HEP` over `hep`); `None` when there is no collector.
pub(super) fn hep_target(
    mut trace: TraceSection,
) -> Result<Option<telemetry::hep::Target>, String> {
    if let Ok(v) = std::env::var("VTS_TRACE_HEP") {
        trace.hep = Some(v).filter(|v| !v.trim().is_empty());
    }
    env_override(&mut trace.hep_id, "VTS_TRACE_HEP_ID")?;
    let Some(hep) = trace.hep else {
        return Ok(None);
    };
    let collector = telemetry::hep::parse_collector(&hep).map_err(|e| format!("trace.hep: {e}"))?;
    Ok(Some(telemetry::hep::Target {
        collector,
        agent_id: trace.hep_id,
        password: trace.hep_password.filter(|p| !p.is_empty()),
    }))
}
