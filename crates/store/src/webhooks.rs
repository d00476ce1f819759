//! Webhook subscriptions and their deliveries. A subscription names a URL, the event kinds it
//! wants and, for a customer's own, the customer whose events it gets. The event stream is
//! fanned out into deliveries ([`Store::fan_out`]) in the same transaction as the consumer's
//! checkpoint, so each event becomes exactly one delivery per matching subscription, even
//! across a kill -9. A delivery is the retry queue and the delivery log at once: pending with
//! its next attempt time, then delivered or failed, with its attempts, last status code,
//! latency and error. A run of failed deliveries disables the subscription, with an event.
//!
//! The signing secret is kept as given (it must be, to sign), shown once when the
//! subscription is created, and never returned again.

use domain::CustomerId;
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::{Audit, Target};
use crate::events::Event;
use crate::{NewEvent, Store, StoreError, Table, exists, now_ms};

/// The consumer name of the fan-out's checkpoint.
pub const WEBHOOK_CONSUMER: &str = "webhooks";

/// Events a customer's own subscription may receive (about that customer).
pub const CUSTOMER_KINDS: &[&str] = &[
    "call.completed",
    "call.refused",
    "customer.activated",
    "customer.suspended",
    "customer.blocked",
    "balance.changed",
    "balance.low",
    "limit.warning",
];

/// A subscription (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Webhook {
    pub id: i64,
    pub url: String,
    pub events: Vec<String>,
    pub customer_id: Option<i64>,
    pub active: bool,
    /// Deliveries failed in a row (a delivered one resets it).
    pub failures: i64,
    pub disabled_reason: Option<String>,
    pub created_ms: i64,
    pub created_by: String,
}

/// One delivery: the log line and the queue entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    pub id: i64,
    pub webhook_id: i64,
    /// `X-Vts-Delivery`: receivers dedupe on it.
    pub delivery: String,
    pub event_seq: i64,
    pub kind: String,
    /// pending, delivered or failed.
    pub state: String,
    pub attempts: i64,
    pub created_ms: i64,
    pub next_ms: i64,
    pub last_ms: Option<i64>,
    pub last_code: Option<i64>,
    pub last_error: Option<String>,
    pub last_latency_ms: Option<i64>,
}

/// A delivery due now, with what sending it needs.
#[derive(Debug, Clone)]
pub struct Due {
    pub delivery: Delivery,
    pub url: String,
    pub secret: String,
    /// The event it carries (`None`: retention deleted it meanwhile).
    pub event: Option<Event>,
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// A 2xx.
    Delivered { code: u16, latency_ms: i64 },
    /// Worth trying again at `next_ms` (a timeout, a connection error, a 5xx, 408, 429).
    Retry {
        code: Option<u16>,
        error: String,
        latency_ms: i64,
        next_ms: i64,
    },
    /// Given up: a 4xx other than 408/429, or the retry window ended.
    Failed {
        code: Option<u16>,
        error: String,
        latency_ms: i64,
    },
}

const WEBHOOK_COLUMNS: &str =
    "id, url, events, customer_id, active, failures, disabled_reason, created_ms, created_by";
const DELIVERY_COLUMNS: &str = "d.id, d.webhook_id, d.delivery, d.event_seq, d.kind, d.state, \
     d.attempts, d.created_ms, d.next_ms, d.last_ms, d.last_code, d.last_error, d.last_latency_ms";

fn webhook_from_row(row: &AnyRow) -> Result<Webhook, StoreError> {
    let events: String = row.try_get("events")?;
    Ok(Webhook {
        id: row.try_get("id")?,
        url: row.try_get("url")?,
        events: events
            .split(',')
            .filter(|e| !e.is_empty())
            .map(str::to_string)
            .collect(),
        customer_id: row.try_get("customer_id")?,
        active: row.try_get::<i64, _>("active")? != 0,
        failures: row.try_get("failures")?,
        disabled_reason: row.try_get("disabled_reason")?,
        created_ms: row.try_get("created_ms")?,
        created_by: row.try_get("created_by")?,
    })
}

