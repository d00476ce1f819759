//! Balances and their ledger: every change of a customer's balance (a credit, the charge of
//! a CDR, a refund, an adjustment) is a ledger row with the balance before and after, in the
//! same transaction as the change. A CDR is charged once: the ledger's `cdr_id` is unique
//! and only CDRs new to the database are charged, so a replay never charges twice.

use std::collections::HashMap;
use std::str::FromStr;

use domain::{BillingMode, Cdr, CustomerId, Money};
use sqlx::{AnyConnection, Row};

use crate::audit::Target;
use crate::{Store, StoreError, Table, exists, now_ms, touched};

/// What a ledger row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Credit,
    Charge,
    Refund,
    Adjustment,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Credit => "credit",
            EntryKind::Charge => "charge",
            EntryKind::Refund => "refund",
            EntryKind::Adjustment => "adjustment",
        }
    }
}

/// A request's idempotency key (`Idempotency-Key`, per token): a request repeated with the
/// same key returns what the first returned and moves nothing. `request` is a digest of
/// what the request asked (method, path, body): the same key for another request is refused.
#[derive(Debug, Clone, Copy)]
pub struct IdempotencyKey<'a> {
    pub token_id: i64,
    pub key: &'a str,
    pub request: &'a str,
}

/// What a posting with an idempotency key did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Posted {
    /// Done now.
    New(LedgerEntry),
    /// Done before, with this key: the first result.
    Repeat(LedgerEntry),
}

/// One ledger row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LedgerEntry {
    pub id: i64,
    pub kind: String,
    /// Signed: credits and refunds add, charges subtract.
    pub amount: Money,
    pub balance_before: Money,
    pub balance_after: Money,
    pub cdr_id: Option<String>,
    pub note: String,
    pub at_ms: i64,
}

impl Store {
    /// Sets how a customer pays; `suspend_at_zero`: a charge that leaves nothing to spend
    /// suspends the customer (reason `balance exhausted`; a credit that gives it something
    /// to spend again lifts that suspension, never an operator's).
    pub async fn set_customer_billing(
        &self,
        id: CustomerId,
        mode: BillingMode,
        credit_limit: Money,
        suspend_at_zero: bool,
        low_balance: Option<Money>,
    ) -> Result<(), StoreError> {
        if credit_limit.0 < 0 {
            return Err(StoreError::Invalid("a credit limit is not negative".into()));
        }
        let mut tx = self.event_tx().await?;
        let audit = self
            .audit_begin(&mut tx, "customer.billing", Target::Customer(id.0))
            .await?;
        let done = sqlx::query(
            "UPDATE customers SET billing = $1, credit_limit = $2, suspend_at_zero = $3, updated_ms = $4, \
             low_balance = $6 WHERE id = $5",
        )
        .bind(mode.as_str())
        .bind(credit_limit.0)
        .bind(i32::from(suspend_at_zero))
        .bind(now_ms())
        .bind(id.0)
        .bind(low_balance.map(|m| m.0))
        .execute(&mut *tx)
        .await?;
        touched(done.rows_affected(), "customer", id.0)?;
        self.audit_commit(tx, audit, &[]).await?;
        Ok(())
    }

    /// Changes a customer's balance by `amount` (credits and refunds positive, adjustments
    /// either way) with its ledger row; returns the row.
    pub async fn post(
        &self,
        id: CustomerId,
        kind: EntryKind,
        amount: Money,
        note: &str,
    ) -> Result<LedgerEntry, StoreError> {
        match self.post_once(id, kind, amount, note, None).await? {
            Posted::New(e) | Posted::Repeat(e) => Ok(e),
        }
    }

