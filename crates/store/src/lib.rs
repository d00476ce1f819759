//! # store
//!
//! The vts database: customers with their source addresses, carriers, the configuration
//! version the proxy polls, and call records. One [`Store`] over a sqlx `AnyPool` serves
//! SQLite (`sqlite://PATH`) and PostgreSQL (`postgres://…`).
//!
//! How the SQL stays portable:
//! - Every query is written once, with `$1, $2…` placeholders (the SQLite driver accepts
//!   them, PostgreSQL needs them). Per-backend SQL is rare and marked so: the migration
//!   folders (`migrations/sqlite/`, `migrations/postgres/`: identity columns, integer widths,
//!   triggers), the isolation level of [`Store::load_directory`]'s transaction, how a write
//!   transaction begins (`BEGIN IMMEDIATE` on SQLite: see `Store::write_tx`), and a few
//!   statements (comments say "Per-backend SQL").
//! - Columns hold INTEGER/BIGINT/TEXT only. Booleans are INTEGER 0/1 on both backends, money
//!   (later) i64 fixed-point, times i64 epoch milliseconds, networks canonical CIDR text.
//!   On PostgreSQL a column's width follows the Rust type bound to it (INTEGER ↔ `i32`,
//!   BIGINT ↔ `i64`), because the Any driver sends typed parameters.
//! - `config_version` is bumped by triggers, so any writer of the database (an admin's
//!   `psql`, a future web panel) makes the proxy reload; the block list has a version of
//!   its own (`blocklist_version`), so a block reloads the block list alone.
//!
//! The sqlx build has no TLS feature for now: `postgres://` URLs must use a server reachable
//! without TLS (`sslmode=disable` or `prefer`). Add `tls-rustls-ring` to the workspace's sqlx
//! features when a remote database needs it.
//!
//! Migrations are embedded with `include_str!` rather than `sqlx::migrate!`: see
//! `src/migrations.rs` for why.

mod billing;
mod error;
mod migrations;
mod routing;
mod sql;
mod usage;

pub use billing::{EntryKind, LedgerEntry};
pub use routing::{CarrierLimitsChange, CustomerHeaders, NumbersChange};
pub use usage::{CarrierUsage, CustomerUsage};

use domain::now_ms;
use std::collections::HashMap;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use domain::{
    Block, BlockList, Carrier, CarrierId, Cdr, Customer, CustomerId, CustomerStatus, Directory,
    HangupSide, Money, Setting, Settings, Transport, checked_prefix,
};
use ipnet::{IpNet, Ipv4Net};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, AssertSqlSafe, Row};

pub use error::StoreError;

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a database URL names, from its scheme.
    pub fn from_url(url: &str) -> Result<Backend, StoreError> {
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            _ => Err(StoreError::UnsupportedUrl(scheme.to_owned())),
        }
    }
}

/// A customer to add. Its addresses are host addresses (`/32`, `/128`) or networks; host
/// bits are cleared when stored (`10.1.2.3/8` is stored as `10.0.0.0/8`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCustomer {
    pub name: String,
    pub ips: Vec<IpNet>,
    /// Concurrent calls allowed; `None` is unlimited, `Some(0)` is refused.
    pub max_channels: Option<u32>,
    /// New calls per second allowed; `None` is unlimited, `Some(0)` is refused.
    pub max_cps: Option<u32>,
}

/// Which call records [`Store::find_cdrs`] returns (`None`: any).
#[derive(Debug, Clone, Copy, Default)]
pub struct CdrFilter {
    pub customer: Option<CustomerId>,
    pub carrier: Option<CarrierId>,
    /// INVITE at or after (epoch ms).
    pub since_ms: Option<i64>,
    /// INVITE before (epoch ms).
    pub until_ms: Option<i64>,
    pub code: Option<u16>,
    /// Talk time at least (ms).
    pub min_billable_ms: Option<i64>,
}

/// What `vts customer limits` changes (`None`: left as it is; `Some(None)`: unlimited).
#[derive(Debug, Clone, Copy, Default)]
pub struct LimitsChange {
    pub max_channels: Option<Option<u32>>,
    pub max_cps: Option<Option<u32>>,
    pub daily_minutes: Option<Option<u32>>,
    pub monthly_minutes: Option<Option<u32>>,
}

/// A carrier to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCarrier {
    pub name: String,
    /// Host name or IP address.
    pub host: String,
    pub port: u16,
    pub transport: Transport,
    /// Higher is tried first.
    pub priority: i32,
    /// Among equal priorities, higher is tried first.
    pub weight: i32,
    /// Calls in progress through this carrier; `None` is unlimited.
    pub max_channels: Option<u32>,
    /// New attempts per second to this carrier; `None` is unlimited.
    pub max_cps: Option<u32>,
    /// First-response timeout, ms (100 to 60000); `None`: the switch's default.
    pub first_response_ms: Option<u32>,
    /// Ring timeout, seconds (1 to 3600); `None`: the switch's default.
    pub ring_timeout_s: Option<u32>,
}

/// Longest customer or carrier name accepted.
pub const MAX_NAME_LEN: usize = 100;

/// SQLite connections in the pool: writes are serialised by SQLite anyway; a few readers
/// (WAL) let the proxy's version poll run beside a CDR batch.
const SQLITE_POOL_SIZE: u32 = 4;
const POSTGRES_POOL_SIZE: u32 = 10;

/// Rows per multi-row CDR insert, below both backends' bind limits.
const CDR_ROWS_CAP: usize = 500;

const CDR_COLUMNS: &str = "id, call_id, customer_id, carrier_id, carrier_addr, source_addr, caller, callee, \
     caller_out, callee_out, user_agent, invite_ms, progress_ms, answer_ms, end_ms, pdd_ms, \
     billable_ms, billable_secs, final_code, final_reason, hangup, attempts, caller_e164, \
     callee_e164, cost, price, q850_cause, codecs_offered, codecs_answered, attempt_log";
const CDR_COLUMN_COUNT: usize = 30;

