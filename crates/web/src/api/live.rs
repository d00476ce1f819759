//! The running switch: `/api/v1/status` (calls in progress, carriers' health, the
//! configuration in use), `/api/v1/calls` (calls in progress by customer and carrier) and
//! `/api/v1/route` (what the switch would do with a call: `domain::routing::simulate`, the
//! code live calls run, on the snapshot live calls read).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use domain::{CustomerId, now_ms};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Principal;
use super::input::{Query, money};
use super::problem::{ApiResult, Problem};
use super::{Api, Live};

fn live(api: &Api) -> ApiResult<&Live> {
    api.live
        .as_ref()
        .ok_or_else(|| Problem::unavailable("the switch is not running in this process"))
}

/// The switch now.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StatusView {
    /// Calls in progress (a customer token: its own).
    pub calls: u32,
    /// New calls are refused: the switch is shutting down.
    pub draining: bool,
    /// The configuration version calls are routed on (operators only).
    pub config_version: Option<i64>,
    /// Carrier id to up, suspect or down (operators only).
    pub health: BTreeMap<String, String>,
}

/// Calls in progress and carriers' health.
#[utoipa::path(get, path = "/api/v1/status", tag = "live",
    responses((status = 200, body = StatusView), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn status(State(api): State<Api>, who: Principal) -> ApiResult<Json<StatusView>> {
    let live = live(&api)?;
    let s = live.status.borrow().clone();
    Ok(Json(match who.scope.customer() {
        Some(own) => StatusView {
            calls: s.by_customer.get(&own).copied().unwrap_or(0),
            draining: s.draining,
            config_version: None,
            health: BTreeMap::new(),
        },
        None => StatusView {
            calls: s.calls,
            draining: s.draining,
            config_version: Some(live.directory.version()),
            health: s
                .health
                .iter()
                .map(|(id, h)| (id.0.to_string(), h.as_str().to_string()))
                .collect(),
        },
    }))
}

/// One call in progress.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CallView {
    pub call_id: String,
    pub customer_id: i64,
    /// The carrier of the attempt in progress.
    pub carrier_id: Option<i64>,
    pub source_addr: String,
    pub caller: String,
    /// As routing read it (E.164), else as received.
    pub callee: String,
    pub started: String,
    pub answered: Option<String>,
    /// Seconds since the answer (answered calls) or since the INVITE.
    pub duration_s: i64,
    pub attempts: u32,
}

/// Calls in progress, counted and listed.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CallsView {
    pub total: u32,
    /// Customer id to calls in progress.
    pub by_customer: BTreeMap<String, u32>,
    /// Carrier id to calls in progress (operators only).
    pub by_carrier: BTreeMap<String, u32>,
    /// The calls, oldest first, at most `limit`.
    pub items: Vec<CallView>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct CallsQuery {
    /// Calls listed at most (1 to 10000, default 1000).
    pub limit: Option<u32>,
}