    /// [`Store::post`] with an idempotency key: the key is recorded with the ledger row in
    /// one transaction, so a repeat (even after a crash) returns the first row and moves
    /// nothing; the same key with another request is a `Conflict`.
    pub async fn post_once(
        &self,
        id: CustomerId,
        kind: EntryKind,
        amount: Money,
        note: &str,
        key: Option<IdempotencyKey<'_>>,
    ) -> Result<Posted, StoreError> {
        if let Some(k) = key
            && (k.key.is_empty() || k.key.len() > 200 || k.key.chars().any(char::is_control))
        {
            return Err(StoreError::Invalid(
                "an Idempotency-Key is 1 to 200 characters, no control characters".into(),
            ));
        }
        match kind {
            EntryKind::Credit | EntryKind::Refund if amount.0 <= 0 => {
                return Err(StoreError::Invalid(format!(
                    "a {} is a positive amount",
                    kind.as_str()
                )));
            }
            EntryKind::Charge => {
                return Err(StoreError::Invalid(
                    "charges come from CDRs, not by hand (use an adjustment)".into(),
                ));
            }
            _ if amount.0 == 0 => {
                return Err(StoreError::Invalid("an amount of 0 changes nothing".into()));
            }
            _ => {}
        }
        let mut tx = self.event_tx().await?;
        if let Some(k) = key
            && let Some(first) = idempotent(&mut tx, k).await?
        {
            return Ok(Posted::Repeat(first));
        }
        let audit = self
            .audit_begin(&mut tx, "customer.ledger", Target::Customer(id.0))
            .await?;
        exists(&mut tx, Table::Customer, id.0).await?;
        let after = change_balance(&mut tx, id, amount.0).await?;
        if amount.0 > 0 {
            // Money to spend again lifts a suspension the balance caused (not an operator's).
            sqlx::query(
                "UPDATE customers SET status = 'active', status_reason = NULL, updated_ms = $1 \
                 WHERE id = $2 AND status = 'suspended' AND status_reason = $3 \
                 AND ((billing = 'prepaid' AND $4 > 0) OR (billing = 'postpaid' AND $5 > -credit_limit))",
            )
            .bind(now_ms())
            .bind(id.0)
            .bind(EXHAUSTED)
            .bind(after)
            .bind(after)
            .execute(&mut *tx)
            .await?;
        }
        let entry = LedgerEntry {
            id: 0,
            kind: kind.as_str().into(),
            amount,
            balance_before: Money(after - amount.0),
            balance_after: Money(after),
            cdr_id: None,
            note: note.trim().to_string(),
            at_ms: now_ms(),
        };
        let customer = id;
        let id = insert_entry(&mut tx, id, &entry).await?;
        let event = crate::NewEvent::new(
            "balance.changed",
            serde_json::json!({
                "customer_id": customer.0,
                "entry_id": id,
                "kind": entry.kind,
                "amount": entry.amount.0,
                "balance_before": entry.balance_before.0,
                "balance_after": entry.balance_after.0,
                "note": entry.note,
            }),
        )
        .customer(customer.0);
        let entry = LedgerEntry { id, ..entry };
        if let Some(k) = key {
            let response = serde_json::to_string(&entry)
                .map_err(|e| StoreError::Invalid(format!("ledger row as JSON: {e}")))?;
            sqlx::query(
                "INSERT INTO idempotency_keys (token_id, key, request, status, response, created_ms) \
                 VALUES ($1, $2, $3, 201, $4, $5)",
            )
            .bind(k.token_id)
            .bind(k.key)
            .bind(k.request)
            .bind(response)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        }
        let mark: Option<i64> =
            sqlx::query_scalar("SELECT low_balance FROM customers WHERE id = $1")
                .bind(customer.0)
                .fetch_one(&mut *tx)
                .await?;
        let mut events = vec![event];
        events.extend(low_balance(
            customer,
            mark,
            entry.balance_before.0,
            entry.balance_after.0,
        ));
        self.audit_commit(tx, audit, &events).await?;
        Ok(Posted::New(entry))
    }

    /// Deletes idempotency keys older than `before_ms` (a repeat after that moves money
    /// again: keys are kept a day).
    pub async fn delete_idempotency_keys_before(&self, before_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_ms < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// A customer's latest ledger rows, newest first.
    pub async fn ledger(&self, id: CustomerId, limit: u32) -> Result<Vec<LedgerEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, kind, amount, balance_before, balance_after, cdr_id, note, at_ms FROM ledger \
             WHERE customer_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(id.0)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(LedgerEntry {
                    id: row.try_get("id")?,
                    kind: row.try_get("kind")?,
                    amount: Money(row.try_get("amount")?),
                    balance_before: Money(row.try_get("balance_before")?),
                    balance_after: Money(row.try_get("balance_after")?),
                    cdr_id: row.try_get("cdr_id")?,
                    note: row.try_get("note")?,
                    at_ms: row.try_get("at_ms")?,
                })
            })
            .collect()
    }

    /// Every balance (customers without a row have 0).
    pub async fn balances(&self) -> Result<HashMap<CustomerId, Money>, StoreError> {
        let rows = sqlx::query("SELECT customer_id, balance FROM customer_balances")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    CustomerId(row.try_get("customer_id")?),
                    Money(row.try_get("balance")?),
                ))
            })
            .collect()
    }
}

/// The first result of a request with this key, if there was one; a `Conflict` when the key
/// was used for another request.
async fn idempotent(
    conn: &mut AnyConnection,
    key: IdempotencyKey<'_>,
) -> Result<Option<LedgerEntry>, StoreError> {
    let row = sqlx::query(
        "SELECT request, response FROM idempotency_keys WHERE token_id = $1 AND key = $2",
    )
    .bind(key.token_id)
    .bind(key.key)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let request: String = row.try_get("request")?;
    if request != key.request {
        return Err(StoreError::Conflict(
            "this Idempotency-Key was used for another request".into(),
        ));
    }
    let response: String = row.try_get("response")?;
    serde_json::from_str(&response)
        .map(Some)
        .map_err(|e| StoreError::Corrupt(format!("idempotency_keys: {e}")))
}