/// The database: configuration (customers, carriers) and call records.
/// What the switch polls to know when to reload: the configuration version (customers,
/// carriers, plans, rates, settings, whitelist) and the block list's, each bumped by
/// triggers whoever writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    pub config: i64,
    pub blocklist: i64,
}

#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Connects to `sqlite://PATH` (the file is created if missing; WAL,
    /// `synchronous=FULL`, `busy_timeout=5000`, `foreign_keys=ON` on every connection;
    /// `sqlite::memory:` gives a private in-memory database on a single connection, for
    /// tests) or `postgres://USER:PASSWORD@HOST:PORT/DB`. Does not migrate: call
    /// [`Store::migrate`].
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let backend = Backend::from_url(url)?;
        sqlx::any::install_default_drivers();
        let pool = match backend {
            Backend::Sqlite => {
                // An in-memory database lives and dies with its one connection: keep it.
                let memory = url.contains(":memory:") || url.contains("mode=memory");
                AnyPoolOptions::new()
                    .max_connections(if memory { 1 } else { SQLITE_POOL_SIZE })
                    .idle_timeout(if memory {
                        None
                    } else {
                        Some(Duration::from_secs(600))
                    })
                    .max_lifetime(if memory {
                        None
                    } else {
                        Some(Duration::from_secs(1800))
                    })
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            for pragma in [
                                "PRAGMA journal_mode = WAL",
                                // FULL, not NORMAL: in WAL mode NORMAL lets a power
                                // loss roll back the last commits, and accounting marks
                                // CDRs committed in its own log (which then drops them)
                                // as soon as the commit returns.
                                "PRAGMA synchronous = FULL",
                                "PRAGMA busy_timeout = 5000",
                                "PRAGMA foreign_keys = ON",
                            ] {
                                sqlx::query(pragma).execute(&mut *conn).await?;
                            }
                            Ok(())
                        })
                    })
                    .connect(&sqlite_url_creating_file(url))
                    .await?
            }
            Backend::Postgres => {
                // A server that went away makes a write fail within seconds (the caller
                // retries; CDRs wait in the write-ahead log) rather than the default 30 s.
                AnyPoolOptions::new()
                    .max_connections(POSTGRES_POOL_SIZE)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect(url)
                    .await?
            }
        };
        Ok(Store { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies the migrations this database lacks (sqlx records applied ones in
    /// `_sqlx_migrations`), so running it again is a no-op.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrations::migrator(self.backend).run(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool's connections, waiting for those in use to come back.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Adds a customer and its addresses in one transaction.
    ///
    /// Refused with [`StoreError::Invalid`]: a blank or too long name, `max_channels` or
    /// `max_cps` of 0. Refused with [`StoreError::Conflict`]: a name already used, or an
    /// address or network already active for another customer (overlapping networks are
    /// fine: the longest prefix wins; an identical one is not). Repeated addresses in `ips`
    /// are stored once.
    pub async fn add_customer(&self, new: &NewCustomer) -> Result<CustomerId, StoreError> {
        let name = checked_name(&new.name, "customer")?;
        for (what, limit) in [("max_channels", new.max_channels), ("max_cps", new.max_cps)] {
            if limit == Some(0) {
                return Err(StoreError::Invalid(format!(
                    "{what} 0 would refuse every call: use None for unlimited, or deactivate the customer"
                )));
            }
        }
        let mut networks: Vec<String> = Vec::with_capacity(new.ips.len());
        for net in &new.ips {
            let net = canonical(*net).to_string();
            if !networks.contains(&net) {
                networks.push(net);
            }
        }

        let mut tx = self.write_tx().await?;
        let taken = sqlx::query("SELECT id FROM customers WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_some() {
            return Err(StoreError::Conflict(format!(
                "a customer named {name:?} already exists"
            )));
        }
        for net in &networks {
            let owner = sqlx::query(
                "SELECT c.name FROM customer_ips i JOIN customers c ON c.id = i.customer_id \
                 WHERE i.network = $1 AND i.active = 1",
            )
            .bind(net.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(owner) = owner {
                let owner: String = owner.try_get(0)?;
                return Err(StoreError::Conflict(format!(
                    "{net} is already in use by customer {owner:?}"
                )));
            }
        }

        let now = now_ms();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO customers (name, active, max_channels, max_cps, created_ms, updated_ms) \
             VALUES ($1, 1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(name)
        .bind(new.max_channels.map(i64::from))
        .bind(new.max_cps.map(i64::from))
        .bind(now)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| {
            StoreError::unique_or(e, || format!("a customer named {name:?} already exists"))
        })?;
        for net in &networks {
            sqlx::query(
                "INSERT INTO customer_ips (customer_id, network, active) VALUES ($1, $2, 1)",
            )
            .bind(id)
            .bind(net.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                StoreError::unique_or(e, || format!("{net} is already in use by another customer"))
            })?;
        }
        tx.commit().await?;
        Ok(CustomerId(id))
    }

    /// Sets a customer's status (and the reason, for suspended and blocked). The running
    /// switch sees it at its next configuration reload (within a second).
    pub async fn set_customer_status(
        &self,
        id: CustomerId,
        status: CustomerStatus,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
        if reason.is_some_and(|r| r.len() > 500) {
            return Err(StoreError::Invalid(
                "a status reason is at most 500 characters".into(),
            ));
        }
        let done = sqlx::query(
            "UPDATE customers SET status = $1, status_reason = $2, updated_ms = $3 WHERE id = $4",
        )
        .bind(status.as_str())
        .bind(reason)
        .bind(now_ms())
        .bind(id.0)
        .execute(&self.pool)
        .await?;
        touched(done.rows_affected(), "customer", id.0)
    }

    /// Changes a customer's limits: `Some(None)` makes one unlimited, `None` leaves it as it
    /// is. A limit of 0 is refused (it would refuse every call: suspend the customer instead).
    pub async fn set_customer_limits(
        &self,
        id: CustomerId,
        change: &LimitsChange,
    ) -> Result<(), StoreError> {
        let all = [
            ("max_channels", change.max_channels),
            ("max_cps", change.max_cps),
            ("daily_minutes", change.daily_minutes),
            ("monthly_minutes", change.monthly_minutes),
        ];
        for (what, limit) in all {
            if limit == Some(Some(0)) {
                return Err(StoreError::Invalid(format!(
                    "customer {what} 0 would refuse every call: suspend the customer instead"
                )));
            }
        }
        let mut tx = self.write_tx().await?;
        exists(&mut tx, Table::Customer, id.0).await?;
        const SET: [&str; 4] = [
            "UPDATE customers SET max_channels = $1, updated_ms = $2 WHERE id = $3",
            "UPDATE customers SET max_cps = $1, updated_ms = $2 WHERE id = $3",
            "UPDATE customers SET daily_minutes = $1, updated_ms = $2 WHERE id = $3",
            "UPDATE customers SET monthly_minutes = $1, updated_ms = $2 WHERE id = $3",
        ];
        let values = all.map(|(_, limit)| limit);
        update_columns(&mut tx, &SET, &values, id.0).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets a global setting (a known key, a checked value). The running switch sees it at
    /// its next configuration reload.
    pub async fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let setting = Setting::from_key(key).map_err(StoreError::Invalid)?;
        let value = setting.check(value).map_err(StoreError::Invalid)?;
        sqlx::query(
            "INSERT INTO settings (key, value, updated_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms",
        )
        .bind(setting.key())
        .bind(value)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every stored setting as `(key, value)`, by key.
    pub async fn list_settings(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query("SELECT key, value FROM settings ORDER BY key")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("key")?, r.try_get("value")?)))
            .collect()
    }

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
        sqlx::query(
            "INSERT INTO blocklist (network, reason, source, expires_ms, created_ms) VALUES ($1, $2, 'manual', $3, $4) \
             ON CONFLICT (network) DO UPDATE SET reason = excluded.reason, source = excluded.source, \
             expires_ms = excluded.expires_ms, created_ms = excluded.created_ms",
        )
        .bind(net)
        .bind(reason)
        .bind(expires_ms)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
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
        sqlx::query(
            "INSERT INTO blocklist (network, reason, source, expires_ms, created_ms) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (network) DO UPDATE SET reason = excluded.reason, source = excluded.source, \
             expires_ms = excluded.expires_ms, created_ms = excluded.created_ms \
             WHERE blocklist.source <> 'manual' OR (blocklist.expires_ms IS NOT NULL AND blocklist.expires_ms <= $5)",
        )
        .bind(canonical(network).to_string())
        .bind(reason)
        .bind(source)
        .bind(expires_ms)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
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
        sqlx::query(
            "INSERT INTO whitelist (network, reason, created_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (network) DO UPDATE SET reason = excluded.reason",
        )
        .bind(canonical(network).to_string())
        .bind(reason)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes the whitelist entry for exactly this network; `false` when there was none.
    pub async fn remove_whitelist(&self, network: IpNet) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM whitelist WHERE network = $1")
            .bind(canonical(network).to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Every whitelist entry with its reason, oldest first.
    pub async fn list_whitelist(&self) -> Result<Vec<(IpNet, String)>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        whitelist_on(&mut conn).await
    }

    /// Removes the entry for exactly this network; `false` when there was none.
    pub async fn remove_block(&self, network: IpNet) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM blocklist WHERE network = $1")
            .bind(canonical(network).to_string())
            .execute(&self.pool)
            .await?;
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

    /// Adds destination prefixes to a carrier's allow (`allow = true`) or deny list; a prefix
    /// already there is kept once.
    pub async fn add_carrier_prefixes(
        &self,
        id: CarrierId,
        allow: bool,
        prefixes: &[String],
    ) -> Result<(), StoreError> {
        let checked: Vec<String> = prefixes
            .iter()
            .map(|p| checked_prefix(p).map_err(StoreError::Invalid))
            .collect::<Result<_, _>>()?;
        let mut tx = self.write_tx().await?;
        exists(&mut tx, Table::Carrier, id.0).await?;
        for p in &checked {
            sqlx::query(
                "INSERT INTO carrier_prefixes (carrier_id, kind, prefix) VALUES ($1, $2, $3) \
                 ON CONFLICT (carrier_id, kind, prefix) DO NOTHING",
            )
            .bind(id.0)
            .bind(if allow { "allow" } else { "deny" })
            .bind(p.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every customer (active or not) with its active addresses, by id.
    pub async fn list_customers(&self) -> Result<Vec<Customer>, StoreError> {
        let mut tx = self.begin_read().await?;
        let customers = customers_on(&mut tx).await?;
        tx.commit().await?;
        Ok(customers)
    }

    /// Adds a carrier. Refused with [`StoreError::Invalid`]: a blank or too long name, a blank
    /// host or one with whitespace, port 0. With [`StoreError::Conflict`]: a name already used.
    pub async fn add_carrier(&self, new: &NewCarrier) -> Result<CarrierId, StoreError> {
        let name = checked_name(&new.name, "carrier")?;
        let host = new.host.trim();
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(StoreError::Invalid(format!(
                "carrier host {:?} is not a host name or address",
                new.host
            )));
        }
        if new.port == 0 {
            return Err(StoreError::Invalid("carrier port 0 is not a port".into()));
        }
        for (what, limit) in [("max_channels", new.max_channels), ("max_cps", new.max_cps)] {
            if limit == Some(0) {
                return Err(StoreError::Invalid(format!(
                    "carrier {what} 0 would skip the carrier on every call: use None for unlimited"
                )));
            }
        }

        if new
            .first_response_ms
            .is_some_and(|ms| !(100..=60_000).contains(&ms))
        {
            return Err(StoreError::Invalid(
                "a carrier's first-response timeout is 100 to 60000 ms".into(),
            ));
        }
        if new.ring_timeout_s.is_some_and(|s| !(1..=3600).contains(&s)) {
            return Err(StoreError::Invalid(
                "a carrier's ring timeout is 1 to 3600 s".into(),
            ));
        }
        let mut tx = self.write_tx().await?;
        let taken = sqlx::query("SELECT id FROM carriers WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_some() {
            return Err(StoreError::Conflict(format!(
                "a carrier named {name:?} already exists"
            )));
        }
        let now = now_ms();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO carriers (name, host, port, transport, priority, weight, active, created_ms, updated_ms, \
             max_channels, max_cps, first_response_ms, ring_timeout_s) \
             VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8, $9, $10, $11, $12) RETURNING id",
        )
        .bind(name)
        .bind(host)
        .bind(i32::from(new.port))
        .bind(new.transport.as_str())
        .bind(new.priority)
        .bind(new.weight)
        .bind(now)
        .bind(now)
        .bind(new.max_channels.map(i64::from))
        .bind(new.max_cps.map(i64::from))
        .bind(new.first_response_ms.map(i64::from))
        .bind(new.ring_timeout_s.map(i64::from))
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| StoreError::unique_or(e, || format!("a carrier named {name:?} already exists")))?;
        tx.commit().await?;
        Ok(CarrierId(id))
    }

    /// Every carrier (active or not), by id.
    pub async fn list_carriers(&self) -> Result<Vec<Carrier>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        carriers_on(&mut conn).await
    }

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
        let plans = routing::dial_plans_on(&mut tx).await?;
        let (carrier_rates, customer_rates) = routing::rates_on(&mut tx).await?;
        let health = routing::health_on(&mut tx).await?;
        let rate_plans = routing::rate_plans_on(&mut tx).await?;
        tx.commit().await?;
        Ok(Directory::new(version, customers, carriers)
            .with_settings(settings)
            .with_whitelist(whitelist.into_iter().map(|(net, _)| net).collect())
            .with_dial_plans(plans)
            .with_rates(carrier_rates, customer_rates)
            .with_health(health.into_iter().map(|(id, (h, _))| (id, h)).collect())
            .with_rate_plans(rate_plans))
    }

    /// Inserts call records in one transaction, skipping ids already stored (so a replay of
    /// the write-ahead log is harmless). Returns how many were new. Multi-row statements of
    /// up to 500 records each.
    pub async fn insert_cdrs(&self, cdrs: &[Cdr]) -> Result<u64, StoreError> {
        if let Some(bad) = cdrs.iter().find(|c| c.id.is_empty()) {
            return Err(StoreError::Invalid(format!(
                "a CDR has an empty id (call id {:?})",
                bad.call_id
            )));
        }
        if cdrs.is_empty() {
            return Ok(0);
        }
        // Per-backend SQL: SQLite gets anonymous `?` here (see `sql::Style::Anonymous`).
        let (style, max_binds) = match self.backend {
            Backend::Sqlite => (sql::Style::Anonymous, sql::SQLITE_MAX_BINDS),
            Backend::Postgres => (sql::Style::Numbered, sql::POSTGRES_MAX_BINDS),
        };
        let rows = sql::rows_per_statement(max_binds, CDR_COLUMN_COUNT, CDR_ROWS_CAP);
        let mut inserted = 0;
        let logs: Vec<String> = cdrs
            .iter()
            .map(|c| serde_json::to_string(&c.attempt_log))
            .collect::<Result<_, _>>()
            .map_err(|e| StoreError::Invalid(format!("attempt log: {e}")))?;
        let mut tx = self.write_tx().await?;
        // The CDRs this write adds (a replay's are already stored): only they are charged.
        let mut stored: std::collections::HashSet<String> = std::collections::HashSet::new();
        for chunk in cdrs.chunks(rows.min(500)) {
            let text = format!(
                "SELECT id FROM cdrs WHERE id IN {}",
                sql::values_placeholders(style, 1, chunk.len())
            );
            let mut query = sqlx::query_scalar::<_, String>(AssertSqlSafe(text));
            for c in chunk {
                query = query.bind(c.id.as_str());
            }
            stored.extend(query.fetch_all(&mut *tx).await?);
        }
        let mut seen = std::collections::HashSet::new();
        let new: Vec<&Cdr> = cdrs
            .iter()
            .filter(|c| !stored.contains(&c.id) && seen.insert(c.id.as_str()))
            .collect();
        for (chunk, logs) in cdrs.chunks(rows).zip(logs.chunks(rows)) {
            let text = format!(
                "INSERT INTO cdrs ({CDR_COLUMNS}) VALUES {} ON CONFLICT (id) DO NOTHING",
                sql::values_placeholders(style, chunk.len(), CDR_COLUMN_COUNT)
            );
            let mut query = sqlx::query(AssertSqlSafe(text));
            for (c, log) in chunk.iter().zip(logs) {
                query = query
                    .bind(c.id.as_str())
                    .bind(c.call_id.as_str())
                    .bind(c.customer_id.0)
                    .bind(c.carrier_id.map(|id| id.0))
                    .bind(c.carrier_addr.as_deref())
                    .bind(c.source_addr.as_str())
                    .bind(c.caller.as_str())
                    .bind(c.callee.as_str())
                    .bind(c.caller_out.as_deref())
                    .bind(c.callee_out.as_deref())
                    .bind(c.user_agent.as_deref())
                    .bind(c.invite_ms)
                    .bind(c.progress_ms)
                    .bind(c.answer_ms)
                    .bind(c.end_ms)
                    .bind(c.pdd_ms)
                    .bind(c.billable_ms)
                    .bind(c.billable_secs)
                    .bind(i32::from(c.final_code))
                    .bind(c.final_reason.as_str())
                    .bind(c.hangup.as_str())
                    .bind(i64::from(c.attempts))
                    .bind(c.caller_e164.as_deref())
                    .bind(c.callee_e164.as_deref())
                    .bind(c.cost.map(|m| m.0))
                    .bind(c.price.map(|m| m.0))
                    .bind(c.q850_cause.map(i32::from))
                    .bind(c.codecs_offered.as_deref())
                    .bind(c.codecs_answered.as_deref())
                    .bind(log.as_str());
            }
            inserted += query.execute(&mut *tx).await?.rows_affected();
        }
        billing::charge(&mut tx, &new).await?;
        usage::count(&mut tx, &new).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    /// The newest `limit` call records: latest INVITE first, then by id descending.
    pub async fn list_cdrs(&self, limit: u32) -> Result<Vec<Cdr>, StoreError> {
        self.find_cdrs(&CdrFilter::default(), limit).await
    }

    /// The newest `limit` call records matching `filter` (every condition given must hold).
    pub async fn find_cdrs(&self, filter: &CdrFilter, limit: u32) -> Result<Vec<Cdr>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {CDR_COLUMNS} FROM cdrs WHERE ($1 IS NULL OR customer_id = $1) \
             AND ($2 IS NULL OR carrier_id = $2) AND ($3 IS NULL OR invite_ms >= $3) \
             AND ($4 IS NULL OR invite_ms < $4) AND ($5 IS NULL OR final_code = $5) \
             AND ($6 IS NULL OR billable_ms >= $6) \
             ORDER BY invite_ms DESC, id DESC LIMIT $7"
        )))
        .bind(filter.customer.map(|c| c.0))
        .bind(filter.carrier.map(|c| c.0))
        .bind(filter.since_ms)
        .bind(filter.until_ms)
        .bind(filter.code.map(i64::from))
        .bind(filter.min_billable_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(cdr_from_row).collect()
    }

    /// CDRs stored per minute of their INVITE (epoch ms / 60,000) in `[from_ms, until_ms)`.
    pub async fn cdrs_per_minute(
        &self,
        from_ms: i64,
        until_ms: i64,
    ) -> Result<std::collections::BTreeMap<i64, i64>, StoreError> {
        let rows = sqlx::query(
            "SELECT invite_ms / 60000 AS minute, COUNT(*) AS n FROM cdrs \
             WHERE invite_ms >= $1 AND invite_ms < $2 GROUP BY invite_ms / 60000",
        )
        .bind(from_ms)
        .bind(until_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("minute")?, r.try_get("n")?)))
            .collect()
    }

    /// Which of these CDR ids are stored.
    pub async fn stored_cdr_ids(
        &self,
        ids: &[String],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let mut found = std::collections::HashSet::new();
        for id in ids {
            let hit: Option<String> = sqlx::query_scalar("SELECT id FROM cdrs WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await?;
            found.extend(hit);
        }
        Ok(found)
    }

    pub async fn count_cdrs(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM cdrs")
            .fetch_one(&self.pool)
            .await?)
    }

    /// The transaction every multi-statement write runs in. SQLite (per-backend SQL):
    /// `BEGIN IMMEDIATE`, which takes the write lock at once and so waits for another
    /// writer (up to `busy_timeout`). A plain (DEFERRED) `BEGIN` takes it only at the first
    /// write, and a transaction that has read by then fails at once with "database is
    /// locked" if another connection committed in between (SQLITE_BUSY_SNAPSHOT: waiting
    /// could not help, its snapshot is stale), e.g. `vts customer credit` while the switch
    /// commits CDRs. PostgreSQL: a plain `BEGIN` (READ COMMITTED, row locks).
    ///
    /// The write lock is held from BEGIN: return early (a refused write) before opening it
    /// where you can; a dropped transaction's rollback is queued at once all the same.
    async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// A transaction whose reads all see one snapshot. SQLite: any transaction does (its
    /// snapshot starts at the first read). PostgreSQL (per-backend SQL): the default READ
    /// COMMITTED takes a snapshot per statement, so ask for REPEATABLE READ.
    async fn begin_read(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin().await?,
            Backend::Postgres => {
                self.pool
                    .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?
            }
        })
    }
}

