//! `[webhooks]`: how deliveries are tried (a timeout per attempt, the backoff, the retry
//! window, the run of failures that disables a subscription, the slots per subscription), how
//! long the delivery log is kept, and the hosts customers' own webhooks may point at.

use std::time::Duration;

use serde::Deserialize;

use super::env_override;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct WebhooksSection {
    timeout_secs: u64,
    retry_base_ms: u64,
    retry_max_secs: u64,
    window_hours: u64,
    disable_after: u32,
    per_subscription: usize,
    concurrency: usize,
    /// Delivered and failed deliveries are deleted after this many days (0: kept).
    log_days: u32,
    /// Hosts (exact names or addresses) a customer token may point a webhook at.
    customer_hosts: Vec<String>,
}

impl Default for WebhooksSection {
    fn default() -> Self {
        let c = jobs::webhooks::Config::default();
        WebhooksSection {
            timeout_secs: c.timeout.as_secs(),
            retry_base_ms: c.retry_base.as_millis() as u64,
            retry_max_secs: c.retry_max.as_secs(),
            window_hours: c.window.as_secs() / 3600,
            disable_after: c.disable_after,
            per_subscription: c.per_subscription,
            concurrency: c.concurrency,
            log_days: 7,
            customer_hosts: Vec::new(),
        }
    }
}

/// The webhooks' settings, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WebhookSettings {
    pub(crate) delivery: jobs::webhooks::Config,
    pub(crate) log_retention: Option<Duration>,
    pub(crate) customer_hosts: Vec<String>,
}

/// The `[webhooks]` section with its `VTS_WEBHOOKS_…` variables over it, checked.
pub(super) fn webhook_settings(mut w: WebhooksSection) -> Result<WebhookSettings, String> {
    env_override(&mut w.timeout_secs, "VTS_WEBHOOKS_TIMEOUT_SECS")?;
    env_override(&mut w.retry_base_ms, "VTS_WEBHOOKS_RETRY_BASE_MS")?;
    env_override(&mut w.retry_max_secs, "VTS_WEBHOOKS_RETRY_MAX_SECS")?;
    env_override(&mut w.window_hours, "VTS_WEBHOOKS_WINDOW_HOURS")?;
    env_override(&mut w.disable_after, "VTS_WEBHOOKS_DISABLE_AFTER")?;
    env_override(&mut w.per_subscription, "VTS_WEBHOOKS_PER_SUBSCRIPTION")?;
    env_override(&mut w.concurrency, "VTS_WEBHOOKS_CONCURRENCY")?;
    env_override(&mut w.log_days, "VTS_WEBHOOKS_LOG_DAYS")?;
    if let Ok(v) = std::env::var("VTS_WEBHOOKS_CUSTOMER_HOSTS") {
        w.customer_hosts = v
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(str::to_string)
            .collect();
    }
    if !(1..=300).contains(&w.timeout_secs) {
        return Err(format!(
            "webhooks.timeout_secs must be 1 to 300 (got {})",
            w.timeout_secs
        ));
    }
    if w.retry_base_ms == 0 || w.retry_max_secs == 0 || w.window_hours == 0 {
        return Err(
            "webhooks.retry_base_ms, retry_max_secs and window_hours must be above 0".into(),
        );
    }
    for (key, v) in [
        ("webhooks.disable_after", w.disable_after as usize),
        ("webhooks.per_subscription", w.per_subscription),
        ("webhooks.concurrency", w.concurrency),
    ] {
        if v == 0 {
            return Err(format!("{key} must be at least 1"));
        }
    }
    for h in &w.customer_hosts {
        if h.is_empty()
            || h.contains(['/', ':', '@', ' ']) && h.parse::<std::net::IpAddr>().is_err()
        {
            return Err(format!(
                "webhooks.customer_hosts: {h:?} is not a host name or address"
            ));
        }
    }
    Ok(WebhookSettings {
        delivery: jobs::webhooks::Config {
            timeout: Duration::from_secs(w.timeout_secs),
            retry_base: Duration::from_millis(w.retry_base_ms),
            retry_max: Duration::from_secs(w.retry_max_secs),
            window: Duration::from_secs(w.window_hours * 3600),
            disable_after: w.disable_after,
            per_subscription: w.per_subscription,
            concurrency: w.concurrency,
        },
        log_retention: (w.log_days > 0)
            .then(|| Duration::from_secs(u64::from(w.log_days) * 86_400)),
        customer_hosts: w.customer_hosts,
    })
}
