//! `/api/v1/customers`: the customers with their addresses, status, limits, number format,
//! routing mode, plans, billing mode, time zone and header policy. Operators (admin, read)
//! see every customer; a customer token sees its own, and another's id is 404. Each change
//! is one store call (one transaction, audited) and answers with the customer as it is now.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use domain::{
    BillingMode, Customer, CustomerId, CustomerStatus, DialPlanId, InboundFormat, RatePlanId,
    RoutingMode,
};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::Api;
use super::auth::Principal;
use super::input::{Body, money, parse_money};
use super::problem::{ApiResult, Problem};

/// `Option<Option<T>>` from JSON: absent is `None` (left as it is), `null` is `Some(None)`.
pub(crate) fn double<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A customer as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct CustomerView {
    pub id: i64,
    pub name: String,
    /// active, suspended or blocked.
    pub status: String,
    pub status_reason: Option<String>,
    /// Source addresses and networks (CIDR).
    pub ips: Vec<String>,
    /// Calls at once; null: unlimited.
    pub max_channels: Option<u32>,
    /// New calls a second; null: unlimited.
    pub max_cps: Option<u32>,
    pub daily_minutes: Option<u32>,
    pub monthly_minutes: Option<u32>,
    /// e164, national or auto.
    pub number_format: String,
    pub country_code: Option<String>,
    pub forced_cli: Option<String>,
    pub dial_plan_id: Option<i64>,
    /// priority or lcr.
    pub routing: String,
    pub rate_plan_id: Option<i64>,
    /// off, prepaid or postpaid.
    pub billing: String,
    /// Postpaid: how far below zero the balance may go (millionths).
    pub credit_limit_minor: i64,
    pub credit_limit: String,
    /// The mark below which the balance raises `balance.low` (millionths), if any.
    pub low_balance_minor: Option<i64>,
    /// IANA time zone of the customer's days and months.
    pub timezone: String,
    pub trusted: bool,
    pub hide_topology: bool,
}

impl From<&Customer> for CustomerView {
    fn from(c: &Customer) -> CustomerView {
        let (credit_limit_minor, credit_limit) = money(c.credit_limit);
        CustomerView {
            id: c.id.0,
            name: c.name.clone(),
            status: if c.active {
                c.status.as_str().to_string()
            } else {
                "suspended".to_string()
            },
            status_reason: c.status_reason.clone(),
            ips: c.ips.iter().map(IpNet::to_string).collect(),
            max_channels: c.max_channels,
            max_cps: c.max_cps,
            daily_minutes: c.daily_minutes,
            monthly_minutes: c.monthly_minutes,
            number_format: c.number_format.as_str().to_string(),
            country_code: c.country_code.clone(),
            forced_cli: c.forced_cli.clone(),
            dial_plan_id: c.dial_plan.map(|p| p.0),
            routing: c.routing.as_str().to_string(),
            rate_plan_id: c.rate_plan.map(|p| p.0),
            billing: c.billing.as_str().to_string(),
            credit_limit_minor,
            credit_limit,
            low_balance_minor: c.low_balance.map(|m| m.0),
            timezone: c.timezone.name().to_string(),
            trusted: c.trusted,
            hide_topology: c.hide_topology,
        }
    }
}

/// A list of customers.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CustomerList {
    pub items: Vec<CustomerView>,
}

/// The customer `id` as the caller may see it.
pub(crate) async fn find(api: &Api, who: &Principal, id: i64) -> ApiResult<Customer> {
    who.customer(CustomerId(id), "customer")?;
    api.store
        .list_customers()
        .await?
        .into_iter()
        .find(|c| c.id.0 == id)
        .ok_or_else(|| Problem::not_found("customer"))
}

async fn view(api: &Api, who: &Principal, id: i64) -> ApiResult<Json<CustomerView>> {
    Ok(Json(CustomerView::from(&find(api, who, id).await?)))
}