/// SQLite creates a missing database file only when asked (`mode=rwc`); ask unless the URL
/// already chose a mode.
fn sqlite_url_creating_file(url: &str) -> String {
    match url.split_once('?') {
        Some((_, query)) if query.split('&').any(|kv| kv.starts_with("mode=")) => url.to_owned(),
        Some(_) => format!("{url}&mode=rwc"),
        None => format!("{url}?mode=rwc"),
    }
}

fn checked_name<'a>(name: &'a str, what: &str) -> Result<&'a str, StoreError> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(StoreError::Invalid(format!("{what} name is empty")));
    }
    if trimmed.chars().count() > MAX_NAME_LEN {
        return Err(StoreError::Invalid(format!(
            "{what} name is longer than {MAX_NAME_LEN} characters"
        )));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(StoreError::Invalid(format!(
            "{what} name {name:?} has control characters"
        )));
    }
    Ok(trimmed)
}

/// Host bits cleared; an IPv4-mapped IPv6 network (`::ffff:192.0.2.1/128`) becomes the IPv4
/// network it names, because [`Directory::identify`] looks mapped sources up as IPv4.
fn canonical(net: IpNet) -> IpNet {
    let net = net.trunc();
    if let IpNet::V6(v6) = net
        && let Some(v4) = v6.addr().to_ipv4_mapped()
        && v6.prefix_len() >= 96
    {
        let v4 =
            Ipv4Net::new(v4, v6.prefix_len() - 96).expect("a prefix of 96..=128 less 96 fits IPv4");
        return IpNet::V4(v4);
    }
    net
}

