//! `/api/v1/webhooks`: subscriptions to the event stream, their delivery log, and
//! redelivery. An admin token subscribes to any kind, at any URL; a customer token to its own
//! customer's calls, balance, status and limits, at a host the operator allowed
//! (`[webhooks] customer_hosts`): nothing a tenant sends picks an address the switch then
//! connects to unless an operator allowed it. A read token reads; it changes nothing.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use store::{Delivery, Webhook};
use utoipa::ToSchema;

use super::Api;
use super::auth::Principal;
use super::input::{Body, Query, time};
use super::problem::{ApiResult, Problem};

/// A subscription (its secret only at creation).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WebhookView {
    pub id: i64,
    pub url: String,
    pub events: Vec<String>,
    /// The customer whose events it gets (a customer's own subscription).
    pub customer_id: Option<i64>,
    pub active: bool,
    /// Deliveries failed in a row.
    pub failures: i64,
    pub disabled_reason: Option<String>,
    pub created: String,
    pub created_by: String,
}

impl From<&Webhook> for WebhookView {
    fn from(w: &Webhook) -> WebhookView {
        WebhookView {
            id: w.id,
            url: w.url.clone(),
            events: w.events.clone(),
            customer_id: w.customer_id,
            active: w.active,
            failures: w.failures,
            disabled_reason: w.disabled_reason.clone(),
            created: time(w.created_ms),
            created_by: w.created_by.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WebhookList {
    pub items: Vec<WebhookView>,
}

/// The subscription `id` as the caller may see it.
async fn find(api: &Api, who: &Principal, id: i64) -> ApiResult<Webhook> {
    let hook = api
        .store
        .webhook(id)
        .await?
        .ok_or_else(|| Problem::not_found("webhook"))?;
    match (who.scope.customer(), hook.customer_id) {
        (None, _) => Ok(hook),
        (Some(own), Some(c)) if c == own.0 => Ok(hook),
        _ => Err(Problem::not_found("webhook")),
    }
}

/// Changes to a subscription: an admin token, or the customer token it belongs to.
fn may_change(who: &Principal, hook: &Webhook) -> ApiResult<()> {
    match who.scope.customer() {
        Some(own) if hook.customer_id == Some(own.0) => Ok(()),
        Some(_) => Err(Problem::not_found("webhook")),
        None => who.admin(),
    }
}

/// Subscriptions (a customer token: its own).
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks",
    responses((status = 200, body = WebhookList)),
    security(("bearer" = [])))]
pub(crate) async fn list(State(api): State<Api>, who: Principal) -> ApiResult<Json<WebhookList>> {
    let hooks = api.store.list_webhooks(who.scope.customer()).await?;
    Ok(Json(WebhookList {
        items: hooks.iter().map(WebhookView::from).collect(),
    }))
}

/// A subscription to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewWebhook {
    /// http:// or https://; a customer token: a host the operator allowed.
    pub url: String,
    /// Event kinds (docs/EVENTS.md).
    pub events: Vec<String>,
    /// The signing secret (16 to 200 characters); none: a random one, returned once.
    pub secret: Option<String>,
}

/// A subscription just created, with its signing secret: the only time it is shown.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreatedWebhook {
    pub webhook: WebhookView,
    pub secret: String,
}

/// The host of an `http(s)://` URL, or why it is not one the switch posts to.
pub(crate) fn url_host(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("an http:// or https:// URL")?;
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("no spaces or control characters".into());
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err("no user or password in the URL".into());
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, _)) if !h.ends_with(']') && h.contains(':') => (authority, None),
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    if let Some(p) = port
        && !(p.parse::<u16>().is_ok_and(|p| p > 0))
    {
        return Err(format!("{p:?} is not a port"));
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let name_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if !(name_ok || host.parse::<std::net::IpAddr>().is_ok()) {
        return Err(format!("{host:?} is not a host name or address"));
    }
    Ok(host.to_ascii_lowercase())
}

/// Subscribes to events (admin: any kind and URL; a customer token: its own, at an allowed
/// host).
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", request_body = NewWebhook,
    responses((status = 201, body = CreatedWebhook), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn create(
    State(api): State<Api>,
    who: Principal,
    Body(new): Body<NewWebhook>,
) -> ApiResult<(StatusCode, Json<CreatedWebhook>)> {
    let customer = who.scope.customer();
    if customer.is_none() {
        who.admin()?;
    }
    let host = url_host(new.url.trim()).map_err(|e| Problem::invalid("url", e))?;
    if customer.is_some()
        && !api
            .webhook_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(&host))
    {
        return Err(Problem::invalid(
            "url",
            format!("{host} is not a host the operator allows for customers' webhooks"),
        ));
    }
    let (hook, secret) = who
        .store(&api)
        .create_webhook(new.url.trim(), &new.events, new.secret.as_deref(), customer)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedWebhook {
            webhook: WebhookView::from(&hook),
            secret,
        }),
    ))
}

