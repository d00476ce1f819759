//! SIP traces: the messages of a call as the switch saw them (both legs), keyed by the
//! Call-ID its CDR carries, written in batches by the trace recorder and read back by
//! `vts trace` (and later the API and the panel's ladder). Deleted by age.

use serde::Serialize;
use sqlx::Row;

use crate::{Store, StoreError, sql};

/// One message of a trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TraceMessage {
    pub call_id: String,
    /// Microseconds since the Unix epoch.
    pub at_us: i64,
    pub source: String,
    pub destination: String,
    /// `udp` or `tcp`.
    pub transport: String,
    /// The message as it crossed the socket (lossy UTF-8 when printed).
    #[serde(serialize_with = "lossy")]
    pub message: Vec<u8>,
}

fn lossy<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(bytes))
}

const COLUMNS: usize = 6;

impl Store {
    /// Stores messages (any calls, in the order given) in one transaction.
    pub async fn insert_trace_messages(&self, messages: &[TraceMessage]) -> Result<(), StoreError> {
        if messages.is_empty() {
            return Ok(());
        }
        let (style, max_binds) = match self.backend {
            crate::Backend::Sqlite => (sql::Style::Anonymous, sql::SQLITE_MAX_BINDS),
            crate::Backend::Postgres => (sql::Style::Numbered, sql::POSTGRES_MAX_BINDS),
        };
        let rows = sql::rows_per_statement(max_binds, COLUMNS, 500);
        let mut tx = self.write_tx().await?;
        for chunk in messages.chunks(rows) {
            let text = format!(
                "INSERT INTO sip_traces (call_id, at_us, source, destination, transport, message) VALUES {}",
                sql::values_placeholders(style, chunk.len(), COLUMNS)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(text));
            for m in chunk {
                query = query
                    .bind(m.call_id.as_str())
                    .bind(m.at_us)
                    .bind(m.source.as_str())
                    .bind(m.destination.as_str())
                    .bind(m.transport.as_str())
                    .bind(m.message.clone());
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The messages of the call `call_id`, in the order they were stored.
    pub async fn trace(&self, call_id: &str) -> Result<Vec<TraceMessage>, StoreError> {
        let rows = sqlx::query(
            "SELECT call_id, at_us, source, destination, transport, message FROM sip_traces \
             WHERE call_id = $1 ORDER BY id",
        )
        .bind(call_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TraceMessage {
                    call_id: r.try_get("call_id")?,
                    at_us: r.try_get("at_us")?,
                    source: r.try_get("source")?,
                    destination: r.try_get("destination")?,
                    transport: r.try_get("transport")?,
                    message: r.try_get("message")?,
                })
            })
            .collect()
    }

    /// Deletes trace messages older than `before_us`; how many.
    pub async fn delete_traces_before(&self, before_us: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM sip_traces WHERE at_us < $1")
            .bind(before_us)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

impl Store {
    /// Deletes the oldest trace messages until the stored ones hold at most `max_bytes`;
    /// how many it deleted.
    pub async fn trim_traces(&self, max_bytes: u64) -> Result<u64, StoreError> {
        // Per-backend SQL: the length of a BLOB (SQLite) or BYTEA (PostgreSQL) in bytes.
        let len = match self.backend {
            crate::Backend::Sqlite => "length(message)",
            crate::Backend::Postgres => "octet_length(message)",
        };
        let cut: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT MAX(id) FROM (SELECT id, SUM({len}) OVER (ORDER BY id DESC) AS newer \
             FROM sip_traces) t WHERE newer > $1"
        )))
        .bind(i64::try_from(max_bytes).unwrap_or(i64::MAX))
        .fetch_one(&self.pool)
        .await?;
        let Some(cut) = cut else {
            return Ok(0);
        };
        let done = sqlx::query("DELETE FROM sip_traces WHERE id <= $1")
            .bind(cut)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
