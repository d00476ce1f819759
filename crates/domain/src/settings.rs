//! Global settings: one typed registry of known keys, each with its default written down. A
//! key that is not here cannot be set, so a misspelt key fails loudly instead of silently
//! keeping a default.

use crate::invalid::Invalid;
use std::fmt;

/// The switch-wide settings in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Calls in progress on the whole switch; `None` (stored as 0) is unlimited.
    pub global_max_channels: Option<u32>,
    /// New identified calls per second on the whole switch; `None` (0) is unlimited.
    pub global_max_cps: Option<u32>,
    /// INVITEs per second from one source address before it is blocked ("flood"); `None`
    /// (0) turns flood detection off. Default 50.
    pub flood_threshold: Option<u32>,
    /// How long an automatic block (flood, auth failures) lasts, seconds. Default 3600.
    pub block_s: u32,
    /// Refused INVITEs from an unknown source address tolerated in the window; one more
    /// blocks it. `None` (0) turns the count off. Default 5.
    pub auth_fail_threshold: Option<u32>,
    /// The window of the auth-failure count, seconds. Default 600.
    pub auth_fail_window_s: u32,
    /// Seconds between OPTIONS probes of each carrier. Default 30.
    pub probe_interval_s: u32,
    /// Failed probes in a row that take a carrier down. Default 2.
    pub probe_fail_threshold: u32,
    /// Answered probes in a row that bring a down carrier back. Default 2.
    pub probe_recover_threshold: u32,
    /// The reply to a call with no balance left: 402 (Payment Required) or 403.
    pub balance_refuse_code: u16,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            global_max_channels: None,
            global_max_cps: None,
            flood_threshold: Some(Setting::FloodThreshold.default_value()),
            block_s: Setting::BlockSeconds.default_value(),
            auth_fail_threshold: Some(Setting::AuthFailThreshold.default_value()),
            auth_fail_window_s: Setting::AuthFailWindowSeconds.default_value(),
            probe_interval_s: Setting::ProbeInterval.default_value(),
            probe_fail_threshold: Setting::ProbeFailThreshold.default_value(),
            probe_recover_threshold: Setting::ProbeRecoverThreshold.default_value(),
            balance_refuse_code: Setting::BalanceRefuseCode.default_value() as u16,
        }
    }
}

/// One known setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    GlobalMaxChannels,
    GlobalMaxCps,
    FloodThreshold,
    BlockSeconds,
    AuthFailThreshold,
    AuthFailWindowSeconds,
    ProbeInterval,
    ProbeFailThreshold,
    ProbeRecoverThreshold,
    BalanceRefuseCode,
}

