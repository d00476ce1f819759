//! `/api/v1/customers/{id}/balance` and `/ledger`: what a customer has, every movement of
//! it, and credits, refunds and adjustments. A POST that moves money takes an
//! `Idempotency-Key`: the key is stored with the ledger row in one transaction, so a repeat
//! returns the first result and moves nothing (the same key with another request is 409).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use domain::{CustomerId, Money};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use store::{EntryKind, IdempotencyKey, LedgerEntry, Posted};
use utoipa::ToSchema;

use super::Api;
use super::auth::Principal;
use super::customers::find;
use super::input::{Body, Query, money, parse_money, time};
use super::problem::{ApiResult, Problem};

/// A customer's balance.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BalanceView {
    pub customer_id: i64,
    /// off, prepaid or postpaid.
    pub billing: String,
    pub balance_minor: i64,
    pub balance: String,
    pub credit_limit_minor: i64,
    pub credit_limit: String,
}

/// One ledger row.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LedgerView {
    pub id: i64,
    /// credit, charge, refund or adjustment.
    pub kind: String,
    /// Signed: credits and refunds add, charges subtract.
    pub amount_minor: i64,
    pub amount: String,
    pub balance_before_minor: i64,
    pub balance_after_minor: i64,
    /// The CDR a charge is for.
    pub cdr_id: Option<String>,
    pub note: String,
    pub at: String,
}

impl From<&LedgerEntry> for LedgerView {
    fn from(e: &LedgerEntry) -> LedgerView {
        let (amount_minor, amount) = money(e.amount);
        LedgerView {
            id: e.id,
            kind: e.kind.clone(),
            amount_minor,
            amount,
            balance_before_minor: e.balance_before.0,
            balance_after_minor: e.balance_after.0,
            cdr_id: e.cdr_id.clone(),
            note: e.note.clone(),
            at: time(e.at_ms),
        }
    }
}

/// The ledger, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LedgerList {
    pub items: Vec<LedgerView>,
}

/// A customer's balance.
#[utoipa::path(get, path = "/api/v1/customers/{id}/balance", tag = "billing",
    params(("id" = i64, Path)),
    responses((status = 200, body = BalanceView), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn balance(
    State(api): State<Api>,
    who: Principal,
    Path(id): Path<i64>,
) -> ApiResult<Json<BalanceView>> {
    let c = find(&api, &who, id).await?;
    let balances = api.store.balances().await?;
    let b = balances.get(&c.id).copied().unwrap_or(Money(0));
    let (balance_minor, balance) = money(b);
    let (credit_limit_minor, credit_limit) = money(c.credit_limit);
    Ok(Json(BalanceView {
        customer_id: id,
        billing: c.billing.as_str().to_string(),
        balance_minor,
        balance,
        credit_limit_minor,
        credit_limit,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct LedgerQuery {
    /// Rows, newest first (1 to 1000, default 100).
    pub limit: Option<u32>,
}

/// A customer's ledger, newest first.
#[utoipa::path(get, path = "/api/v1/customers/{id}/ledger", tag = "billing",
    params(("id" = i64, Path), LedgerQuery),
    responses((status = 200, body = LedgerList), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn ledger(
    State(api): State<Api>,
    who: Principal,
    Path(id): Path<i64>,
    Query(q): Query<LedgerQuery>,
) -> ApiResult<Json<LedgerList>> {
    find(&api, &who, id).await?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Problem::invalid("limit", "1 to 1000"));
    }
    let rows = api.store.ledger(CustomerId(id), limit).await?;
    Ok(Json(LedgerList {
        items: rows.iter().map(LedgerView::from).collect(),
    }))
}

/// Money in or out of a balance.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Posting {
    /// credit (positive), refund (positive) or adjustment (either sign).
    pub kind: String,
    /// A decimal amount (`"50.00"`; `-` for an adjustment down).
    pub amount: String,
    /// What it is for (at most 500 characters).
    pub note: Option<String>,
}

/// Credits, refunds or adjusts a balance (admin). With `Idempotency-Key`, a repeat returns
/// the first result (200) and moves nothing.
#[utoipa::path(post, path = "/api/v1/customers/{id}/ledger", tag = "billing",
    params(("id" = i64, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 200 characters: a repeat with it moves nothing")),
    request_body = Posting,
    responses((status = 201, body = LedgerView, description = "posted"),
        (status = 200, body = LedgerView, description = "a repeat: the first result"),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn post(
    State(api): State<Api>,
    who: Principal,
    Path(id): Path<i64>,
    headers: HeaderMap,
    Body(posting): Body<Posting>,
) -> ApiResult<(StatusCode, Json<LedgerView>)> {
    find(&api, &who, id).await?;
    who.admin()?;
    let kind = match posting.kind.trim() {
        "credit" => EntryKind::Credit,
        "refund" => EntryKind::Refund,
        "adjustment" => EntryKind::Adjustment,
        other => {
            return Err(Problem::invalid(
                "kind",
                format!("{other:?}: credit, refund or adjustment (charges come from CDRs)"),
            ));
        }
    };
    let amount = parse_money("amount", &posting.amount, kind == EntryKind::Adjustment)?;
    let note = posting.note.unwrap_or_default();
    if note.chars().count() > 500 || note.chars().any(char::is_control) {
        return Err(Problem::invalid(
            "note",
            "at most 500 characters, no control characters",
        ));
    }
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .map_err(|_| Problem::invalid("Idempotency-Key", "visible ASCII only"))?
                .to_string(),
        ),
    };
    // What the request asks, so the same key for another request is refused.
    let request = {
        let mut h = Sha256::new();
        h.update(format!(
            "POST /customers/{id}/ledger\n{}\n{}\n{note}",
            posting.kind.trim(),
            amount.0
        ));
        h.finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let idempotency = key.as_deref().map(|k| IdempotencyKey {
        token_id: who.token_id,
        key: k,
        request: &request,
    });
    match who
        .store(&api)
        .post_once(CustomerId(id), kind, amount, &note, idempotency)
        .await?
    {
        Posted::New(e) => Ok((StatusCode::CREATED, Json(LedgerView::from(&e)))),
        Posted::Repeat(e) => Ok((StatusCode::OK, Json(LedgerView::from(&e)))),
    }
}
