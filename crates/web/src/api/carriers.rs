//! `/api/v1/carriers`: carriers with their limits, timers, prefix lists, number profile,
//! health and rates. Operators only (admin and read): a customer token gets 403.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use domain::{Carrier, CarrierId, Transport};
use serde::{Deserialize, Serialize};
use store::RateOwner;
use utoipa::ToSchema;

use super::Api;
use super::auth::Principal;
use super::customers::double;
use super::input::{Body, money, time};
use super::problem::{ApiResult, Problem};

/// A carrier as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CarrierView {
    pub id: i64,
    pub name: String,
    pub host: String,
    pub port: u16,
    /// udp or tcp.
    pub transport: String,
    pub priority: i32,
    pub weight: i32,
    pub active: bool,
    pub max_channels: Option<u32>,
    pub max_cps: Option<u32>,
    pub first_response_ms: Option<u32>,
    pub ring_timeout_s: Option<u32>,
    /// Destination prefixes it takes (empty: every destination but the denied).
    pub allow: Vec<String>,
    pub deny: Vec<String>,
    /// Offered codecs it takes (empty: the offer as it is).
    pub codecs: Vec<String>,
    pub hide_topology: bool,
    /// up, suspect or down, as the OPTIONS probes last saw it (up until probed).
    pub health: String,
}