async fn version_on(conn: &mut AnyConnection) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT version FROM config_version WHERE id = 1")
            .fetch_one(conn)
            .await?,
    )
}

async fn blocks_on(conn: &mut AnyConnection) -> Result<Vec<Block>, StoreError> {
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

/// The `network` column of a `table` row (with an `id`), parsed.
fn network_column(row: &AnyRow, table: &str) -> Result<IpNet, StoreError> {
    let text: String = row.try_get("network")?;
    parse_network(&text).ok_or_else(|| {
        let id = row.try_get::<i64, _>("id").unwrap_or_default();
        StoreError::Corrupt(format!(
            "{table} row {id}: {text:?} is not an address or network"
        ))
    })
}

async fn whitelist_on(conn: &mut AnyConnection) -> Result<Vec<(IpNet, String)>, StoreError> {
    let rows = sqlx::query("SELECT id, network, reason FROM whitelist ORDER BY id")
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|row| Ok((network_column(row, "whitelist")?, row.try_get("reason")?)))
        .collect()
}

async fn settings_on(conn: &mut AnyConnection) -> Result<Settings, StoreError> {
    let rows = sqlx::query("SELECT key, value FROM settings")
        .fetch_all(&mut *conn)
        .await?;
    let mut settings = Settings::default();
    for row in &rows {
        let (key, value): (String, String) = (row.try_get("key")?, row.try_get("value")?);
        settings
            .apply(&key, &value)
            .map_err(|e| StoreError::Corrupt(format!("settings: {e}")))?;
    }
    Ok(settings)
}

