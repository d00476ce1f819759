//! Usage counters (docs/CDR.md "Usage"), kept in the transaction that stores each new CDR
//! (a replayed CDR already stored counts nothing, like its charge):
//!
//! - per customer and local day (the customer's zone, the day its call started): calls,
//!   answered calls, billed seconds, price;
//! - per carrier and UTC day, from every attempt of every call: INVITEs sent, answered,
//!   failures (a final code of 400 or more other than 487, which is the caller's
//!   cancellation), billed seconds and cost of the calls it answered.
//!
//! Seconds are the CDR's `billable_secs`: its billable time rounded up to whole seconds, the
//! one rounding rule of usage and minute caps.

use std::collections::{BTreeMap, HashMap};

use domain::{CarrierId, Cdr, CustomerId, Money, Zone};
use sqlx::{AnyConnection, Row};

use crate::audit::Target;
use crate::{Store, StoreError};

/// One customer's usage over a day or a month (of its own zone).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerUsage {
    pub customer_id: CustomerId,
    /// `YYYY-MM-DD` or, summed over a month, `YYYY-MM`.
    pub period: String,
    pub calls: i64,
    pub answered: i64,
    pub seconds: i64,
    pub price: Money,
}

/// One carrier's usage over a UTC day or month.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CarrierUsage {
    pub carrier_id: CarrierId,
    pub period: String,
    pub attempts: i64,
    pub answered: i64,
    pub failures: i64,
    pub seconds: i64,
    pub cost: Money,
}

/// Whether an attempt's final code is the carrier's failure.
fn failed(code: u16) -> bool {
    code >= 400 && code != 487
}

