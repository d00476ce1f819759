//! Where a request comes from: the block list (the store's, with the engine's own pending
//! blocks until the store has them), the drop list the UDP tasks check before parsing, and
//! the one sequence of every automatic block (flood, authentication failures).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use domain::{BlockList, Directory, SwitchEvent};
use tracing::warn;

use super::{DROPS_CHECK, Engine, PENDING_BLOCK_CHECK};
use crate::guard::Counter;

impl Engine {
    /// Rebuilds the list of sources the UDP tasks drop unread when the block list, the
    /// engine's own blocks or an entry's expiry changed it.
    pub(super) fn refresh_drops(
        &mut self,
        directory: &Arc<Directory>,
        blocks: &BlockList,
        now: Instant,
    ) {
        let versions = (directory.version, blocks.version());
        let stale = self.drops_dirty
            || self.drops_version != Some(versions)
            || self.drops_valid_until.is_some_and(|t| now >= t);
        if !stale {
            return;
        }
        let now_ms = self.clock.epoch_ms(now);
        let (mut hosts, mut networks, mut until) = (Vec::new(), Vec::new(), None::<i64>);
        for b in blocks.live(now_ms) {
            let net = b.network.trunc();
            if net.prefix_len() == net.max_prefix_len() {
                hosts.push(net.addr());
            } else {
                networks.push(net);
            }
            if let Some(e) = b.expires_ms {
                until = Some(until.map_or(e, |u| u.min(e)));
            }
        }
        for (ip, end) in self.pending_blocks.held() {
            match ip {
                IpAddr::V6(_) => networks.extend(ipnet::IpNet::new(ip, 64).ok()),
                v4 => hosts.push(v4),
            }
            until = Some(until.map_or(end, |u| u.min(end)));
        }
        let valid_until = until.map(|ms| self.clock.instant(ms));
        if hosts.is_empty() && networks.is_empty() {
            self.drops.store(None);
        } else {
            let snapshot = (directory.clone(), blocks.version(), self.directory.clone());
            let d = crate::drops::Drops::new(hosts, networks, snapshot, valid_until);
            self.drops.store(Some(Arc::new(d)));
        }
        self.drops_version = Some(versions);
        self.drops_valid_until = valid_until;
        self.drops_dirty = false;
        self.drops_check = self.drops.load().is_some().then(|| now + DROPS_CHECK);
    }

    /// Whether `ip` is blocked (the allocation-free check of every datagram).
    pub(super) fn is_blocked(&mut self, blocks: &BlockList, ip: IpAddr, now_ms: i64) -> bool {
        blocks.blocking(ip, now_ms).is_some()
            || (!self.pending_blocks.is_empty()
                && self.pending_blocks.blocking(blocks, ip, now_ms).is_some())
    }

    /// The block covering `ip`, if any: the store's list or a block the engine holds
    /// until the store's entry arrives.
    pub(super) fn blocked(
        &mut self,
        blocks: &BlockList,
        ip: IpAddr,
        now_ms: i64,
    ) -> Option<String> {
        if let Some(b) = blocks.blocking(ip, now_ms) {
            return Some(b.reason.clone());
        }
        self.pending_blocks
            .blocking(blocks, ip, now_ms)
            .map(str::to_string)
    }

    /// A stranger sent more than the flood threshold: block it (the engine holds the block
    /// until the store's entry arrives) and say so once.
    pub(super) fn block_flood(&mut self, now: Instant, ip: IpAddr, directory: &Directory) {
        let settings = &directory.settings;
        let until = self.clock.epoch_ms(now) + i64::from(settings.block_s) * 1000;
        self.auto_block(
            now,
            ip,
            domain::SecurityEvent::FloodDetected {
                source: crate::admission::security::aggregate(ip),
                threshold: settings.flood_threshold.unwrap_or_default(),
                blocked_until_ms: until,
            },
        );
    }

    /// The one sequence of every automatic block (flood, authentication failures): the
    /// engine holds the block at once (the source's datagrams are dropped) until the
    /// store's entry arrives; it is counted, logged once in the line fail2ban's filter
    /// knows, and sent for the store to record. A source already held is left alone.
    pub(super) fn auto_block(&mut self, now: Instant, ip: IpAddr, event: domain::SecurityEvent) {
        use domain::SecurityEvent as E;
        let now_ms = self.clock.epoch_ms(now);
        let (kind, until) = match &event {
            E::FloodDetected {
                blocked_until_ms, ..
            } => ("flood", *blocked_until_ms),
            E::AuthFailures {
                blocked_until_ms, ..
            } => ("auth_fail", *blocked_until_ms),
        };
        if !self.pending_blocks.add(ip, kind, now_ms) {
            return;
        }
        self.drops_dirty = true;
        self.guards.count(Counter::AutoBlocks);
        self.pending_check = Some(now + PENDING_BLOCK_CHECK);
        let blocked_s = (until - now_ms) / 1000;
        match &event {
            E::FloodDetected { threshold, .. } => warn!(
                target: "vts::security",
                "FLOOD source={ip} threshold={threshold}/s blocked_seconds={blocked_s}"
            ),
            E::AuthFailures {
                threshold,
                window_s,
                ..
            } => warn!(
                target: "vts::security",
                "AUTH blocked source={ip} failures={} window_seconds={window_s} blocked_seconds={blocked_s}",
                threshold + 1
            ),
        }
        let _ = self.notices.send(SwitchEvent::Security(event));
    }
}
