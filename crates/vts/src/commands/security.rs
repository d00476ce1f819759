//! `vts block` and `vts whitelist`: the block list (manual entries, with an optional expiry)
//! and the sources never blocked automatically. Both are lists of networks with a reason:
//! one way to add, remove and print an entry.

use domain::now_ms;
use ipnet::IpNet;
use store::{Store, StoreError};

use crate::cli::{BlockCmd, WhitelistCmd};

/// The two lists, as the commands name them.
#[derive(Clone, Copy)]
enum List {
    Block,
    Whitelist,
}

impl List {
    fn name(self) -> &'static str {
        match self {
            List::Block => "the block list",
            List::Whitelist => "the whitelist",
        }
    }

    /// What `add` and `remove` print.
    fn done(self, added: bool, network: IpNet) -> String {
        match (self, added) {
            (List::Block, true) => format!("blocked {network}"),
            (List::Block, false) => format!("unblocked {network}"),
            (List::Whitelist, true) => format!("whitelisted {network}"),
            (List::Whitelist, false) => format!("removed {network} from the whitelist"),
        }
    }
}

/// Prints what an add did, or says why it was refused.
fn added(list: List, network: IpNet, result: Result<(), StoreError>) -> crate::error::Result {
    result?;
    println!("{}", list.done(true, network));
    Ok(())
}

/// Prints what a removal did; a network that was not on the list is an error.
fn removed(list: List, network: IpNet, result: Result<bool, StoreError>) -> crate::error::Result {
    if result? {
        println!("{}", list.done(false, network));
        Ok(())
    } else {
        Err(format!("{network} is not on {}", list.name()).into())
    }
}

pub(super) async fn block(store: &Store, cmd: BlockCmd) -> crate::error::Result {
    match cmd {
        BlockCmd::Add {
            network,
            reason,
            for_secs,
        } => {
            let expires_ms = for_secs
                .map(|s| now_ms() + i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX / 2));
            let result = store.add_block(network.0, &reason, expires_ms).await;
            added(List::Block, network.0, result)
        }
        BlockCmd::Remove { network } => {
            removed(List::Block, network.0, store.remove_block(network.0).await)
        }
        BlockCmd::List => {
            let now = now_ms();
            println!(
                "{:<24} {:<10} {:<26} REASON",
                "NETWORK", "SOURCE", "EXPIRES"
            );
            for b in store.list_blocks().await? {
                let expires = match b.expires_ms {
                    None => "never".to_string(),
                    Some(e) if e <= now => "expired".to_string(),
                    Some(e) => format!("in {} s", (e - now + 999) / 1000),
                };
                println!(
                    "{:<24} {:<10} {:<26} {}",
                    b.network.to_string(),
                    b.source,
                    expires,
                    b.reason
                );
            }
            Ok(())
        }
    }
}

pub(super) async fn whitelist(store: &Store, cmd: WhitelistCmd) -> crate::error::Result {
    match cmd {
        WhitelistCmd::Add { network, reason } => {
            let result = store.add_whitelist(network.0, &reason).await;
            added(List::Whitelist, network.0, result)
        }
        WhitelistCmd::Remove { network } => removed(
            List::Whitelist,
            network.0,
            store.remove_whitelist(network.0).await,
        ),
        WhitelistCmd::List => {
            println!("{:<24} REASON", "NETWORK");
            for (net, reason) in store.list_whitelist().await? {
                println!("{:<24} {reason}", net.to_string());
            }
            Ok(())
        }
    }
}
