//! What the switch polls and loads: the configuration and block-list versions, and the
//! directory snapshot read in one transaction.

use domain::Directory;
use sqlx::AnyConnection;

use crate::carriers::carriers_on;
use crate::customers::customers_on;
use crate::security::whitelist_on;
use crate::settings::settings_on;
use crate::{Store, StoreError};

/// What the switch polls to know when to reload: the configuration version (customers,
/// carriers, plans, rates, settings, whitelist) and the block list's, each bumped by
/// triggers whoever writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    pub config: i64,
    pub blocklist: i64,
}

impl Store {
    /// The configuration version: it grows with every change of customers, their addresses
    /// or carriers, by any writer. One single-row read: cheap enough to poll.
    pub async fn config_version(&self) -> Result<i64, StoreError> {
        let mut conn = self.pool.acquire().await?;
        version_on(&mut conn).await
    }

    /// The configuration version and the block list's (see [`Versions`]), in one read:
    /// what the switch polls.
    pub async fn versions(&self) -> Result<Versions, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let (config, blocklist): (i64, i64) = sqlx::query_as(
            "SELECT c.version, b.version FROM config_version c, blocklist_version b \
             WHERE c.id = 1 AND b.id = 1",
        )
        .fetch_one(&mut *conn)
        .await?;
        Ok(Versions { config, blocklist })
    }

    /// The directory snapshot: the version, customers and carriers read in one transaction,
    /// so the version describes exactly the data read. (The block list is read on its own:
    /// [`Self::load_blocklist`].)
    pub async fn load_directory(&self) -> Result<Directory, StoreError> {
        let mut tx = self.begin_read().await?;
        let version = version_on(&mut tx).await?;
        let customers = customers_on(&mut tx).await?;
        let carriers = carriers_on(&mut tx).await?;
        let settings = settings_on(&mut tx).await?;
        let whitelist = whitelist_on(&mut tx).await?;
        let plans = crate::plans::dial_plans_on(&mut tx).await?;
        let (carrier_rates, customer_rates) = crate::rates::rates_on(&mut tx).await?;
        let health = crate::health::health_on(&mut tx).await?;
        let rate_plans = crate::rates::rate_plans_on(&mut tx).await?;
        tx.commit().await?;
        Ok(Directory::new(version, customers, carriers)
            .with_settings(settings)
            .with_whitelist(whitelist.into_iter().map(|(net, _)| net).collect())
            .with_dial_plans(plans)
            .with_rates(carrier_rates, customer_rates)
            .with_health(health.into_iter().map(|(id, (h, _))| (id, h)).collect())
            .with_rate_plans(rate_plans))
    }
}

pub(crate) async fn version_on(conn: &mut AnyConnection) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT version FROM config_version WHERE id = 1")
            .fetch_one(conn)
            .await?,
    )
}
