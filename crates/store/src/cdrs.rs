//! Call records: batched inserts that skip ids already stored (and charge only the new
//! ones), filtered reads, and the per-minute counts reconciliation compares.

use domain::{CarrierId, Cdr, CustomerId};
use sqlx::{AssertSqlSafe, Row};

use crate::cdr_row::{CDR_COLUMN_COUNT, CDR_COLUMNS, cdr_from_row};
use crate::{Backend, NewEvent, Store, StoreError, billing, sql, usage};

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

/// Rows per multi-row CDR insert, below both backends' bind limits.
const CDR_ROWS_CAP: usize = 500;

impl Store {
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
        // (On PostgreSQL the append lock first: this batch appends its events.)
        let mut tx = self.event_tx().await?;
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
        let low = billing::charge(&mut tx, &new).await?;
        usage::count(&mut tx, &new).await?;
        let mut events: Vec<NewEvent> = new
            .iter()
            .copied()
            .map(completed)
            .collect::<Result<_, _>>()?;
        events.extend(low);
        self.commit_with_events(tx, &events).await?;
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

    /// One page of call records matching `filter`, newest first (INVITE time, then id, both
    /// descending), after `cursor` (the last record of the previous page: its INVITE time
    /// and id) when given. Only the conditions given are in the statement, so each filter
    /// uses its index (`cdrs_invite_ms`, `cdrs_customer_invite`, `cdrs_carrier_invite`).
    pub async fn cdr_page(
        &self,
        filter: &CdrFilter,
        cursor: Option<(i64, &str)>,
        limit: u32,
    ) -> Result<Vec<Cdr>, StoreError> {
        let mut conditions: Vec<String> = Vec::new();
        let mut ints: Vec<i64> = Vec::new();
        let mut n = 0;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        for (column, op, value) in [
            ("customer_id", "=", filter.customer.map(|c| c.0)),
            ("carrier_id", "=", filter.carrier.map(|c| c.0)),
            ("invite_ms", ">=", filter.since_ms),
            ("invite_ms", "<", filter.until_ms),
            ("final_code", "=", filter.code.map(i64::from)),
            ("billable_ms", ">=", filter.min_billable_ms),
        ] {
            if let Some(v) = value {
                conditions.push(format!("{column} {op} {}", next()));
                ints.push(v);
            }
        }
        // A row value: both backends read it as one index range (an OR of the two parts
        // makes SQLite scan from the newest record on every page).
        let cursor_sql = cursor.map(|_| {
            let (a, b) = (next(), next());
            format!("(invite_ms, id) < ({a}, {b})")
        });
        conditions.extend(cursor_sql);
        let limit_param = next();
        let sql = format!(
            "SELECT {CDR_COLUMNS} FROM cdrs {} ORDER BY invite_ms DESC, id DESC LIMIT {limit_param}",
            if conditions.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", conditions.join(" AND "))
            }
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for v in ints {
            query = query.bind(v);
        }
        if let Some((at, id)) = cursor {
            query = query.bind(at).bind(id.to_string());
        }
        let rows = query.bind(i64::from(limit)).fetch_all(&self.pool).await?;
        rows.iter().map(cdr_from_row).collect()
    }

    /// One call record by id.
    pub async fn cdr(&self, id: &str) -> Result<Option<Cdr>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {CDR_COLUMNS} FROM cdrs WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(cdr_from_row).transpose()
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
}

/// The `call.completed` event of a CDR: the CDR itself.
fn completed(cdr: &Cdr) -> Result<NewEvent, StoreError> {
    let body =
        serde_json::to_value(cdr).map_err(|e| StoreError::Invalid(format!("CDR as JSON: {e}")))?;
    let mut event = NewEvent::new("call.completed", body).customer(cdr.customer_id.0);
    if let Some(c) = cdr.carrier_id {
        event = event.carrier(c.0);
    }
    Ok(event)
}
