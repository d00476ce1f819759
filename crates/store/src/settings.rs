//! Global settings (`vts settings`): stored as text, checked by `domain::Setting`.

use domain::{Setting, Settings, now_ms};
use sqlx::{AnyConnection, Row};

use crate::audit::Target;
use crate::{Store, StoreError};

impl Store {
    /// Sets a global setting (a known key, a checked value). The running switch sees it at
    /// its next configuration reload.
    pub async fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let setting = Setting::from_key(key).map_err(StoreError::from)?;
        let value = setting.check(value).map_err(StoreError::from)?;
        let mut tx = self.event_tx().await?;
        let audit = self
            .audit_begin(
                &mut tx,
                "setting.set",
                Target::Setting(setting.key().to_string()),
            )
            .await?;
        sqlx::query(
            "INSERT INTO settings (key, value, updated_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms",
        )
        .bind(setting.key())
        .bind(value)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        self.audit_commit(tx, audit, &[]).await?;
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
}

pub(crate) async fn settings_on(conn: &mut AnyConnection) -> Result<Settings, StoreError> {
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
