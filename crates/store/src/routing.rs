//! Numbers, dialing plans, rates and carrier health: the tables of SPEC.md "Numbers" and
//! "Routing" beyond customers and carriers themselves.

use std::collections::HashMap;
use std::str::FromStr;

use domain::numbers::checked_country_code;
use domain::{
    CarrierId, CustomerId, DialPlan, DialPlanId, DialRule, Health, InboundFormat, Money,
    NumberProfile, OutboundFormat, Pattern, Rate, RatePlan, RatePlanId, RateTable, RoutingMode,
};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::{Store, StoreError, Table, checked_name, exists, flag, int, now_ms, touched};

/// What `vts customer numbers` changes (`None`: left as it is).
#[derive(Debug, Clone, Default)]
pub struct NumbersChange {
    pub format: Option<InboundFormat>,
    /// `Some(None)` clears it.
    pub country_code: Option<Option<String>>,
    /// `Some(None)` clears it.
    pub forced_cli: Option<Option<String>>,
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

/// A customer's header policy (docs/ROUTING.md "Headers between customers and carriers").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CustomerHeaders {
    /// The customer's identity headers reach carriers.
    pub trusted: bool,
    /// Carriers do not see the customer's Via headers or User-Agent.
    pub hide_topology: bool,
}

impl Store {
    /// Changes a customer's header policy (`None`: left as it is; both `None` changes
    /// nothing) and returns the policy now stored. An unknown id is refused before any
    /// UPDATE, so the configuration version stays (on PostgreSQL too).
    pub async fn set_customer_headers(
        &self,
        id: CustomerId,
        trusted: Option<bool>,
        hide_topology: Option<bool>,
    ) -> Result<CustomerHeaders, StoreError> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query("SELECT trusted, hide_topology FROM customers WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound {
                what: "customer",
                id: id.0,
            })?;
        let now = CustomerHeaders {
            trusted: match trusted {
                Some(t) => t,
                None => flag(&row, "trusted")?,
            },
            hide_topology: match hide_topology {
                Some(h) => h,
                None => flag(&row, "hide_topology")?,
            },
        };
        if trusted.is_some() || hide_topology.is_some() {
            sqlx::query(
                "UPDATE customers SET trusted = $1, hide_topology = $2, updated_ms = $3 WHERE id = $4",
            )
            .bind(i32::from(now.trusted))
            .bind(i32::from(now.hide_topology))
            .bind(now_ms())
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(now)
    }

    /// Whether customers see a carrier's topology (Record-Route, Server, Warning,
    /// User-Agent). An unknown id is refused before any UPDATE: PostgreSQL's statement
    /// triggers would bump the configuration version even for an UPDATE of no row.
    pub async fn set_carrier_headers(
        &self,
        id: CarrierId,
        hide_topology: bool,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        exists(&mut tx, Table::Carrier, id.0).await?;
        sqlx::query("UPDATE carriers SET hide_topology = $1, updated_ms = $2 WHERE id = $3")
            .bind(i32::from(hide_topology))
            .bind(now_ms())
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
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
        let mut tx = self.write_tx().await?;
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
        tx.commit().await?;
        Ok(())
    }

    /// Takes a carrier out of routing (and probing), or back in.
    pub async fn set_carrier_active(&self, id: CarrierId, active: bool) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE carriers SET active = $1, updated_ms = $2 WHERE id = $3")
            .bind(i32::from(active))
            .bind(now_ms())
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        touched(done.rows_affected(), "carrier", id.0)
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
            .map(|p| domain::checked_prefix(p).map_err(StoreError::Invalid))
            .collect::<Result<_, _>>()?;
        let mut tx = self.write_tx().await?;
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
        tx.commit().await?;
        Ok(removed)
    }

    /// Changes how a customer's numbers are read. A national or auto format needs a country
    /// code (the one given or the one stored); a forced CLI must be E.164 digits.
    pub async fn set_customer_numbers(
        &self,
        id: CustomerId,
        change: &NumbersChange,
    ) -> Result<(), StoreError> {
        let country = match &change.country_code {
            Some(Some(cc)) => Some(Some(checked_country_code(cc).map_err(StoreError::Invalid)?)),
            other => other.clone(),
        };
        let forced = match &change.forced_cli {
            Some(Some(cli)) => Some(Some(
                domain::numbers::normalize(cli, InboundFormat::E164, None)
                    .map_err(|e| StoreError::Invalid(format!("forced CLI: {e}")))?,
            )),
            other => other.clone(),
        };
        let mut tx = self.write_tx().await?;
        let row = sqlx::query("SELECT number_format, country_code FROM customers WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound {
                what: "customer",
                id: id.0,
            })?;
        let stored_format: String = row.try_get("number_format")?;
        let stored_cc: Option<String> = row.try_get("country_code")?;
        let format = match change.format {
            Some(f) => f,
            None => InboundFormat::from_str(&stored_format).map_err(StoreError::Corrupt)?,
        };
        let cc = country.clone().unwrap_or(stored_cc);
        if format != InboundFormat::E164 && cc.is_none() {
            return Err(StoreError::Invalid(format!(
                "number format {format} needs the customer's country code (--country)"
            )));
        }
        if format == InboundFormat::Auto
            && let Some(cc) = &cc
            && domain::numbers::country(cc).is_none()
        {
            return Err(StoreError::Invalid(format!(
                "country code {cc} is not in the country table: use the national format"
            )));
        }
        sqlx::query("UPDATE customers SET number_format = $1, country_code = $2, updated_ms = $3 WHERE id = $4")
            .bind(format.as_str())
            .bind(cc)
            .bind(now_ms())
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        if let Some(forced) = forced {
            sqlx::query("UPDATE customers SET forced_cli = $1 WHERE id = $2")
                .bind(forced)
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn set_customer_routing(
        &self,
        id: CustomerId,
        mode: RoutingMode,
    ) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE customers SET routing = $1, updated_ms = $2 WHERE id = $3")
            .bind(mode.as_str())
            .bind(now_ms())
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        touched(done.rows_affected(), "customer", id.0)
    }

    /// Gives a customer a dialing plan (`None`: no plan, every destination passes).
    pub async fn set_customer_dial_plan(
        &self,
        id: CustomerId,
        plan: Option<DialPlanId>,
    ) -> Result<(), StoreError> {
        self.set_customer_plan(id, Plan::Dial, plan.map(|p| p.0))
            .await
    }

    pub async fn add_dial_plan(
        &self,
        name: &str,
        default_allow: bool,
        block_premium: bool,
    ) -> Result<DialPlanId, StoreError> {
        let name = checked_name(name, "dialing plan")?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO dial_plans (name, default_allow, block_premium) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(name)
        .bind(i32::from(default_allow))
        .bind(i32::from(block_premium))
        .fetch_one(&self.pool)
        .await
        .map_err(|e| StoreError::unique_or(e, || format!("a dialing plan named {name:?} already exists")))?;
        Ok(DialPlanId(id))
    }

    /// Adds a rule to a plan; returns its id.
    pub async fn add_dial_rule(
        &self,
        plan: DialPlanId,
        priority: i32,
        pattern: &Pattern,
        allow: bool,
    ) -> Result<i64, StoreError> {
        // No transaction: a failed insert must not leave a write lock waiting for the
        // rollback of a dropped transaction (SQLite).
        let mut conn = self.pool.acquire().await?;
        exists(&mut conn, Table::DialPlan, plan.0).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO dial_plan_rules (plan_id, priority, pattern, allow) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(plan.0)
        .bind(priority)
        .bind(pattern.as_str())
        .bind(i32::from(allow))
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| {
            StoreError::unique_or(e, || format!("plan {} already has a rule for {}", plan.0, pattern.as_str()))
        })?;
        Ok(id)
    }

    /// Removes a rule; `false` when there was none with that id.
    pub async fn remove_dial_rule(&self, rule: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM dial_plan_rules WHERE id = $1")
            .bind(rule)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn list_dial_plans(&self) -> Result<Vec<DialPlan>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        dial_plans_on(&mut conn).await
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
            checked_country_code(cc).map_err(StoreError::Invalid)?;
        }
        let national = [profile.format, profile.cli_format].contains(&OutboundFormat::National);
        if national && profile.country_code.is_none() {
            return Err(StoreError::Invalid(
                "the national format needs the carrier's country code (--country)".into(),
            ));
        }
        let codecs = checked_codecs(codecs)?;
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
        .execute(&self.pool)
        .await?;
        touched(done.rows_affected(), "carrier", id.0)
    }

    /// Adds (or replaces, for the same prefix and effective time) a carrier's rates, all or
    /// none. Returns how many rows were written.
    pub async fn import_carrier_rates(
        &self,
        id: CarrierId,
        rates: &[Rate],
    ) -> Result<usize, StoreError> {
        check_rates(rates)?;
        let mut tx = self.write_tx().await?;
        exists(&mut tx, Table::Carrier, id.0).await?;
        insert_rates(&mut tx, CARRIER_RATE, id.0, rates).await?;
        tx.commit().await?;
        Ok(rates.len())
    }

    /// Adds (or replaces) a customer's rates (its sell prices), all or none.
    pub async fn import_customer_rates(
        &self,
        id: CustomerId,
        rates: &[Rate],
    ) -> Result<usize, StoreError> {
        check_rates(rates)?;
        let mut tx = self.write_tx().await?;
        exists(&mut tx, Table::Customer, id.0).await?;
        insert_rates(&mut tx, CUSTOMER_RATE, id.0, rates).await?;
        tx.commit().await?;
        Ok(rates.len())
    }

    /// Adds a rate plan (`markup_ppm`: price = cost × (1 + ppm / 1,000,000) where the plan
    /// has no rate); returns its id.
    pub async fn add_rate_plan(
        &self,
        name: &str,
        markup_ppm: u32,
    ) -> Result<RatePlanId, StoreError> {
        let name = checked_name(name, "rate plan")?;
        if markup_ppm > 100_000_000 {
            return Err(StoreError::Invalid("a markup is at most 10,000 %".into()));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO rate_plans (name, markup_ppm) VALUES ($1, $2) RETURNING id",
        )
        .bind(name)
        .bind(markup_ppm as i32)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| {
            StoreError::unique_or(e, || format!("a rate plan named {name:?} already exists"))
        })?;
        Ok(RatePlanId(id))
    }

    /// Adds (or replaces) a rate plan's rates, all or none.
    pub async fn import_rate_plan_rates(
        &self,
        id: RatePlanId,
        rates: &[Rate],
    ) -> Result<usize, StoreError> {
        check_rates(rates)?;
        let mut tx = self.write_tx().await?;
        exists(&mut tx, Table::RatePlan, id.0).await?;
        insert_rates(&mut tx, PLAN_RATE, id.0, rates).await?;
        tx.commit().await?;
        Ok(rates.len())
    }

    /// Gives a customer a rate plan (`None`: none).
    pub async fn set_customer_rate_plan(
        &self,
        id: CustomerId,
        plan: Option<RatePlanId>,
    ) -> Result<(), StoreError> {
        self.set_customer_plan(id, Plan::Rate, plan.map(|p| p.0))
            .await
    }

    /// Sets a customer's dialing plan or rate plan, the customer and the plan checked to
    /// exist.
    async fn set_customer_plan(
        &self,
        id: CustomerId,
        which: Plan,
        plan: Option<i64>,
    ) -> Result<(), StoreError> {
        let (table, sql) = match which {
            Plan::Dial => (
                Table::DialPlan,
                "UPDATE customers SET dial_plan_id = $1, updated_ms = $2 WHERE id = $3",
            ),
            Plan::Rate => (
                Table::RatePlan,
                "UPDATE customers SET rate_plan_id = $1, updated_ms = $2 WHERE id = $3",
            ),
        };
        let mut tx = self.write_tx().await?;
        exists(&mut tx, Table::Customer, id.0).await?;
        if let Some(plan) = plan {
            exists(&mut tx, table, plan).await?;
        }
        sqlx::query(sql)
            .bind(plan)
            .bind(now_ms())
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every rate plan with its rates.
    pub async fn list_rate_plans(&self) -> Result<Vec<RatePlan>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        rate_plans_on(&mut conn).await
    }

    /// A carrier's rates, by prefix then effective time.
    pub async fn list_carrier_rates(&self, id: CarrierId) -> Result<Vec<Rate>, StoreError> {
        let rows = sqlx::query(
            "SELECT prefix, per_minute, connection_fee, increment_s, minimum_s, effective_ms FROM carrier_rates \
             WHERE carrier_id = $1 ORDER BY prefix, effective_ms",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rate_from_row).collect()
    }

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