fn delivery_from_row(row: &AnyRow) -> Result<Delivery, StoreError> {
    Ok(Delivery {
        id: row.try_get("id")?,
        webhook_id: row.try_get("webhook_id")?,
        delivery: row.try_get("delivery")?,
        event_seq: row.try_get("event_seq")?,
        kind: row.try_get("kind")?,
        state: row.try_get("state")?,
        attempts: row.try_get("attempts")?,
        created_ms: row.try_get("created_ms")?,
        next_ms: row.try_get("next_ms")?,
        last_ms: row.try_get("last_ms")?,
        last_code: row.try_get("last_code")?,
        last_error: row.try_get("last_error")?,
        last_latency_ms: row.try_get("last_latency_ms")?,
    })
}

/// A random delivery id (UUID v4 form, from the operating system's random source).
fn delivery_id() -> String {
    use rand::RngExt as _;
    let b: [u8; 16] = rand::rng().random();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        u16::from_be_bytes([b[4], b[5]]),
        u16::from_be_bytes([b[6], b[7]]) & 0x0fff,
        (u16::from_be_bytes([b[8], b[9]]) & 0x3fff) | 0x8000,
        u64::from_be_bytes([0, 0, b[10], b[11], b[12], b[13], b[14], b[15]])
    )
}

/// A new signing secret: 32 random bytes as hex.
fn new_secret() -> String {
    use rand::RngExt as _;
    let b: [u8; 32] = rand::rng().random();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Store {
    /// Adds a subscription; returns it with its secret (the one given, or a new random one),
    /// shown this once. The URL and kinds are the caller's to check (the API checks them,
    /// and who may pick which address); a customer's subscription names a customer that
    /// exists.
    pub async fn create_webhook(
        &self,
        url: &str,
        events: &[String],
        secret: Option<&str>,
        customer: Option<CustomerId>,
    ) -> Result<(Webhook, String), StoreError> {
        if url.len() > 2000 {
            return Err(StoreError::Invalid(
                "a webhook URL is at most 2000 characters".into(),
            ));
        }
        if events.is_empty() {
            return Err(StoreError::Invalid(
                "a webhook needs at least one event kind".into(),
            ));
        }
        for e in events {
            if !crate::events::KINDS.contains(&e.as_str()) {
                return Err(StoreError::Invalid(format!(
                    "{e:?} is not an event kind ({})",
                    crate::events::KINDS.join(", ")
                )));
            }
            if customer.is_some() && !CUSTOMER_KINDS.contains(&e.as_str()) {
                return Err(StoreError::Invalid(format!(
                    "a customer's webhook gets its own calls, balance, status and limits ({}), not {e:?}",
                    CUSTOMER_KINDS.join(", ")
                )));
            }
        }
        let secret = match secret {
            Some(s) if s.len() < 16 || s.len() > 200 || s.chars().any(char::is_control) => {
                return Err(StoreError::Invalid(
                    "a webhook secret is 16 to 200 characters, no control characters".into(),
                ));
            }
            Some(s) => s.to_string(),
            None => new_secret(),
        };
        let mut tx = self.event_tx().await?;
        if let Some(c) = customer {
            exists(&mut tx, Table::Customer, c.0).await?;
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO webhooks (url, events, secret, customer_id, active, failures, created_ms, \
             created_by) VALUES ($1, $2, $3, $4, 1, 0, $5, $6) RETURNING id",
        )
        .bind(url)
        .bind(events.join(","))
        .bind(secret.as_str())
        .bind(customer.map(|c| c.0))
        .bind(now_ms())
        .bind(self.actor().to_string())
        .fetch_one(&mut *tx)
        .await?;
        self.audit_commit(
            tx,
            Audit::created("webhook.create", Target::Webhook(id)),
            &[],
        )
        .await?;
        let hook = self.webhook(id).await?.ok_or(StoreError::NotFound {
            what: "webhook",
            id,
        })?;
        Ok((hook, secret))
    }

    /// Subscriptions, oldest first: a customer's own when `customer` is given, else all.
    pub async fn list_webhooks(
        &self,
        customer: Option<CustomerId>,
    ) -> Result<Vec<Webhook>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE ($1 IS NULL OR customer_id = $1) ORDER BY id"
        )))
        .bind(customer.map(|c| c.0))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(webhook_from_row).collect()
    }

    pub async fn webhook(&self, id: i64) -> Result<Option<Webhook>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(webhook_from_row).transpose()
    }

    /// Deletes a subscription and its deliveries.
    pub async fn delete_webhook(&self, id: i64) -> Result<(), StoreError> {
        let mut tx = self.event_tx().await?;
        let audit = self
            .audit_existing(
                &mut tx,
                "webhook.delete",
                Target::Webhook(id),
                "webhook",
                id,
            )
            .await?;
        sqlx::query("DELETE FROM webhook_deliveries WHERE webhook_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM webhooks WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        self.audit_commit(tx, audit, &[]).await?;
        Ok(())
    }

    /// Turns a subscription on (its failure count starts again) or off.
    pub async fn set_webhook_active(&self, id: i64, active: bool) -> Result<Webhook, StoreError> {
        let mut tx = self.event_tx().await?;
        let audit = self
            .audit_existing(
                &mut tx,
                "webhook.active",
                Target::Webhook(id),
                "webhook",
                id,
            )
            .await?;
        sqlx::query(
            "UPDATE webhooks SET active = $1, failures = CASE WHEN $2 = 1 THEN 0 ELSE failures END, \
             disabled_reason = CASE WHEN $3 = 1 THEN NULL ELSE 'disabled by an operator' END WHERE id = $4",
        )
        .bind(i32::from(active))
        .bind(i32::from(active))
        .bind(i32::from(active))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        self.audit_commit(tx, audit, &[]).await?;
        self.webhook(id).await?.ok_or(StoreError::NotFound {
            what: "webhook",
            id,
        })
    }

    /// Turns `events` (read after the fan-out's checkpoint, oldest first) into one pending
    /// delivery per active subscription that wants each, and moves the checkpoint past them,
    /// in one transaction: an event is fanned out once, whatever stops when. Returns how
    /// many deliveries it made.
    pub async fn fan_out(&self, events: &[Event]) -> Result<u64, StoreError> {
        let Some(last) = events.last() else {
            return Ok(0);
        };
        let hooks = self
            .list_webhooks(None)
            .await?
            .into_iter()
            .filter(|h| h.active)
            .collect::<Vec<_>>();
        let now = now_ms();
        let mut tx = self.write_tx().await?;
        let mut made = 0;
        for event in events {
            for hook in &hooks {
                let wanted = hook.events.contains(&event.kind);
                let theirs = match hook.customer_id {
                    None => true,
                    Some(c) => {
                        event.customer_id == Some(c)
                            && CUSTOMER_KINDS.contains(&event.kind.as_str())
                    }
                };
                if !(wanted && theirs) {
                    continue;
                }
                let done = sqlx::query(
                    "INSERT INTO webhook_deliveries (webhook_id, delivery, event_seq, kind, state, attempts, \
                     created_ms, next_ms) VALUES ($1, $2, $3, $4, 'pending', 0, $5, $6) \
                     ON CONFLICT (webhook_id, event_seq) DO NOTHING",
                )
                .bind(hook.id)
                .bind(delivery_id())
                .bind(event.seq)
                .bind(event.kind.as_str())
                .bind(now)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                made += done.rows_affected();
            }
        }
        crate::events::save_checkpoint_on(&mut tx, WEBHOOK_CONSUMER, last.seq).await?;
        tx.commit().await?;
        Ok(made)
    }

    /// Pending deliveries due at `now_ms`, oldest first, at most `limit`, leaving out the
    /// `busy` ones (read already) and those of the `skip` subscriptions (whose queue is
    /// full), each with its subscription's URL and secret and its event.
    pub async fn due_deliveries(
        &self,
        now_ms: i64,
        limit: u32,
        busy: &[i64],
        skip: &[i64],
    ) -> Result<Vec<Due>, StoreError> {
        let mut n = 2;
        let mut marks = |count: usize| -> String {
            (0..count)
                .map(|_| {
                    n += 1;
                    format!("${n}")
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut extra = String::new();
        if !busy.is_empty() {
            extra.push_str(&format!("AND d.id NOT IN ({}) ", marks(busy.len())));
        }
        if !skip.is_empty() {
            extra.push_str(&format!("AND d.webhook_id NOT IN ({}) ", marks(skip.len())));
        }
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS}, w.url, w.secret, w.customer_id AS owner FROM webhook_deliveries d \
             JOIN webhooks w ON w.id = d.webhook_id \
             WHERE d.state = 'pending' AND d.next_ms <= $1 AND w.active = 1 {extra}\
             ORDER BY d.next_ms, d.id LIMIT $2"
        )))
        .bind(now_ms)
        .bind(i64::from(limit));
        for id in busy.iter().chain(skip) {
            query = query.bind(*id);
        }
        let rows = query.fetch_all(&self.pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        let mut owners = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(Due {
                url: row.try_get("url")?,
                secret: row.try_get("secret")?,
                event: None,
                delivery: delivery_from_row(row)?,
            });
            owners.push(row.try_get::<Option<i64>, _>("owner")?);
        }
        let seqs: Vec<i64> = out.iter().map(|d| d.delivery.event_seq).collect();
        let events = crate::events::events_by_seq(&self.pool, &seqs).await?;
        // (One event goes to every subscription that wants it: copies, not moves.) A
        // customer's subscription gets the customer's view of it.
        for (due, owner) in out.iter_mut().zip(owners) {
            let event = events.get(&due.delivery.event_seq).cloned();
            due.event = match owner {
                Some(_) => event.map(Event::for_customer),
                None => event,
            };
        }
        Ok(out)
    }

    /// Which of `ids` are subscriptions still active (the sender drops what it read ahead
    /// for the others: disabled by a run of failures or through the API, or deleted).
    pub async fn active_webhooks(
        &self,
        ids: &[i64],
    ) -> Result<std::collections::HashSet<i64>, StoreError> {
        if ids.is_empty() {
            return Ok(Default::default());
        }
        let marks = (1..=ids.len())
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut query = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
            "SELECT id FROM webhooks WHERE active = 1 AND id IN ({marks})"
        )));
        for id in ids {
            query = query.bind(*id);
        }
        Ok(query.fetch_all(&self.pool).await?.into_iter().collect())
    }

    /// The earliest next attempt of a pending delivery of an active subscription.
    pub async fn next_delivery_ms(&self) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(d.next_ms) FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
             WHERE d.state = 'pending' AND w.active = 1",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Records attempts (one transaction for the lot): each delivery's state, attempts and
    /// last outcome; a subscription's failures in a row, and past `disable_after` of them
    /// it is disabled with a `webhook.disabled` event.
    pub async fn record_attempts(
        &self,
        attempts: &[(i64, Attempt)],
        disable_after: u32,
    ) -> Result<(), StoreError> {
        if attempts.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let mut tx = self.event_tx().await?;
        let mut events = Vec::new();
        for (id, attempt) in attempts {
            let (state, code, error, latency, next) = match attempt {
                Attempt::Delivered { code, latency_ms } => {
                    ("delivered", Some(*code), None, *latency_ms, None)
                }
                Attempt::Retry {
                    code,
                    error,
                    latency_ms,
                    next_ms,
                } => (
                    "pending",
                    *code,
                    Some(error.as_str()),
                    *latency_ms,
                    Some(*next_ms),
                ),
                Attempt::Failed {
                    code,
                    error,
                    latency_ms,
                } => ("failed", *code, Some(error.as_str()), *latency_ms, None),
            };
            let hook: Option<i64> = sqlx::query_scalar(
                "UPDATE webhook_deliveries SET state = $1, attempts = attempts + 1, last_ms = $2, \
                 last_code = $3, last_error = $4, last_latency_ms = $5, next_ms = COALESCE($6, next_ms) \
                 WHERE id = $7 AND state = 'pending' RETURNING webhook_id",
            )
            .bind(state)
            .bind(now)
            .bind(code.map(i64::from))
            .bind(error)
            .bind(latency)
            .bind(next)
            .bind(*id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(hook) = hook else { continue };
            match attempt {
                Attempt::Delivered { .. } => {
                    sqlx::query("UPDATE webhooks SET failures = 0 WHERE id = $1 AND failures <> 0")
                        .bind(hook)
                        .execute(&mut *tx)
                        .await?;
                }
                Attempt::Failed { error, .. } => {
                    let failures: i64 = sqlx::query_scalar(
                        "UPDATE webhooks SET failures = failures + 1 WHERE id = $1 RETURNING failures",
                    )
                    .bind(hook)
                    .fetch_one(&mut *tx)
                    .await?;
                    if failures >= i64::from(disable_after) {
                        let reason =
                            format!("{failures} deliveries failed in a row; the last: {error}");
                        let done = sqlx::query(
                            "UPDATE webhooks SET active = 0, disabled_reason = $1 WHERE id = $2 AND active = 1",
                        )
                        .bind(reason.as_str())
                        .bind(hook)
                        .execute(&mut *tx)
                        .await?;
                        if done.rows_affected() > 0 {
                            let customer: Option<i64> = sqlx::query_scalar(
                                "SELECT customer_id FROM webhooks WHERE id = $1",
                            )
                            .bind(hook)
                            .fetch_one(&mut *tx)
                            .await?;
                            let mut e = NewEvent::new(
                                "webhook.disabled",
                                serde_json::json!({ "webhook_id": hook, "failures": failures, "reason": reason }),
                            );
                            if let Some(c) = customer {
                                e = e.customer(c);
                            }
                            events.push(e);
                        }
                    }
                }
                Attempt::Retry { .. } => {}
            }
        }
        self.commit_with_events(tx, &events).await
    }

    /// A subscription's deliveries, newest first, before id `before` when given.
    pub async fn deliveries(
        &self,
        webhook: i64,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d WHERE d.webhook_id = $1 \
             AND ($2 IS NULL OR d.id < $2) ORDER BY d.id DESC LIMIT $3"
        )))
        .bind(webhook)
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_from_row).collect()
    }

    /// One delivery by id.
    pub async fn delivery(&self, id: i64) -> Result<Option<Delivery>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d WHERE d.id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(delivery_from_row).transpose()
    }

    /// Sends a delivery again (same `X-Vts-Delivery`, so a receiver that has it can tell):
    /// pending now, its attempts counted afresh.
    pub async fn redeliver(&self, id: i64) -> Result<Delivery, StoreError> {
        let webhook: Option<i64> =
            sqlx::query_scalar("SELECT webhook_id FROM webhook_deliveries WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        let webhook = webhook.ok_or(StoreError::NotFound {
            what: "delivery",
            id,
        })?;
        let mut tx = self.event_tx().await?;
        let audit = self
            .audit_begin(&mut tx, "webhook.redeliver", Target::Webhook(webhook))
            .await?;
        let now = now_ms();
        sqlx::query(
            "UPDATE webhook_deliveries SET state = 'pending', attempts = 0, created_ms = $1, next_ms = $2 \
             WHERE id = $3",
        )
        .bind(now)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        // The audit record says which delivery (the subscription's row is unchanged).
        self.audit_commit_always(tx, audit, serde_json::json!({ "redelivered": id }))
            .await?;
        self.delivery(id).await?.ok_or(StoreError::NotFound {
            what: "delivery",
            id,
        })
    }

    /// Deletes deliveries that ended (delivered or failed) before `before_ms`.
    pub async fn delete_deliveries_before(&self, before_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM webhook_deliveries WHERE state <> 'pending' AND created_ms < $1",
        )
        .bind(before_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
