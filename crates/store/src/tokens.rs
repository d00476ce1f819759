//! API tokens: created with a name, a [`Scope`] and an optional expiry; the token itself is
//! shown once, at creation, and only its SHA-256 is kept, so the database (or a backup of
//! it) cannot be used to call the API. A token is looked up by the hash of what a request
//! presents; a revoked or expired one is no token.

use domain::{CustomerId, Scope};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::Target;
use crate::{Store, StoreError, Table, checked_name, exists, now_ms};

/// Every token starts with this (so a leaked one is recognisable, e.g. by secret scanners).
pub const TOKEN_PREFIX: &str = "vts_";

/// Random characters after the prefix (base62: about 238 bits).
const TOKEN_CHARS: usize = 40;

/// A stored token (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Token {
    pub id: i64,
    pub name: String,
    #[serde(serialize_with = "scope_text")]
    pub scope: Scope,
    pub created_ms: i64,
    pub created_by: String,
    pub expires_ms: Option<i64>,
    pub revoked_ms: Option<i64>,
    pub last_used_ms: Option<i64>,
}

fn scope_text<S: serde::Serializer>(scope: &Scope, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(scope)
}

impl Token {
    /// Whether a request may use it at `now_ms`.
    pub fn usable(&self, now_ms: i64) -> bool {
        self.revoked_ms.is_none() && self.expires_ms.is_none_or(|e| e > now_ms)
    }
}

/// The SHA-256 of a token, as stored (lower-case hex).
pub fn token_hash(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// A new token: the prefix and 40 characters from the operating system's random source.
fn new_secret() -> String {
    use rand::RngExt as _;
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    let mut out = String::from(TOKEN_PREFIX);
    for _ in 0..TOKEN_CHARS {
        out.push(ALPHABET[rng.random_range(0..ALPHABET.len())] as char);
    }
    out
}

const COLUMNS: &str =
    "id, name, scope, customer_id, created_ms, created_by, expires_ms, revoked_ms, last_used_ms";

fn token_from_row(row: &AnyRow) -> Result<Token, StoreError> {
    let id: i64 = row.try_get("id")?;
    let scope: String = row.try_get("scope")?;
    let customer: Option<i64> = row.try_get("customer_id")?;
    let scope = match (scope.as_str(), customer) {
        ("admin", None) => Scope::Admin,
        ("read", None) => Scope::Read,
        ("customer", Some(c)) => Scope::Customer(CustomerId(c)),
        _ => {
            return Err(StoreError::Corrupt(format!(
                "api_tokens row {id}: scope {scope:?} with customer {customer:?}"
            )));
        }
    };
    Ok(Token {
        id,
        name: row.try_get("name")?,
        scope,
        created_ms: row.try_get("created_ms")?,
        created_by: row.try_get("created_by")?,
        expires_ms: row.try_get("expires_ms")?,
        revoked_ms: row.try_get("revoked_ms")?,
        last_used_ms: row.try_get("last_used_ms")?,
    })
}

impl Store {
    /// Creates a token; returns it with its secret, which is not kept anywhere (shown once).
    /// A customer scope names a customer that must exist; `expires_ms` must be in the future.
    pub async fn create_token(
        &self,
        name: &str,
        scope: Scope,
        expires_ms: Option<i64>,
    ) -> Result<(Token, String), StoreError> {
        let name = checked_name(name, "token")?;
        let now = now_ms();
        if expires_ms.is_some_and(|e| e <= now) {
            return Err(StoreError::Invalid(
                "a token's expiry must be in the future".into(),
            ));
        }
        let (kind, customer) = match scope {
            Scope::Admin => ("admin", None),
            Scope::Read => ("read", None),
            Scope::Customer(c) => ("customer", Some(c.0)),
        };
        let secret = new_secret();
        let mut tx = self.event_tx().await?;
        if let Some(c) = customer {
            exists(&mut tx, Table::Customer, c).await?;
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO api_tokens (name, token_hash, scope, customer_id, created_ms, created_by, \
             expires_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(name)
        .bind(token_hash(&secret))
        .bind(kind)
        .bind(customer)
        .bind(now)
        .bind(self.actor().to_string())
        .bind(expires_ms)
        .fetch_one(&mut *tx)
        .await?;
        let audit = crate::audit::Audit::created("token.create", Target::Token(id));
        self.audit_commit(tx, audit, &[]).await?;
        let token = self
            .token(id)
            .await?
            .ok_or(StoreError::NotFound { what: "token", id })?;
        Ok((token, secret))
    }

    /// Every token, newest first (revoked and expired ones too).
    pub async fn list_tokens(&self) -> Result<Vec<Token>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM api_tokens ORDER BY id DESC"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_from_row).collect()
    }

    /// One token by id.
    pub async fn token(&self, id: i64) -> Result<Option<Token>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM api_tokens WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    /// The token a request presents, if it is one and usable at `now_ms`.
    pub async fn token_by_secret(
        &self,
        secret: &str,
        now_ms: i64,
    ) -> Result<Option<Token>, StoreError> {
        if !secret.starts_with(TOKEN_PREFIX) || secret.len() != TOKEN_PREFIX.len() + TOKEN_CHARS {
            return Ok(None);
        }
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM api_tokens WHERE token_hash = $1"
        )))
        .bind(token_hash(secret))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row
            .as_ref()
            .map(token_from_row)
            .transpose()?
            .filter(|t| t.usable(now_ms)))
    }

    /// Records that a token was used (the API calls it at most once a minute per token).
    pub async fn touch_token(&self, id: i64, now_ms: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE api_tokens SET last_used_ms = $1 WHERE id = $2")
            .bind(now_ms)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Revokes a token: from now on it is no token. Revoking it again changes nothing.
    pub async fn revoke_token(&self, id: i64) -> Result<Token, StoreError> {
        let mut tx = self.event_tx().await?;
        let audit = self
            .audit_existing(&mut tx, "token.revoke", Target::Token(id), "token", id)
            .await?;
        sqlx::query("UPDATE api_tokens SET revoked_ms = $1 WHERE id = $2 AND revoked_ms IS NULL")
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        self.audit_commit(tx, audit, &[]).await?;
        self.token(id)
            .await?
            .ok_or(StoreError::NotFound { what: "token", id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_random_and_hashed() {
        let a = new_secret();
        let b = new_secret();
        assert_ne!(a, b);
        assert!(a.starts_with("vts_") && a.len() == 44, "{a}");
        assert!(a[4..].bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
