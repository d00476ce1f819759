//! Customers: adding one with its source addresses, its status and limits, its number
//! format, routing mode and header policy, and reading them all (for the directory and the
//! CLI).

use std::collections::HashMap;
use std::str::FromStr;

use domain::numbers::checked_country_code;
use domain::{
    Customer, CustomerId, CustomerStatus, DialPlanId, InboundFormat, Money, RoutingMode, now_ms,
};
use ipnet::IpNet;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::audit::{Audit, Target};
use crate::{
    Store, StoreError, Table, canonical, checked_name, exists, flag, limit, parse_network, touched,
    update_columns,
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

/// What `vts customer numbers` changes (`None`: left as it is).
#[derive(Debug, Clone, Default)]
pub struct NumbersChange {
    pub format: Option<InboundFormat>,
    /// `Some(None)` clears it.
    pub country_code: Option<Option<String>>,
    /// `Some(None)` clears it.
    pub forced_cli: Option<Option<String>>,
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

        let mut tx = self.event_tx().await?;
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
        self.audit_commit(
            tx,
            Audit::created("customer.create", Target::Customer(id)),
            &[],
        )
        .await?;
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
        let audit = self
            .audit_existing(
                &mut tx,
                "customer.status",
                Target::Customer(id.0),
                "customer",
                id.0,
            )
            .await?;
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
        self.audit_commit(tx, audit, std::slice::from_ref(&event))
            .await
            .map(|_| ())
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
        let mut tx = self.event_tx().await?;
        let audit = self
            .audit_begin(&mut tx, "customer.limits", Target::Customer(id.0))
            .await?;
        exists(&mut tx, Table::Customer, id.0).await?;
        const SET: [&str; 4] = [
            "UPDATE customers SET max_channels = $1, updated_ms = $2 WHERE id = $3",
            "UPDATE customers SET max_cps = $1, updated_ms = $2 WHERE id = $3",
            "UPDATE customers SET daily_minutes = $1, updated_ms = $2 WHERE id = $3",
            "UPDATE customers SET monthly_minutes = $1, updated_ms = $2 WHERE id = $3",
        ];
        let values = all.map(|(_, limit)| limit);
        update_columns(&mut tx, &SET, &values, id.0).await?;
        self.audit_commit(tx, audit, &[]).await?;
        Ok(())
    }

    /// Adds source addresses or networks to a customer (host bits cleared; ones it has
    /// already are skipped). An address active for another customer is a `Conflict`; all or
    /// none are added.
    pub async fn add_customer_ips(&self, id: CustomerId, ips: &[IpNet]) -> Result<(), StoreError> {
        if ips.is_empty() {
            return Err(StoreError::Invalid("no address or network to add".into()));
        }
        let mut tx = self.event_tx().await?;
        let audit = self
            .audit_existing(
                &mut tx,
                "customer.ips",
                Target::Customer(id.0),
                "customer",
                id.0,
            )
            .await?;
        for net in ips {
            let net = canonical(*net).to_string();
            let owner: Option<i64> = sqlx::query_scalar(
                "SELECT customer_id FROM customer_ips WHERE network = $1 AND active = 1",
            )
            .bind(net.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            match owner {
                Some(o) if o == id.0 => continue,
                Some(_) => {
                    return Err(StoreError::Conflict(format!(
                        "{net} is already in use by another customer"
                    )));
                }
                None => {}
            }
            sqlx::query(
                "INSERT INTO customer_ips (customer_id, network, active) VALUES ($1, $2, 1)",
            )
            .bind(id.0)
            .bind(net.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                StoreError::unique_or(e, || format!("{net} is already in use by another customer"))
            })?;
        }
        self.audit_commit(tx, audit, &[]).await?;
        Ok(())
    }

    /// Removes one of a customer's addresses or networks (exactly as stored); `false` when
    /// it has none such. Its last one cannot go: suspend the customer instead.
    pub async fn remove_customer_ip(&self, id: CustomerId, net: IpNet) -> Result<bool, StoreError> {
        let net = canonical(net).to_string();
        let mut tx = self.event_tx().await?;
        let audit = self
            .audit_existing(
                &mut tx,
                "customer.ips",
                Target::Customer(id.0),
                "customer",
                id.0,
            )
            .await?;
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM customer_ips WHERE customer_id = $1 AND active = 1",
        )
        .bind(id.0)
        .fetch_one(&mut *tx)
        .await?;
        let done = sqlx::query(
            "DELETE FROM customer_ips WHERE customer_id = $1 AND network = $2 AND active = 1",
        )
        .bind(id.0)
        .bind(net.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() > 0 && count <= 1 {
            return Err(StoreError::Invalid(
                "a customer keeps at least one address (suspend it instead)".into(),
            ));
        }
        self.audit_commit(tx, audit, &[]).await?;
        Ok(done.rows_affected() > 0)
    }

    /// Every customer (active or not) with its active addresses, by id.
    pub async fn list_customers(&self) -> Result<Vec<Customer>, StoreError> {
        let mut tx = self.begin_read().await?;
        let customers = customers_on(&mut tx).await?;
        tx.commit().await?;
        Ok(customers)
    }

    /// Changes a customer's header policy (`None`: left as it is; both `None` changes
    /// nothing) and returns the policy now stored. An unknown id is refused before any
    /// UPDATE, so the configuration version stays (on PostgreSQL too).
    pub async fn set_customer_headers(
        &self,
        id: CustomerId,
        trusted: Option<bool>,
        hide_topology: Option<bool>,
    ) -> Result<CustomerHeaders, StoreError> {
        let mut tx = self.event_tx().await?;
        let audit = self
            .audit_begin(&mut tx, "customer.headers", Target::Customer(id.0))
            .await?;
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
        self.audit_commit(tx, audit, &[]).await?;
        Ok(now)
    }

    /// Changes how a customer's numbers are read. A national or auto format needs a country
    /// code (the one given or the one stored); a forced CLI must be E.164 digits.
    pub async fn set_customer_numbers(
        &self,
        id: CustomerId,
        change: &NumbersChange,
    ) -> Result<(), StoreError> {
        let country = match &change.country_code {
            Some(Some(cc)) => Some(Some(checked_country_code(cc).map_err(StoreError::from)?)),
            other => other.clone(),
        };
        let forced = match &change.forced_cli {
            Some(Some(cli)) => Some(Some(
                domain::numbers::normalize(cli, InboundFormat::E164, None)
                    .map_err(|e| StoreError::Invalid(format!("forced CLI: {e}")))?,
            )),
            other => other.clone(),
        };
        let mut tx = self.event_tx().await?;
        let audit = self
            .audit_begin(&mut tx, "customer.numbers", Target::Customer(id.0))
            .await?;
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
            None => InboundFormat::from_str(&stored_format)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
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
        self.audit_commit(tx, audit, &[]).await?;
        Ok(())
    }

    pub async fn set_customer_routing(
        &self,
        id: CustomerId,
        mode: RoutingMode,
    ) -> Result<(), StoreError> {
        let mut tx = self.event_tx().await?;
        let audit = self
            .audit_begin(&mut tx, "customer.routing", Target::Customer(id.0))
            .await?;
        let done = sqlx::query("UPDATE customers SET routing = $1, updated_ms = $2 WHERE id = $3")
            .bind(mode.as_str())
            .bind(now_ms())
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        touched(done.rows_affected(), "customer", id.0)?;
        self.audit_commit(tx, audit, &[]).await?;
        Ok(())
    }
}

