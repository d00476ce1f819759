//! Sources whose datagrams are dropped unread: blocked addresses that are no customer's or
//! carrier's. The engine builds the list from the block list (and the blocks it holds until
//! the store has them) and swaps it in; each UDP receiving task reads it for every datagram
//! before anything else is done with it, so a blocked flooder costs a receive and a hash
//! lookup, not a copy, a channel hop and a parse.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use domain::Directory;
use ipnet::IpNet;

/// The current list (none: nothing is dropped before the engine sees it).
pub(crate) type SharedDrops = Arc<ArcSwapOption<Drops>>;

/// One snapshot of the sources to drop.
#[derive(Debug)]
pub(crate) struct Drops {
    hosts: HashSet<IpAddr>,
    networks: Vec<IpNet>,
    /// To let customers' and carriers' addresses inside a blocked network through.
    directory: Arc<Directory>,
    /// The block-list version the list was built from.
    blocks_version: i64,
    /// The live configuration and block list: once either version moves past the ones the
    /// list was built from, the list may be stale (a block removed, a customer added) and
    /// is not used until the engine rebuilds it.
    source: cluster::DirectorySource,
    /// The first entry's expiry: past it the list is stale and not used.
    valid_until: Option<Instant>,
}

impl Drops {
    /// `hosts` and `networks` blocked (expiring at `valid_until` at the earliest);
    /// customers' and carriers' addresses are never in it.
    pub(crate) fn new(
        hosts: impl IntoIterator<Item = IpAddr>,
        networks: Vec<IpNet>,
        (directory, blocks_version, source): (Arc<Directory>, i64, cluster::DirectorySource),
        valid_until: Option<Instant>,
    ) -> Drops {
        let hosts = hosts
            .into_iter()
            .map(canonical)
            .filter(|ip| !directory.is_known(*ip))
            .collect();
        Drops {
            hosts,
            networks,
            directory,
            blocks_version,
            source,
            valid_until,
        }
    }

    /// Whether the list may be used at `now` (not stale: no entry expired, no newer
    /// configuration). Checked once per batch of datagrams.
    pub(crate) fn usable(&self, now: Instant) -> bool {
        self.valid_until.is_none_or(|t| now < t)
            && self.source.blocklist_version() == self.blocks_version
            && self.source.version() == self.directory.version
    }

    /// Whether a datagram from `ip` is dropped unread (the list being [`Self::usable`]).
    pub(crate) fn drops(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        if self.hosts.contains(&ip) {
            return true;
        }
        !self.networks.is_empty()
            && self.networks.iter().any(|n| n.contains(&ip))
            && !self.directory.is_known(ip)
    }
}

/// IPv4-mapped IPv6 addresses as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// At most one datagram per source per interval is let through to the engine (which
/// answers it 403); a bounded map per receiving task.
#[derive(Debug, Default)]
pub(crate) struct ReplyOnce {
    last: HashMap<IpAddr, Instant>,
}

/// A blocked source may get a reply this often.
pub(crate) const REPLY_INTERVAL: Duration = Duration::from_secs(10);

impl ReplyOnce {
    const MAX: usize = 4096;

    pub(crate) fn due(&mut self, ip: IpAddr, now: Instant) -> bool {
        if let Some(at) = self.last.get(&ip)
            && now.saturating_duration_since(*at) < REPLY_INTERVAL
        {
            return false;
        }
        if self.last.len() >= Self::MAX {
            self.last
                .retain(|_, at| now.saturating_duration_since(*at) < REPLY_INTERVAL);
            if self.last.len() >= Self::MAX {
                return false;
            }
        }
        self.last.insert(ip, now);
        true
    }
}