async fn customers_on(conn: &mut AnyConnection) -> Result<Vec<Customer>, StoreError> {
    let rows =
        sqlx::query("SELECT id, name, active, max_channels, max_cps, status, status_reason, number_format, country_code, \
             forced_cli, dial_plan_id, routing, daily_minutes, monthly_minutes, rate_plan_id, billing, \
             credit_limit, timezone, trusted, hide_topology FROM customers ORDER BY id")
            .fetch_all(&mut *conn)
            .await?;
    let mut customers = Vec::with_capacity(rows.len());
    let mut index = HashMap::with_capacity(rows.len());
    for row in &rows {
        let id: i64 = row.try_get("id")?;
        index.insert(id, customers.len());
        let (number_format, country_code, forced_cli, dial_plan, routing) =
            routing::customer_numbers(row, id)?;
        customers.push(Customer {
            number_format,
            country_code,
            forced_cli,
            dial_plan,
            routing,
            id: CustomerId(id),
            name: row.try_get("name")?,
            active: flag(row, "active")?,
            ips: Vec::new(),
            max_channels: limit(row, "max_channels")?,
            max_cps: limit(row, "max_cps")?,
            rate_plan: row
                .try_get::<Option<i64>, _>("rate_plan_id")?
                .map(domain::RatePlanId),
            billing: {
                let text: String = row.try_get("billing")?;
                text.parse()
                    .map_err(|e| StoreError::Corrupt(format!("customer {id}: {e}")))?
            },
            credit_limit: Money(row.try_get("credit_limit")?),
            timezone: {
                let name: String = row.try_get("timezone")?;
                // A zone the system's database lacks (tzdata removed?) must not stop the
                // switch: the customer's days fall back to UTC, and `vts customer show`
                // still shows the stored name.
                domain::Zone::parse(&name).unwrap_or_default()
            },
            daily_minutes: limit(row, "daily_minutes")?,
            monthly_minutes: limit(row, "monthly_minutes")?,
            trusted: flag(row, "trusted")?,
            hide_topology: flag(row, "hide_topology")?,
            status: {
                let text: String = row.try_get("status")?;
                text.parse()
                    .map_err(|e| StoreError::Corrupt(format!("customer {id}: {e}")))?
            },
            status_reason: row.try_get("status_reason")?,
        });
    }
    let ips = sqlx::query("SELECT id, customer_id, network FROM customer_ips WHERE active = 1 ORDER BY customer_id, id")
        .fetch_all(&mut *conn)
        .await?;
    for row in &ips {
        let customer_id: i64 = row.try_get("customer_id")?;
        let text: String = row.try_get("network")?;
        let net = parse_network(&text).ok_or_else(|| {
            let id = row.try_get::<i64, _>("id").unwrap_or_default();
            StoreError::Corrupt(format!(
                "customer_ips row {id}: {text:?} is not an address or network"
            ))
        })?;
        if let Some(&i) = index.get(&customer_id) {
            customers[i].ips.push(net);
        }
    }
    Ok(customers)
}

