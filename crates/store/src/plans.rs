//! Dialing plans: plans and their rules, and which plan (dialing or rate) a customer uses.

use domain::{CustomerId, DialPlan, DialPlanId, DialRule, Pattern};
use sqlx::{AnyConnection, Row};

use crate::audit::{Audit, Target};
use crate::{Store, StoreError, Table, checked_name, exists, flag, int, now_ms};

impl Store {
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
        let mut tx = self.event_tx().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO dial_plans (name, default_allow, block_premium) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(name)
        .bind(i32::from(default_allow))
        .bind(i32::from(block_premium))
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| StoreError::unique_or(e, || format!("a dialing plan named {name:?} already exists")))?;
        self.audit_commit(
            tx,
            Audit::created("dial_plan.create", Target::DialPlan(id)),
            &[],
        )
        .await?;
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
        let mut conn = self.event_tx().await?;
        let audit = self
            .audit_existing(
                &mut conn,
                "dial_plan.rule_add",
                Target::DialPlan(plan.0),
                "dialing plan",
                plan.0,
            )
            .await?;
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
        self.audit_commit(conn, audit, &[]).await?;
        Ok(id)
    }

    /// Removes a rule; `false` when there was none with that id.
    pub async fn remove_dial_rule(&self, rule: i64) -> Result<bool, StoreError> {
        let mut tx = self.event_tx().await?;
        let plan: Option<i64> =
            sqlx::query_scalar("SELECT plan_id FROM dial_plan_rules WHERE id = $1")
                .bind(rule)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(plan) = plan else {
            return Ok(false);
        };
        let audit = self
            .audit_begin(&mut tx, "dial_plan.rule_remove", Target::DialPlan(plan))
            .await?;
        let done = sqlx::query("DELETE FROM dial_plan_rules WHERE id = $1")
            .bind(rule)
            .execute(&mut *tx)
            .await?;
        self.audit_commit(tx, audit, &[]).await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn list_dial_plans(&self) -> Result<Vec<DialPlan>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        dial_plans_on(&mut conn).await
    }

    /// Sets a customer's dialing plan or rate plan, the customer and the plan checked to
    /// exist.
    pub(crate) async fn set_customer_plan(
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
        let mut tx = self.event_tx().await?;
        let audit = self
            .audit_begin(&mut tx, "customer.plan", Target::Customer(id.0))
            .await?;
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
        self.audit_commit(tx, audit, &[]).await?;
        Ok(())
    }
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

/// Which of a customer's plans [`Store::set_customer_plan`] sets.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Plan {
    Dial,
    Rate,
}
