//! Fills a database with call records for the API benchmark: `cdr_fill URL COUNT CUSTOMERS`
//! adds CUSTOMERS customers (and a carrier) when the database has none, then COUNT CDRs
//! spread over the 30 days before 2026-12-01, the customers in turn, through
//! `Store::insert_cdrs` in batches of 5,000 (with their events and usage, as the switch
//! writes them). Prints one JSON line. Used by bench/api.py.

use std::time::Instant;

use domain::{CarrierId, Cdr, CustomerId, HangupSide, Transport};
use store::{NewCarrier, NewCustomer, Store};

const BATCH: usize = 5_000;
/// 2026-11-01T00:00:00Z.
const START_MS: i64 = 1_793_491_200_000;
const SPAN_MS: i64 = 30 * 86_400_000;

fn cdr(i: usize, count: usize, customers: i64) -> Cdr {
    let t = START_MS + (i as i64).saturating_mul(SPAN_MS) / count.max(1) as i64;
    let answered = !i.is_multiple_of(4);
    Cdr {
        id: format!("fill-{i:010}"),
        call_id: format!("{i}-fill@127.0.0.1"),
        customer_id: CustomerId(1 + (i as i64 % customers)),
        carrier_id: Some(CarrierId(1)),
        carrier_addr: Some("198.51.100.1:5060".into()),
        source_addr: "192.0.2.10:5060".into(),
        caller: "912013022".into(),
        callee: format!("3491{:07}", i % 10_000_000),
        caller_out: Some("912013022".into()),
        callee_out: Some(format!("3491{:07}", i % 10_000_000)),
        user_agent: Some("bench".into()),
        invite_ms: t,
        progress_ms: Some(t + 40),
        answer_ms: answered.then_some(t + 900),
        end_ms: t + if answered { 60_900 } else { 3_000 },
        pdd_ms: Some(38),
        billable_ms: if answered { 60_000 } else { 0 },
        billable_secs: if answered { 60 } else { 0 },
        final_code: if answered { 200 } else { 486 },
        final_reason: if answered {
            "OK".into()
        } else {
            "Busy Here".into()
        },
        hangup: HangupSide::Caller,
        attempts: 1,
        caller_e164: Some("34912013022".into()),
        callee_e164: Some(format!("3491{:07}", i % 10_000_000)),
        cost: Some(domain::Money(20_000)),
        price: Some(domain::Money(25_000)),
        q850_cause: Some(16),
        attempt_log: vec![domain::AttemptRecord {
            carrier_id: CarrierId(1),
            carrier_addr: "198.51.100.1:5060".into(),
            started_ms: t,
            code: Some(if answered { 200 } else { 486 }),
            pdd_ms: Some(38),
        }],
        codecs_offered: Some("PCMU,PCMA".into()),
        codecs_answered: answered.then(|| "PCMA".into()),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(count), Some(customers)) = (
        args.next(),
        args.next().and_then(|n| n.parse::<usize>().ok()),
        args.next().and_then(|n| n.parse::<i64>().ok()),
    ) else {
        eprintln!("usage: cdr_fill URL COUNT CUSTOMERS");
        std::process::exit(2);
    };
    let fail = |e: store::StoreError| -> ! {
        eprintln!("cdr_fill: {e}");
        std::process::exit(1);
    };
    let store = Store::connect(&url).await.unwrap_or_else(|e| fail(e));
    store.migrate().await.unwrap_or_else(|e| fail(e));
    if store
        .list_customers()
        .await
        .unwrap_or_else(|e| fail(e))
        .is_empty()
    {
        for c in 0..customers {
            store
                .add_customer(&NewCustomer {
                    name: format!("customer-{c}"),
                    ips: vec![format!("10.{}.{}.0/24", c / 256, c % 256).parse().unwrap()],
                    max_channels: None,
                    max_cps: None,
                })
                .await
                .unwrap_or_else(|e| fail(e));
        }
        store
            .add_carrier(&NewCarrier {
                name: "bench".into(),
                host: "198.51.100.1".into(),
                port: 5060,
                transport: Transport::Udp,
                priority: 1,
                weight: 1,
                max_channels: None,
                max_cps: None,
                first_response_ms: None,
                ring_timeout_s: None,
            })
            .await
            .unwrap_or_else(|e| fail(e));
    }
    let started = Instant::now();
    let mut written = 0;
    let mut batch = Vec::with_capacity(BATCH);
    for i in 0..count {
        batch.push(cdr(i, count, customers));
        if batch.len() == BATCH || i + 1 == count {
            written += store.insert_cdrs(&batch).await.unwrap_or_else(|e| fail(e));
            batch.clear();
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"count\": {written}, \"seconds\": {seconds:.1}, \"cdrs_per_sec\": {:.0}}}",
        written as f64 / seconds
    );
}
