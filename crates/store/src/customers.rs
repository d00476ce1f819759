//! Customers: adding one with its source addresses, its status and limits, and reading
//! them all (for the directory and the CLI).

use std::collections::HashMap;

use domain::{Customer, CustomerId, CustomerStatus, Money, now_ms};
use ipnet::IpNet;
use sqlx::{AnyConnection, Row};

use crate::{
    Store, StoreError, Table, canonical, checked_name, exists, flag, limit, parse_network, routing,
    touched, update_columns,
};

/// A customer to add. Its addresses are host addresses (`/32`, `/128`) or networks; host
/// bits are cleared when stored (`10.1.2.3/8` is stored as `10.0.0.0/8`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCustomer {
    pub name: String,
    pub ips: Vec<IpNet>,
    /// Concurrent calls allowed; `None` is unlimited, `Some(0)` is refused.
    pub max_channels: Option<u32>,
    /// New calls per second allowed; `None` is unlimited, `Some(0)` is refused.
    pub max_cps: Option<u32>,
}

/// What `vts customer limits` changes (`None`: left as it is; `Some(None)`: unlimited).
#[derive(Debug, Clone, Copy, Default)]
pub struct LimitsChange {
    pub max_channels: Option<Option<u32>>,
    pub max_cps: Option<Option<u32>>,
    pub daily_minutes: Option<Option<u32>>,
    pub monthly_minutes: Option<Option<u32>>,
}

impl Store {
    /// Adds a customer and its addresses in one transaction.
    ///
    /// Refused with [`StoreError::Invalid`]: a blank or too long name, `max_channels` or
    /// `max_cps` of 0. Refused with [`StoreError::Conflict`]: a name already used, or an
    /// address or network already active for another customer (overlapping networks are
    /// fine: the longest prefix wins; an identical one is not). Repeated addresses in `ips`
    /// are stored once.
    pub async fn add_customer(&self, new: &NewCustomer) -> Result<CustomerId, StoreError> {
        let name = checked_name(&new.name, "customer")?;
        for (what, limit) in [("max_channels", new.max_channels), ("max_cps", new.max_cps)] {
            if limit == Some(0) {
                return Err(StoreError::Invalid(format!(
                    "{what} 0 would refuse every call: use None for unlimited, or deactivate the customer"
                )));
            }
        }
        let mut networks: Vec<String> = Vec::with_capacity(new.ips.len());
        for net in &new.ips {
            let net = canonical(*net).to_string();
            if !networks.contains(&net) {
                networks.push(net);
            }
        }

        let mut tx = self.write_tx().await?;
        let taken = sqlx::query("SELECT id FROM customers WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_some() {
            return Err(StoreError::Conflict(format!(
                "a customer named {name:?} already exists"
            )));
        }
        for net in &networks {
            let owner = sqlx::query(
                "SELECT c.name FROM customer_ips i JOIN customers c ON c.id = i.customer_id \
                 WHERE i.network = $1 AND i.active = 1",
            )
            .bind(net.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(owner) = owner {
                let owner: String = owner.try_get(0)?;
                return Err(StoreError::Conflict(format!(
                    "{net} is already in use by customer {owner:?}"
                )));
            }
        }

        let now = now_ms();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO customers (name, active, max_channels, max_cps, created_ms, updated_ms) \
             VALUES ($1, 1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(name)
        .bind(new.max_channels.map(i64::from))
        .bind(new.max_cps.map(i64::from))
        .bind(now)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| {
            StoreError::unique_or(e, || format!("a customer named {name:?} already exists"))
        })?;
        for net in &networks {
            sqlx::query(
                "INSERT INTO customer_ips (customer_id, network, active) VALUES ($1, $2, 1)",
            )
            .bind(id)
            .bind(net.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                StoreError::unique_or(e, || format!("{net} is already in use by another customer"))
            })?;
        }
        tx.commit().await?;
        Ok(CustomerId(id))
    }

    /// Sets a customer's status (and the reason, for suspended and blocked). The running
    /// switch sees it at its next configuration reload (within a second).
    pub async fn set_customer_status(
        &self,
        id: CustomerId,
        status: CustomerStatus,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
        if reason.is_some_and(|r| r.len() > 500) {
            return Err(StoreError::Invalid(
                "a status reason is at most 500 characters".into(),
            ));
        }
        let mut tx = self.event_tx().await?;
        let done = sqlx::query(
            "UPDATE customers SET status = $1, status_reason = $2, updated_ms = $3 WHERE id = $4",
        )
        .bind(status.as_str())
        .bind(reason)
        .bind(now_ms())
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
        touched(done.rows_affected(), "customer", id.0)?;
        let kind = match status {
            CustomerStatus::Active => "customer.activated",
            CustomerStatus::Suspended => "customer.suspended",
            CustomerStatus::Blocked => "customer.blocked",
        };
        let event = crate::NewEvent::new(
            kind,
            serde_json::json!({ "customer_id": id.0, "status": status.as_str(), "reason": reason }),
        )
        .customer(id.0);
        self.commit_with_events(tx, std::slice::from_ref(&event))
            .await
    }

