//! Calls in progress, per customer and per carrier, published by the engine for `vts status`.

use std::collections::BTreeMap;

use domain::{CarrierId, CustomerId, Health};
use tokio::sync::watch;

/// A snapshot of the engine's calls in progress.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    pub calls: u32,
    pub by_customer: BTreeMap<CustomerId, u32>,
    pub by_carrier: BTreeMap<CarrierId, u32>,
    /// The engine stopped taking new calls (shutting down).
    pub draining: bool,
    /// Carriers' health as the probes see it (carriers probed at least once).
    pub health: BTreeMap<CarrierId, Health>,
}

/// The reading side of the status channel.
pub type StatusHandle = watch::Receiver<Status>;

/// A status channel: the engine writes, `vts status` (and later the API) reads.
pub fn channel() -> (watch::Sender<Status>, StatusHandle) {
    watch::channel(Status::default())
}

fn bump<K: Ord>(map: &mut BTreeMap<K, u32>, key: K, up: bool) {
    let n = map.entry(key).or_insert(0);
    if up {
        *n += 1;
    } else {
        *n = n.saturating_sub(1);
    }
}

impl Status {
    pub fn call_started(&mut self, customer: CustomerId) {
        self.calls += 1;
        bump(&mut self.by_customer, customer, true);
    }

    pub fn call_ended(&mut self, customer: CustomerId) {
        self.calls = self.calls.saturating_sub(1);
        bump(&mut self.by_customer, customer, false);
        self.by_customer.retain(|_, n| *n > 0);
    }

    pub fn carrier_changed(&mut self, from: Option<CarrierId>, to: Option<CarrierId>) {
        if let Some(c) = from {
            bump(&mut self.by_carrier, c, false);
        }
        if let Some(c) = to {
            bump(&mut self.by_carrier, c, true);
        }
        self.by_carrier.retain(|_, n| *n > 0);
    }
}