impl Setting {
    pub const ALL: &'static [Setting] = &[
        Setting::GlobalMaxChannels,
        Setting::GlobalMaxCps,
        Setting::FloodThreshold,
        Setting::BlockSeconds,
        Setting::AuthFailThreshold,
        Setting::AuthFailWindowSeconds,
        Setting::ProbeInterval,
        Setting::ProbeFailThreshold,
        Setting::ProbeRecoverThreshold,
        Setting::BalanceRefuseCode,
    ];

    /// The value in force when the key is not stored.
    pub fn default_value(self) -> u32 {
        match self {
            Setting::GlobalMaxChannels | Setting::GlobalMaxCps => 0,
            Setting::FloodThreshold => 50,
            Setting::BlockSeconds => 3600,
            Setting::AuthFailThreshold => 5,
            Setting::AuthFailWindowSeconds => 600,
            Setting::ProbeInterval => 30,
            Setting::ProbeFailThreshold | Setting::ProbeRecoverThreshold => 2,
            Setting::BalanceRefuseCode => 402,
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Setting::GlobalMaxChannels => "limits.global_max_channels",
            Setting::GlobalMaxCps => "limits.global_max_cps",
            Setting::FloodThreshold => "security.flood_threshold",
            Setting::BlockSeconds => "security.block_seconds",
            Setting::AuthFailThreshold => "security.auth_fail_threshold",
            Setting::AuthFailWindowSeconds => "security.auth_fail_window_seconds",
            Setting::ProbeInterval => "health.probe_interval_seconds",
            Setting::ProbeFailThreshold => "health.fail_threshold",
            Setting::ProbeRecoverThreshold => "health.recover_threshold",
            Setting::BalanceRefuseCode => "billing.refuse_code",
        }
    }

    pub fn help(self) -> &'static str {
        match self {
            Setting::GlobalMaxChannels => "calls in progress on the whole switch (0: unlimited)",
            Setting::GlobalMaxCps => "new calls per second on the whole switch (0: unlimited)",
            Setting::FloodThreshold => {
                "INVITEs per second from one address before it is blocked (0: off)"
            }
            Setting::BlockSeconds => {
                "how long an automatic block (flood, auth failures) lasts, seconds (at least 1)"
            }
            Setting::AuthFailThreshold => {
                "refused INVITEs from an unknown address tolerated per window (0: off)"
            }
            Setting::AuthFailWindowSeconds => "the window of that count, seconds (at least 1)",
            Setting::ProbeInterval => "seconds between OPTIONS probes of each carrier (1 to 3600)",
            Setting::ProbeFailThreshold => {
                "failed probes in a row that take a carrier down (at least 1)"
            }
            Setting::ProbeRecoverThreshold => {
                "answered probes in a row that bring a down carrier back (at least 1)"
            }
            Setting::BalanceRefuseCode => "reply to a call with no balance left: 402 or 403",
        }
    }

    /// The setting a key names.
    pub fn from_key(key: &str) -> Result<Setting, Invalid> {
        Setting::ALL
            .iter()
            .copied()
            .find(|s| s.key() == key)
            .ok_or_else(|| {
                let known: Vec<&str> = Setting::ALL.iter().map(|s| s.key()).collect();
                Invalid::new(format!(
                    "unknown setting {key:?} (known: {})",
                    known.join(", ")
                ))
            })
    }

    /// Checks a value and returns it in its stored form.
    pub fn check(self, value: &str) -> Result<String, Invalid> {
        let v = value.trim();
        let n = v.parse::<u32>().map_err(|_| {
            format!(
                "{}: {value:?} is not a whole number from 0 to 4294967295",
                self.key()
            )
        })?;
        if matches!(
            self,
            Setting::BlockSeconds
                | Setting::AuthFailWindowSeconds
                | Setting::ProbeInterval
                | Setting::ProbeFailThreshold
                | Setting::ProbeRecoverThreshold
        ) && n == 0
        {
            return Err(format!("{}: at least 1", self.key()).into());
        }
        if self == Setting::BalanceRefuseCode && n != 402 && n != 403 {
            return Err(format!("{}: 402 or 403", self.key()).into());
        }
        if self == Setting::ProbeInterval && n > 3600 {
            return Err(format!("{}: at most 3600 seconds", self.key()).into());
        }
        Ok(n.to_string())
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

impl Settings {
    /// Applies one stored `(key, value)`; unknown keys and bad values are errors (a row
    /// written by hand into the table must not be silently ignored).
    pub fn apply(&mut self, key: &str, value: &str) -> Result<(), Invalid> {
        let setting = Setting::from_key(key)?;
        let n: u32 = setting
            .check(value)?
            .parse()
            .map_err(|e| format!("{key}: {e}"))?;
        let limit = (n > 0).then_some(n);
        match setting {
            Setting::GlobalMaxChannels => self.global_max_channels = limit,
            Setting::GlobalMaxCps => self.global_max_cps = limit,
            Setting::FloodThreshold => self.flood_threshold = limit,
            Setting::BlockSeconds => self.block_s = n,
            Setting::AuthFailThreshold => self.auth_fail_threshold = limit,
            Setting::AuthFailWindowSeconds => self.auth_fail_window_s = n,
            Setting::ProbeInterval => self.probe_interval_s = n,
            Setting::ProbeFailThreshold => self.probe_fail_threshold = n,
            Setting::ProbeRecoverThreshold => self.probe_recover_threshold = n,
            Setting::BalanceRefuseCode => self.balance_refuse_code = n as u16,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_keys_only_and_zero_is_unlimited() {
        let mut s = Settings::default();
        s.apply("limits.global_max_channels", "100").unwrap();
        s.apply("limits.global_max_cps", "0").unwrap();
        assert_eq!(s.global_max_channels, Some(100));
        assert_eq!(s.global_max_cps, None);
        assert!(
            s.apply("limits.global_max_chanels", "1")
                .unwrap_err()
                .message()
                .contains("unknown setting")
        );
        assert!(s.apply("limits.global_max_cps", "-1").is_err());
        assert_eq!(Setting::GlobalMaxCps.check(" 25 ").unwrap(), "25");
        assert_eq!(s.flood_threshold, Some(50));
        assert_eq!(s.block_s, 3600);
        s.apply("security.flood_threshold", "0").unwrap();
        assert_eq!(s.flood_threshold, None);
        assert!(s.apply("security.block_seconds", "0").is_err());
    }
}
