//! The audit record: who changed what, with the row as it was before and after, written in
//! the change's own transaction together with an event (`config.changed`, unless the change
//! has an event of its own such as `customer.suspended` or `balance.changed`), so a change
//! that committed always has both and a change that failed has neither.
//!
//! Who: the [`Actor`] a [`Store`] acts as ([`Store::acting_as`]): the CLI, the running
//! switch, an API token; later a panel user. What: an action name (`customer.limits`) and a
//! [`Target`] (`customer:12`). Before and after: the target's rows read generically as JSON
//! ([`Target::snapshot`]), secrets (token hashes, webhook secrets) left out.
//!
//! Every audited write follows one pattern:
//! ```text
//! let mut tx = self.event_tx().await?;
//! let audit = self.audit_begin(&mut tx, "customer.limits", Target::Customer(id)).await?;
//! ... the writes, on tx ...
//! self.audit_commit(tx, audit, events).await
//! ```

use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::any::{AnyRow, AnyTypeInfoKind};
use sqlx::{AnyConnection, Row, ValueRef};

use crate::{NewEvent, Store, StoreError, now_ms};

/// Who makes a change.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Actor {
    /// Nobody named (tests, tools built on the store).
    #[default]
    System,
    /// An operator at the machine, with the `vts` CLI.
    Cli,
    /// The running switch itself (automatic blocks, carrier health).
    Switch,
    /// A request with an API token.
    Token { id: i64, name: String },
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::System => f.write_str("system"),
            Actor::Cli => f.write_str("cli"),
            Actor::Switch => f.write_str("switch"),
            Actor::Token { id, name } => write!(f, "token:{id}:{name}"),
        }
    }
}

/// What a change is about: a row named by id (or key) with the rows that belong to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Customer(i64),
    Carrier(i64),
    DialPlan(i64),
    RatePlan(i64),
    /// A global setting, by key.
    Setting(String),
    /// A block-list entry, by network.
    Block(String),
    /// A whitelist entry, by network.
    Whitelist(String),
    Token(i64),
    Webhook(i64),
}

impl Target {
    /// `customer:12`, `setting:limits.global_max_cps`, as the audit record names it.
    pub fn key(&self) -> String {
        match self {
            Target::Customer(id) => format!("customer:{id}"),
            Target::Carrier(id) => format!("carrier:{id}"),
            Target::DialPlan(id) => format!("dial_plan:{id}"),
            Target::RatePlan(id) => format!("rate_plan:{id}"),
            Target::Setting(key) => format!("setting:{key}"),
            Target::Block(net) => format!("block:{net}"),
            Target::Whitelist(net) => format!("whitelist:{net}"),
            Target::Token(id) => format!("token:{id}"),
            Target::Webhook(id) => format!("webhook:{id}"),
        }
    }

    /// The customer a change is about, for the event's `customer_id`.
    fn customer(&self) -> Option<i64> {
        match self {
            Target::Customer(id) => Some(*id),
            _ => None,
        }
    }

