//! `/api/v1/cdrs`: call records with the filters of `vts cdr list`, newest first, in pages
//! linked by an opaque cursor (keyset on the INVITE time and id: a page costs the same at
//! the millionth record as at the first); `Accept: text/csv` streams every matching record
//! as CSV (the columns of `accounting::export`, formula cells neutralised) a page at a time,
//! so memory stays bounded whatever the count. A customer token sees its own calls only.
//! `/api/v1/cdrs/{id}/trace`: the call's SIP messages and their ladder.

use axum::Json;
use axum::body::Body as HttpBody;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use domain::{CarrierId, Cdr, CustomerId};
use serde::{Deserialize, Serialize};
use store::CdrFilter;
use utoipa::ToSchema;

use super::Api;
use super::auth::Principal;
use super::input::{Query, money, parse_time, time};
use super::problem::{ApiResult, Problem};

/// Records a page holds at most.
const MAX_PAGE: u32 = 1000;
/// Records a page of the CSV export reads at once.
const EXPORT_PAGE: u32 = 1000;

/// One call record.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CdrView {
    pub id: String,
    pub call_id: String,
    pub customer_id: i64,
    pub carrier_id: Option<i64>,
    pub carrier_addr: Option<String>,
    pub source_addr: String,
    pub caller: String,
    pub callee: String,
    pub caller_e164: Option<String>,
    pub callee_e164: Option<String>,
    pub caller_out: Option<String>,
    pub callee_out: Option<String>,
    pub user_agent: Option<String>,
    pub invite: String,
    pub progress: Option<String>,
    pub answer: Option<String>,
    pub end: String,
    /// INVITE to first ringing, ms.
    pub pdd_ms: Option<i64>,
    pub billable_ms: i64,
    pub billable_secs: i64,
    pub final_code: u16,
    pub final_reason: String,
    /// caller, callee or switch.
    pub hangup: String,
    pub attempts: u32,
    pub cost_minor: Option<i64>,
    pub cost: Option<String>,
    pub price_minor: Option<i64>,
    pub price: Option<String>,
    pub q850_cause: Option<u16>,
    pub codecs_offered: Option<String>,
    pub codecs_answered: Option<String>,
    /// Each attempt: carrier, address, start, final code, PDD.
    #[schema(value_type = Vec<Object>)]
    pub attempt_log: serde_json::Value,
}

impl From<&Cdr> for CdrView {
    fn from(c: &Cdr) -> CdrView {
        let m = |v: Option<domain::Money>| v.map(money);
        let (cost_minor, cost) = m(c.cost).unzip();
        let (price_minor, price) = m(c.price).unzip();
        CdrView {
            id: c.id.clone(),
            call_id: c.call_id.clone(),
            customer_id: c.customer_id.0,
            carrier_id: c.carrier_id.map(|x| x.0),
            carrier_addr: c.carrier_addr.clone(),
            source_addr: c.source_addr.clone(),
            caller: c.caller.clone(),
            callee: c.callee.clone(),
            caller_e164: c.caller_e164.clone(),
            callee_e164: c.callee_e164.clone(),
            caller_out: c.caller_out.clone(),
            callee_out: c.callee_out.clone(),
            user_agent: c.user_agent.clone(),
            invite: time(c.invite_ms),
            progress: c.progress_ms.map(time),
            answer: c.answer_ms.map(time),
            end: time(c.end_ms),
            pdd_ms: c.pdd_ms,
            billable_ms: c.billable_ms,
            billable_secs: c.billable_secs,
            final_code: c.final_code,
            final_reason: c.final_reason.clone(),
            hangup: c.hangup.to_string(),
            attempts: c.attempts,
            cost_minor,
            cost,
            price_minor,
            price,
            q850_cause: c.q850_cause,
            codecs_offered: c.codecs_offered.clone(),
            codecs_answered: c.codecs_answered.clone(),
            attempt_log: serde_json::to_value(&c.attempt_log).unwrap_or_default(),
        }
    }
}

/// A page of records and the cursor of the next (`null`: the last page).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CdrPage {
    pub items: Vec<CdrView>,
    pub next_cursor: Option<String>,
}

