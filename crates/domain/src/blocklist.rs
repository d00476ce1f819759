//! The block list: addresses and networks whose requests the switch refuses (403 Forbidden -
//! Blacklisted), each with a reason and an optional expiry.

use std::collections::HashMap;
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

/// Every entry, indexed for a lookup per request: host entries (/32, /128) in one hash
/// map, networks in one hash map per prefix length (longest first), so a lookup costs a
/// hash probe per distinct prefix length in the list, not a scan of the list.
///
/// The list is a snapshot of its own, apart from the configuration [`crate::Directory`]:
/// an automatic block changes it several times a second under attack, and must not make the
/// switch reload every customer, carrier and rate.
#[derive(Debug, Clone, Default)]
pub struct BlockList {
    /// The store's block-list version this snapshot was built from.
    version: i64,
    entries: Vec<Block>,
    hosts: HashMap<IpAddr, Vec<usize>>,
    /// (prefix length, IPv6?, networks of that length by their truncated address).
    networks: Vec<(u8, bool, HashMap<IpAddr, Vec<usize>>)>,
}

impl BlockList {
    pub fn new(mut entries: Vec<Block>) -> Self {
        entries.sort_by_key(|b| std::cmp::Reverse(b.network.prefix_len()));
        let mut hosts: HashMap<IpAddr, Vec<usize>> = HashMap::new();
        let mut networks: Vec<(u8, bool, HashMap<IpAddr, Vec<usize>>)> = Vec::new();
        for (i, b) in entries.iter().enumerate() {
            let net = b.network.trunc();
            if net.prefix_len() == net.max_prefix_len() {
                hosts.entry(net.addr()).or_default().push(i);
                continue;
            }
            let v6 = matches!(net, IpNet::V6(_));
            let len = net.prefix_len();
            match networks
                .iter_mut()
                .find(|(l, six, _)| *l == len && *six == v6)
            {
                Some((_, _, m)) => m.entry(net.addr()).or_default().push(i),
                None => networks.push((len, v6, HashMap::from([(net.addr(), vec![i])]))),
            }
        }
        networks.sort_by_key(|(len, _, _)| std::cmp::Reverse(*len));
        BlockList {
            version: 0,
            entries,
            hosts,
            networks,
        }
    }

    /// The list as of the store's block-list version `version`.
    pub fn at_version(mut self, version: i64) -> Self {
        self.version = version;
        self
    }

    /// The store's block-list version this snapshot was built from.
    pub fn version(&self) -> i64 {
        self.version
    }

    /// The entry blocking `ip` at `now_ms`, if any (expired entries block nothing).
    /// IPv4-mapped IPv6 sources are looked up as IPv4.
    pub fn blocking(&self, ip: IpAddr, now_ms: i64) -> Option<&Block> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let live = |ids: &Vec<usize>| {
            ids.iter()
                .map(|&i| &self.entries[i])
                .find(|b| b.expires_ms.is_none_or(|e| e > now_ms))
        };
        if let Some(b) = self.hosts.get(&ip).and_then(live) {
            return Some(b);
        }
        let v6 = ip.is_ipv6();
        self.networks
            .iter()
            .filter(|(_, six, _)| *six == v6)
            .find_map(|(len, _, nets)| {
                let key = IpNet::new(ip, *len).ok()?.trunc().addr();
                nets.get(&key).and_then(live)
            })
    }

    /// The entries that have not expired at `now_ms`.
    pub fn live(&self, now_ms: i64) -> impl Iterator<Item = &Block> {
        self.entries
            .iter()
            .filter(move |b| b.expires_ms.is_none_or(|e| e > now_ms))
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

    #[test]
    fn longest_prefix_wins_and_an_expired_entry_does_not_hide_a_live_one() {
        let mut wide = block("10.0.0.0/8", None);
        wide.reason = "wide".into();
        let mut narrow = block("10.1.0.0/16", Some(5));
        narrow.reason = "narrow".into();
        let l = BlockList::new(vec![wide, narrow, block("2001:db8::/64", None)]);
        let ip = "10.1.2.3".parse().unwrap();
        assert_eq!(l.blocking(ip, 0).unwrap().reason, "narrow");
        assert_eq!(l.blocking(ip, 5).unwrap().reason, "wide", "narrow expired");
        assert!(l.blocking("2001:db8::1:2".parse().unwrap(), 0).is_some());
        assert!(l.blocking("2001:db9::1".parse().unwrap(), 0).is_none());
        assert_eq!(l.live(5).count(), 2);
    }
}
