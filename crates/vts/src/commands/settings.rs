//! `vts settings`: set one, list all with defaults and help.

use domain::Setting;
use store::Store;

use crate::cli::SettingsCmd;

pub(super) async fn run(store: &Store, cmd: SettingsCmd) -> crate::error::Result {
    match cmd {
        SettingsCmd::Set { key, value } => {
            store.set_setting(&key, &value).await?;
            println!("{key} = {}", value.trim());
            Ok(())
        }
        SettingsCmd::List => {
            let stored = store.list_settings().await?;
            for s in Setting::ALL {
                let value = stored.iter().find(|(k, _)| k == s.key()).map_or_else(
                    || format!("{} (default)", s.default_value()),
                    |(_, v)| v.clone(),
                );
                println!("{:<30} {:<12} {}", s.key(), value, s.help());
            }
            Ok(())
        }
    }
}
