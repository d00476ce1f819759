//! CDRs per second through `Store::insert_cdrs`, in the batches the accounting task writes
//! (500): `cdr_rate URL COUNT`. Prints one JSON line. Used by bench/run.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use domain::{CarrierId, Cdr, CustomerId, HangupSide};
use store::Store;

const BATCH: usize = 500;

fn cdr(run: u128, i: usize) -> Cdr {
    let t = 1_790_000_000_000 + i as i64 * 10;
    Cdr {
        id: format!("bench-{run:x}-{i:08}"),
        call_id: format!("{i}-bench@127.0.0.1"),
        customer_id: CustomerId(1),
        carrier_id: Some(CarrierId(1)),
        carrier_addr: Some("127.0.0.1:5090".into()),
        source_addr: "127.0.0.1:5070".into(),
        caller: "912013022".into(),
        callee: "34911234567".into(),
        caller_out: Some("912013022".into()),
        callee_out: Some("34911234567".into()),
        user_agent: Some("bench".into()),
        invite_ms: t,
        progress_ms: Some(t + 40),
        answer_ms: Some(t + 900),
        end_ms: t + 60_900,
        pdd_ms: Some(38),
        billable_ms: 60_000,
        billable_secs: 60,
        final_code: 200,
        final_reason: "OK".into(),
        hangup: HangupSide::Caller,
        attempts: 1,
        caller_e164: Some("34912000000".into()),
        callee_e164: Some("442079460018".into()),
        cost: Some(domain::Money(20_000)),
        price: Some(domain::Money(25_000)),
        q850_cause: Some(16),
        attempt_log: vec![domain::AttemptRecord {
            carrier_id: CarrierId(1),
            carrier_addr: "198.51.100.1:5060".into(),
            started_ms: 1,
            code: Some(200),
            pdd_ms: Some(120),
        }],
        codecs_offered: Some("PCMU,PCMA".into()),
        codecs_answered: Some("PCMA".into()),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(count)) = (
        args.next(),
        args.next().and_then(|n| n.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: cdr_rate URL COUNT");
        std::process::exit(2);
    };
    let store = match Store::connect(&url).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cdr_rate: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = store.migrate().await {
        eprintln!("cdr_rate: migrations: {e}");
        std::process::exit(1);
    }
    let run = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let cdrs: Vec<Cdr> = (0..count).map(|i| cdr(run, i)).collect();
    let started = Instant::now();
    let mut written = 0;
    for chunk in cdrs.chunks(BATCH) {
        match store.insert_cdrs(chunk).await {
            Ok(n) => written += n,
            Err(e) => {
                eprintln!("cdr_rate: {e}");
                std::process::exit(1);
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"count\": {written}, \"batch\": {BATCH}, \"seconds\": {seconds:.3}, \"cdrs_per_sec\": {:.0}}}",
        written as f64 / seconds
    );
}