/// The upsert of one rate row into `$table`, owned by `$owner` (a column).
macro_rules! rate_upsert {
    ($table:literal, $owner:literal) => {
        concat!(
            "INSERT INTO ",
            $table,
            " (",
            $owner,
            ", prefix, per_minute, connection_fee, increment_s, minimum_s, effective_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (",
            $owner,
            ", prefix, effective_ms) DO UPDATE SET per_minute = excluded.per_minute, \
             connection_fee = excluded.connection_fee, increment_s = excluded.increment_s, \
             minimum_s = excluded.minimum_s"
        )
    };
}

const CARRIER_RATE: &str = rate_upsert!("carrier_rates", "carrier_id");
const CUSTOMER_RATE: &str = rate_upsert!("customer_rates", "customer_id");

const PLAN_RATE: &str = rate_upsert!("rate_plan_rates", "plan_id");

pub(crate) async fn rate_plans_on(conn: &mut AnyConnection) -> Result<Vec<RatePlan>, StoreError> {
    let rows = sqlx::query("SELECT id, name, markup_ppm FROM rate_plans ORDER BY id")
        .fetch_all(&mut *conn)
        .await?;
    let rates = sqlx::query(
        "SELECT plan_id, prefix, per_minute, connection_fee, increment_s, minimum_s, effective_ms FROM rate_plan_rates",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut by_plan: HashMap<i64, Vec<Rate>> = HashMap::new();
    for row in &rates {
        by_plan
            .entry(row.try_get("plan_id")?)
            .or_default()
            .push(rate_from_row(row)?);
    }
    rows.iter()
        .map(|row| {
            let id: i64 = row.try_get("id")?;
            Ok(RatePlan {
                id: RatePlanId(id),
                name: row.try_get("name")?,
                markup_ppm: int(row, "markup_ppm")?,
                rates: RateTable::new(by_plan.remove(&id).unwrap_or_default()),
            })
        })
        .collect()
}

/// Checks every row before a transaction opens: a bad row refuses the whole file, and no
/// write is left for a dropped transaction to roll back.
fn check_rates(rates: &[Rate]) -> Result<(), StoreError> {
    rates.iter().try_for_each(check_rate)
}

/// Writes `rates` (checked) of one owner with `sql` (one of the upserts above).
async fn insert_rates(
    conn: &mut AnyConnection,
    sql: &'static str,
    owner: i64,
    rates: &[Rate],
) -> Result<(), StoreError> {
    for r in rates {
        sqlx::query(sql)
            .bind(owner)
            .bind(r.prefix.as_str())
            .bind(r.per_minute.0)
            .bind(r.connection_fee.0)
            .bind(r.increment_s as i32)
            .bind(r.minimum_s as i32)
            .bind(r.effective_ms)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

fn check_rate(r: &Rate) -> Result<(), StoreError> {
    domain::checked_prefix(&r.prefix).map_err(StoreError::Invalid)?;
    if r.increment_s == 0 || r.increment_s > 3600 || r.minimum_s > 3600 {
        return Err(StoreError::Invalid(format!(
            "rate {}: the increment is 1 to 3600 s, the minimum 0 to 3600 s",
            r.prefix
        )));
    }
    if r.per_minute.0 < 0 || r.connection_fee.0 < 0 {
        return Err(StoreError::Invalid(format!(
            "rate {}: negative amount",
            r.prefix
        )));
    }
    Ok(())
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

fn rate_from_row(row: &AnyRow) -> Result<Rate, StoreError> {
    Ok(Rate {
        prefix: row.try_get("prefix")?,
        per_minute: Money(row.try_get("per_minute")?),
        connection_fee: Money(row.try_get("connection_fee")?),
        increment_s: int(row, "increment_s")?,
        minimum_s: int(row, "minimum_s")?,
        effective_ms: row.try_get("effective_ms")?,
    })
}

pub(crate) async fn dial_plans_on(conn: &mut AnyConnection) -> Result<Vec<DialPlan>, StoreError> {
    let rows =
        sqlx::query("SELECT id, name, default_allow, block_premium FROM dial_plans ORDER BY id")
            .fetch_all(&mut *conn)
            .await?;
    let mut plans = rows
        .iter()
        .map(|row| {
            Ok(DialPlan {
                id: DialPlanId(row.try_get("id")?),
                name: row.try_get("name")?,
                default_allow: flag(row, "default_allow")?,
                block_premium: flag(row, "block_premium")?,
                rules: Vec::new(),
            })
        })
        .collect::<Result<Vec<DialPlan>, StoreError>>()?;
    let rules = sqlx::query(
        "SELECT id, plan_id, priority, pattern, allow FROM dial_plan_rules ORDER BY plan_id, priority, id",
    )
    .fetch_all(&mut *conn)
    .await?;
    for row in &rules {
        let id: i64 = row.try_get("id")?;
        let plan: i64 = row.try_get("plan_id")?;
        let text: String = row.try_get("pattern")?;
        let pattern = Pattern::parse(&text)
            .map_err(|e| StoreError::Corrupt(format!("dial_plan_rules row {id}: {e}")))?;
        if let Some(p) = plans.iter_mut().find(|p| p.id.0 == plan) {
            p.rules.push(DialRule {
                id,
                priority: int(row, "priority")?,
                pattern,
                allow: flag(row, "allow")?,
            });
        }
    }
    Ok(plans)
}

type Rates = (
    HashMap<CarrierId, RateTable>,
    HashMap<CustomerId, RateTable>,
);

pub(crate) async fn rates_on(conn: &mut AnyConnection) -> Result<Rates, StoreError> {
    let rows = sqlx::query(
        "SELECT carrier_id, prefix, per_minute, connection_fee, increment_s, minimum_s, effective_ms FROM carrier_rates",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut carriers: HashMap<CarrierId, Vec<Rate>> = HashMap::new();
    for row in &rows {
        carriers
            .entry(CarrierId(row.try_get("carrier_id")?))
            .or_default()
            .push(rate_from_row(row)?);
    }
    let rows = sqlx::query(
        "SELECT customer_id, prefix, per_minute, connection_fee, increment_s, minimum_s, effective_ms FROM customer_rates",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut customers: HashMap<CustomerId, Vec<Rate>> = HashMap::new();
    for row in &rows {
        customers
            .entry(CustomerId(row.try_get("customer_id")?))
            .or_default()
            .push(rate_from_row(row)?);
    }
    Ok((
        carriers
            .into_iter()
            .map(|(k, v)| (k, RateTable::new(v)))
            .collect(),
        customers
            .into_iter()
            .map(|(k, v)| (k, RateTable::new(v)))
            .collect(),
    ))
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

/// A customer row's number format, country, forced CLI, dialing plan and routing mode.
type CustomerNumbers = (
    InboundFormat,
    Option<String>,
    Option<String>,
    Option<DialPlanId>,
    RoutingMode,
);

/// The number columns of a customer row.
pub(crate) fn customer_numbers(row: &AnyRow, id: i64) -> Result<CustomerNumbers, StoreError> {
    let format: String = row.try_get("number_format")?;
    let routing: String = row.try_get("routing")?;
    let corrupt = |e: String| StoreError::Corrupt(format!("customer {id}: {e}"));
    Ok((
        InboundFormat::from_str(&format).map_err(corrupt)?,
        row.try_get("country_code")?,
        row.try_get("forced_cli")?,
        row.try_get::<Option<i64>, _>("dial_plan_id")?
            .map(DialPlanId),
        RoutingMode::from_str(&routing).map_err(corrupt)?,
    ))
}

/// The profile columns of a carrier row.
pub(crate) fn carrier_profile(
    row: &AnyRow,
    id: i64,
) -> Result<(NumberProfile, Vec<String>), StoreError> {
    let corrupt = |e: String| StoreError::Corrupt(format!("carrier {id}: {e}"));
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

/// Which of a customer's plans [`Store::set_customer_plan`] sets.
#[derive(Debug, Clone, Copy)]
enum Plan {
    Dial,
    Rate,
}
