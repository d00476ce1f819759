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

mod audit;
mod billing;
mod carriers;
mod cdr_row;
mod cdrs;
mod customers;
mod directory;
mod doctor;
mod error;
pub mod events;
mod health;
mod migrations;
mod plans;
mod rates;
mod security;
mod settings;
mod sql;
mod tokens;
mod traces;
mod usage;
mod webhooks;

pub use audit::{Actor, AuditRecord, Target};
pub use billing::{EntryKind, IdempotencyKey, LedgerEntry, Posted};
pub use carriers::{CarrierLimitsChange, NewCarrier};
pub use cdrs::CdrFilter;
pub use customers::{CustomerHeaders, LimitsChange, NewCustomer, NumbersChange};
pub use directory::Versions;
pub use events::{Event, EventSubscription, NewEvent};
pub use rates::RateOwner;
pub use tokens::{TOKEN_PREFIX, Token, token_hash};
pub use traces::TraceMessage;
pub use usage::{CarrierUsage, CustomerUsage};
pub use webhooks::{Attempt, CUSTOMER_KINDS, Delivery, Due, WEBHOOK_CONSUMER, Webhook};

use domain::now_ms;
use std::net::IpAddr;
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, Row};

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

/// Longest customer or carrier name accepted.
pub const MAX_NAME_LEN: usize = 100;

/// SQLite connections in the pool: writes are serialised by SQLite anyway; a few readers
/// (WAL) let the proxy's version poll run beside a CDR batch.
const SQLITE_POOL_SIZE: u32 = 4;
const POSTGRES_POOL_SIZE: u32 = 10;

/// The database: configuration (customers, carriers, plans, rates, settings, the block list)
/// and call records with their charges. Its methods are grouped by what they keep, one
/// file each: `customers.rs`, `carriers.rs`, `plans.rs`, `rates.rs`, `health.rs`,
/// `security.rs`, `settings.rs`, `directory.rs`, `cdrs.rs`, `billing.rs`, `usage.rs`,
/// `events.rs`, `traces.rs`, `tokens.rs`; every change is audited (`audit.rs`).
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Wakes this process's event consumers after a commit that appended events.
    events: std::sync::Arc<tokio::sync::Notify>,
    /// The PostgreSQL URL, for `LISTEN` (its `Debug` hides it: it may hold a password).
    url: Option<ListenUrl>,
    /// Who this handle's changes are recorded as (`audit.rs`; [`Store::acting_as`]).
    actor: std::sync::Arc<Actor>,
}

/// A database URL kept for `LISTEN`; `Debug` shows `***`.
#[derive(Clone)]
struct ListenUrl(std::sync::Arc<str>);

impl std::fmt::Debug for ListenUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::ops::Deref for ListenUrl {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
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
        let url = (backend == Backend::Postgres).then(|| ListenUrl(url.into()));
        Ok(Store {
            pool,
            backend,
            events: Default::default(),
            url,
            actor: Default::default(),
        })
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
        .ok_or(StoreError::NotFound { what, id })
}

/// `Invalid("no WHAT with id ID")` when an update touched no row.
fn touched(rows: u64, what: &'static str, id: i64) -> Result<(), StoreError> {
    if rows == 0 {
        return Err(StoreError::NotFound { what, id });
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
    use domain::Money;

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