/// Adds `new` CDRs to the counters (inside the CDRs' transaction).
pub(crate) async fn count(conn: &mut AnyConnection, new: &[&Cdr]) -> Result<(), StoreError> {
    if new.is_empty() {
        return Ok(());
    }
    let mut zones: HashMap<CustomerId, Zone> = HashMap::new();
    let mut customers: BTreeMap<(i64, String), CustomerUsage> = BTreeMap::new();
    let mut carriers: BTreeMap<(i64, String), CarrierUsage> = BTreeMap::new();
    let mut ids: Vec<CustomerId> = new.iter().map(|c| c.customer_id).collect();
    ids.sort_unstable();
    ids.dedup();
    for id in ids {
        let name: Option<String> =
            sqlx::query_scalar("SELECT timezone FROM customers WHERE id = $1")
                .bind(id.0)
                .fetch_optional(&mut *conn)
                .await?;
        // A zone the system no longer knows counts in UTC: counters never hold up a CDR
        // (the zone was checked when it was set).
        let zone = name.and_then(|n| Zone::parse(&n).ok()).unwrap_or_default();
        zones.insert(id, zone);
    }
    for cdr in new {
        let day = zones[&cdr.customer_id].date(cdr.invite_ms);
        let u = customers
            .entry((cdr.customer_id.0, day.clone()))
            .or_insert_with(|| CustomerUsage {
                customer_id: cdr.customer_id,
                period: day,
                ..CustomerUsage::default()
            });
        u.calls += 1;
        if cdr.answer_ms.is_some() {
            u.answered += 1;
            u.seconds += cdr.billable_secs;
        }
        // Money sums saturate (here and in the upserts): a counter never fails a CDR's write.
        u.price.0 = u
            .price
            .0
            .saturating_add(cdr.price.map_or(0, |p| p.0.max(0)));
        for a in &cdr.attempt_log {
            let day = Zone::utc().date(a.started_ms);
            let u = carriers
                .entry((a.carrier_id.0, day.clone()))
                .or_insert_with(|| CarrierUsage {
                    carrier_id: a.carrier_id,
                    period: day,
                    ..CarrierUsage::default()
                });
            u.attempts += 1;
            match a.code {
                Some(200..=299) => {
                    u.answered += 1;
                    u.seconds += cdr.billable_secs;
                    u.cost.0 = u.cost.0.saturating_add(cdr.cost.map_or(0, |c| c.0.max(0)));
                }
                Some(code) if failed(code) => u.failures += 1,
                _ => {}
            }
        }
    }
    for u in customers.values() {
        sqlx::query(
            "INSERT INTO usage_customer_daily (customer_id, day, calls, answered, seconds, price) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (customer_id, day) DO UPDATE SET \
             calls = usage_customer_daily.calls + excluded.calls, \
             answered = usage_customer_daily.answered + excluded.answered, \
             seconds = usage_customer_daily.seconds + excluded.seconds, \
             price = CASE WHEN usage_customer_daily.price > 9223372036854775807 - excluded.price \
             THEN 9223372036854775807 ELSE usage_customer_daily.price + excluded.price END",
        )
        .bind(u.customer_id.0)
        .bind(u.period.as_str())
        .bind(u.calls)
        .bind(u.answered)
        .bind(u.seconds)
        .bind(u.price.0)
        .execute(&mut *conn)
        .await?;
    }
    for u in carriers.values() {
        sqlx::query(
            "INSERT INTO usage_carrier_daily (carrier_id, day, attempts, answered, failures, seconds, cost) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (carrier_id, day) DO UPDATE SET \
             attempts = usage_carrier_daily.attempts + excluded.attempts, \
             answered = usage_carrier_daily.answered + excluded.answered, \
             failures = usage_carrier_daily.failures + excluded.failures, \
             seconds = usage_carrier_daily.seconds + excluded.seconds, \
             cost = CASE WHEN usage_carrier_daily.cost > 9223372036854775807 - excluded.cost \
             THEN 9223372036854775807 ELSE usage_carrier_daily.cost + excluded.cost END",
        )
        .bind(u.carrier_id.0)
        .bind(u.period.as_str())
        .bind(u.attempts)
        .bind(u.answered)
        .bind(u.failures)
        .bind(u.seconds)
        .bind(u.cost.0)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// A day (`YYYY-MM-DD`) or a month (`YYYY-MM`): the first and last day keys it covers.
fn day_range(period: &str) -> Result<(String, String), StoreError> {
    let bad = || {
        StoreError::Invalid(format!(
            "bad period {period:?}: a day YYYY-MM-DD or a month YYYY-MM"
        ))
    };
    match period.len() {
        10 => {
            period.parse::<jiff::civil::Date>().map_err(|_| bad())?;
            Ok((period.to_string(), period.to_string()))
        }
        7 => {
            format!("{period}-01")
                .parse::<jiff::civil::Date>()
                .map_err(|_| bad())?;
            Ok((format!("{period}-01"), format!("{period}-31")))
        }
        _ => Err(bad()),
    }
}

impl Store {
    /// Customers' usage over `period` (a day or a month of each customer's own zone), one
    /// row per customer with calls in it.
    pub async fn customer_usage(&self, period: &str) -> Result<Vec<CustomerUsage>, StoreError> {
        let (from, to) = day_range(period)?;
        let rows = sqlx::query(
            "SELECT customer_id, CAST(SUM(calls) AS BIGINT) AS calls, \
             CAST(SUM(answered) AS BIGINT) AS answered, CAST(SUM(seconds) AS BIGINT) AS seconds, \
             CAST(SUM(price) AS BIGINT) AS price FROM usage_customer_daily \
             WHERE day >= $1 AND day <= $2 GROUP BY customer_id ORDER BY customer_id",
        )
        .bind(from.as_str())
        .bind(to.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CustomerUsage {
                    customer_id: CustomerId(r.try_get("customer_id")?),
                    period: period.to_string(),
                    calls: r.try_get("calls")?,
                    answered: r.try_get("answered")?,
                    seconds: r.try_get("seconds")?,
                    price: Money(r.try_get("price")?),
                })
            })
            .collect()
    }

    /// Carriers' usage over `period` (a UTC day or month).
    pub async fn carrier_usage(&self, period: &str) -> Result<Vec<CarrierUsage>, StoreError> {
        let (from, to) = day_range(period)?;
        let rows = sqlx::query(
            "SELECT carrier_id, CAST(SUM(attempts) AS BIGINT) AS attempts, \
             CAST(SUM(answered) AS BIGINT) AS answered, CAST(SUM(failures) AS BIGINT) AS failures, \
             CAST(SUM(seconds) AS BIGINT) AS seconds, CAST(SUM(cost) AS BIGINT) AS cost \
             FROM usage_carrier_daily WHERE day >= $1 AND day <= $2 \
             GROUP BY carrier_id ORDER BY carrier_id",
        )
        .bind(from.as_str())
        .bind(to.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CarrierUsage {
                    carrier_id: CarrierId(r.try_get("carrier_id")?),
                    period: period.to_string(),
                    attempts: r.try_get("attempts")?,
                    answered: r.try_get("answered")?,
                    failures: r.try_get("failures")?,
                    seconds: r.try_get("seconds")?,
                    cost: Money(r.try_get("cost")?),
                })
            })
            .collect()
    }

    /// Seconds used by every customer on each local day from `from_day` on (to start the
    /// minute caps' counters).
    pub async fn usage_seconds_since(
        &self,
        from_day: &str,
    ) -> Result<Vec<(CustomerId, String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT customer_id, day, seconds FROM usage_customer_daily WHERE day >= $1",
        )
        .bind(from_day)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    CustomerId(r.try_get("customer_id")?),
                    r.try_get("day")?,
                    r.try_get("seconds")?,
                ))
            })
            .collect()
    }

    /// Counts every stored CDR again (after an upgrade that added the counters, or a change
    /// of a customer's zone): the counters are emptied and rebuilt in one transaction.
    /// CDR writes wait (or fail and are retried by the switch) until it commits, so that no
    /// CDR is counted twice or missed. Returns how many CDRs were counted.
    pub async fn rebuild_usage(&self) -> Result<u64, StoreError> {
        let mut tx = self.write_tx().await?;
        // Per-backend SQL: PostgreSQL's READ COMMITTED would let CDRs committed during the
        // rebuild in (and their own counter upserts). SQLite's write lock, taken at BEGIN
        // (`write_tx`), already keeps every other writer out.
        if self.backend == crate::Backend::Postgres {
            sqlx::query("LOCK TABLE cdrs IN SHARE MODE")
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM usage_customer_daily")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM usage_carrier_daily")
            .execute(&mut *tx)
            .await?;
        let mut after = String::new();
        let mut counted = 0u64;
        loop {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {} FROM cdrs WHERE id > $1 ORDER BY id LIMIT 5000",
                crate::cdr_row::CDR_COLUMNS
            )))
            .bind(after.as_str())
            .fetch_all(&mut *tx)
            .await?;
            if rows.is_empty() {
                break;
            }
            let cdrs: Vec<Cdr> = rows
                .iter()
                .map(crate::cdr_row::cdr_from_row)
                .collect::<Result<_, _>>()?;
            let refs: Vec<&Cdr> = cdrs.iter().collect();
            count(&mut tx, &refs).await?;
            counted += cdrs.len() as u64;
            after = cdrs.last().map(|c| c.id.clone()).unwrap_or_default();
        }
        tx.commit().await?;
        Ok(counted)
    }

    /// Sets the zone of a customer's days and months (checked against the system's time
    /// zone database). Counters already kept stay on the days they were counted on;
    /// `rebuild_usage` counts them again in the new zone.
    pub async fn set_customer_timezone(
        &self,
        id: CustomerId,
        zone: &str,
    ) -> Result<(), StoreError> {
        let zone = Zone::parse(zone).map_err(StoreError::from)?;
        let mut tx = self.event_tx().await?;
        let audit = self
            .audit_begin(&mut tx, "customer.timezone", Target::Customer(id.0))
            .await?;
        let done = sqlx::query("UPDATE customers SET timezone = $1, updated_ms = $2 WHERE id = $3")
            .bind(zone.name())
            .bind(crate::now_ms())
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        crate::touched(done.rows_affected(), "customer", id.0)?;
        self.audit_commit(tx, audit, &[]).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_days_or_months() {
        assert_eq!(
            day_range("2026-11-26").unwrap(),
            ("2026-11-26".into(), "2026-11-26".into())
        );
        assert_eq!(
            day_range("2026-02").unwrap(),
            ("2026-02-01".into(), "2026-02-31".into())
        );
        for bad in ["2026-13", "2026-11-31", "yesterday", ""] {
            assert!(day_range(bad).is_err(), "{bad}");
        }
        assert!(failed(503) && failed(408) && !failed(487) && !failed(200) && !failed(302));
    }
}
