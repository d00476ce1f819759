//! `/api/v1/events` (the durable event stream from a sequence number), `/api/v1/audit` (who
//! changed what) and `/api/v1/tokens` (API tokens; admin only: a token is created with its
//! secret shown once, in the response, and only its hash kept).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use domain::Scope;
use serde::{Deserialize, Serialize};
use store::Token;
use utoipa::ToSchema;

use super::Api;
use super::auth::Principal;
use super::input::{Body, Query, time};
use super::problem::{ApiResult, Problem};

/// One event.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EventView {
    pub seq: i64,
    pub at: String,
    pub kind: String,
    pub customer_id: Option<i64>,
    pub carrier_id: Option<i64>,
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
}

/// A page of events, oldest first; `next_after` continues it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EventPage {
    pub items: Vec<EventView>,
    pub next_after: i64,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventQuery {
    /// Events after this sequence number (default 0: from the oldest kept).
    pub after: Option<i64>,
    /// One kind only (docs/EVENTS.md).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Events a page (1 to 1000, default 100).
    pub limit: Option<u32>,
}

/// The event stream, oldest first (a customer token: its own customer's events).
#[utoipa::path(get, path = "/api/v1/events", tag = "events", params(EventQuery),
    responses((status = 200, body = EventPage), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn events(
    State(api): State<Api>,
    who: Principal,
    Query(q): Query<EventQuery>,
) -> ApiResult<Json<EventPage>> {
    let after = q.after.unwrap_or(0);
    if after < 0 {
        return Err(Problem::invalid("after", "a sequence number (0 or more)"));
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Problem::invalid("limit", "1 to 1000"));
    }
    if let Some(k) = &q.kind
        && !store::events::KINDS.contains(&k.as_str())
    {
        return Err(Problem::invalid(
            "type",
            format!("{k:?} is not a kind ({})", store::events::KINDS.join(", ")),
        ));
    }
    let page = api
        .store
        .events_after(after, limit, q.kind.as_deref())
        .await?;
    let next_after = page.last().map_or(after, |e| e.seq);
    let items = page
        .into_iter()
        .filter(|e| match who.scope.customer() {
            None => true,
            Some(own) => {
                e.customer_id == Some(own.0) && store::CUSTOMER_KINDS.contains(&e.kind.as_str())
            }
        })
        .map(|e| match who.scope.customer() {
            Some(_) => e.for_customer(),
            None => e,
        })
        .map(|e| EventView {
            seq: e.seq,
            at: time(e.at_ms),
            kind: e.kind,
            customer_id: e.customer_id,
            carrier_id: e.carrier_id,
            body: e.body,
        })
        .collect();
    Ok(Json(EventPage { items, next_after }))
}

/// One audit record.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditView {
    pub id: i64,
    pub at: String,
    /// cli, switch, token:ID:NAME.
    pub actor: String,
    pub action: String,
    /// customer:12, carrier:3, setting:KEY...
    pub target: String,
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub after: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditPage {
    pub items: Vec<AuditView>,
    /// Pass as `before` for the next (older) page.
    pub next_before: Option<i64>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditQuery {
    /// Only the changes of one thing: customer:ID, carrier:ID, setting:KEY, token:ID...
    pub target: Option<String>,
    /// Records older than this id.
    pub before: Option<i64>,
    /// Records a page (1 to 1000, default 100).
    pub limit: Option<u32>,
}

/// The audit record, newest first (operators).
#[utoipa::path(get, path = "/api/v1/audit", tag = "events", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn audit(
    State(api): State<Api>,
    who: Principal,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<AuditPage>> {
    who.operator()?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Problem::invalid("limit", "1 to 1000"));
    }
    let rows = api
        .store
        .audit_records(q.target.as_deref(), q.before, limit)
        .await?;
    let next_before = (rows.len() == limit as usize)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    Ok(Json(AuditPage {
        items: rows
            .into_iter()
            .map(|r| AuditView {
                id: r.id,
                at: time(r.at_ms),
                actor: r.actor,
                action: r.action,
                target: r.target,
                before: r.before,
                after: r.after,
            })
            .collect(),
        next_before,
    }))
}

/// A token (never its secret, but at its creation).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenView {
    pub id: i64,
    pub name: String,
    /// admin, read or customer:ID.
    pub scope: String,
    pub created: String,
    pub created_by: String,
    pub expires: Option<String>,
    pub revoked: Option<String>,
    pub last_used: Option<String>,
}

impl From<&Token> for TokenView {
    fn from(t: &Token) -> TokenView {
        TokenView {
            id: t.id,
            name: t.name.clone(),
            scope: t.scope.to_string(),
            created: time(t.created_ms),
            created_by: t.created_by.clone(),
            expires: t.expires_ms.map(time),
            revoked: t.revoked_ms.map(time),
            last_used: t.last_used_ms.map(time),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenList {
    pub items: Vec<TokenView>,
}

/// Every token (admin).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = TokenList), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn tokens(State(api): State<Api>, who: Principal) -> ApiResult<Json<TokenList>> {
    who.operator()?;
    who.admin()?;
    Ok(Json(TokenList {
        items: api
            .store
            .list_tokens()
            .await?
            .iter()
            .map(TokenView::from)
            .collect(),
    }))
}

/// A token to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewToken {
    pub name: String,
    /// admin, read or customer:ID.
    pub scope: String,
    /// Days until it stops working (1 to 3650); none: never.
    pub expires_days: Option<u32>,
}

/// A token just created, with its secret: the only time it is shown.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreatedToken {
    pub token: TokenView,
    /// `Authorization: Bearer` this.
    pub secret: String,
}

/// Creates a token (admin).
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = NewToken,
    responses((status = 201, body = CreatedToken), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn create_token(
    State(api): State<Api>,
    who: Principal,
    Body(new): Body<NewToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    who.operator()?;
    who.admin()?;
    let scope: Scope = new
        .scope
        .parse()
        .map_err(|e: domain::Invalid| Problem::invalid("scope", e.message()))?;
    if new.expires_days.is_some_and(|d| d == 0 || d > 3650) {
        return Err(Problem::invalid("expires_days", "1 to 3650"));
    }
    let expires_ms = new
        .expires_days
        .map(|d| domain::now_ms() + i64::from(d) * 86_400_000);
    let (token, secret) = who
        .store(&api)
        .create_token(&new.name, scope, expires_ms)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token: TokenView::from(&token),
            secret,
        }),
    ))
}

/// Revokes a token (admin): requests with it get 401 from now on.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens", params(("id" = i64, Path)),
    responses((status = 200, body = TokenView), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn revoke_token(
    State(api): State<Api>,
    who: Principal,
    Path(id): Path<i64>,
) -> ApiResult<Json<TokenView>> {
    who.operator()?;
    who.admin()?;
    let token = who.store(&api).revoke_token(id).await?;
    Ok(Json(TokenView::from(&token)))
}
