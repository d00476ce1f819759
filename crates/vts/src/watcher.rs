//! Keeps the engine's directory snapshot current: polls the store's configuration version
//! (bumped by database triggers on every change, whoever writes) and swaps in a new snapshot
//! when it moves. Changes reach the running switch within one poll interval plus one load.

use std::time::Duration;

use proxy::DirectorySource;
use store::Store;
use tracing::{info, warn};

pub(crate) const POLL: Duration = Duration::from_millis(250);

pub(crate) async fn run(store: Store, directory: DirectorySource) {
    let mut version = directory.load().version;
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match store.config_version().await {
            Ok(v) if v == version => {}
            Ok(_) => match store.load_directory().await {
                Ok(d) => {
                    info!(from = version, to = d.version, "configuration reloaded");
                    version = d.version;
                    directory.store(d);
                }
                Err(e) => warn!(error = %e, "configuration reload failed; keeping the current one"),
            },
            Err(e) => warn!(error = %e, "cannot read the configuration version"),
        }
    }
}
