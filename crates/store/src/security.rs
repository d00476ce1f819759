//! The block list (manual and automatic entries, with expiry; a snapshot and a version of
//! its own) and the whitelist of sources never blocked automatically.

use domain::{Block, BlockList, now_ms};
use ipnet::IpNet;
use sqlx::{AnyConnection, Row};

use crate::audit::Target;
use crate::{Store, StoreError, canonical, network_column};

impl Store {
    /// Blocks an address or network (replacing an entry for the same network). `expires_ms`
    /// `None` is permanent.
    pub async fn add_block(
        &self,
        network: IpNet,
        reason: &str,
        expires_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        let net = canonical(network).to_string();
        let reason = reason.trim();
        if reason.len() > 500 {
            return Err(StoreError::Invalid(
                "a block reason is at most 500 characters".into(),
            ));
        }
        let mut tx = self.event_tx().await?;
        let audit = self
            .audit_begin(&mut tx, "block.add", Target::Block(net.clone()))
            .await?;
        sqlx::query(
            "INSERT INTO blocklist (network, reason, source, expires_ms, created_ms) VALUES ($1, $2, 'manual', $3, $4) \
             ON CONFLICT (network) DO UPDATE SET reason = excluded.reason, source = excluded.source, \
             expires_ms = excluded.expires_ms, created_ms = excluded.created_ms",
        )
        .bind(net)
        .bind(reason)
        .bind(expires_ms)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        self.audit_commit(tx, audit, &[]).await?;
        Ok(())
    }

    /// Records a block the switch decided on its own (`source`: `flood` or `auth_fail`). It
    /// replaces an earlier automatic entry for the same address, or an expired manual one,
    /// but never a manual entry still in force.
    pub async fn add_auto_block(
        &self,
        network: IpNet,
        source: &str,
        reason: &str,
        expires_ms: i64,
    ) -> Result<(), StoreError> {
        if !matches!(source, "flood" | "auth_fail") {
            return Err(StoreError::Invalid(format!(
                "{source:?} is not an automatic block source (flood, auth_fail)"
            )));
        }
        let now = now_ms();
        let network = canonical(network).to_string();
        let mut tx = self.event_tx().await?;
        let audit = self
            .audit_begin(
                &mut tx,
                "block.automatic",
                Target::Block(network.to_string()),
            )
            .await?;
        let done = sqlx::query(
            "INSERT INTO blocklist (network, reason, source, expires_ms, created_ms) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (network) DO UPDATE SET reason = excluded.reason, source = excluded.source, \
             expires_ms = excluded.expires_ms, created_ms = excluded.created_ms \
             WHERE blocklist.source <> 'manual' OR (blocklist.expires_ms IS NOT NULL AND blocklist.expires_ms <= $5)",
        )
        .bind(&network)
        .bind(reason)
        .bind(source)
        .bind(expires_ms)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        // A manual entry in force stays as it is: nothing was blocked, nothing to report.
        let events = if done.rows_affected() > 0 {
            vec![crate::NewEvent::new(
                "security.blocked",
                serde_json::json!({
                    "network": network,
                    "source": source,
                    "reason": reason,
                    "expires_ms": expires_ms,
                }),
            )]
        } else {
            Vec::new()
        };
        self.audit_commit(tx, audit, &events).await.map(|_| ())
    }

    /// Removes the entry for exactly this network; `false` when there was none.
    pub async fn remove_block(&self, network: IpNet) -> Result<bool, StoreError> {
        let mut tx = self.event_tx().await?;
        let audit = self
            .audit_begin(
                &mut tx,
                "block.remove",
                Target::Block(canonical(network).to_string()),
            )
            .await?;
        let done = sqlx::query("DELETE FROM blocklist WHERE network = $1")
            .bind(canonical(network).to_string())
            .execute(&mut *tx)
            .await?;
        self.audit_commit(tx, audit, &[]).await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes the block-list entries that expired at or before `now_ms` (run by the
    /// switch every minute, so a scan from many addresses does not grow the list for
    /// ever); returns how many went.
    pub async fn purge_expired_blocks(&self, now_ms: i64) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM blocklist WHERE expires_ms IS NOT NULL AND expires_ms <= $1")
                .bind(now_ms)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected())
    }

    /// Every block-list entry (expired ones included), oldest first.
    pub async fn list_blocks(&self) -> Result<Vec<Block>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        blocks_on(&mut conn).await
    }

    /// The block list with its version, read in one transaction (a snapshot of its own,
    /// apart from the directory: see [`BlockList`]).
    pub async fn load_blocklist(&self) -> Result<BlockList, StoreError> {
        let mut tx = self.begin_read().await?;
        let version: i64 = sqlx::query_scalar("SELECT version FROM blocklist_version WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        let blocks = blocks_on(&mut tx).await?;
        tx.commit().await?;
        Ok(BlockList::new(blocks).at_version(version))
    }

    /// Whitelists an address or network: never blocked automatically (a manual block still
    /// applies). Replaces the reason of an entry for the same network.
    pub async fn add_whitelist(&self, network: IpNet, reason: &str) -> Result<(), StoreError> {
        let reason = reason.trim();
        if reason.len() > 500 {
            return Err(StoreError::Invalid(
                "a whitelist reason is at most 500 characters".into(),
            ));
        }
        let mut tx = self.event_tx().await?;
        let audit = self
            .audit_begin(
                &mut tx,
                "whitelist.add",
                Target::Whitelist(canonical(network).to_string()),
            )
            .await?;
        sqlx::query(
            "INSERT INTO whitelist (network, reason, created_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (network) DO UPDATE SET reason = excluded.reason",
        )
        .bind(canonical(network).to_string())
        .bind(reason)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        self.audit_commit(tx, audit, &[]).await?;
        Ok(())
    }

    /// Removes the whitelist entry for exactly this network; `false` when there was none.
    pub async fn remove_whitelist(&self, network: IpNet) -> Result<bool, StoreError> {
        let mut tx = self.event_tx().await?;
        let audit = self
            .audit_begin(
                &mut tx,
                "whitelist.remove",
                Target::Whitelist(canonical(network).to_string()),
            )
            .await?;
        let done = sqlx::query("DELETE FROM whitelist WHERE network = $1")
            .bind(canonical(network).to_string())
            .execute(&mut *tx)
            .await?;
        self.audit_commit(tx, audit, &[]).await?;
        Ok(done.rows_affected() > 0)
    }

    /// Every whitelist entry with its reason, oldest first.
    pub async fn list_whitelist(&self) -> Result<Vec<(IpNet, String)>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        whitelist_on(&mut conn).await
    }
}

pub(crate) async fn blocks_on(conn: &mut AnyConnection) -> Result<Vec<Block>, StoreError> {
    let rows =
        sqlx::query("SELECT id, network, reason, source, expires_ms FROM blocklist ORDER BY id")
            .fetch_all(&mut *conn)
            .await?;
    rows.iter()
        .map(|row| {
            Ok(Block {
                network: network_column(row, "blocklist")?,
                reason: row.try_get("reason")?,
                source: row.try_get("source")?,
                expires_ms: row.try_get("expires_ms")?,
            })
        })
        .collect()
}

pub(crate) async fn whitelist_on(
    conn: &mut AnyConnection,
) -> Result<Vec<(IpNet, String)>, StoreError> {
    let rows = sqlx::query("SELECT id, network, reason FROM whitelist ORDER BY id")
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|row| Ok((network_column(row, "whitelist")?, row.try_get("reason")?)))
        .collect()
}
