//! Who is asking: `Authorization: Bearer TOKEN`, looked up by its SHA-256 on every request
//! (a revoked token stops working at once), as a [`Principal`] with its [`Scope`]. Each
//! token has its own rate (a GCRA bucket, `[api] rate_per_minute` and `burst`); failed
//! authentication is limited per source address and logged as a security line that
//! fail2ban reads (`API_AUTH_FAIL source=IP reason=...`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use domain::{CustomerId, Scope};
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};
use store::{Actor, Store};

use super::Api;
use super::problem::{ApiResult, Problem};

type Keyed<K> = RateLimiter<K, HashMapStateStore<K>, DefaultClock>;

/// The API's rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rates {
    /// Requests a minute per token, sustained.
    pub per_minute: u32,
    /// Requests a token may make at once.
    pub burst: u32,
    /// Failed authentications a minute per source address before it gets 429.
    pub auth_failures_per_minute: u32,
}

impl Default for Rates {
    fn default() -> Self {
        Rates {
            per_minute: 600,
            burst: 60,
            auth_failures_per_minute: 10,
        }
    }
}

/// The limiters, shared by every request.
pub(crate) struct Limits {
    tokens: Keyed<i64>,
    failures: Keyed<IpAddr>,
    clock: DefaultClock,
    /// Sources over their failures, and until when (only failures count against a source:
    /// its successful requests never do).
    banned: Mutex<HashMap<IpAddr, std::time::Instant>>,
    /// When each token's last use was written (epoch ms): at most once a minute.
    touched: Mutex<HashMap<i64, i64>>,
}

impl Limits {
    pub(crate) fn new(rates: Rates) -> Limits {
        let nz = |n: u32| NonZeroU32::new(n.max(1)).expect("at least 1");
        let tokens = Quota::per_minute(nz(rates.per_minute)).allow_burst(nz(rates.burst));
        let failures = Quota::per_minute(nz(rates.auth_failures_per_minute))
            .allow_burst(nz(rates.auth_failures_per_minute));
        Limits {
            tokens: RateLimiter::hashmap(tokens),
            failures: RateLimiter::hashmap(failures),
            clock: DefaultClock::default(),
            banned: Mutex::new(HashMap::new()),
            touched: Mutex::new(HashMap::new()),
        }
    }

    /// Seconds until `key` may try again, if it must wait.
    fn wait<K: std::hash::Hash + Eq + Clone>(&self, limiter: &Keyed<K>, key: &K) -> Option<u64> {
        limiter.check_key(key).err().map(|not_until| {
            let wait: Duration = not_until.wait_time_from(self.clock.now());
            wait.as_secs() + 1
        })
    }

    /// Seconds `ip` must still wait, when it is over its failures.
    fn banned(&self, ip: IpAddr) -> Option<u64> {
        let banned = self.banned.lock().unwrap_or_else(|p| p.into_inner());
        let until = *banned.get(&ip)?;
        let left = until.checked_duration_since(std::time::Instant::now())?;
        Some(left.as_secs() + 1)
    }

    /// Counts a failure of `ip`; past its rate, bans it until its bucket has room again and
    /// returns the seconds to wait.
    fn failed(&self, ip: IpAddr) -> Option<u64> {
        let wait = self.wait(&self.failures, &ip)?;
        let mut banned = self.banned.lock().unwrap_or_else(|p| p.into_inner());
        banned.insert(ip, std::time::Instant::now() + Duration::from_secs(wait));
        Some(wait)
    }

    /// Forgets keys whose buckets are full again (run now and then: a scan from many
    /// addresses cannot grow the maps for ever).
    pub(crate) fn sweep(&self) {
        self.tokens.retain_recent();
        self.failures.retain_recent();
        self.tokens.shrink_to_fit();
        self.failures.shrink_to_fit();
        let now = std::time::Instant::now();
        self.banned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, until| *until > now);
    }
}

/// The caller of a request, authenticated.
#[derive(Debug, Clone)]
pub struct Principal {
    pub token_id: i64,
    pub name: String,
    pub scope: Scope,
}

impl Principal {
    /// The store acting as this caller: its changes are audited under the token.
    pub(crate) fn store(&self, api: &Api) -> Store {
        api.store.acting_as(Actor::Token {
            id: self.token_id,
            name: self.name.clone(),
        })
    }

    /// Changes to the switch: admin tokens only.
    pub(crate) fn admin(&self) -> ApiResult<()> {
        if self.scope.can_write() {
            Ok(())
        } else {
            Err(Problem::forbidden(&format!(
                "a {} token cannot change this (it needs an admin token)",
                scope_kind(self.scope)
            )))
        }
    }

    /// Resources of the whole switch (carriers, settings, the block list): admin and read
    /// tokens.
    pub(crate) fn operator(&self) -> ApiResult<()> {
        if self.scope.is_operator() {
            Ok(())
        } else {
            Err(Problem::forbidden(
                "a customer token sees its own customer's resources only",
            ))
        }
    }

    /// A customer's resource: another customer's is not found, whatever it is.
    pub(crate) fn customer(&self, id: CustomerId, what: &str) -> ApiResult<()> {
        if self.scope.sees_customer(id) {
            Ok(())
        } else {
            Err(Problem::not_found(what))
        }
    }
}

fn scope_kind(scope: Scope) -> &'static str {
    match scope {
        Scope::Admin => "admin",
        Scope::Read => "read",
        Scope::Customer(_) => "customer",
    }
}

/// The source address of a request (the TCP peer).
fn source(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

impl FromRequestParts<Api> for Principal {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Principal, Problem> {
        let limits = &api.limits;
        let from = source(parts);
        if let Some(wait) = from.and_then(|ip| limits.banned(ip)) {
            // Over its failures: its token is not even looked at (a guesser learns nothing).
            return Err(Problem::too_many(wait));
        }
        let fail = |reason: &str| {
            let ip = from.map_or_else(|| "-".to_string(), |ip| ip.to_string());
            tracing::warn!(target: "vts::security", "API_AUTH_FAIL source={ip} reason={reason}");
            if let Some(wait) = from.and_then(|ip| limits.failed(ip)) {
                return Problem::too_many(wait);
            }
            Problem::unauthorized(
                "a valid token is needed: Authorization: Bearer TOKEN (vts token create)",
            )
        };
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(fail("no_token"));
        };
        let Some(secret) = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
        else {
            return Err(fail("not_bearer"));
        };
        let now = domain::now_ms();
        let token = match api.store.token_by_secret(secret, now).await {
            Ok(Some(t)) => t,
            Ok(None) => return Err(fail("unknown_token")),
            Err(e) => return Err(Problem::from(e)),
        };
        if let Some(wait) = limits.wait(&limits.tokens, &token.id) {
            return Err(Problem::too_many(wait));
        }
        let due = {
            let mut touched = limits.touched.lock().unwrap_or_else(|p| p.into_inner());
            let last = touched.entry(token.id).or_insert(0);
            let due = now - *last >= 60_000;
            if due {
                *last = now;
            }
            due
        };
        if due {
            let store = api.store.clone();
            let id = token.id;
            tokio::spawn(async move {
                if let Err(e) = store.touch_token(id, now).await {
                    tracing::debug!(target: "vts::api", error = %e, "token last use not written");
                }
            });
        }
        Ok(Principal {
            token_id: token.id,
            name: token.name,
            scope: token.scope,
        })
    }
}
