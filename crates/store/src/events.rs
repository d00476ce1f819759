//! The durable event stream: an append-only `events` table (an outbox) with a sequence
//! number. What a switch event reports is written in the same transaction as the event
//! where there is such a write (a CDR and its `call.completed`, a block and its
//! `security.blocked`, a carrier's health and `carrier.up|down`, a customer's status);
//! the rest are appended on their own. Consumers read from their own checkpoint
//! (`event_checkpoints`), so a restart loses nothing and, when a consumer saves its
//! checkpoint with what it did, delivers nothing twice.
//!
//! Order: on SQLite one writer at a time makes the order of `seq` the order of commits. On
//! PostgreSQL every appending transaction first takes the advisory lock [`APPEND_LOCK`]
//! (held to its commit), so a reader that saw `seq = n` never misses a smaller `seq`
//! committed after it. A commit that appended wakes the consumers of this process at once
//! ([`Store::subscribe_events`]), and those of other processes through PostgreSQL's
//! `NOTIFY vts_events`; SQLite consumers of another process poll.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use sqlx::Row;
use tokio::sync::Notify;

use crate::{Backend, Store, StoreError, sql};

/// Every kind of event, for `--type` and the API's filters.
pub const KINDS: &[&str] = &[
    "call.completed",
    "call.refused",
    "carrier.up",
    "carrier.suspect",
    "carrier.down",
    "customer.activated",
    "customer.suspended",
    "customer.blocked",
    "balance.changed",
    "limit.warning",
    "cap.reached",
    "security.blocked",
    "config.changed",
    "balance.low",
    "webhook.disabled",
];

/// The advisory lock every appending transaction takes first on PostgreSQL ("vts_evts").
pub const APPEND_LOCK: i64 = 0x7674_735f_6576_7473;

/// The PostgreSQL channel a commit that appended notifies.
const CHANNEL: &str = "vts_events";

/// One stored event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub seq: i64,
    pub at_ms: i64,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carrier_id: Option<i64>,
    pub body: serde_json::Value,
}

impl Event {
    /// The event as a customer's own consumers (its tokens' `/events`, its webhooks) get it:
    /// no carrier, and a `call.completed` record as [`domain::Cdr::for_customer`] shows it
    /// (a body that does not read as a record is left out whole rather than passed on).
    pub fn for_customer(mut self) -> Event {
        self.carrier_id = None;
        if self.kind == "call.completed" {
            self.body = serde_json::from_value::<domain::Cdr>(self.body)
                .ok()
                .and_then(|cdr| serde_json::to_value(cdr.for_customer()).ok())
                .unwrap_or_else(|| serde_json::json!({}));
        }
        self
    }
}

/// An event to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub at_ms: i64,
    pub kind: &'static str,
    pub customer_id: Option<i64>,
    pub carrier_id: Option<i64>,
    pub body: serde_json::Value,
}

impl NewEvent {
    /// An event of `kind` now.
    pub fn new(kind: &'static str, body: serde_json::Value) -> NewEvent {
        NewEvent {
            at_ms: domain::now_ms(),
            kind,
            customer_id: None,
            carrier_id: None,
            body,
        }
    }

    pub fn customer(mut self, id: i64) -> NewEvent {
        self.customer_id = Some(id);
        self
    }

    pub fn carrier(mut self, id: i64) -> NewEvent {
        self.carrier_id = Some(id);
        self
    }
}

