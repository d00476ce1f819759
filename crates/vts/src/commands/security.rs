//! `vts block` and `vts whitelist`: the block list (manual entries, with an optional expiry)
//! and the sources never blocked automatically.

use domain::now_ms;
use store::Store;

use crate::cli::{BlockCmd, WhitelistCmd};

pub(super) async fn block(store: &Store, cmd: BlockCmd) -> Result<(), String> {
    match cmd {
        BlockCmd::Add {
            network,
            reason,
            for_secs,
        } => {
            let expires_ms = for_secs
                .map(|s| now_ms() + i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX / 2));
            store
                .add_block(network.0, &reason, expires_ms)
                .await
                .map_err(|e| e.to_string())?;
            println!("blocked {}", network.0);
            Ok(())
        }
        BlockCmd::Remove { network } => {
            if store
                .remove_block(network.0)
                .await
                .map_err(|e| e.to_string())?
            {
                println!("unblocked {}", network.0);
                Ok(())
            } else {
                Err(format!("{} is not on the block list", network.0))
            }
        }
        BlockCmd::List => {
            let now = now_ms();
            println!(
                "{:<24} {:<10} {:<26} REASON",
                "NETWORK", "SOURCE", "EXPIRES"
            );
            for b in store.list_blocks().await.map_err(|e| e.to_string())? {
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

pub(super) async fn whitelist(store: &Store, cmd: WhitelistCmd) -> Result<(), String> {
    match cmd {
        WhitelistCmd::Add { network, reason } => {
            store
                .add_whitelist(network.0, &reason)
                .await
                .map_err(|e| e.to_string())?;
            println!("whitelisted {}", network.0);
            Ok(())
        }
        WhitelistCmd::Remove { network } => {
            if store
                .remove_whitelist(network.0)
                .await
                .map_err(|e| e.to_string())?
            {
                println!("removed {} from the whitelist", network.0);
                Ok(())
            } else {
                Err(format!("{} is not on the whitelist", network.0))
            }
        }
        WhitelistCmd::List => {
            println!("{:<24} REASON", "NETWORK");
            for (net, reason) in store.list_whitelist().await.map_err(|e| e.to_string())? {
                println!("{:<24} {reason}", net.to_string());
            }
            Ok(())
        }
    }
}
