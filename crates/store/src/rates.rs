//! Rates and rate plans. One [`RateOwner`] names whose rates a sheet is (a carrier's costs, a
//! customer's own prices, a rate plan's prices): one import and one listing for the three,
//! every row checked before the transaction opens, all or none written.

use std::collections::HashMap;

use domain::{CarrierId, CustomerId, Money, Rate, RatePlan, RatePlanId, RateTable};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::audit::{Audit, Target};
use crate::plans::Plan;
use crate::{Store, StoreError, Table, checked_name, exists, int};

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

/// The rates of one owner (`$owner = $1`), by prefix then effective time.
macro_rules! rate_select {
    ($table:literal, $owner:literal) => {
        concat!(
            "SELECT prefix, per_minute, connection_fee, increment_s, minimum_s, effective_ms FROM ",
            $table,
            " WHERE ",
            $owner,
            " = $1 ORDER BY prefix, effective_ms"
        )
    };
}

/// Whose rates a sheet holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateOwner {
    /// A carrier's costs (what LCR orders by).
    Carrier(CarrierId),
    /// A customer's own prices.
    Customer(CustomerId),
    /// A rate plan's prices, for the customers on it.
    Plan(RatePlanId),
}

impl RateOwner {
    /// What the audit record of an import names.
    fn target(self) -> Target {
        match self {
            RateOwner::Carrier(id) => Target::Carrier(id.0),
            RateOwner::Customer(id) => Target::Customer(id.0),
            RateOwner::Plan(id) => Target::RatePlan(id.0),
        }
    }

    /// The row that owns the rates.
    fn row(self) -> (Table, i64) {
        match self {
            RateOwner::Carrier(id) => (Table::Carrier, id.0),
            RateOwner::Customer(id) => (Table::Customer, id.0),
            RateOwner::Plan(id) => (Table::RatePlan, id.0),
        }
    }

    fn upsert(self) -> &'static str {
        match self {
            RateOwner::Carrier(_) => CARRIER_RATE,
            RateOwner::Customer(_) => CUSTOMER_RATE,
            RateOwner::Plan(_) => PLAN_RATE,
        }
    }

    fn select(self) -> &'static str {
        match self {
            RateOwner::Carrier(_) => rate_select!("carrier_rates", "carrier_id"),
            RateOwner::Customer(_) => rate_select!("customer_rates", "customer_id"),
            RateOwner::Plan(_) => rate_select!("rate_plan_rates", "plan_id"),
        }
    }
}

impl Store {
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
        let mut tx = self.event_tx().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO rate_plans (name, markup_ppm) VALUES ($1, $2) RETURNING id",
        )
        .bind(name)
        .bind(markup_ppm as i32)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| {
            StoreError::unique_or(e, || format!("a rate plan named {name:?} already exists"))
        })?;
        self.audit_commit(
            tx,
            Audit::created("rate_plan.create", Target::RatePlan(id)),
            &[],
        )
        .await?;
        Ok(RatePlanId(id))
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

    /// Every rate plan with its rates.
    pub async fn list_rate_plans(&self) -> Result<Vec<RatePlan>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        rate_plans_on(&mut conn).await
    }

    /// Adds (or replaces, for the same prefix and effective time) `owner`'s rates, all or
    /// none: every row is checked before the transaction opens, and an owner that does not
    /// exist is `NotFound`. Returns how many rows were written.
    pub async fn import_rates(
        &self,
        owner: RateOwner,
        rates: &[Rate],
    ) -> Result<usize, StoreError> {
        check_rates(rates)?;
        let (table, id) = owner.row();
        let mut tx = self.event_tx().await?;
        let audit = self
            .audit_begin(&mut tx, "rates.import", owner.target())
            .await?;
        exists(&mut tx, table, id).await?;
        insert_rates(&mut tx, owner.upsert(), id, rates).await?;
        self.audit_commit(tx, audit, &[]).await?;
        Ok(rates.len())
    }

    /// `owner`'s rates, by prefix then effective time.
    pub async fn list_rates(&self, owner: RateOwner) -> Result<Vec<Rate>, StoreError> {
        let (_, id) = owner.row();
        let rows = sqlx::query(owner.select())
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rate_from_row).collect()
    }
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
    domain::checked_prefix(&r.prefix).map_err(StoreError::from)?;
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