/// Runs `sets[i]` (`UPDATE ... SET column = $1, updated_ms = $2 WHERE id = $3`) for each
/// value given: `None` leaves the column, `Some(None)` stores NULL.
async fn update_columns(
    conn: &mut AnyConnection,
    sets: &[&'static str],
    values: &[Option<Option<u32>>],
    id: i64,
) -> Result<(), StoreError> {
    for (sql, value) in sets.iter().zip(values) {
        if let Some(value) = value {
            sqlx::query(*sql)
                .bind(value.map(i64::from))
                .bind(now_ms())
                .bind(id)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

/// A table whose rows other rows refer to by id.
#[derive(Debug, Clone, Copy)]
enum Table {
    Customer,
    Carrier,
    DialPlan,
    RatePlan,
}

/// `Invalid("no … with id ID")` unless the row exists.
async fn exists(conn: &mut AnyConnection, table: Table, id: i64) -> Result<(), StoreError> {
    let (sql, what) = match table {
        Table::Customer => ("SELECT id FROM customers WHERE id = $1", "customer"),
        Table::Carrier => ("SELECT id FROM carriers WHERE id = $1", "carrier"),
        Table::DialPlan => ("SELECT id FROM dial_plans WHERE id = $1", "dialing plan"),
        Table::RatePlan => ("SELECT id FROM rate_plans WHERE id = $1", "rate plan"),
    };
    sqlx::query(sql)
        .bind(id)
        .fetch_optional(conn)
        .await?
        .map(|_| ())
        .ok_or_else(|| StoreError::Invalid(format!("no {what} with id {id}")))
}

/// `Invalid("no WHAT with id ID")` when an update touched no row.
fn touched(rows: u64, what: &str, id: i64) -> Result<(), StoreError> {
    if rows == 0 {
        return Err(StoreError::Invalid(format!("no {what} with id {id}")));
    }
    Ok(())
}

/// Stored networks are CIDR text; a bare address (typed by hand into the table) is read as a
/// host network.
fn parse_network(text: &str) -> Option<IpNet> {
    let text = text.trim();
    text.parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
        .map(canonical)
}

async fn carriers_on(conn: &mut AnyConnection) -> Result<Vec<Carrier>, StoreError> {
    let mut carriers = carrier_rows_on(&mut *conn).await?;
    let rows = sqlx::query(
        "SELECT carrier_id, kind, prefix FROM carrier_prefixes ORDER BY carrier_id, kind, prefix",
    )
    .fetch_all(&mut *conn)
    .await?;
    for row in &rows {
        let id: i64 = row.try_get("carrier_id")?;
        let kind: String = row.try_get("kind")?;
        let prefix: String = row.try_get("prefix")?;
        if let Some(c) = carriers.iter_mut().find(|c| c.id.0 == id) {
            match kind.as_str() {
                "allow" => c.allow.push(prefix),
                _ => c.deny.push(prefix),
            }
        }
    }
    Ok(carriers)
}

async fn carrier_rows_on(conn: &mut AnyConnection) -> Result<Vec<Carrier>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, name, host, port, transport, priority, weight, active, max_channels, max_cps, \
             first_response_ms, ring_timeout_s, strip_digits, tech_prefix, number_format, cli_format, \
             country_code, codecs, hide_topology FROM carriers ORDER BY id",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            let id: i64 = row.try_get("id")?;
            let transport: String = row.try_get("transport")?;
            let (numbers, codecs) = routing::carrier_profile(row, id)?;
            Ok(Carrier {
                numbers,
                codecs,
                id: CarrierId(id),
                name: row.try_get("name")?,
                host: row.try_get("host")?,
                port: int(row, "port")?,
                transport: Transport::from_str(&transport)
                    .map_err(|e| StoreError::Corrupt(format!("carrier {id}: {e}")))?,
                priority: int(row, "priority")?,
                weight: int(row, "weight")?,
                active: flag(row, "active")?,
                max_channels: limit(row, "max_channels")?,
                max_cps: limit(row, "max_cps")?,
                first_response_ms: limit(row, "first_response_ms")?,
                ring_timeout_s: limit(row, "ring_timeout_s")?,
                allow: Vec::new(),
                deny: Vec::new(),
                hide_topology: flag(row, "hide_topology")?,
            })
        })
        .collect::<Result<Vec<Carrier>, StoreError>>()
}

fn cdr_from_row(row: &AnyRow) -> Result<Cdr, StoreError> {
    let id: String = row.try_get("id")?;
    let hangup: String = row.try_get("hangup")?;
    Ok(Cdr {
        call_id: row.try_get("call_id")?,
        customer_id: CustomerId(row.try_get("customer_id")?),
        carrier_id: row.try_get::<Option<i64>, _>("carrier_id")?.map(CarrierId),
        carrier_addr: row.try_get("carrier_addr")?,
        source_addr: row.try_get("source_addr")?,
        caller: row.try_get("caller")?,
        callee: row.try_get("callee")?,
        caller_out: row.try_get("caller_out")?,
        callee_out: row.try_get("callee_out")?,
        user_agent: row.try_get("user_agent")?,
        invite_ms: row.try_get("invite_ms")?,
        progress_ms: row.try_get("progress_ms")?,
        answer_ms: row.try_get("answer_ms")?,
        end_ms: row.try_get("end_ms")?,
        pdd_ms: row.try_get("pdd_ms")?,
        billable_ms: row.try_get("billable_ms")?,
        billable_secs: row.try_get("billable_secs")?,
        final_code: int(row, "final_code")?,
        final_reason: row.try_get("final_reason")?,
        hangup: HangupSide::from_str(&hangup)
            .map_err(|e| StoreError::Corrupt(format!("cdr {id:?}: {e}")))?,
        attempts: int(row, "attempts")?,
        caller_e164: row.try_get("caller_e164")?,
        callee_e164: row.try_get("callee_e164")?,
        cost: row.try_get::<Option<i64>, _>("cost")?.map(Money),
        price: row.try_get::<Option<i64>, _>("price")?.map(Money),
        q850_cause: row
            .try_get::<Option<i64>, _>("q850_cause")?
            .and_then(|c| u16::try_from(c).ok()),
        codecs_offered: row.try_get("codecs_offered")?,
        codecs_answered: row.try_get("codecs_answered")?,
        attempt_log: {
            let text: String = row.try_get("attempt_log")?;
            serde_json::from_str(&text)
                .map_err(|e| StoreError::Corrupt(format!("cdr {id:?}: attempt_log: {e}")))?
        },
        id,
    })
}

/// An integer column read into a narrower Rust type; out of range is [`StoreError::Corrupt`].
fn int<T: TryFrom<i64>>(row: &AnyRow, column: &str) -> Result<T, StoreError> {
    let value: i64 = row.try_get(column)?;
    T::try_from(value)
        .map_err(|_| StoreError::Corrupt(format!("{column} = {value} is out of range")))
}

/// A nullable limit: NULL is unlimited; 0 or negative (written by another tool) is corrupt.
fn limit(row: &AnyRow, column: &str) -> Result<Option<u32>, StoreError> {
    match row.try_get::<Option<i64>, _>(column)? {
        None => Ok(None),
        Some(value) => match u32::try_from(value) {
            Ok(v) if v > 0 => Ok(Some(v)),
            _ => Err(StoreError::Corrupt(format!(
                "{column} = {value} is not a positive limit"
            ))),
        },
    }
}

/// A boolean stored as INTEGER 0/1.
fn flag(row: &AnyRow, column: &str) -> Result<bool, StoreError> {
    let value: i64 = row.try_get(column)?;
    Ok(value != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_from_url_scheme() {
        assert_eq!(
            Backend::from_url("sqlite://vts.db").unwrap(),
            Backend::Sqlite
        );
        assert_eq!(
            Backend::from_url("sqlite:///var/lib/vts/vts.db").unwrap(),
            Backend::Sqlite
        );
        assert_eq!(
            Backend::from_url("postgres://u:p@127.0.0.1:5432/vts").unwrap(),
            Backend::Postgres
        );
        assert_eq!(
            Backend::from_url("postgresql://h/vts").unwrap(),
            Backend::Postgres
        );
        let err = Backend::from_url("mysql://root:secret@h/vts").unwrap_err();
        assert!(
            matches!(&err, StoreError::UnsupportedUrl(s) if s == "mysql"),
            "{err:?}"
        );
        assert!(err.to_string().contains("\"mysql\""), "{err}");
        assert!(!err.to_string().contains("secret"), "{err}");
        assert!(matches!(
            Backend::from_url("vts.db"),
            Err(StoreError::UnsupportedUrl(_))
        ));
    }

    #[test]
    fn sqlite_urls_create_the_file() {
        assert_eq!(
            sqlite_url_creating_file("sqlite://a.db"),
            "sqlite://a.db?mode=rwc"
        );
        assert_eq!(
            sqlite_url_creating_file("sqlite://a.db?cache=shared"),
            "sqlite://a.db?cache=shared&mode=rwc"
        );
        assert_eq!(
            sqlite_url_creating_file("sqlite://a.db?mode=ro"),
            "sqlite://a.db?mode=ro"
        );
    }

    /// A committed CDR batch must survive a power loss: `synchronous = FULL` (2) on every
    /// connection of a file database (NORMAL, 1, may roll back the last commits in WAL
    /// mode).
    #[tokio::test]
    async fn sqlite_commits_are_synced() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("vts.db").display());
        let store = Store::connect(&url).await.unwrap();
        for _ in 0..3 {
            let mut conn = store.pool.acquire().await.unwrap();
            let level: i64 = sqlx::query_scalar("PRAGMA synchronous")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(level, 2, "PRAGMA synchronous is FULL");
        }
    }

    /// A write transaction that reads first must not fail when another connection commits
    /// a write between its read and its own write (SQLite: a DEFERRED transaction then gets
    /// SQLITE_BUSY, "database is locked", which busy_timeout cannot wait out). With the
    /// write lock taken at BEGIN, the other writer waits for it instead, and no update is
    /// lost.
    #[tokio::test]
    async fn expired_blocks_are_purged_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("vts.db").display());
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let net = |s: &str| s.parse::<IpNet>().unwrap();
        store
            .add_auto_block(net("192.0.2.1/32"), "flood", "f", 1_000)
            .await
            .unwrap();
        store
            .add_auto_block(net("192.0.2.2/32"), "flood", "f", 5_000)
            .await
            .unwrap();
        store
            .add_block(net("192.0.2.3/32"), "manual", None)
            .await
            .unwrap();
        assert_eq!(store.purge_expired_blocks(2_000).await.unwrap(), 1);
        let left: Vec<String> = store
            .list_blocks()
            .await
            .unwrap()
            .iter()
            .map(|b| b.network.to_string())
            .collect();
        assert_eq!(left, ["192.0.2.2/32", "192.0.2.3/32"]);
    }

    #[tokio::test]
    async fn sqlite_write_transactions_lock_at_begin() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("vts.db").display());
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let id = store
            .add_customer(&NewCustomer {
                name: "acme".into(),
                ips: vec![],
                max_channels: None,
                max_cps: None,
            })
            .await
            .unwrap();
        // Another process (the CLI while the switch runs): its own pool, so its own
        // connection to the same file.
        let other = Store::connect(&url).await.unwrap();
        let timeout: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(&other.pool)
            .await
            .unwrap();
        assert_eq!(timeout, 5000, "PRAGMA busy_timeout is 5 s");

        // Read, as `post` does before it writes.
        let mut tx = store.write_tx().await.unwrap();
        let before: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(balance), 0) FROM customer_balances WHERE customer_id = $1",
        )
        .bind(id.0)
        .fetch_one(&mut *tx)
        .await
        .unwrap();

        // The other connection writes meanwhile: it must wait for the open transaction
        // (before the fix it committed at once).
        let mut writer = tokio::spawn(async move {
            other
                .post(id, EntryKind::Credit, Money(7), "meanwhile")
                .await
                .map(|entry| entry.balance_after)
        });
        let early = tokio::time::timeout(Duration::from_millis(500), &mut writer).await;
        assert!(
            early.is_err(),
            "the other writer waits for the write lock, got {early:?}"
        );

        // Then the first transaction writes and commits: no "database is locked".
        sqlx::query(
            "INSERT INTO customer_balances (customer_id, balance) VALUES ($1, $2) \
             ON CONFLICT (customer_id) DO UPDATE SET balance = excluded.balance",
        )
        .bind(id.0)
        .bind(before + 100)
        .execute(&mut *tx)
        .await
        .expect("the write after a read succeeds");
        tx.commit().await.unwrap();

        // The waiting writer then runs, on top of the committed write.
        let after = writer.await.unwrap().expect("the waiting writer succeeds");
        assert_eq!(after, Money(before + 107));
        let balance: i64 =
            sqlx::query_scalar("SELECT balance FROM customer_balances WHERE customer_id = $1")
                .bind(id.0)
                .fetch_one(&store.pool)
                .await
                .unwrap();
        assert_eq!(balance, before + 107, "no update is lost");
    }

    #[test]
    fn networks_are_canonical() {
        let c = |s: &str| canonical(s.parse().unwrap()).to_string();
        assert_eq!(c("192.0.2.1/32"), "192.0.2.1/32");
        assert_eq!(c("10.1.2.3/8"), "10.0.0.0/8");
        assert_eq!(c("2001:db8::1/32"), "2001:db8::/32");
        assert_eq!(c("::ffff:192.0.2.1/128"), "192.0.2.1/32");
        assert_eq!(c("::ffff:10.9.0.0/112"), "10.9.0.0/16");
        assert_eq!(c("::ffff:0:0/64"), "::/64");
        assert_eq!(
            parse_network(" 192.0.2.7 ").unwrap().to_string(),
            "192.0.2.7/32"
        );
        assert!(parse_network("not-an-ip").is_none());
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(checked_name("  acme ", "customer").unwrap(), "acme");
        assert!(matches!(
            checked_name("   ", "customer"),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            checked_name("a\u{0}b", "customer"),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            checked_name(&"x".repeat(MAX_NAME_LEN + 1), "carrier"),
            Err(StoreError::Invalid(_))
        ));
    }
}