/// The filters of `vts cdr list`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct CdrQuery {
    pub customer_id: Option<i64>,
    pub carrier_id: Option<i64>,
    /// INVITE at or after: RFC 3339, or YYYY-MM-DD (midnight UTC).
    pub since: Option<String>,
    /// INVITE before.
    pub until: Option<String>,
    /// Final SIP code.
    pub code: Option<u16>,
    /// Billable seconds at least.
    pub min_duration: Option<u32>,
    /// Records a page (1 to 1000, default 100).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A record as the caller may see it: a customer token gets [`Cdr::for_customer`] (nothing
/// of the carrier side).
fn seen_by(who: &Principal, cdr: Cdr) -> Cdr {
    match who.scope.customer() {
        Some(_) => cdr.for_customer(),
        None => cdr,
    }
}

/// The filter a query names, bound to the caller's customer.
fn filter(who: &Principal, q: &CdrQuery) -> ApiResult<CdrFilter> {
    if who.scope.customer().is_some() && q.carrier_id.is_some() {
        // Which carrier took a call is not the customer's to see, nor to probe by filter.
        return Err(Problem::invalid(
            "carrier_id",
            "not a filter of a customer token",
        ));
    }
    let customer = match (who.scope.customer(), q.customer_id) {
        (Some(own), None) => Some(own),
        (Some(own), Some(asked)) if asked == own.0 => Some(own),
        // Another customer's calls: there is no such customer for this token.
        (Some(_), Some(_)) => return Err(Problem::not_found("customer")),
        (None, asked) => asked.map(CustomerId),
    };
    Ok(CdrFilter {
        customer,
        carrier: q.carrier_id.map(CarrierId),
        since_ms: q
            .since
            .as_deref()
            .map(|t| parse_time("since", t))
            .transpose()?,
        until_ms: q
            .until
            .as_deref()
            .map(|t| parse_time("until", t))
            .transpose()?,
        code: q.code,
        min_billable_ms: q.min_duration.map(|s| i64::from(s) * 1000),
    })
}

/// `INVITE_MS_ID` from the last record of a page.
fn cursor_of(c: &Cdr) -> String {
    format!("{}_{}", c.invite_ms, c.id)
}

fn parse_cursor(text: &str) -> ApiResult<(i64, String)> {
    text.split_once('_')
        .and_then(|(at, id)| {
            let ok = !id.is_empty()
                && id.len() <= 64
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            Some((at.parse::<i64>().ok()?, id.to_string())).filter(|_| ok)
        })
        .ok_or_else(|| Problem::invalid("cursor", "not a cursor this API gave"))
}

/// Call records, newest first; `Accept: text/csv` for every matching record as CSV.
#[utoipa::path(get, path = "/api/v1/cdrs", tag = "cdrs", params(CdrQuery),
    responses((status = 200, description = "A page; with Accept: text/csv, every matching record as CSV",
            content((CdrPage = "application/json"), (String = "text/csv"))),
        (status = 400, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn list(
    State(api): State<Api>,
    who: Principal,
    headers: HeaderMap,
    Query(q): Query<CdrQuery>,
) -> ApiResult<Response> {
    let filter = filter(&who, &q)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Problem::invalid("limit", format!("1 to {MAX_PAGE}")));
    }
    let cursor = q.cursor.as_deref().map(parse_cursor).transpose()?;
    let wants_csv = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/csv"));
    if wants_csv {
        return Ok(export(api, filter, cursor, who.scope.customer().is_some()));
    }
    let page = api
        .store
        .cdr_page(
            &filter,
            cursor.as_ref().map(|(at, id)| (*at, id.as_str())),
            limit,
        )
        .await?;
    let next_cursor = (page.len() == limit as usize)
        .then(|| page.last().map(cursor_of))
        .flatten();
    Ok(Json(CdrPage {
        items: page
            .into_iter()
            .map(|c| CdrView::from(&seen_by(&who, c)))
            .collect(),
        next_cursor,
    })
    .into_response())
}

