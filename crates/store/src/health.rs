//! Carrier health as the running switch last saw it (written on every change, with a
//! `carrier.up` / `carrier.down` event; read back at the next start). Not configuration: no
//! version bump.

use std::collections::HashMap;
use std::str::FromStr;

use domain::{CarrierId, Health};
use sqlx::{AnyConnection, Row};

use crate::{Store, StoreError};

impl Store {
    /// Records a carrier's health (written by the running switch on every change).
    pub async fn set_carrier_health(
        &self,
        id: CarrierId,
        health: Health,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.event_tx().await?;
        let before: Option<String> =
            sqlx::query_scalar("SELECT state FROM carrier_health WHERE carrier_id = $1")
                .bind(id.0)
                .fetch_optional(&mut *tx)
                .await?;
        sqlx::query(
            "INSERT INTO carrier_health (carrier_id, state, changed_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (carrier_id) DO UPDATE SET state = excluded.state, changed_ms = excluded.changed_ms",
        )
        .bind(id.0)
        .bind(health.as_str())
        .bind(at_ms)
        .execute(&mut *tx)
        .await?;
        // A change of state only (a restart that writes the same state reports nothing).
        let events = if before.as_deref() != Some(health.as_str()) {
            let kind = match health {
                Health::Up => "carrier.up",
                Health::Suspect => "carrier.suspect",
                Health::Down => "carrier.down",
            };
            let mut e = crate::NewEvent::new(
                kind,
                serde_json::json!({ "carrier_id": id.0, "from": before, "to": health.as_str() }),
            )
            .carrier(id.0);
            e.at_ms = at_ms;
            vec![e]
        } else {
            Vec::new()
        };
        self.commit_with_events(tx, &events).await
    }

    /// Every carrier's stored health and when it last changed.
    pub async fn carrier_health(&self) -> Result<HashMap<CarrierId, (Health, i64)>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        health_on(&mut conn).await
    }
}

pub(crate) async fn health_on(
    conn: &mut AnyConnection,
) -> Result<HashMap<CarrierId, (Health, i64)>, StoreError> {
    let rows = sqlx::query("SELECT carrier_id, state, changed_ms FROM carrier_health")
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|row| {
            let id: i64 = row.try_get("carrier_id")?;
            let state: String = row.try_get("state")?;
            let health = Health::from_str(&state)
                .map_err(|e| StoreError::Corrupt(format!("carrier_health {id}: {e}")))?;
            Ok((CarrierId(id), (health, row.try_get("changed_ms")?)))
        })
        .collect()
}
