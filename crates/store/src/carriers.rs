//! Carriers: adding one, its prefix allow and deny lists, its limits and timers, its number
//! profile and header policy, and reading them all (for the directory and the CLI).

use std::str::FromStr;

use domain::numbers::checked_country_code;
use domain::{
    Carrier, CarrierId, NumberProfile, OutboundFormat, Transport, checked_prefix, now_ms,
};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::audit::{Audit, Target};
use crate::{Store, StoreError, Table, checked_name, exists, flag, int, limit, touched};

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

/// What `vts carrier limits` changes (`None`: left as it is; `Some(None)`: unlimited, or the
/// switch's default for the timers).
#[derive(Debug, Clone, Copy, Default)]
pub struct CarrierLimitsChange {
    pub max_channels: Option<Option<u32>>,
    pub max_cps: Option<Option<u32>>,
    pub first_response_ms: Option<Option<u32>>,
    pub ring_timeout_s: Option<Option<u32>>,
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
        let mut tx = self.event_tx().await?;
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
        self.audit_commit(
            tx,
            Audit::created("carrier.create", Target::Carrier(id)),
            &[],
        )
        .await?;
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
            .map(|p| checked_prefix(p).map_err(StoreError::from))
            .collect::<Result<_, _>>()?;
        let mut tx = self.event_tx().await?;
        let audit = self
            .audit_begin(&mut tx, "carrier.prefixes", Target::Carrier(id.0))
            .await?;
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
        self.audit_commit(tx, audit, &[]).await?;
        Ok(())
    }

    /// Every carrier (active or not), by id.
    pub async fn list_carriers(&self) -> Result<Vec<Carrier>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        carriers_on(&mut conn).await
    }

    /// Whether customers see a carrier's topology (Record-Route, Server, Warning,
    /// User-Agent). An unknown id is refused before any UPDATE: PostgreSQL's statement
    /// triggers would bump the configuration version even for an UPDATE of no row.
    pub async fn set_carrier_headers(
        &self,
        id: CarrierId,
        hide_topology: bool,
    ) -> Result<(), StoreError> {
        let mut tx = self.event_tx().await?;
        let audit = self
            .audit_begin(&mut tx, "carrier.headers", Target::Carrier(id.0))
            .await?;
        exists(&mut tx, Table::Carrier, id.0).await?;
        sqlx::query("UPDATE carriers SET hide_topology = $1, updated_ms = $2 WHERE id = $3")
            .bind(i32::from(hide_topology))
            .bind(now_ms())
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        self.audit_commit(tx, audit, &[]).await?;
        Ok(())
    }

    /// Changes a carrier's limits and timers, checked like `add_carrier`'s.
    pub async fn set_carrier_limits(
        &self,
        id: CarrierId,
        change: &CarrierLimitsChange,
    ) -> Result<(), StoreError> {
        for (what, limit) in [
            ("max_channels", change.max_channels),
            ("max_cps", change.max_cps),
        ] {
            if limit == Some(Some(0)) {
                return Err(StoreError::Invalid(format!(
                    "carrier {what} 0 would skip the carrier on every call: disable it instead"
                )));
            }
        }
        if change
            .first_response_ms
            .flatten()
            .is_some_and(|ms| !(100..=60_000).contains(&ms))
        {
            return Err(StoreError::Invalid(
                "a carrier's first-response timeout is 100 to 60000 ms".into(),
            ));
        }
        if change
            .ring_timeout_s
            .flatten()
            .is_some_and(|s| !(1..=3600).contains(&s))
        {
            return Err(StoreError::Invalid(
                "a carrier's ring timeout is 1 to 3600 s".into(),
            ));
        }
        let mut tx = self.event_tx().await?;
        let audit = self
            .audit_begin(&mut tx, "carrier.limits", Target::Carrier(id.0))
            .await?;
        exists(&mut tx, Table::Carrier, id.0).await?;
        const SET: [&str; 4] = [
            "UPDATE carriers SET max_channels = $1, updated_ms = $2 WHERE id = $3",
            "UPDATE carriers SET max_cps = $1, updated_ms = $2 WHERE id = $3",
            "UPDATE carriers SET first_response_ms = $1, updated_ms = $2 WHERE id = $3",
            "UPDATE carriers SET ring_timeout_s = $1, updated_ms = $2 WHERE id = $3",
        ];
        let values = [
            change.max_channels,
            change.max_cps,
            change.first_response_ms,
            change.ring_timeout_s,
        ];
        crate::update_columns(&mut tx, &SET, &values, id.0).await?;
        self.audit_commit(tx, audit, &[]).await?;
        Ok(())
    }

    /// Takes a carrier out of routing (and probing), or back in.
    pub async fn set_carrier_active(&self, id: CarrierId, active: bool) -> Result<(), StoreError> {
        let mut tx = self.event_tx().await?;
        let audit = self
            .audit_begin(&mut tx, "carrier.active", Target::Carrier(id.0))
            .await?;
        let done = sqlx::query("UPDATE carriers SET active = $1, updated_ms = $2 WHERE id = $3")
            .bind(i32::from(active))
            .bind(now_ms())
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        touched(done.rows_affected(), "carrier", id.0)?;
        self.audit_commit(tx, audit, &[]).await?;
        Ok(())
    }

    /// Removes destination prefixes from a carrier's allow (`allow = true`) or deny list;
    /// returns how many were there.
    pub async fn remove_carrier_prefixes(
        &self,
        id: CarrierId,
        allow: bool,
        prefixes: &[String],
    ) -> Result<u64, StoreError> {
        let checked: Vec<String> = prefixes
            .iter()
            .map(|p| checked_prefix(p).map_err(StoreError::from))
            .collect::<Result<_, _>>()?;
        let mut tx = self.event_tx().await?;
        let audit = self
            .audit_begin(&mut tx, "carrier.prefixes", Target::Carrier(id.0))
            .await?;
        exists(&mut tx, Table::Carrier, id.0).await?;
        let mut removed = 0;
        for p in &checked {
            removed += sqlx::query(
                "DELETE FROM carrier_prefixes WHERE carrier_id = $1 AND kind = $2 AND prefix = $3",
            )
            .bind(id.0)
            .bind(if allow { "allow" } else { "deny" })
            .bind(p.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        self.audit_commit(tx, audit, &[]).await?;
        Ok(removed)
    }

    /// Replaces a carrier's number profile and codec list.
    pub async fn set_carrier_profile(
        &self,
        id: CarrierId,
        profile: &NumberProfile,
        codecs: &[String],
    ) -> Result<(), StoreError> {
        if profile.strip > 20 {
            return Err(StoreError::Invalid("strip is 0 to 20 digits".into()));
        }
        if profile.tech_prefix.len() > 20
            || !profile
                .tech_prefix
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'#' || b == b'*')
        {
            return Err(StoreError::Invalid(format!(
                "tech prefix {:?}: up to 20 of digits, `#` and `*`",
                profile.tech_prefix
            )));
        }
        if let Some(cc) = &profile.country_code {
            checked_country_code(cc).map_err(StoreError::from)?;
        }
        let national = [profile.format, profile.cli_format].contains(&OutboundFormat::National);
        if national && profile.country_code.is_none() {
            return Err(StoreError::Invalid(
                "the national format needs the carrier's country code (--country)".into(),
            ));
        }
        let codecs = checked_codecs(codecs)?;
        let mut tx = self.event_tx().await?;
        let audit = self
            .audit_begin(&mut tx, "carrier.profile", Target::Carrier(id.0))
            .await?;
        let done = sqlx::query(
            "UPDATE carriers SET strip_digits = $1, tech_prefix = $2, number_format = $3, cli_format = $4, \
             country_code = $5, codecs = $6, updated_ms = $7 WHERE id = $8",
        )
        .bind(i32::from(profile.strip))
        .bind(profile.tech_prefix.as_str())
        .bind(profile.format.as_str())
        .bind(profile.cli_format.as_str())
        .bind(profile.country_code.as_deref())
        .bind(codecs.join(","))
        .bind(now_ms())
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
        touched(done.rows_affected(), "carrier", id.0)?;
        self.audit_commit(tx, audit, &[]).await?;
        Ok(())
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
            let (numbers, codecs) = carrier_profile(row, id)?;
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

/// Codec names as SDP writes them (letters, digits, `-`, `_`, `.`), upper-cased, each once.
fn checked_codecs(codecs: &[String]) -> Result<Vec<String>, StoreError> {
    let mut out: Vec<String> = Vec::new();
    for c in codecs {
        let c = c.trim();
        if c.is_empty()
            || c.len() > 32
            || !c
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(StoreError::Invalid(format!(
                "{c:?} is not a codec name (e.g. PCMA, G729)"
            )));
        }
        let c = c.to_ascii_uppercase();
        if !out.contains(&c) {
            out.push(c);
        }
    }
    Ok(out)
}

/// The profile columns of a carrier row.
pub(crate) fn carrier_profile(
    row: &AnyRow,
    id: i64,
) -> Result<(NumberProfile, Vec<String>), StoreError> {
    let corrupt = |e: domain::Invalid| StoreError::Corrupt(format!("carrier {id}: {e}"));
    let format: String = row.try_get("number_format")?;
    let cli_format: String = row.try_get("cli_format")?;
    let codecs: String = row.try_get("codecs")?;
    Ok((
        NumberProfile {
            strip: int(row, "strip_digits")?,
            tech_prefix: row.try_get("tech_prefix")?,
            format: OutboundFormat::from_str(&format).map_err(corrupt)?,
            cli_format: OutboundFormat::from_str(&cli_format).map_err(corrupt)?,
            country_code: row.try_get("country_code")?,
        },
        codecs
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect(),
    ))
}
