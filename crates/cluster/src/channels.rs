//! Channel reservations as leases keyed by call: a call holds a [`Lease`] per scope
//! (customer, carrier, the whole switch) for as long as it lives, and dropping the lease
//! releases the channel, so every path that ends a call (answer then BYE, failure, CANCEL,
//! timeout, shutdown, a panic unwinding the call table) gives it back.
//!
//! The check and the reservation are one step ([`Channels::try_acquire`]): no
//! check-then-increment race. A Redis implementation keeps a sorted set per scope (member:
//! the call, score: the lease's expiry), acquires with a Lua script that drops expired
//! members, checks the count and adds the call atomically, renews the leases this node holds
//! from a task of its own (every acquire and release goes through it, so it knows them: a
//! node that dies stops renewing and its calls' channels expire), and releases on drop
//! through a background queue; the proxy sees only this trait.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// What a channel counts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelScope {
    Customer(i64),
    Carrier(i64),
    Global,
}

/// Channel reservations shared by every call of the switch (and, with Redis, of the
/// cluster).
pub trait Channels: Send + Sync {
    /// Reserves a channel of `scope` for `call` when fewer than `max` are held (`None`:
    /// no limit, the reservation only counts). `false`: full, nothing reserved. Acquiring
    /// twice for the same call holds one channel.
    fn try_acquire(&self, scope: ChannelScope, call: u64, max: Option<u32>, now: Instant) -> bool;

    /// Gives back `call`'s channel of `scope` (nothing when it holds none).
    fn release(&self, scope: ChannelScope, call: u64);

    /// Channels of `scope` held now.
    fn in_use(&self, scope: ChannelScope) -> u32;
}

/// A held channel; dropping it releases the channel.
pub struct Lease {
    channels: Arc<dyn Channels>,
    scope: ChannelScope,
    call: u64,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("scope", &self.scope)
            .field("call", &self.call)
            .finish()
    }
}

impl Lease {
    /// Reserves a channel of `scope` for `call`; `None` when `scope` is full.
    pub fn acquire(
        channels: &Arc<dyn Channels>,
        scope: ChannelScope,
        call: u64,
        max: Option<u32>,
        now: Instant,
    ) -> Option<Lease> {
        channels.try_acquire(scope, call, max, now).then(|| Lease {
            channels: Arc::clone(channels),
            scope,
            call,
        })
    }

    pub fn scope(&self) -> ChannelScope {
        self.scope
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.channels.release(self.scope, self.call);
    }
}

/// The in-process [`Channels`]: the calls holding each scope, under one mutex (the engine
/// is its only user on the call path, so it is never contended).
#[derive(Debug, Default)]
pub struct LocalChannels {
    held: Mutex<HashMap<ChannelScope, HashSet<u64>>>,
}

impl LocalChannels {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Channels for LocalChannels {
    fn try_acquire(&self, scope: ChannelScope, call: u64, max: Option<u32>, _now: Instant) -> bool {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let calls = held.entry(scope).or_default();
        if calls.contains(&call) {
            return true;
        }
        if max.is_some_and(|max| calls.len() >= max as usize) {
            return false;
        }
        calls.insert(call);
        true
    }

    fn release(&self, scope: ChannelScope, call: u64) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(calls) = held.get_mut(&scope) {
            calls.remove(&call);
            if calls.is_empty() {
                held.remove(&scope);
            }
        }
    }

    fn in_use(&self, scope: ChannelScope) -> u32 {
        let held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.get(&scope).map_or(0, |c| c.len() as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_reserve_atomically_and_release_on_drop() {
        let now = Instant::now();
        let channels: Arc<dyn Channels> = Arc::new(LocalChannels::new());
        let c = ChannelScope::Customer(1);
        let held: Vec<Lease> = (0..100)
            .filter_map(|call| Lease::acquire(&channels, c, call, Some(10), now))
            .collect();
        assert_eq!(held.len(), 10, "never more than the limit");
        assert_eq!(channels.in_use(c), 10);
        assert!(
            channels.try_acquire(c, 3, Some(10), now),
            "a call already holding one is not counted twice"
        );
        drop(held);
        assert_eq!(channels.in_use(c), 0, "every lease released on drop");
        let unlimited = Lease::acquire(&channels, ChannelScope::Global, 7, None, now);
        assert!(unlimited.is_some());
        assert_eq!(channels.in_use(ChannelScope::Global), 1);
        assert_eq!(channels.in_use(ChannelScope::Carrier(1)), 0);
    }
}
