//! The block list: addresses and networks whose requests the switch refuses (403 Forbidden -
//! Blacklisted), each with a reason and an optional expiry.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// One entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub network: IpNet,
    pub reason: String,
    /// `manual`, `flood` or `auth_fail`.
    pub source: String,
    /// Epoch ms; `None` is permanent.
    pub expires_ms: Option<i64>,
}

/// Every entry, longest prefix first.
#[derive(Debug, Clone, Default)]
pub struct BlockList {
    entries: Vec<Block>,
}

impl BlockList {
    pub fn new(mut entries: Vec<Block>) -> Self {
        entries.sort_by_key(|b| std::cmp::Reverse(b.network.prefix_len()));
        BlockList { entries }
    }

    /// The entry blocking `ip` at `now_ms`, if any (expired entries block nothing).
    /// IPv4-mapped IPv6 sources are looked up as IPv4.
    pub fn blocking(&self, ip: IpAddr, now_ms: i64) -> Option<&Block> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.entries
            .iter()
            .find(|b| b.network.contains(&ip) && b.expires_ms.is_none_or(|e| e > now_ms))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A block the switch decided on its own, for the store to record (so that it shows in `vts
/// block list`, reaches every node and can be lifted by `vts block remove`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecurityEvent {
    /// More than `threshold` INVITEs a second came from `source` (SPEC.md "flood").
    FloodDetected {
        source: IpAddr,
        threshold: u32,
        blocked_until_ms: i64,
    },
    /// More than `threshold` INVITEs from `source`, which belongs to no customer, were
    /// refused within `window_s` seconds.
    AuthFailures {
        source: IpAddr,
        threshold: u32,
        window_s: u32,
        blocked_until_ms: i64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(net: &str, expires_ms: Option<i64>) -> Block {
        Block {
            network: net.parse().unwrap(),
            reason: "test".into(),
            source: "manual".into(),
            expires_ms,
        }
    }

    #[test]
    fn networks_addresses_and_expiry() {
        let l = BlockList::new(vec![
            block("198.51.100.0/24", None),
            block("192.0.2.7/32", Some(1_000)),
        ]);
        assert!(l.blocking("198.51.100.9".parse().unwrap(), 0).is_some());
        assert!(
            l.blocking("::ffff:198.51.100.9".parse().unwrap(), 0)
                .is_some()
        );
        assert!(l.blocking("192.0.2.7".parse().unwrap(), 999).is_some());
        assert!(
            l.blocking("192.0.2.7".parse().unwrap(), 1_000).is_none(),
            "expired"
        );
        assert!(l.blocking("203.0.113.1".parse().unwrap(), 0).is_none());
    }
}
