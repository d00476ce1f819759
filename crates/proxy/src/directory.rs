//! The configuration snapshot the engine reads: an `Arc<Directory>` behind an `ArcSwap`. A
//! writer (the store watcher in `vts`) builds a new snapshot and swaps it; readers never
//! block and never see a half-built one.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use domain::{CustomerId, Directory, Money};

/// A shared, swappable [`Directory`].
#[derive(Debug, Clone)]
pub struct DirectorySource(Arc<ArcSwap<Directory>>);

impl DirectorySource {
    pub fn new(directory: Directory) -> Self {
        DirectorySource(Arc::new(ArcSwap::from_pointee(directory)))
    }

    /// The current snapshot.
    pub fn load(&self) -> Arc<Directory> {
        self.0.load_full()
    }

    /// Replaces the snapshot.
    pub fn store(&self, directory: Directory) {
        self.0.store(Arc::new(directory));
    }
}

/// Customers' balances as the store last had them (polled by `vts`; charges and credits
/// change them outside the configuration, so they do not reload the directory).
#[derive(Debug, Clone, Default)]
pub struct BalanceSource(Arc<ArcSwap<HashMap<CustomerId, Money>>>);

impl BalanceSource {
    pub fn new(balances: HashMap<CustomerId, Money>) -> Self {
        BalanceSource(Arc::new(ArcSwap::from_pointee(balances)))
    }

    /// A customer's balance (0 without a ledger row yet).
    pub fn get(&self, id: CustomerId) -> Money {
        self.0.load().get(&id).copied().unwrap_or_default()
    }

    pub fn store(&self, balances: HashMap<CustomerId, Money>) {
        self.0.store(Arc::new(balances));
    }
}
