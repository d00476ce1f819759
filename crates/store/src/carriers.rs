//! Carriers: adding one, its prefix allow and deny lists, and reading them all (for the
//! directory and the CLI). Numbers, limits and timers are in `routing.rs`.

use std::str::FromStr;

use domain::{Carrier, CarrierId, Transport, checked_prefix, now_ms};
use sqlx::{AnyConnection, Row};

use crate::{Store, StoreError, Table, checked_name, exists, flag, int, limit, routing};

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

impl Store {
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

    /// Every carrier (active or not), by id.
    pub async fn list_carriers(&self) -> Result<Vec<Carrier>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        carriers_on(&mut conn).await
    }
}

pub(crate) async fn carriers_on(conn: &mut AnyConnection) -> Result<Vec<Carrier>, StoreError> {
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

pub(crate) async fn carrier_rows_on(conn: &mut AnyConnection) -> Result<Vec<Carrier>, StoreError> {
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