    /// Changes a customer's limits: `Some(None)` makes one unlimited, `None` leaves it as it
    /// is. A limit of 0 is refused (it would refuse every call: suspend the customer instead).
    pub async fn set_customer_limits(
        &self,
        id: CustomerId,
        change: &LimitsChange,
    ) -> Result<(), StoreError> {
        let all = [
            ("max_channels", change.max_channels),
            ("max_cps", change.max_cps),
            ("daily_minutes", change.daily_minutes),
            ("monthly_minutes", change.monthly_minutes),
        ];
        for (what, limit) in all {
            if limit == Some(Some(0)) {
                return Err(StoreError::Invalid(format!(
                    "customer {what} 0 would refuse every call: suspend the customer instead"
                )));
            }
        }
        let mut tx = self.write_tx().await?;
        exists(&mut tx, Table::Customer, id.0).await?;
        const SET: [&str; 4] = [
            "UPDATE customers SET max_channels = $1, updated_ms = $2 WHERE id = $3",
            "UPDATE customers SET max_cps = $1, updated_ms = $2 WHERE id = $3",
            "UPDATE customers SET daily_minutes = $1, updated_ms = $2 WHERE id = $3",
            "UPDATE customers SET monthly_minutes = $1, updated_ms = $2 WHERE id = $3",
        ];
        let values = all.map(|(_, limit)| limit);
        update_columns(&mut tx, &SET, &values, id.0).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every customer (active or not) with its active addresses, by id.
    pub async fn list_customers(&self) -> Result<Vec<Customer>, StoreError> {
        let mut tx = self.begin_read().await?;
        let customers = customers_on(&mut tx).await?;
        tx.commit().await?;
        Ok(customers)
    }
}

pub(crate) async fn customers_on(conn: &mut AnyConnection) -> Result<Vec<Customer>, StoreError> {
    let rows =
        sqlx::query("SELECT id, name, active, max_channels, max_cps, status, status_reason, number_format, country_code, \
             forced_cli, dial_plan_id, routing, daily_minutes, monthly_minutes, rate_plan_id, billing, \
             credit_limit, timezone, trusted, hide_topology FROM customers ORDER BY id")
            .fetch_all(&mut *conn)
            .await?;
    let mut customers = Vec::with_capacity(rows.len());
    let mut index = HashMap::with_capacity(rows.len());
    for row in &rows {
        let id: i64 = row.try_get("id")?;
        index.insert(id, customers.len());
        let (number_format, country_code, forced_cli, dial_plan, routing) =
            routing::customer_numbers(row, id)?;
        customers.push(Customer {
            number_format,
            country_code,
            forced_cli,
            dial_plan,
            routing,
            id: CustomerId(id),
            name: row.try_get("name")?,
            active: flag(row, "active")?,
            ips: Vec::new(),
            max_channels: limit(row, "max_channels")?,
            max_cps: limit(row, "max_cps")?,
            rate_plan: row
                .try_get::<Option<i64>, _>("rate_plan_id")?
                .map(domain::RatePlanId),
            billing: {
                let text: String = row.try_get("billing")?;
                text.parse()
                    .map_err(|e| StoreError::Corrupt(format!("customer {id}: {e}")))?
            },
            credit_limit: Money(row.try_get("credit_limit")?),
            timezone: {
                let name: String = row.try_get("timezone")?;
                // A zone the system's database lacks (tzdata removed?) must not stop the
                // switch: the customer's days fall back to UTC, and `vts customer show`
                // still shows the stored name.
                domain::Zone::parse(&name).unwrap_or_default()
            },
            daily_minutes: limit(row, "daily_minutes")?,
            monthly_minutes: limit(row, "monthly_minutes")?,
            trusted: flag(row, "trusted")?,
            hide_topology: flag(row, "hide_topology")?,
            status: {
                let text: String = row.try_get("status")?;
                text.parse()
                    .map_err(|e| StoreError::Corrupt(format!("customer {id}: {e}")))?
            },
            status_reason: row.try_get("status_reason")?,
        });
    }
    let ips = sqlx::query("SELECT id, customer_id, network FROM customer_ips WHERE active = 1 ORDER BY customer_id, id")
        .fetch_all(&mut *conn)
        .await?;
    for row in &ips {
        let customer_id: i64 = row.try_get("customer_id")?;
        let text: String = row.try_get("network")?;
        let net = parse_network(&text).ok_or_else(|| {
            let id = row.try_get::<i64, _>("id").unwrap_or_default();
            StoreError::Corrupt(format!(
                "customer_ips row {id}: {text:?} is not an address or network"
            ))
        })?;
        if let Some(&i) = index.get(&customer_id) {
            customers[i].ips.push(net);
        }
    }
    Ok(customers)
}