/// Every record `filter` matches as CSV, read and written a page at a time: a task reads the
/// next page while the last one is written (a channel of one page between them), so the
/// database and the CSV work overlap and memory holds two pages at most. A client that goes
/// away drops the stream, which ends the reading task. For a customer token (`customer`)
/// each record is its customer's view: the carrier columns are empty.
fn export(api: Api, filter: CdrFilter, cursor: Option<(i64, String)>, customer: bool) -> Response {
    let (pages_tx, pages_rx) = tokio::sync::mpsc::channel::<Result<Vec<Cdr>, store::StoreError>>(1);
    tokio::spawn(async move {
        let mut cursor = cursor;
        loop {
            let page = api
                .store
                .cdr_page(
                    &filter,
                    cursor.as_ref().map(|(at, id)| (*at, id.as_str())),
                    EXPORT_PAGE,
                )
                .await;
            let last = match &page {
                Ok(p) if p.len() == EXPORT_PAGE as usize => {
                    p.last().map(|c| (c.invite_ms, c.id.clone()))
                }
                _ => None,
            };
            let page = match page {
                Ok(p) if customer => Ok(p.iter().map(Cdr::for_customer).collect()),
                other => other,
            };
            if pages_tx.send(page).await.is_err() {
                return;
            }
            match last {
                Some(next) => cursor = Some(next),
                None => return,
            }
        }
    });
    let stream = futures_util::stream::unfold((pages_rx, true), |(mut rx, header)| async move {
        let page = match rx.recv().await? {
            Ok(p) => p,
            Err(e) => {
                // Headers are gone: the body breaks off, which the client sees as an
                // incomplete transfer.
                tracing::warn!(target: "vts::api", error = %e, "CDR export broke off");
                return Some((
                    Err(std::io::Error::other("the export broke off")),
                    (rx, false),
                ));
            }
        };
        let mut chunk = Vec::with_capacity(64 * 1024);
        let written = accounting::export::write_page(&mut chunk, header, &page);
        Some((written.map(|()| chunk), (rx, false)))
    });
    let mut response = HttpBody::from_stream(stream).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    response.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"cdrs.csv\""),
    );
    response
}

/// The record `id` as the caller may see it (a customer's own, in its view).
async fn find(api: &Api, who: &Principal, id: &str) -> ApiResult<Cdr> {
    let cdr = api
        .store
        .cdr(id)
        .await?
        .ok_or_else(|| Problem::not_found("CDR"))?;
    who.customer(cdr.customer_id, "CDR")?;
    Ok(seen_by(who, cdr))
}

/// One call record.
#[utoipa::path(get, path = "/api/v1/cdrs/{id}", tag = "cdrs", params(("id" = String, Path)),
    responses((status = 200, body = CdrView), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn get(
    State(api): State<Api>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<CdrView>> {
    Ok(Json(CdrView::from(&find(&api, &who, &id).await?)))
}

/// One SIP message of a trace.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TraceMessageView {
    pub at: String,
    /// Microseconds since the epoch.
    pub at_us: i64,
    pub source: String,
    pub destination: String,
    /// udp or tcp.
    pub transport: String,
    /// The message as it crossed the socket (invalid UTF-8 replaced).
    pub message: String,
}

/// A call's SIP trace: its messages, and the ladder `vts trace --format json` prints.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TraceView {
    pub call_id: String,
    pub messages: Vec<TraceMessageView>,
    /// Parties and arrows (what the panel draws).
    #[schema(value_type = Object)]
    pub ladder: serde_json::Value,
}

/// The SIP trace of a record's call (kept for failed calls by default: `[trace] mode`).
#[utoipa::path(get, path = "/api/v1/cdrs/{id}/trace", tag = "cdrs", params(("id" = String, Path)),
    responses((status = 200, body = TraceView), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn trace(
    State(api): State<Api>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<TraceView>> {
    let cdr = find(&api, &who, &id).await?;
    let mut messages = api.store.trace(&cdr.call_id).await?;
    if who.scope.customer().is_some() {
        // A customer sees its own leg: what crossed between its address and the switch.
        messages.retain(|m| m.source == cdr.source_addr || m.destination == cdr.source_addr);
    }
    if messages.is_empty() {
        return Err(Problem::not_found(
            "trace (failed calls are kept by default)",
        ));
    }
    let steps: Vec<telemetry::ladder::Step<'_>> = messages
        .iter()
        .map(|m| telemetry::ladder::Step {
            at_us: m.at_us,
            source: &m.source,
            destination: &m.destination,
            message: &m.message,
        })
        .collect();
    let ladder = telemetry::ladder::Ladder::new(&cdr.call_id, &steps);
    Ok(Json(TraceView {
        call_id: cdr.call_id.clone(),
        ladder: serde_json::to_value(&ladder).unwrap_or_default(),
        messages: messages
            .iter()
            .map(|m| TraceMessageView {
                at: time(m.at_us / 1000),
                at_us: m.at_us,
                source: m.source.clone(),
                destination: m.destination.clone(),
                transport: m.transport.clone(),
                message: String::from_utf8_lossy(&m.message).into_owned(),
            })
            .collect(),
    }))
}