    /// The target's rows as JSON (`None` when its main row does not exist). Rates are
    /// counted, not copied: a sheet can hold a million rows.
    pub(crate) async fn snapshot(
        &self,
        conn: &mut AnyConnection,
    ) -> Result<Option<Value>, StoreError> {
        let (main, id_text): (&str, Option<&str>) = match self {
            Target::Customer(_) => ("SELECT * FROM customers WHERE id = $1", None),
            Target::Carrier(_) => ("SELECT * FROM carriers WHERE id = $1", None),
            Target::DialPlan(_) => ("SELECT * FROM dial_plans WHERE id = $1", None),
            Target::RatePlan(_) => ("SELECT * FROM rate_plans WHERE id = $1", None),
            Target::Token(_) => (
                "SELECT id, name, scope, customer_id, created_ms, created_by, expires_ms, \
                 revoked_ms FROM api_tokens WHERE id = $1",
                None,
            ),
            Target::Webhook(_) => (
                "SELECT id, url, events, customer_id, active, failures, disabled_reason, \
                 created_ms, created_by FROM webhooks WHERE id = $1",
                None,
            ),
            Target::Setting(key) => ("SELECT key, value FROM settings WHERE key = $1", Some(key)),
            Target::Block(net) => ("SELECT * FROM blocklist WHERE network = $1", Some(net)),
            Target::Whitelist(net) => ("SELECT * FROM whitelist WHERE network = $1", Some(net)),
        };
        let query = sqlx::query(main);
        let query = match (self, id_text) {
            (_, Some(text)) => query.bind(text),
            (
                Target::Customer(id)
                | Target::Carrier(id)
                | Target::DialPlan(id)
                | Target::RatePlan(id)
                | Target::Token(id)
                | Target::Webhook(id),
                None,
            ) => query.bind(*id),
            _ => unreachable!("every keyed target binds its text"),
        };
        let Some(row) = query.fetch_optional(&mut *conn).await? else {
            return Ok(None);
        };
        let mut snapshot = row_json(&row)?;
        let parts: &[(&str, &'static str)] = match self {
            Target::Customer(_) => &[
                (
                    "ips",
                    "SELECT network FROM customer_ips WHERE customer_id = $1 ORDER BY network",
                ),
                (
                    "rates",
                    "SELECT COUNT(*) AS n FROM customer_rates WHERE customer_id = $1",
                ),
                (
                    "balance",
                    "SELECT balance AS n FROM customer_balances WHERE customer_id = $1",
                ),
            ],
            Target::Carrier(_) => &[
                (
                    "prefixes",
                    "SELECT kind, prefix FROM carrier_prefixes WHERE carrier_id = $1 \
                     ORDER BY kind, prefix",
                ),
                (
                    "rates",
                    "SELECT COUNT(*) AS n FROM carrier_rates WHERE carrier_id = $1",
                ),
            ],
            Target::DialPlan(_) => &[(
                "rules",
                "SELECT id, priority, pattern, allow FROM dial_plan_rules WHERE plan_id = $1 \
                 ORDER BY priority, id",
            )],
            Target::RatePlan(_) => &[(
                "rates",
                "SELECT COUNT(*) AS n FROM rate_plan_rates WHERE plan_id = $1",
            )],
            _ => &[],
        };
        let id = match self {
            Target::Customer(id)
            | Target::Carrier(id)
            | Target::DialPlan(id)
            | Target::RatePlan(id) => *id,
            _ => 0,
        };
        for (name, sql) in parts {
            let rows = sqlx::query(*sql).bind(id).fetch_all(&mut *conn).await?;
            let value = if matches!(*name, "rates" | "balance") {
                rows.first()
                    .map(|r| r.try_get::<i64, _>("n"))
                    .transpose()?
                    .map_or(Value::Null, Value::from)
            } else {
                Value::Array(rows.iter().map(row_json).collect::<Result<_, _>>()?)
            };
            if let Value::Object(map) = &mut snapshot {
                map.insert((*name).to_string(), value);
            }
        }
        Ok(Some(snapshot))
    }
}

/// A row as a JSON object, column by column, whatever the table (integers, reals, text,
/// blobs as their length; NULL as null).
pub(crate) fn row_json(row: &AnyRow) -> Result<Value, StoreError> {
    let mut map = Map::new();
    for (i, column) in row.columns().iter().enumerate() {
        let raw = row.try_get_raw(i)?;
        let kind = if raw.is_null() {
            AnyTypeInfoKind::Null
        } else {
            raw.type_info().kind()
        };
        let value = match kind {
            AnyTypeInfoKind::Null => Value::Null,
            AnyTypeInfoKind::Bool => Value::from(row.try_get::<bool, _>(i)?),
            AnyTypeInfoKind::SmallInt | AnyTypeInfoKind::Integer | AnyTypeInfoKind::BigInt => {
                Value::from(row.try_get::<i64, _>(i)?)
            }
            AnyTypeInfoKind::Real | AnyTypeInfoKind::Double => {
                Value::from(row.try_get::<f64, _>(i)?)
            }
            AnyTypeInfoKind::Text => Value::from(row.try_get::<String, _>(i)?),
            AnyTypeInfoKind::Blob => {
                Value::from(format!("{} bytes", row.try_get::<Vec<u8>, _>(i)?.len()))
            }
        };
        map.insert(sqlx::Column::name(column).to_string(), value);
    }
    Ok(Value::Object(map))
}

/// Whether a change left its target as it was (`updated_ms` aside).
fn unchanged(before: Option<&Value>, after: Option<&Value>) -> bool {
    let strip = |v: Option<&Value>| {
        v.cloned().map(|mut v| {
            if let Value::Object(map) = &mut v {
                map.remove("updated_ms");
            }
            v
        })
    };
    strip(before) == strip(after)
}

/// An audited change in progress: what it is and the target as it was.
#[derive(Debug)]
pub(crate) struct Audit {
    action: &'static str,
    target: Target,
    before: Option<Value>,
}

impl Audit {
    /// A change that creates its target in the transaction (nothing was there before).
    pub(crate) fn created(action: &'static str, target: Target) -> Audit {
        Audit {
            action,
            target,
            before: None,
        }
    }
}

/// One audit record, as read back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    pub id: i64,
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

impl Store {
    /// This store acting as `actor`: its audited changes name it.
    pub fn acting_as(&self, actor: Actor) -> Store {
        let mut store = self.clone();
        store.actor = std::sync::Arc::new(actor);
        store
    }

