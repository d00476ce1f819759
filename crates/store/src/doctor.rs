//! What `vts doctor` asks of the store: the migrations it lacks, and the database server's
//! clock.

use crate::{Backend, Store, StoreError, migrations};

impl Store {
    /// Migrations this database lacks, as (version, description).
    pub async fn pending_migrations(&self) -> Result<Vec<(i64, String)>, StoreError> {
        let applied: Vec<i64> =
            match sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_all(&self.pool)
                .await
            {
                Ok(v) => v,
                // No migration table yet: none applied.
                Err(sqlx::Error::Database(_)) => Vec::new(),
                Err(e) => return Err(e.into()),
            };
        Ok(migrations::files(self.backend)
            .iter()
            .filter_map(|(file, _)| migrations::parse_name(file))
            .filter(|(v, _)| !applied.contains(v))
            .collect())
    }

    /// The database server's clock (epoch ms): PostgreSQL's; `None` for SQLite, whose clock
    /// is this machine's.
    pub async fn database_now_ms(&self) -> Result<Option<i64>, StoreError> {
        if self.backend == Backend::Sqlite {
            return Ok(None);
        }
        // Per-backend SQL: PostgreSQL's wall clock now (not the transaction's start).
        let ms: i64 = sqlx::query_scalar(
            "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(Some(ms))
    }
}