/// One subscription.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = i64, Path)),
    responses((status = 200, body = WebhookView), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn get(
    State(api): State<Api>,
    who: Principal,
    Path(id): Path<i64>,
) -> ApiResult<Json<WebhookView>> {
    Ok(Json(WebhookView::from(&find(&api, &who, id).await?)))
}

/// Deletes a subscription and its delivery log.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn delete(
    State(api): State<Api>,
    who: Principal,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let hook = find(&api, &who, id).await?;
    may_change(&who, &hook)?;
    who.store(&api).delete_webhook(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ActiveChange {
    pub active: bool,
}

/// Turns a subscription on again (its failure count starts afresh) or off.
#[utoipa::path(put, path = "/api/v1/webhooks/{id}/active", tag = "webhooks", params(("id" = i64, Path)),
    request_body = ActiveChange,
    responses((status = 200, body = WebhookView), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn set_active(
    State(api): State<Api>,
    who: Principal,
    Path(id): Path<i64>,
    Body(change): Body<ActiveChange>,
) -> ApiResult<Json<WebhookView>> {
    let hook = find(&api, &who, id).await?;
    may_change(&who, &hook)?;
    let hook = who
        .store(&api)
        .set_webhook_active(id, change.active)
        .await?;
    Ok(Json(WebhookView::from(&hook)))
}

/// One delivery: its state and last attempt.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeliveryView {
    pub id: i64,
    pub webhook_id: i64,
    /// `X-Vts-Delivery`.
    pub delivery: String,
    pub event_seq: i64,
    pub event: String,
    /// pending, delivered or failed.
    pub state: String,
    pub attempts: i64,
    pub created: String,
    /// The next attempt (pending).
    pub next_attempt: Option<String>,
    pub last_attempt: Option<String>,
    pub last_code: Option<i64>,
    pub last_error: Option<String>,
    pub last_latency_ms: Option<i64>,
}

impl From<&Delivery> for DeliveryView {
    fn from(d: &Delivery) -> DeliveryView {
        DeliveryView {
            id: d.id,
            webhook_id: d.webhook_id,
            delivery: d.delivery.clone(),
            event_seq: d.event_seq,
            event: d.kind.clone(),
            state: d.state.clone(),
            attempts: d.attempts,
            created: time(d.created_ms),
            next_attempt: (d.state == "pending").then(|| time(d.next_ms)),
            last_attempt: d.last_ms.map(time),
            last_code: d.last_code,
            last_error: d.last_error.clone(),
            last_latency_ms: d.last_latency_ms,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeliveryPage {
    pub items: Vec<DeliveryView>,
    /// Pass as `before` for the next (older) page.
    pub next_before: Option<i64>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeliveryQuery {
    /// Deliveries older than this id.
    pub before: Option<i64>,
    /// Deliveries a page (1 to 1000, default 100).
    pub limit: Option<u32>,
}

/// A subscription's delivery log, newest first.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = i64, Path), DeliveryQuery),
    responses((status = 200, body = DeliveryPage), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn deliveries(
    State(api): State<Api>,
    who: Principal,
    Path(id): Path<i64>,
    Query(q): Query<DeliveryQuery>,
) -> ApiResult<Json<DeliveryPage>> {
    find(&api, &who, id).await?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Problem::invalid("limit", "1 to 1000"));
    }
    let rows = api.store.deliveries(id, q.before, limit).await?;
    let next_before = (rows.len() == limit as usize)
        .then(|| rows.last().map(|d| d.id))
        .flatten();
    Ok(Json(DeliveryPage {
        items: rows.iter().map(DeliveryView::from).collect(),
        next_before,
    }))
}

/// Sends a delivery again now (the same `X-Vts-Delivery`).
#[utoipa::path(post, path = "/api/v1/webhooks/deliveries/{id}/redeliver", tag = "webhooks",
    params(("id" = i64, Path, description = "Delivery id")),
    responses((status = 200, body = DeliveryView), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn redeliver(
    State(api): State<Api>,
    who: Principal,
    Path(id): Path<i64>,
) -> ApiResult<Json<DeliveryView>> {
    let delivery = api
        .store
        .delivery(id)
        .await?
        .ok_or_else(|| Problem::not_found("delivery"))?;
    let hook = find(&api, &who, delivery.webhook_id)
        .await
        .map_err(|_| Problem::not_found("delivery"))?;
    may_change(&who, &hook)?;
    let d = who.store(&api).redeliver(id).await?;
    Ok(Json(DeliveryView::from(&d)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_name_a_host_and_nothing_else() {
        for (url, host) in [
            ("https://hooks.example.com/vts", "hooks.example.com"),
            ("http://127.0.0.1:8081/in?x=1", "127.0.0.1"),
            ("https://[2001:db8::1]:443/", "2001:db8::1"),
            ("https://Hooks.Example.COM", "hooks.example.com"),
        ] {
            assert_eq!(url_host(url).as_deref(), Ok(host), "{url}");
        }
        for bad in [
            "ftp://x/",
            "https://user:pw@hooks.example.com/",
            "https:///path",
            "https://exa mple.com/",
            "https://hooks.example.com:0/",
            "https://hooks.example.com:99999/",
            "https://bad_host/",
            "javascript:alert(1)",
        ] {
            assert!(url_host(bad).is_err(), "{bad}");
        }
    }
}
