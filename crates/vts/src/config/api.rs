//! `[api]`: the REST API's rates per token and the failed authentications a source may make,
//! each with its `VTS_API_…` variable.

use serde::Deserialize;

use super::env_override;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct ApiSection {
    /// Requests a minute per token, sustained.
    rate_per_minute: u32,
    /// Requests a token may make at once.
    burst: u32,
    /// Failed authentications a minute per source address before it gets 429.
    auth_failures_per_minute: u32,
}

impl Default for ApiSection {
    fn default() -> Self {
        let r = web::api::Rates::default();
        ApiSection {
            rate_per_minute: r.per_minute,
            burst: r.burst,
            auth_failures_per_minute: r.auth_failures_per_minute,
        }
    }
}

/// The `[api]` section with its variables over it, checked.
pub(super) fn api_settings(mut api: ApiSection) -> Result<web::api::Config, String> {
    env_override(&mut api.rate_per_minute, "VTS_API_RATE_PER_MINUTE")?;
    env_override(&mut api.burst, "VTS_API_BURST")?;
    env_override(
        &mut api.auth_failures_per_minute,
        "VTS_API_AUTH_FAILURES_PER_MINUTE",
    )?;
    for (key, v) in [
        ("api.rate_per_minute", api.rate_per_minute),
        ("api.burst", api.burst),
        ("api.auth_failures_per_minute", api.auth_failures_per_minute),
    ] {
        if v == 0 {
            return Err(format!("{key} must be at least 1"));
        }
    }
    Ok(web::api::Config {
        rates: web::api::Rates {
            per_minute: api.rate_per_minute,
            burst: api.burst,
            auth_failures_per_minute: api.auth_failures_per_minute,
        },
        // From `[webhooks] customer_hosts` (Settings::load).
        webhook_hosts: Vec::new(),
    })
}
