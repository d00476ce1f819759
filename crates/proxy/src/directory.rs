//! The configuration snapshot the engine reads: an `Arc<Directory>` behind an `ArcSwap`. A
//! writer (the store watcher in `vts`) builds a new snapshot and swaps it; readers never
//! block and never see a half-built one.

use std::sync::Arc;

use arc_swap::ArcSwap;
use domain::Directory;

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