    /// Who this store's changes are recorded as.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// Starts an audited change of `target` in `tx` (from [`Store::event_tx`]): reads the
    /// target as it is.
    pub(crate) async fn audit_begin(
        &self,
        tx: &mut AnyConnection,
        action: &'static str,
        target: Target,
    ) -> Result<Audit, StoreError> {
        let before = target.snapshot(tx).await?;
        Ok(Audit {
            action,
            target,
            before,
        })
    }

    /// Like [`Store::audit_begin`], for a change of a row that must exist: `NotFound`
    /// (`what`, `id`) when it does not, before anything is written.
    pub(crate) async fn audit_existing(
        &self,
        tx: &mut AnyConnection,
        action: &'static str,
        target: Target,
        what: &'static str,
        id: i64,
    ) -> Result<Audit, StoreError> {
        let audit = self.audit_begin(tx, action, target).await?;
        if audit.before.is_none() {
            return Err(StoreError::NotFound { what, id });
        }
        Ok(audit)
    }

    /// Finishes an audited change: reads the target as it is now, writes the audit record
    /// and `events` (a `config.changed` one when `events` is empty) in `tx`, and commits. A
    /// change that changed nothing (the target as it was, `updated_ms` aside) writes no
    /// record and no `config.changed`, only `events`. Returns the audit record's id.
    pub(crate) async fn audit_commit(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Any>,
        audit: Audit,
        events: &[NewEvent],
    ) -> Result<Option<i64>, StoreError> {
        let after = audit.target.snapshot(&mut tx).await?;
        if unchanged(audit.before.as_ref(), after.as_ref()) {
            self.commit_with_events(tx, events).await?;
            return Ok(None);
        }
        let at_ms = now_ms();
        let text = |v: &Option<Value>| v.as_ref().map(Value::to_string);
        let target = audit.target.key();
        let actor = self.actor.to_string();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO audit_log (at_ms, actor, action, target, before, after) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(at_ms)
        .bind(actor.as_str())
        .bind(audit.action)
        .bind(target.as_str())
        .bind(text(&audit.before))
        .bind(text(&after))
        .fetch_one(&mut *tx)
        .await?;
        if events.is_empty() {
            let mut event = NewEvent::new(
                "config.changed",
                serde_json::json!({
                    "audit_id": id,
                    "action": audit.action,
                    "target": target,
                    "actor": actor,
                }),
            );
            if let Some(c) = audit.target.customer() {
                event = event.customer(c);
            }
            if let Target::Carrier(c) = audit.target {
                event = event.carrier(c);
            }
            self.commit_with_events(tx, std::slice::from_ref(&event))
                .await?;
        } else {
            self.commit_with_events(tx, events).await?;
        }
        Ok(Some(id))
    }

    /// Like [`Store::audit_commit`] for a change that leaves the target's rows as they are
    /// (a redelivery): always recorded, `after` the note of what was done.
    pub(crate) async fn audit_commit_always(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Any>,
        audit: Audit,
        note: Value,
    ) -> Result<i64, StoreError> {
        let target = audit.target.key();
        let actor = self.actor.to_string();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO audit_log (at_ms, actor, action, target, before, after) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(now_ms())
        .bind(actor.as_str())
        .bind(audit.action)
        .bind(target.as_str())
        .bind(audit.before.as_ref().map(Value::to_string))
        .bind(note.to_string())
        .fetch_one(&mut *tx)
        .await?;
        let event = NewEvent::new(
            "config.changed",
            serde_json::json!({ "audit_id": id, "action": audit.action, "target": target, "actor": actor }),
        );
        self.commit_with_events(tx, std::slice::from_ref(&event))
            .await?;
        Ok(id)
    }

    /// Audit records, newest first: those of `target` (`customer:12`) when given, at most
    /// `limit`, before id `before` when given (the next page).
    pub async fn audit_records(
        &self,
        target: Option<&str>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at_ms, actor, action, target, before, after FROM audit_log \
             WHERE ($1 IS NULL OR target = $1) AND ($2 IS NULL OR id < $2) \
             ORDER BY id DESC LIMIT $3",
        )
        .bind(target)
        .bind(before)
        .bind(i64::from(limit.min(1000)))
        .fetch_all(&self.pool)
        .await?;
        let json = |text: Option<String>| -> Result<Option<Value>, StoreError> {
            text.map(|t| {
                serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("audit_log: {e}")))
            })
            .transpose()
        };
        rows.iter()
            .map(|row| {
                Ok(AuditRecord {
                    id: row.try_get("id")?,
                    at_ms: row.try_get("at_ms")?,
                    actor: row.try_get("actor")?,
                    action: row.try_get("action")?,
                    target: row.try_get("target")?,
                    before: json(row.try_get("before")?)?,
                    after: json(row.try_get("after")?)?,
                })
            })
            .collect()
    }
}