/// The `balance.low` event of a balance that went from above `mark` to at or below it.
fn low_balance(
    customer: CustomerId,
    mark: Option<i64>,
    before: i64,
    after: i64,
) -> Option<crate::NewEvent> {
    let mark = mark?;
    (before > mark && after <= mark).then(|| {
        crate::NewEvent::new(
            "balance.low",
            serde_json::json!({ "customer_id": customer.0, "balance": after, "low_balance": mark }),
        )
        .customer(customer.0)
    })
}

async fn change_balance(
    conn: &mut AnyConnection,
    id: CustomerId,
    delta: i64,
) -> Result<i64, StoreError> {
    sqlx::query(
        "INSERT INTO customer_balances (customer_id, balance) VALUES ($1, 0) \
         ON CONFLICT (customer_id) DO NOTHING",
    )
    .bind(id.0)
    .execute(&mut *conn)
    .await?;
    Ok(sqlx::query_scalar(
        "UPDATE customer_balances SET balance = balance + $1 WHERE customer_id = $2 RETURNING balance",
    )
    .bind(delta)
    .bind(id.0)
    .fetch_one(&mut *conn)
    .await?)
}

async fn insert_entry(
    conn: &mut AnyConnection,
    customer: CustomerId,
    e: &LedgerEntry,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO ledger (customer_id, kind, amount, balance_before, balance_after, cdr_id, note, at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(customer.0)
    .bind(e.kind.as_str())
    .bind(e.amount.0)
    .bind(e.balance_before.0)
    .bind(e.balance_after.0)
    .bind(e.cdr_id.as_deref())
    .bind(e.note.as_str())
    .bind(e.at_ms)
    .fetch_one(&mut *conn)
    .await?)
}

/// Charges the priced CDRs of billed customers (`new`: CDRs not in the database before this
/// transaction), one balance change per customer and a ledger row per CDR.
/// Charges the new CDRs of billed customers (one ledger row each). Returns the
/// `balance.low` events of customers whose balance these charges took from above their
/// low-balance mark to at or below it.
pub(crate) async fn charge(
    conn: &mut AnyConnection,
    new: &[&Cdr],
) -> Result<Vec<crate::NewEvent>, StoreError> {
    let mut low = Vec::new();
    let mut by_customer: HashMap<CustomerId, Vec<&Cdr>> = HashMap::new();
    for c in new.iter().filter(|c| c.price.is_some_and(|p| p.0 > 0)) {
        by_customer.entry(c.customer_id).or_default().push(c);
    }
    let mut customers: Vec<CustomerId> = by_customer.keys().copied().collect();
    customers.sort();
    for customer in customers {
        let row = sqlx::query(
            "SELECT billing, credit_limit, suspend_at_zero, low_balance FROM customers WHERE id = $1",
        )
        .bind(customer.0)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = row else { continue };
        let billing: String = row.try_get("billing")?;
        let mode =
            BillingMode::from_str(&billing).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        if mode == BillingMode::Off {
            continue;
        }
        let credit_limit: i64 = row.try_get("credit_limit")?;
        let suspend_at_zero = crate::flag(&row, "suspend_at_zero")?;
        let cdrs = &by_customer[&customer];
        let total: i64 = cdrs.iter().map(|c| c.price.map_or(0, |p| p.0)).sum();
        let after = change_balance(conn, customer, -total).await?;
        let mut balance = after + total;
        for c in cdrs {
            let price = c.price.map_or(0, |p| p.0);
            let entry = LedgerEntry {
                id: 0,
                kind: EntryKind::Charge.as_str().into(),
                amount: Money(-price),
                balance_before: Money(balance),
                balance_after: Money(balance - price),
                cdr_id: Some(c.id.clone()),
                note: String::new(),
                at_ms: c.end_ms,
            };
            balance -= price;
            insert_entry(conn, customer, &entry).await?;
        }
        let mark: Option<i64> = row.try_get("low_balance")?;
        low.extend(low_balance(customer, mark, after + total, after));
        let exhausted = match mode {
            BillingMode::Prepaid => after <= 0,
            BillingMode::Postpaid => after <= -credit_limit,
            BillingMode::Off => false,
        };
        if exhausted && suspend_at_zero {
            sqlx::query(
                "UPDATE customers SET status = 'suspended', status_reason = $1, updated_ms = $2 \
                 WHERE id = $3 AND status = 'active'",
            )
            .bind(EXHAUSTED)
            .bind(now_ms())
            .bind(customer.0)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(low)
}

/// The status reason of a suspension the balance caused.
const EXHAUSTED: &str = "balance exhausted";