/// Every customer the token may see.
#[utoipa::path(get, path = "/api/v1/customers", tag = "customers",
    responses((status = 200, body = CustomerList), (status = 401, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn list(State(api): State<Api>, who: Principal) -> ApiResult<Json<CustomerList>> {
    let items = api
        .store
        .list_customers()
        .await?
        .iter()
        .filter(|c| who.scope.sees_customer(c.id))
        .map(CustomerView::from)
        .collect();
    Ok(Json(CustomerList { items }))
}

/// A customer to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewCustomer {
    pub name: String,
    /// Source addresses or networks (CIDR), at least one.
    pub ips: Vec<String>,
    pub max_channels: Option<u32>,
    pub max_cps: Option<u32>,
}

/// Adds a customer (admin).
#[utoipa::path(post, path = "/api/v1/customers", tag = "customers", request_body = NewCustomer,
    responses((status = 201, body = CustomerView), (status = 400, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn create(
    State(api): State<Api>,
    who: Principal,
    Body(new): Body<NewCustomer>,
) -> ApiResult<(StatusCode, Json<CustomerView>)> {
    who.admin()?;
    if new.ips.is_empty() {
        return Err(Problem::invalid("ips", "at least one address or network"));
    }
    let ips = new
        .ips
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            parse_net(ip).ok_or_else(|| {
                Problem::invalid(
                    &format!("ips[{i}]"),
                    format!("{ip:?} is not an address or network (CIDR)"),
                )
            })
        })
        .collect::<ApiResult<Vec<IpNet>>>()?;
    let id = who
        .store(&api)
        .add_customer(&store::NewCustomer {
            name: new.name,
            ips,
            max_channels: new.max_channels,
            max_cps: new.max_cps,
        })
        .await?;
    Ok((StatusCode::CREATED, view(&api, &who, id.0).await?))
}

/// An address (a host network) or a network.
pub(crate) fn parse_net(text: &str) -> Option<IpNet> {
    let t = text.trim();
    t.parse::<IpNet>()
        .ok()
        .or_else(|| t.parse::<std::net::IpAddr>().ok().map(IpNet::from))
}

/// One customer.
#[utoipa::path(get, path = "/api/v1/customers/{id}", tag = "customers",
    params(("id" = i64, Path, description = "Customer id")),
    responses((status = 200, body = CustomerView), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn get(
    State(api): State<Api>,
    who: Principal,
    Path(id): Path<i64>,
) -> ApiResult<Json<CustomerView>> {
    view(&api, &who, id).await
}

/// A status change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatusChange {
    /// active, suspended or blocked.
    pub status: String,
    /// Why (suspended, blocked), at most 500 characters.
    pub reason: Option<String>,
}

/// Suspends, blocks or activates a customer (admin): its next call reads it.
#[utoipa::path(post, path = "/api/v1/customers/{id}/status", tag = "customers",
    params(("id" = i64, Path)), request_body = StatusChange,
    responses((status = 200, body = CustomerView), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn set_status(
    State(api): State<Api>,
    who: Principal,
    Path(id): Path<i64>,
    Body(change): Body<StatusChange>,
) -> ApiResult<Json<CustomerView>> {
    find(&api, &who, id).await?;
    who.admin()?;
    let status = match change.status.trim() {
        "active" => CustomerStatus::Active,
        "suspended" => CustomerStatus::Suspended,
        "blocked" => CustomerStatus::Blocked,
        other => {
            return Err(Problem::invalid(
                "status",
                format!("{other:?}: active, suspended or blocked"),
            ));
        }
    };
    who.store(&api)
        .set_customer_status(CustomerId(id), status, change.reason.as_deref())
        .await?;
    view(&api, &who, id).await
}

/// Limits to change: a field left out stays as it is; `null` makes it unlimited.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LimitsChange {
    #[serde(default, deserialize_with = "double")]
    #[schema(value_type = Option<u32>, nullable)]
    pub max_channels: Option<Option<u32>>,
    #[serde(default, deserialize_with = "double")]
    #[schema(value_type = Option<u32>, nullable)]
    pub max_cps: Option<Option<u32>>,
    #[serde(default, deserialize_with = "double")]
    #[schema(value_type = Option<u32>, nullable)]
    pub daily_minutes: Option<Option<u32>>,
    #[serde(default, deserialize_with = "double")]
    #[schema(value_type = Option<u32>, nullable)]
    pub monthly_minutes: Option<Option<u32>>,
}

/// Changes a customer's limits (admin).
#[utoipa::path(put, path = "/api/v1/customers/{id}/limits", tag = "customers",
    params(("id" = i64, Path)), request_body = LimitsChange,
    responses((status = 200, body = CustomerView), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn set_limits(
    State(api): State<Api>,
    who: Principal,
    Path(id): Path<i64>,
    Body(change): Body<LimitsChange>,
) -> ApiResult<Json<CustomerView>> {
    find(&api, &who, id).await?;
    who.admin()?;
    who.store(&api)
        .set_customer_limits(
            CustomerId(id),
            &store::LimitsChange {
                max_channels: change.max_channels,
                max_cps: change.max_cps,
                daily_minutes: change.daily_minutes,
                monthly_minutes: change.monthly_minutes,
            },
        )
        .await?;
    view(&api, &who, id).await
}

/// How the customer's numbers are read: a field left out stays; `null` clears it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NumbersChange {
    /// e164, national or auto.
    pub format: Option<String>,
    #[serde(default, deserialize_with = "double")]
    #[schema(value_type = Option<String>, nullable)]
    pub country_code: Option<Option<String>>,
    #[serde(default, deserialize_with = "double")]
    #[schema(value_type = Option<String>, nullable)]
    pub forced_cli: Option<Option<String>>,
}

/// Changes how a customer's numbers are read (admin).
#[utoipa::path(put, path = "/api/v1/customers/{id}/numbers", tag = "customers",
    params(("id" = i64, Path)), request_body = NumbersChange,
    responses((status = 200, body = CustomerView), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn set_numbers(
    State(api): State<Api>,
    who: Principal,
    Path(id): Path<i64>,
    Body(change): Body<NumbersChange>,
) -> ApiResult<Json<CustomerView>> {
    find(&api, &who, id).await?;
    who.admin()?;
    let format = change
        .format
        .as_deref()
        .map(|f| {
            f.parse::<InboundFormat>()
                .map_err(|e| Problem::invalid("format", e.message()))
        })
        .transpose()?;
    who.store(&api)
        .set_customer_numbers(
            CustomerId(id),
            &store::NumbersChange {
                format,
                country_code: change.country_code,
                forced_cli: change.forced_cli,
            },
        )
        .await?;
    view(&api, &who, id).await
}

/// A routing mode.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoutingChange {
    /// priority or lcr.
    pub mode: String,
}

/// Changes how a customer's calls choose carriers (admin).
#[utoipa::path(put, path = "/api/v1/customers/{id}/routing", tag = "customers",
    params(("id" = i64, Path)), request_body = RoutingChange,
    responses((status = 200, body = CustomerView), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn set_routing(
    State(api): State<Api>,
    who: Principal,
    Path(id): Path<i64>,
    Body(change): Body<RoutingChange>,
) -> ApiResult<Json<CustomerView>> {
    find(&api, &who, id).await?;
    who.admin()?;
    let mode = change
        .mode
        .parse::<RoutingMode>()
        .map_err(|e| Problem::invalid("mode", e.message()))?;
    who.store(&api)
        .set_customer_routing(CustomerId(id), mode)
        .await?;
    view(&api, &who, id).await
}

/// A plan to give a customer (`null`: none).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlanChange {
    pub plan_id: Option<i64>,
}

/// Gives a customer a dialing plan, or none (admin).
#[utoipa::path(put, path = "/api/v1/customers/{id}/dial-plan", tag = "customers",
    params(("id" = i64, Path)), request_body = PlanChange,
    responses((status = 200, body = CustomerView), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn set_dial_plan(
    State(api): State<Api>,
    who: Principal,
    Path(id): Path<i64>,
    Body(change): Body<PlanChange>,
) -> ApiResult<Json<CustomerView>> {
    find(&api, &who, id).await?;
    who.admin()?;
    who.store(&api)
        .set_customer_dial_plan(CustomerId(id), change.plan_id.map(DialPlanId))
        .await?;
    view(&api, &who, id).await
}

/// Gives a customer a rate plan, or none (admin).
#[utoipa::path(put, path = "/api/v1/customers/{id}/rate-plan", tag = "customers",
    params(("id" = i64, Path)), request_body = PlanChange,
    responses((status = 200, body = CustomerView), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn set_rate_plan(
    State(api): State<Api>,
    who: Principal,
    Path(id): Path<i64>,
    Body(change): Body<PlanChange>,
) -> ApiResult<Json<CustomerView>> {
    find(&api, &who, id).await?;
    who.admin()?;
    who.store(&api)
        .set_customer_rate_plan(CustomerId(id), change.plan_id.map(RatePlanId))
        .await?;
    view(&api, &who, id).await
}

/// How a customer pays.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BillingChange {
    /// off, prepaid or postpaid.
    pub mode: String,
    /// Postpaid: how far below zero the balance may go, a decimal amount (default 0).
    pub credit_limit: Option<String>,
    /// A charge that leaves nothing to spend suspends the customer (default true).
    pub suspend_at_zero: Option<bool>,
    /// A `balance.low` event when the balance goes from above this decimal amount to at or
    /// below it (default: none).
    pub low_balance: Option<String>,
}

/// Changes how a customer pays (admin).
#[utoipa::path(put, path = "/api/v1/customers/{id}/billing", tag = "customers",
    params(("id" = i64, Path)), request_body = BillingChange,
    responses((status = 200, body = CustomerView), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn set_billing(
    State(api): State<Api>,
    who: Principal,
    Path(id): Path<i64>,
    Body(change): Body<BillingChange>,
) -> ApiResult<Json<CustomerView>> {
    find(&api, &who, id).await?;
    who.admin()?;
    let mode = change
        .mode
        .parse::<BillingMode>()
        .map_err(|e| Problem::invalid("mode", e.message()))?;
    let limit = match change.credit_limit.as_deref() {
        Some(t) => parse_money("credit_limit", t, false)?,
        None => domain::Money(0),
    };
    who.store(&api)
        .set_customer_billing(
            CustomerId(id),
            mode,
            limit,
            change.suspend_at_zero.unwrap_or(true),
            change
                .low_balance
                .as_deref()
                .map(|t| parse_money("low_balance", t, true))
                .transpose()?,
        )
        .await?;
    view(&api, &who, id).await
}

/// A time zone.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TimezoneChange {
    /// An IANA name (Europe/Madrid, UTC).
    pub zone: String,
}

/// Sets the zone of a customer's days and months (admin).
#[utoipa::path(put, path = "/api/v1/customers/{id}/timezone", tag = "customers",
    params(("id" = i64, Path)), request_body = TimezoneChange,
    responses((status = 200, body = CustomerView), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn set_timezone(
    State(api): State<Api>,
    who: Principal,
    Path(id): Path<i64>,
    Body(change): Body<TimezoneChange>,
) -> ApiResult<Json<CustomerView>> {
    find(&api, &who, id).await?;
    who.admin()?;
    who.store(&api)
        .set_customer_timezone(CustomerId(id), &change.zone)
        .await?;
    view(&api, &who, id).await
}

/// A header policy: a field left out stays as it is.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct HeadersChange {
    /// The customer's identity headers reach carriers.
    pub trusted: Option<bool>,
    /// Carriers do not see the customer's Vias or User-Agent.
    pub hide_topology: Option<bool>,
}

/// Changes which headers cross between the customer and carriers (admin).
#[utoipa::path(put, path = "/api/v1/customers/{id}/headers", tag = "customers",
    params(("id" = i64, Path)), request_body = HeadersChange,
    responses((status = 200, body = CustomerView), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn set_headers(
    State(api): State<Api>,
    who: Principal,
    Path(id): Path<i64>,
    Body(change): Body<HeadersChange>,
) -> ApiResult<Json<CustomerView>> {
    find(&api, &who, id).await?;
    who.admin()?;
    who.store(&api)
        .set_customer_headers(CustomerId(id), change.trusted, change.hide_topology)
        .await?;
    view(&api, &who, id).await
}