impl CarrierView {
    fn new(c: &Carrier, health: domain::Health) -> CarrierView {
        CarrierView {
            id: c.id.0,
            name: c.name.clone(),
            host: c.host.clone(),
            port: c.port,
            transport: c.transport.as_str().to_string(),
            priority: c.priority,
            weight: c.weight,
            active: c.active,
            max_channels: c.max_channels,
            max_cps: c.max_cps,
            first_response_ms: c.first_response_ms,
            ring_timeout_s: c.ring_timeout_s,
            allow: c.allow.clone(),
            deny: c.deny.clone(),
            codecs: c.codecs.clone(),
            hide_topology: c.hide_topology,
            health: health.as_str().to_string(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CarrierList {
    pub items: Vec<CarrierView>,
}

/// Every carrier with its health.
async fn all(api: &Api) -> ApiResult<Vec<CarrierView>> {
    let health = api.store.carrier_health().await?;
    let live = api.live.as_ref().map(|l| l.status.borrow().health.clone());
    Ok(api
        .store
        .list_carriers()
        .await?
        .iter()
        .map(|c| {
            let h = live
                .as_ref()
                .and_then(|l| l.get(&c.id).copied())
                .or_else(|| health.get(&c.id).map(|(h, _)| *h))
                .unwrap_or_default();
            CarrierView::new(c, h)
        })
        .collect())
}

async fn one(api: &Api, id: i64) -> ApiResult<Json<CarrierView>> {
    all(api)
        .await?
        .into_iter()
        .find(|c| c.id == id)
        .map(Json)
        .ok_or_else(|| Problem::not_found("carrier"))
}

/// Every carrier, in routing order.
#[utoipa::path(get, path = "/api/v1/carriers", tag = "carriers",
    responses((status = 200, body = CarrierList), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn list(State(api): State<Api>, who: Principal) -> ApiResult<Json<CarrierList>> {
    who.operator()?;
    Ok(Json(CarrierList {
        items: all(&api).await?,
    }))
}

/// A carrier to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewCarrier {
    pub name: String,
    /// An IP address (the switch does not resolve names for calls).
    pub host: String,
    /// Default 5060.
    pub port: Option<u16>,
    /// udp (default) or tcp.
    pub transport: Option<String>,
    /// Higher is tried first (default 0).
    pub priority: Option<i32>,
    /// Share among equal priorities (default 1).
    pub weight: Option<i32>,
    pub max_channels: Option<u32>,
    pub max_cps: Option<u32>,
    pub first_response_ms: Option<u32>,
    pub ring_timeout_s: Option<u32>,
}

/// Adds a carrier (admin).
#[utoipa::path(post, path = "/api/v1/carriers", tag = "carriers", request_body = NewCarrier,
    responses((status = 201, body = CarrierView), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn create(
    State(api): State<Api>,
    who: Principal,
    Body(new): Body<NewCarrier>,
) -> ApiResult<(StatusCode, Json<CarrierView>)> {
    who.operator()?;
    who.admin()?;
    let transport = match new.transport.as_deref() {
        None => Transport::Udp,
        Some(t) => t
            .parse::<Transport>()
            .map_err(|e| Problem::invalid("transport", e.message()))?,
    };
    let id = who
        .store(&api)
        .add_carrier(&store::NewCarrier {
            name: new.name,
            host: new.host,
            port: new.port.unwrap_or(5060),
            transport,
            priority: new.priority.unwrap_or(0),
            weight: new.weight.unwrap_or(1),
            max_channels: new.max_channels,
            max_cps: new.max_cps,
            first_response_ms: new.first_response_ms,
            ring_timeout_s: new.ring_timeout_s,
        })
        .await?;
    Ok((StatusCode::CREATED, one(&api, id.0).await?))
}

/// One carrier.
#[utoipa::path(get, path = "/api/v1/carriers/{id}", tag = "carriers",
    params(("id" = i64, Path)),
    responses((status = 200, body = CarrierView), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn get(
    State(api): State<Api>,
    who: Principal,
    Path(id): Path<i64>,
) -> ApiResult<Json<CarrierView>> {
    who.operator()?;
    one(&api, id).await
}

/// Limits and timers to change: left out stays; `null` is unlimited (or the switch's
/// default timer).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CarrierLimitsChange {
    #[serde(default, deserialize_with = "double")]
    #[schema(value_type = Option<u32>, nullable)]
    pub max_channels: Option<Option<u32>>,
    #[serde(default, deserialize_with = "double")]
    #[schema(value_type = Option<u32>, nullable)]
    pub max_cps: Option<Option<u32>>,
    #[serde(default, deserialize_with = "double")]
    #[schema(value_type = Option<u32>, nullable)]
    pub first_response_ms: Option<Option<u32>>,
    #[serde(default, deserialize_with = "double")]
    #[schema(value_type = Option<u32>, nullable)]
    pub ring_timeout_s: Option<Option<u32>>,
}

/// Changes a carrier's limits and timers (admin).
#[utoipa::path(put, path = "/api/v1/carriers/{id}/limits", tag = "carriers",
    params(("id" = i64, Path)), request_body = CarrierLimitsChange,
    responses((status = 200, body = CarrierView), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn set_limits(
    State(api): State<Api>,
    who: Principal,
    Path(id): Path<i64>,
    Body(change): Body<CarrierLimitsChange>,
) -> ApiResult<Json<CarrierView>> {
    who.operator()?;
    who.admin()?;
    who.store(&api)
        .set_carrier_limits(
            CarrierId(id),
            &store::CarrierLimitsChange {
                max_channels: change.max_channels,
                max_cps: change.max_cps,
                first_response_ms: change.first_response_ms,
                ring_timeout_s: change.ring_timeout_s,
            },
        )
        .await?;
    one(&api, id).await
}

/// Whether a carrier takes calls.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ActiveChange {
    pub active: bool,
}

/// Takes a carrier out of routing and probing, or back in (admin).
#[utoipa::path(put, path = "/api/v1/carriers/{id}/active", tag = "carriers",
    params(("id" = i64, Path)), request_body = ActiveChange,
    responses((status = 200, body = CarrierView), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn set_active(
    State(api): State<Api>,
    who: Principal,
    Path(id): Path<i64>,
    Body(change): Body<ActiveChange>,
) -> ApiResult<Json<CarrierView>> {
    who.operator()?;
    who.admin()?;
    who.store(&api)
        .set_carrier_active(CarrierId(id), change.active)
        .await?;
    one(&api, id).await
}

/// One rate.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RateView {
    pub prefix: String,
    pub per_minute_minor: i64,
    pub per_minute: String,
    pub connection_fee_minor: i64,
    pub increment_s: u32,
    pub minimum_s: u32,
    /// In force from.
    pub effective: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RateList {
    pub items: Vec<RateView>,
}

/// A carrier's rates, by prefix then effective time.
#[utoipa::path(get, path = "/api/v1/carriers/{id}/rates", tag = "carriers",
    params(("id" = i64, Path)),
    responses((status = 200, body = RateList), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn rates(
    State(api): State<Api>,
    who: Principal,
    Path(id): Path<i64>,
) -> ApiResult<Json<RateList>> {
    who.operator()?;
    let _carrier = one(&api, id).await?;
    let rates = api
        .store
        .list_rates(RateOwner::Carrier(CarrierId(id)))
        .await?;
    Ok(Json(RateList {
        items: rates
            .iter()
            .map(|r| {
                let (per_minute_minor, per_minute) = money(r.per_minute);
                RateView {
                    prefix: r.prefix.clone(),
                    per_minute_minor,
                    per_minute,
                    connection_fee_minor: r.connection_fee.0,
                    increment_s: r.increment_s,
                    minimum_s: r.minimum_s,
                    effective: time(r.effective_ms),
                }
            })
            .collect(),
    }))
}
