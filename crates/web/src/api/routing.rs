//! The routing tables: dialing plans and their rules, rate plans, rate sheets (a carrier's
//! costs, a customer's own prices, a rate plan's prices: CSV in, all or none, with a dry run
//! that returns the difference), a carrier's prefix lists, number profile and header policy,
//! a customer's addresses, and usage per day or month. Operators read them (a customer token
//! its own addresses and usage); changes need an admin token.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use domain::{
    CarrierId, CustomerId, DialPlanId, NumberProfile, OutboundFormat, Pattern, Rate, RatePlanId,
};
use serde::{Deserialize, Serialize};
use store::RateOwner;
use utoipa::ToSchema;

use super::Api;
use super::auth::Principal;
use super::customers::{CustomerView, find as find_customer, parse_net};
use super::input::{Body, Query, money, time};
use super::problem::{ApiResult, FieldError, Problem};

/// A dialing plan with its rules.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DialPlanView {
    pub id: i64,
    pub name: String,
    /// What a number no rule matches gets.
    pub default_allow: bool,
    /// Premium-rate and international-network destinations are refused before any rule.
    pub block_premium: bool,
    pub rules: Vec<DialRuleView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DialRuleView {
    pub id: i64,
    pub priority: i32,
    /// Digits as a prefix, `*` for any run, `?` for one digit.
    pub pattern: String,
    pub allow: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DialPlanList {
    pub items: Vec<DialPlanView>,
}

async fn dial_plans(api: &Api) -> ApiResult<Vec<DialPlanView>> {
    Ok(api
        .store
        .list_dial_plans()
        .await?
        .iter()
        .map(|p| DialPlanView {
            id: p.id.0,
            name: p.name.clone(),
            default_allow: p.default_allow,
            block_premium: p.block_premium,
            rules: p
                .rules
                .iter()
                .map(|r| DialRuleView {
                    id: r.id,
                    priority: r.priority,
                    pattern: r.pattern.as_str().to_string(),
                    allow: r.allow,
                })
                .collect(),
        })
        .collect())
}

async fn dial_plan(api: &Api, id: i64) -> ApiResult<Json<DialPlanView>> {
    dial_plans(api)
        .await?
        .into_iter()
        .find(|p| p.id == id)
        .map(Json)
        .ok_or_else(|| Problem::not_found("dialing plan"))
}

/// Every dialing plan with its rules.
#[utoipa::path(get, path = "/api/v1/dial-plans", tag = "routing",
    responses((status = 200, body = DialPlanList), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn list_dial_plans(
    State(api): State<Api>,
    who: Principal,
) -> ApiResult<Json<DialPlanList>> {
    who.operator()?;
    Ok(Json(DialPlanList {
        items: dial_plans(&api).await?,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewDialPlan {
    pub name: String,
    /// allow or deny what no rule matches (default allow).
    pub default_allow: Option<bool>,
    /// Refuse premium-rate destinations before any rule (default false).
    pub block_premium: Option<bool>,
}

/// Adds a dialing plan (admin).
#[utoipa::path(post, path = "/api/v1/dial-plans", tag = "routing", request_body = NewDialPlan,
    responses((status = 201, body = DialPlanView), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn create_dial_plan(
    State(api): State<Api>,
    who: Principal,
    Body(new): Body<NewDialPlan>,
) -> ApiResult<(StatusCode, Json<DialPlanView>)> {
    who.operator()?;
    who.admin()?;
    let id = who
        .store(&api)
        .add_dial_plan(
            &new.name,
            new.default_allow.unwrap_or(true),
            new.block_premium.unwrap_or(false),
        )
        .await?;
    Ok((StatusCode::CREATED, dial_plan(&api, id.0).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewDialRule {
    /// Digits as a prefix, or with `*` (any digits) and `?` (one digit).
    pub pattern: String,
    pub allow: bool,
    /// Lower first (default 100).
    pub priority: Option<i32>,
}

/// Adds a rule to a dialing plan (admin); answers with the plan.
#[utoipa::path(post, path = "/api/v1/dial-plans/{id}/rules", tag = "routing",
    params(("id" = i64, Path)), request_body = NewDialRule,
    responses((status = 201, body = DialPlanView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn add_dial_rule(
    State(api): State<Api>,
    who: Principal,
    Path(id): Path<i64>,
    Body(rule): Body<NewDialRule>,
) -> ApiResult<(StatusCode, Json<DialPlanView>)> {
    who.operator()?;
    who.admin()?;
    let pattern =
        Pattern::parse(&rule.pattern).map_err(|e| Problem::invalid("pattern", e.message()))?;
    who.store(&api)
        .add_dial_rule(
            DialPlanId(id),
            rule.priority.unwrap_or(100),
            &pattern,
            rule.allow,
        )
        .await?;
    Ok((StatusCode::CREATED, dial_plan(&api, id).await?))
}

/// Removes a rule (admin).
#[utoipa::path(delete, path = "/api/v1/dial-plans/rules/{rule}", tag = "routing",
    params(("rule" = i64, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn remove_dial_rule(
    State(api): State<Api>,
    who: Principal,
    Path(rule): Path<i64>,
) -> ApiResult<StatusCode> {
    who.operator()?;
    who.admin()?;
    if who.store(&api).remove_dial_rule(rule).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found("rule"))
    }
}

/// A rate plan.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RatePlanView {
    pub id: i64,
    pub name: String,
    /// Price = cost × (1 + markup) where the plan has no rate, as a percentage.
    pub markup_percent: String,
    /// Rates it holds.
    pub rates: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RatePlanList {
    pub items: Vec<RatePlanView>,
}

async fn rate_plans(api: &Api) -> ApiResult<Vec<RatePlanView>> {
    let plans = api.store.list_rate_plans().await?;
    let mut out = Vec::with_capacity(plans.len());
    for p in &plans {
        let rates = api.store.list_rates(RateOwner::Plan(p.id)).await?.len();
        out.push(RatePlanView {
            id: p.id.0,
            name: p.name.clone(),
            markup_percent: format!("{}.{:04}", p.markup_ppm / 10_000, p.markup_ppm % 10_000),
            rates,
        });
    }
    Ok(out)
}

/// Every rate plan.
#[utoipa::path(get, path = "/api/v1/rate-plans", tag = "routing",
    responses((status = 200, body = RatePlanList), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn list_rate_plans(
    State(api): State<Api>,
    who: Principal,
) -> ApiResult<Json<RatePlanList>> {
    who.operator()?;
    Ok(Json(RatePlanList {
        items: rate_plans(&api).await?,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewRatePlan {
    pub name: String,
    /// The markup on cost where the plan has no rate, a percentage (`"25"`, `"12.5"`; default 0).
    pub markup_percent: Option<String>,
}

/// Adds a rate plan (admin).
#[utoipa::path(post, path = "/api/v1/rate-plans", tag = "routing", request_body = NewRatePlan,
    responses((status = 201, body = RatePlanView), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn create_rate_plan(
    State(api): State<Api>,
    who: Principal,
    Body(new): Body<NewRatePlan>,
) -> ApiResult<(StatusCode, Json<RatePlanView>)> {
    who.operator()?;
    who.admin()?;
    let ppm = match new.markup_percent.as_deref() {
        None => 0,
        Some(t) => {
            let m = domain::Money::parse(t)
                .map_err(|e| Problem::invalid("markup_percent", e.message()))?;
            // Money keeps six decimals: a percentage p is p × 10,000 ppm.
            u32::try_from(m.0 / 100)
                .map_err(|_| Problem::invalid("markup_percent", "at most 10000"))?
        }
    };
    let id = who.store(&api).add_rate_plan(&new.name, ppm).await?;
    let view = rate_plans(&api)
        .await?
        .into_iter()
        .find(|p| p.id == id.0)
        .ok_or_else(|| Problem::not_found("rate plan"))?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// One rate of a sheet, as the difference names it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SheetRate {
    pub prefix: String,
    pub per_minute_minor: i64,
    pub per_minute: String,
    pub connection_fee_minor: i64,
    pub increment_s: u32,
    pub minimum_s: u32,
    pub effective: String,
}

impl From<&Rate> for SheetRate {
    fn from(r: &Rate) -> SheetRate {
        let (per_minute_minor, per_minute) = money(r.per_minute);
        SheetRate {
            prefix: r.prefix.clone(),
            per_minute_minor,
            per_minute,
            connection_fee_minor: r.connection_fee.0,
            increment_s: r.increment_s,
            minimum_s: r.minimum_s,
            effective: time(r.effective_ms),
        }
    }
}

/// A rate the sheet changes: as stored, and as the sheet has it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ChangedRate {
    pub before: SheetRate,
    pub after: SheetRate,
}

/// What an import does (or, as a dry run, would do).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ImportResult {
    pub dry_run: bool,
    /// Rows in the sheet.
    pub rows: usize,
    /// Prefix and effective time not stored yet.
    pub added: Vec<SheetRate>,
    pub changed: Vec<ChangedRate>,
    /// Rows equal to what is stored.
    pub unchanged: usize,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImportQuery {
    /// Only compute the difference; change nothing.
    pub dry_run: Option<bool>,
}

/// The rate sheet in a request (`text/csv`), every row checked.
fn sheet(headers: &HeaderMap, body: &Bytes) -> ApiResult<Vec<Rate>> {
    let csv = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/csv"));
    if !csv {
        return Err(Problem::bad_request(
            "a rate sheet is CSV (Content-Type: text/csv): prefix, rate, connection fee, increment, minimum, effective date",
        ));
    }
    accounting::rate_sheet::parse(body.as_ref()).map_err(|e| {
        let mut p = Problem::invalid("body", e.to_string());
        if let Some(line) = e.line() {
            p.errors = vec![FieldError {
                field: format!("line {line}"),
                message: e.to_string(),
            }];
        }
        p
    })
}

/// The sheet against what `owner` has stored, then (unless a dry run) the import.
async fn import(
    api: &Api,
    who: &Principal,
    owner: RateOwner,
    dry_run: bool,
    rates: Vec<Rate>,
) -> ApiResult<Json<ImportResult>> {
    let stored = api.store.list_rates(owner).await?;
    let index: std::collections::HashMap<(&str, i64), &Rate> = stored
        .iter()
        .map(|r| ((r.prefix.as_str(), r.effective_ms), r))
        .collect();
    let mut result = ImportResult {
        dry_run,
        rows: rates.len(),
        added: Vec::new(),
        changed: Vec::new(),
        unchanged: 0,
    };
    for r in &rates {
        match index.get(&(r.prefix.as_str(), r.effective_ms)) {
            None => result.added.push(SheetRate::from(r)),
            Some(old) if *old == r => result.unchanged += 1,
            Some(old) => result.changed.push(ChangedRate {
                before: SheetRate::from(*old),
                after: SheetRate::from(r),
            }),
        }
    }
    if !dry_run {
        who.store(api).import_rates(owner, &rates).await?;
    }
    Ok(Json(result))
}

/// Imports a carrier's rates from CSV (admin), all or none; `dry_run=true` changes nothing.
#[utoipa::path(post, path = "/api/v1/carriers/{id}/rates", tag = "routing",
    params(("id" = i64, Path), ImportQuery),
    request_body(content = String, content_type = "text/csv", description = "prefix,rate,connection_fee,increment,minimum,effective"),
    responses((status = 200, body = ImportResult), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn import_carrier_rates(
    State(api): State<Api>,
    who: Principal,
    Path(id): Path<i64>,
    Query(q): Query<ImportQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<ImportResult>> {
    who.operator()?;
    who.admin()?;
    let rates = sheet(&headers, &body)?;
    if !api
        .store
        .list_carriers()
        .await?
        .iter()
        .any(|c| c.id.0 == id)
    {
        return Err(Problem::not_found("carrier"));
    }
    import(
        &api,
        &who,
        RateOwner::Carrier(CarrierId(id)),
        q.dry_run.unwrap_or(false),
        rates,
    )
    .await
}

/// Imports a customer's own rates (its sell prices) from CSV (admin).
#[utoipa::path(post, path = "/api/v1/customers/{id}/rates", tag = "routing",
    params(("id" = i64, Path), ImportQuery),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = ImportResult), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn import_customer_rates(
    State(api): State<Api>,
    who: Principal,
    Path(id): Path<i64>,
    Query(q): Query<ImportQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<ImportResult>> {
    find_customer(&api, &who, id).await?;
    who.admin()?;
    let rates = sheet(&headers, &body)?;
    import(
        &api,
        &who,
        RateOwner::Customer(CustomerId(id)),
        q.dry_run.unwrap_or(false),
        rates,
    )
    .await
}

/// Imports a rate plan's rates from CSV (admin).
#[utoipa::path(post, path = "/api/v1/rate-plans/{id}/rates", tag = "routing",
    params(("id" = i64, Path), ImportQuery),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = ImportResult), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn import_plan_rates(
    State(api): State<Api>,
    who: Principal,
    Path(id): Path<i64>,
    Query(q): Query<ImportQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<ImportResult>> {
    who.operator()?;
    who.admin()?;
    let rates = sheet(&headers, &body)?;
    if !api
        .store
        .list_rate_plans()
        .await?
        .iter()
        .any(|p| p.id.0 == id)
    {
        return Err(Problem::not_found("rate plan"));
    }
    import(
        &api,
        &who,
        RateOwner::Plan(RatePlanId(id)),
        q.dry_run.unwrap_or(false),
        rates,
    )
    .await
}

/// Prefixes to add to or remove from a carrier's list.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PrefixChange {
    /// allow or deny.
    pub list: String,
    /// Digits.
    pub prefixes: Vec<String>,
}

fn which_list(list: &str) -> ApiResult<bool> {
    match list.trim() {
        "allow" => Ok(true),
        "deny" => Ok(false),
        other => Err(Problem::invalid(
            "list",
            format!("{other:?}: allow or deny"),
        )),
    }
}

/// Adds destination prefixes to a carrier's allow or deny list (admin).
#[utoipa::path(post, path = "/api/v1/carriers/{id}/prefixes", tag = "routing",
    params(("id" = i64, Path)), request_body = PrefixChange,
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn add_prefixes(
    State(api): State<Api>,
    who: Principal,
    Path(id): Path<i64>,
    Body(change): Body<PrefixChange>,
) -> ApiResult<StatusCode> {
    who.operator()?;
    who.admin()?;
    let allow = which_list(&change.list)?;
    who.store(&api)
        .add_carrier_prefixes(CarrierId(id), allow, &change.prefixes)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes destination prefixes from a carrier's allow or deny list (admin).
#[utoipa::path(delete, path = "/api/v1/carriers/{id}/prefixes", tag = "routing",
    params(("id" = i64, Path)), request_body = PrefixChange,
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn remove_prefixes(
    State(api): State<Api>,
    who: Principal,
    Path(id): Path<i64>,
    Body(change): Body<PrefixChange>,
) -> ApiResult<StatusCode> {
    who.operator()?;
    who.admin()?;
    let allow = which_list(&change.list)?;
    who.store(&api)
        .remove_carrier_prefixes(CarrierId(id), allow, &change.prefixes)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// How a carrier gets the numbers, and which codecs.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProfileChange {
    /// international, plus or national (default international).
    pub format: Option<String>,
    /// The CLI's format (default international).
    pub cli_format: Option<String>,
    /// The carrier's country code (national formats).
    pub country_code: Option<String>,
    /// Leading digits removed after formatting (0 to 20).
    pub strip: Option<u8>,
    /// Digits put in front.
    pub tech_prefix: Option<String>,
    /// Codecs it takes (empty: the offer as it is).
    pub codecs: Option<Vec<String>>,
}

/// Sets a carrier's number profile and codecs (admin).
#[utoipa::path(put, path = "/api/v1/carriers/{id}/profile", tag = "routing",
    params(("id" = i64, Path)), request_body = ProfileChange,
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn set_profile(
    State(api): State<Api>,
    who: Principal,
    Path(id): Path<i64>,
    Body(change): Body<ProfileChange>,
) -> ApiResult<StatusCode> {
    who.operator()?;
    who.admin()?;
    let format = |field: &str, v: &Option<String>| -> ApiResult<OutboundFormat> {
        match v {
            None => Ok(OutboundFormat::default()),
            Some(t) => t
                .parse()
                .map_err(|e: domain::Invalid| Problem::invalid(field, e.message())),
        }
    };
    let profile = NumberProfile {
        strip: change.strip.unwrap_or(0),
        tech_prefix: change.tech_prefix.clone().unwrap_or_default(),
        format: format("format", &change.format)?,
        cli_format: format("cli_format", &change.cli_format)?,
        country_code: change.country_code.clone(),
    };
    who.store(&api)
        .set_carrier_profile(CarrierId(id), &profile, &change.codecs.unwrap_or_default())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CarrierHeadersChange {
    /// Customers do not see this carrier's topology.
    pub hide_topology: bool,
}

/// Sets which of a carrier's headers customers see (admin).
#[utoipa::path(put, path = "/api/v1/carriers/{id}/headers", tag = "routing",
    params(("id" = i64, Path)), request_body = CarrierHeadersChange,
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn set_carrier_headers(
    State(api): State<Api>,
    who: Principal,
    Path(id): Path<i64>,
    Body(change): Body<CarrierHeadersChange>,
) -> ApiResult<StatusCode> {
    who.operator()?;
    who.admin()?;
    who.store(&api)
        .set_carrier_headers(CarrierId(id), change.hide_topology)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewIps {
    /// Addresses or networks (CIDR).
    pub ips: Vec<String>,
}

/// Adds source addresses or networks to a customer (admin).
#[utoipa::path(post, path = "/api/v1/customers/{id}/ips", tag = "customers",
    params(("id" = i64, Path)), request_body = NewIps,
    responses((status = 200, body = CustomerView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn add_ips(
    State(api): State<Api>,
    who: Principal,
    Path(id): Path<i64>,
    Body(new): Body<NewIps>,
) -> ApiResult<Json<CustomerView>> {
    find_customer(&api, &who, id).await?;
    who.admin()?;
    let nets = new
        .ips
        .iter()
        .enumerate()
        .map(|(i, t)| {
            parse_net(t).ok_or_else(|| {
                Problem::invalid(
                    &format!("ips[{i}]"),
                    format!("{t:?} is not an address or network"),
                )
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    who.store(&api)
        .add_customer_ips(CustomerId(id), &nets)
        .await?;
    Ok(Json(CustomerView::from(
        &find_customer(&api, &who, id).await?,
    )))
}

/// Removes one of a customer's addresses or networks (admin; `/` written `_`).
#[utoipa::path(delete, path = "/api/v1/customers/{id}/ips/{network}", tag = "customers",
    params(("id" = i64, Path), ("network" = String, Path)),
    responses((status = 200, body = CustomerView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn remove_ip(
    State(api): State<Api>,
    who: Principal,
    Path((id, network)): Path<(i64, String)>,
) -> ApiResult<Json<CustomerView>> {
    find_customer(&api, &who, id).await?;
    who.admin()?;
    let net = parse_net(&network.replace('_', "/"))
        .ok_or_else(|| Problem::invalid("network", "an address or network (CIDR; `/` as `_`)"))?;
    if !who
        .store(&api)
        .remove_customer_ip(CustomerId(id), net)
        .await?
    {
        return Err(Problem::not_found("address of this customer"));
    }
    Ok(Json(CustomerView::from(
        &find_customer(&api, &who, id).await?,
    )))
}

/// One customer's usage over a period.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CustomerUsageView {
    pub customer_id: i64,
    /// YYYY-MM-DD or YYYY-MM (the customer's local days).
    pub period: String,
    pub calls: i64,
    pub answered: i64,
    pub billed_seconds: i64,
    pub price_minor: i64,
    pub price: String,
}

/// One carrier's usage over a period.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CarrierUsageView {
    pub carrier_id: i64,
    /// YYYY-MM-DD or YYYY-MM (UTC days).
    pub period: String,
    pub attempts: i64,
    pub answered: i64,
    pub failures: i64,
    pub billed_seconds: i64,
    pub cost_minor: i64,
    pub cost: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UsageView {
    pub customers: Vec<CustomerUsageView>,
    /// Operators only.
    pub carriers: Vec<CarrierUsageView>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct UsageQuery {
    /// A day (YYYY-MM-DD) or a month (YYYY-MM).
    pub period: String,
}

/// Usage per customer (its local days) and per carrier (UTC days) over a day or month (a
/// customer token: its own).
#[utoipa::path(get, path = "/api/v1/usage", tag = "routing", params(UsageQuery),
    responses((status = 200, body = UsageView), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn usage(
    State(api): State<Api>,
    who: Principal,
    Query(q): Query<UsageQuery>,
) -> ApiResult<Json<UsageView>> {
    let bad = |e: store::StoreError| match e {
        store::StoreError::Invalid(m) => Problem::invalid("period", m),
        other => Problem::from(other),
    };
    let customers = api
        .store
        .customer_usage(&q.period)
        .await
        .map_err(bad)?
        .into_iter()
        .filter(|u| who.scope.sees_customer(u.customer_id))
        .map(|u| {
            let (price_minor, price) = money(u.price);
            CustomerUsageView {
                customer_id: u.customer_id.0,
                period: u.period,
                calls: u.calls,
                answered: u.answered,
                billed_seconds: u.seconds,
                price_minor,
                price,
            }
        })
        .collect();
    let carriers = if who.scope.is_operator() {
        api.store
            .carrier_usage(&q.period)
            .await
            .map_err(bad)?
            .into_iter()
            .map(|u| {
                let (cost_minor, cost) = money(u.cost);
                CarrierUsageView {
                    carrier_id: u.carrier_id.0,
                    period: u.period,
                    attempts: u.attempts,
                    answered: u.answered,
                    failures: u.failures,
                    billed_seconds: u.seconds,
                    cost_minor,
                    cost,
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(Json(UsageView {
        customers,
        carriers,
    }))
}