/// Appends `events` inside `tx`, taking the append lock first on PostgreSQL (call it before
/// the transaction's other writes where it can be: a lock taken late can wait on one the
/// transaction holds). The caller commits, then calls [`Store::events_appended`].
pub(crate) async fn append(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    backend: Backend,
    events: &[NewEvent],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    if let Some(bad) = events.iter().find(|e| !KINDS.contains(&e.kind)) {
        return Err(StoreError::Invalid(format!(
            "{:?} is not an event kind",
            bad.kind
        )));
    }
    if backend == Backend::Postgres {
        lock(tx).await?;
    }
    // Many rows a statement (a CDR batch appends hundreds).
    let (style, max_binds) = match backend {
        Backend::Sqlite => (sql::Style::Anonymous, sql::SQLITE_MAX_BINDS),
        Backend::Postgres => (sql::Style::Numbered, sql::POSTGRES_MAX_BINDS),
    };
    let rows = sql::rows_per_statement(max_binds, 5, 500);
    for chunk in events.chunks(rows) {
        let text = format!(
            "INSERT INTO events (at_ms, kind, customer_id, carrier_id, body) VALUES {}",
            sql::values_placeholders(style, chunk.len(), 5)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(text));
        for e in chunk {
            query = query
                .bind(e.at_ms)
                .bind(e.kind)
                .bind(e.customer_id)
                .bind(e.carrier_id)
                .bind(e.body.to_string());
        }
        query.execute(&mut **tx).await?;
    }
    if backend == Backend::Postgres {
        // Per-backend SQL: delivered to listeners at commit, and only then.
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(CHANNEL)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// The append lock (per-backend SQL: PostgreSQL only), held to the end of `tx`.
pub(crate) async fn lock(tx: &mut sqlx::Transaction<'static, sqlx::Any>) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(APPEND_LOCK)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Saves `consumer`'s checkpoint on `conn` (in the caller's transaction, when it is one): a
/// checkpoint never moves back.
pub(crate) async fn save_checkpoint_on(
    conn: &mut sqlx::AnyConnection,
    consumer: &str,
    seq: i64,
) -> Result<(), StoreError> {
    if consumer.is_empty() || consumer.len() > 100 {
        return Err(StoreError::Invalid(
            "a consumer name is 1 to 100 characters".into(),
        ));
    }
    sqlx::query(
        "INSERT INTO event_checkpoints (consumer, seq, updated_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (consumer) DO UPDATE SET seq = excluded.seq, updated_ms = excluded.updated_ms \
         WHERE event_checkpoints.seq < excluded.seq",
    )
    .bind(consumer)
    .bind(seq)
    .bind(domain::now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The events of these seqs, by seq (one statement; a seq retention deleted is absent).
pub(crate) async fn events_by_seq(
    pool: &sqlx::AnyPool,
    seqs: &[i64],
) -> Result<std::collections::HashMap<i64, Event>, StoreError> {
    let mut out = std::collections::HashMap::with_capacity(seqs.len());
    for chunk in seqs.chunks(500) {
        let marks: Vec<String> = (1..=chunk.len()).map(|n| format!("${n}")).collect();
        let sql = format!(
            "SELECT seq, at_ms, kind, customer_id, carrier_id, body FROM events WHERE seq IN ({})",
            marks.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for seq in chunk {
            query = query.bind(*seq);
        }
        for row in query.fetch_all(pool).await? {
            let e = event_from_row(&row)?;
            out.insert(e.seq, e);
        }
    }
    Ok(out)
}

fn event_from_row(row: &sqlx::any::AnyRow) -> Result<Event, StoreError> {
    let body: String = row.try_get("body")?;
    Ok(Event {
        seq: row.try_get("seq")?,
        at_ms: row.try_get("at_ms")?,
        kind: row.try_get("kind")?,
        customer_id: row.try_get("customer_id")?,
        carrier_id: row.try_get("carrier_id")?,
        body: serde_json::from_str(&body)
            .map_err(|e| StoreError::Invalid(format!("event body: {e}")))?,
    })
}

/// Waits for new events: woken at once by a commit of this process, by PostgreSQL's
/// `NOTIFY` for other processes, or after the poll interval (SQLite across processes).
pub struct EventSubscription {
    local: Arc<Notify>,
    listener: Option<sqlx::postgres::PgListener>,
}

impl EventSubscription {
    /// Returns when events may have been appended, or after `poll`.
    pub async fn wait(&mut self, poll: Duration) {
        let local = self.local.notified();
        match self.listener.as_mut() {
            Some(l) => {
                tokio::select! {
                    _ = local => {}
                    _ = l.recv() => {}
                    _ = tokio::time::sleep(poll) => {}
                }
            }
            None => {
                let _ = tokio::time::timeout(poll, local).await;
            }
        }
    }
}

impl Store {
    /// A write transaction that appends events: on PostgreSQL the append lock is its first
    /// statement.
    pub(crate) async fn event_tx(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        let mut tx = self.write_tx().await?;
        if self.backend == Backend::Postgres {
            lock(&mut tx).await?;
        }
        Ok(tx)
    }

    /// Appends `events` in `tx` (from [`Store::event_tx`]), commits, and wakes this
    /// process's consumers.
    pub(crate) async fn commit_with_events(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Any>,
        events: &[NewEvent],
    ) -> Result<(), StoreError> {
        append(&mut tx, self.backend, events).await?;
        tx.commit().await?;
        if !events.is_empty() {
            self.events_appended();
        }
        Ok(())
    }

    /// Appends events of their own (what they report has no write of its own).
    pub async fn append_events(&self, events: &[NewEvent]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let tx = self.event_tx().await?;
        self.commit_with_events(tx, events).await
    }

    /// Wakes this process's consumers (after a commit that appended).
    pub(crate) fn events_appended(&self) {
        self.events.notify_waiters();
    }

    /// Events after `after` (oldest first), at most `limit`, of `kind` when given.
    pub async fn events_after(
        &self,
        after: i64,
        limit: u32,
        kind: Option<&str>,
    ) -> Result<Vec<Event>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at_ms, kind, customer_id, carrier_id, body FROM events \
             WHERE seq > $1 AND ($2 IS NULL OR kind = $2) ORDER BY seq LIMIT $3",
        )
        .bind(after)
        .bind(kind)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    /// The newest event's seq (0 when there is none).
    pub async fn last_event_seq(&self) -> Result<i64, StoreError> {
        let seq: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(seq.unwrap_or(0))
    }

    /// The seq to read after so that the newest `n` events (of `kind`) come next.
    pub async fn events_tail_start(&self, n: u32, kind: Option<&str>) -> Result<i64, StoreError> {
        let first: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(seq) FROM (SELECT seq FROM events WHERE ($1 IS NULL OR kind = $1) \
             ORDER BY seq DESC LIMIT $2) newest",
        )
        .bind(kind)
        .bind(i64::from(n))
        .fetch_one(&self.pool)
        .await?;
        match first {
            Some(seq) => Ok(seq - 1),
            None => self.last_event_seq().await,
        }
    }

    /// Where `consumer` is: the seq of the last event it finished (0: none yet).
    pub async fn event_checkpoint(&self, consumer: &str) -> Result<i64, StoreError> {
        let seq: Option<i64> =
            sqlx::query_scalar("SELECT seq FROM event_checkpoints WHERE consumer = $1")
                .bind(consumer)
                .fetch_optional(&self.pool)
                .await?;
        Ok(seq.unwrap_or(0))
    }

    /// Records that `consumer` finished every event up to `seq` (a checkpoint never moves
    /// back).
    pub async fn save_event_checkpoint(&self, consumer: &str, seq: i64) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        save_checkpoint_on(&mut conn, consumer, seq).await
    }

    /// Deletes events older than `before_ms` (retention); how many.
    pub async fn delete_events_before(&self, before_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM events WHERE at_ms < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// A subscription to new events (on PostgreSQL it listens on `vts_events`).
    pub async fn subscribe_events(&self) -> Result<EventSubscription, StoreError> {
        let listener = match (&self.backend, &self.url) {
            (Backend::Postgres, Some(url)) => {
                let mut l = sqlx::postgres::PgListener::connect(url).await?;
                l.listen(CHANNEL).await?;
                Some(l)
            }
            _ => None,
        };
        Ok(EventSubscription {
            local: self.events.clone(),
            listener,
        })
    }
}
