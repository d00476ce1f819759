//! Keeps the engine's directory snapshot current: polls the store's configuration version
//! (bumped by database triggers on every change, whoever writes) and swaps in a new snapshot
//! when it moves; the block list, which has a version of its own, is reloaded alone when
//! only it moved. Changes reach the running switch within one poll interval plus one load.
//! Balances (which every charge changes) are read on their own, once a second.

use std::time::Duration;

use cluster::{BalanceSource, DirectorySource};
use store::Store;
use tracing::{debug, info, warn};

pub(crate) const POLL: Duration = Duration::from_millis(250);

/// Balances are read every this many polls (one second): charges and credits reach
/// admission within a second.
const BALANCE_EVERY: u32 = 4;

/// Expired block-list entries are deleted every this many polls (a minute).
const PURGE_EVERY: u32 = 240;

pub(crate) async fn run(store: Store, directory: DirectorySource, balances: BalanceSource) {
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut polls = 0u32;
    loop {
        tick.tick().await;
        polls = polls.wrapping_add(1);
        if polls.is_multiple_of(BALANCE_EVERY) {
            // The commit count first: the read includes every CDR committed before it.
            let commits = balances.commits();
            match store.balances().await {
                Ok(b) => balances.refresh(b, commits),
                Err(e) => warn!(error = %e, "cannot read the balances; keeping the last ones"),
            }
        }
        if polls.is_multiple_of(PURGE_EVERY) {
            let now_ms = domain::now_ms();
            match store.purge_expired_blocks(now_ms).await {
                Ok(0) => {}
                Ok(n) => info!(entries = n, "expired block-list entries removed"),
                Err(e) => warn!(error = %e, "cannot remove expired block-list entries"),
            }
        }
        let versions = match store.versions().await {
            Ok(v) => v,
            Err(e) => {
                warn!(error = %e, "cannot read the configuration version");
                continue;
            }
        };
        // Each snapshot carries its version: compare with the one in use.
        if versions.config != directory.version() {
            match store.load_directory().await {
                Ok(d) => {
                    info!(
                        from = directory.version(),
                        to = d.version,
                        "configuration reloaded"
                    );
                    directory.store(d);
                }
                Err(e) => warn!(error = %e, "configuration reload failed; keeping the current one"),
            }
        }
        // The block list alone: an automatic block does not reload the configuration.
        if versions.blocklist != directory.blocklist_version() {
            match store.load_blocklist().await {
                Ok(list) => {
                    debug!(
                        to = list.version(),
                        entries = list.len(),
                        "block list reloaded"
                    );
                    directory.store_blocklist(list);
                }
                Err(e) => warn!(error = %e, "block list reload failed; keeping the current one"),
            }
        }
    }
}