pub(crate) async fn customers_on(conn: &mut AnyConnection) -> Result<Vec<Customer>, StoreError> {
    let rows =
        sqlx::query("SELECT id, name, active, max_channels, max_cps, status, status_reason, number_format, country_code, \
             forced_cli, dial_plan_id, routing, daily_minutes, monthly_minutes, rate_plan_id, billing, \
             credit_limit, timezone, trusted, hide_topology, low_balance FROM customers ORDER BY id")
            .fetch_all(&mut *conn)
            .await?;
    let mut customers = Vec::with_capacity(rows.len());
    let mut index = HashMap::with_capacity(rows.len());
    for row in &rows {
        let id: i64 = row.try_get("id")?;
        index.insert(id, customers.len());
        let (number_format, country_code, forced_cli, dial_plan, routing) =
            customer_numbers(row, id)?;
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
            low_balance: row.try_get::<Option<i64>, _>("low_balance")?.map(Money),
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
    let corrupt = |e: domain::Invalid| StoreError::Corrupt(format!("customer {id}: {e}"));
    Ok((
        InboundFormat::from_str(&format).map_err(corrupt)?,
        row.try_get("country_code")?,
        row.try_get("forced_cli")?,
        row.try_get::<Option<i64>, _>("dial_plan_id")?
            .map(DialPlanId),
        RoutingMode::from_str(&routing).map_err(corrupt)?,
    ))
}