/// Calls in progress: counts by customer and carrier, and the calls themselves (a customer
/// token: its own).
#[utoipa::path(get, path = "/api/v1/calls", tag = "live", params(CallsQuery),
    responses((status = 200, body = CallsView), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn calls(
    State(api): State<Api>,
    who: Principal,
    Query(q): Query<CallsQuery>,
) -> ApiResult<Json<CallsView>> {
    let limit = q.limit.unwrap_or(1000);
    if !(1..=10_000).contains(&limit) {
        return Err(Problem::invalid("limit", "1 to 10000"));
    }
    let live = live(&api)?;
    let s = live.status.borrow().clone();
    let listed = live
        .calls
        .list(who.scope.customer(), limit as usize)
        .await
        .ok_or_else(|| Problem::unavailable("accounting did not answer: try again"))?;
    let now = now_ms();
    let items = listed
        .into_iter()
        .map(|c| CallView {
            call_id: c.call_id,
            customer_id: c.customer_id.0,
            // Which carrier a call is on is the operator's to see only.
            carrier_id: c
                .carrier_id
                .filter(|_| who.scope.customer().is_none())
                .map(|x| x.0),
            source_addr: c.source_addr,
            caller: c.caller,
            callee: c.callee,
            started: super::input::time(c.started_ms),
            answered: c.answered_ms.map(super::input::time),
            duration_s: (now - c.answered_ms.unwrap_or(c.started_ms)).max(0) / 1000,
            attempts: c.attempts,
        })
        .collect();
    Ok(Json(match who.scope.customer() {
        Some(own) => {
            let n = s.by_customer.get(&own).copied().unwrap_or(0);
            CallsView {
                total: n,
                by_customer: BTreeMap::from([(own.0.to_string(), n)]),
                by_carrier: BTreeMap::new(),
                items,
            }
        }
        None => CallsView {
            total: s.calls,
            by_customer: s
                .by_customer
                .iter()
                .map(|(k, v)| (k.0.to_string(), *v))
                .collect(),
            by_carrier: s
                .by_carrier
                .iter()
                .map(|(k, v)| (k.0.to_string(), *v))
                .collect(),
            items,
        },
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouteQuery {
    /// Customer id.
    pub customer: i64,
    /// The destination as the customer would send it.
    pub number: String,
    /// The CLI as the customer would send it.
    pub cli: Option<String>,
}

/// One carrier of a simulated call.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RouteStep {
    pub carrier_id: i64,
    pub carrier: String,
    pub priority: i32,
    /// The attempt number this carrier would get; null: skipped.
    pub attempt: Option<u32>,
    /// Why it would be skipped.
    pub skipped: Option<String>,
    /// Its rate for the destination (LCR).
    pub rate_minor: Option<i64>,
    pub rate: Option<String>,
    /// The destination and CLI as this carrier would get them.
    pub number_out: String,
    pub cli_out: String,
    /// Its share of first attempts among carriers of its priority.
    pub first_share: Option<f64>,
}

/// What the switch would do with a call.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RouteView {
    pub customer_id: i64,
    /// The destination as received.
    pub received: String,
    /// As routing reads it (E.164); null when it cannot be read.
    pub number: Option<String>,
    /// The dialing plan's verdict and why.
    pub plan: Option<String>,
    /// The refusal before routing (code and reason), if any.
    pub refused: Option<String>,
    pub steps: Vec<RouteStep>,
    /// The refusal when no carrier would get an attempt.
    pub unroutable: Option<String>,
}

/// The route simulator: the same code as live calls, on the snapshot they use.
#[utoipa::path(get, path = "/api/v1/route", tag = "live", params(RouteQuery),
    responses((status = 200, body = RouteView), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn route(
    State(api): State<Api>,
    who: Principal,
    Query(q): Query<RouteQuery>,
) -> ApiResult<Json<RouteView>> {
    who.operator()?;
    if q.number.trim().is_empty() || q.number.len() > 64 {
        return Err(Problem::invalid("number", "1 to 64 characters"));
    }
    let live = live(&api)?;
    let directory = live.directory.load();
    let customer = directory
        .customer(CustomerId(q.customer))
        .ok_or_else(|| Problem::not_found("customer"))?;
    let sim = domain::routing::simulate(
        &directory,
        customer,
        &q.number,
        q.cli.as_deref().unwrap_or(""),
        now_ms(),
        live.max_attempts,
    );
    let routes: Vec<domain::Carrier> = sim.steps.iter().map(|s| s.carrier.clone()).collect();
    let reply = |r: domain::Reject| {
        let (code, reason) = r.reply();
        format!("{code} {reason}")
    };
    Ok(Json(RouteView {
        customer_id: q.customer,
        received: sim.received.clone(),
        number: sim.number.clone(),
        plan: sim.plan.as_ref().map(|v| {
            format!(
                "{}: {}",
                if v.allowed { "allowed" } else { "denied" },
                v.why
            )
        }),
        refused: sim.refused.map(reply),
        steps: sim
            .steps
            .iter()
            .map(|s| {
                let (rate_minor, rate) = s.cost.map(money).unzip();
                RouteStep {
                    carrier_id: s.carrier.id.0,
                    carrier: s.carrier.name.clone(),
                    priority: s.carrier.priority,
                    attempt: s.attempt,
                    skipped: s.skipped.clone(),
                    rate_minor,
                    rate,
                    number_out: s.sent.0.clone(),
                    cli_out: s.sent.1.clone(),
                    first_share: (s.skipped.is_none()
                        && customer.routing == domain::RoutingMode::Priority)
                        .then(|| domain::routing::first_share(&routes, &s.carrier))
                        .flatten(),
                }
            })
            .collect(),
        unroutable: sim.unroutable.map(reply),
    }))
}
