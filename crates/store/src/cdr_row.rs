//! A CDR as a row of `cdrs`: the column list every query of whole CDRs names, and the row
//! read back into a [`Cdr`] (a stored value that does not read back is `Corrupt`, naming the
//! CDR). Shared by the CDR queries and the usage rebuild.

use std::str::FromStr;

use domain::{CarrierId, Cdr, CustomerId, HangupSide, Money};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{StoreError, int};

pub(crate) const CDR_COLUMNS: &str = "id, call_id, customer_id, carrier_id, carrier_addr, source_addr, caller, callee, \
     caller_out, callee_out, user_agent, invite_ms, progress_ms, answer_ms, end_ms, pdd_ms, \
     billable_ms, billable_secs, final_code, final_reason, hangup, attempts, caller_e164, \
     callee_e164, cost, price, q850_cause, codecs_offered, codecs_answered, attempt_log";

pub(crate) const CDR_COLUMN_COUNT: usize = 30;

pub(crate) fn cdr_from_row(row: &AnyRow) -> Result<Cdr, StoreError> {
    let id: String = row.try_get("id")?;
    let hangup: String = row.try_get("hangup")?;
    Ok(Cdr {
        call_id: row.try_get("call_id")?,
        customer_id: CustomerId(row.try_get("customer_id")?),
        carrier_id: row.try_get::<Option<i64>, _>("carrier_id")?.map(CarrierId),
        carrier_addr: row.try_get("carrier_addr")?,
        source_addr: row.try_get("source_addr")?,
        caller: row.try_get("caller")?,
        callee: row.try_get("callee")?,
        caller_out: row.try_get("caller_out")?,
        callee_out: row.try_get("callee_out")?,
        user_agent: row.try_get("user_agent")?,
        invite_ms: row.try_get("invite_ms")?,
        progress_ms: row.try_get("progress_ms")?,
        answer_ms: row.try_get("answer_ms")?,
        end_ms: row.try_get("end_ms")?,
        pdd_ms: row.try_get("pdd_ms")?,
        billable_ms: row.try_get("billable_ms")?,
        billable_secs: row.try_get("billable_secs")?,
        final_code: int(row, "final_code")?,
        final_reason: row.try_get("final_reason")?,
        hangup: HangupSide::from_str(&hangup)
            .map_err(|e| StoreError::Corrupt(format!("cdr {id:?}: {e}")))?,
        attempts: int(row, "attempts")?,
        caller_e164: row.try_get("caller_e164")?,
        callee_e164: row.try_get("callee_e164")?,
        cost: row.try_get::<Option<i64>, _>("cost")?.map(Money),
        price: row.try_get::<Option<i64>, _>("price")?.map(Money),
        q850_cause: row
            .try_get::<Option<i64>, _>("q850_cause")?
            .and_then(|c| u16::try_from(c).ok()),
        codecs_offered: row.try_get("codecs_offered")?,
        codecs_answered: row.try_get("codecs_answered")?,
        attempt_log: {
            let text: String = row.try_get("attempt_log")?;
            serde_json::from_str(&text)
                .map_err(|e| StoreError::Corrupt(format!("cdr {id:?}: attempt_log: {e}")))?
        },
        id,
    })
}
