//! `vts route`: what the switch would do with a call (the same per-carrier decision as
//! live calls, `domain::routing::simulate`), printed.

use domain::{Customer, CustomerId, now_ms};
use store::Store;

use crate::config::Settings;

pub(super) async fn run(
    store: &Store,
    settings: &Settings,
    (customer, number, cli): (i64, String, String),
) -> crate::error::Result {
    let directory = store.load_directory().await?;
    let c = directory
        .customer(CustomerId(customer))
        .ok_or_else(|| format!("no customer {customer}"))?;
    let sim = domain::routing::simulate(
        &directory,
        c,
        &number,
        &cli,
        now_ms(),
        settings.proxy.max_attempts,
    );
    print!("{}", render_route(c, &sim));
    Ok(())
}

fn render_route(customer: &Customer, sim: &domain::routing::Simulation) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let status = match (customer.active, customer.status) {
        (false, _) => "disabled".to_string(),
        (true, s) => format!("{s:?}").to_lowercase(),
    };
    let _ = writeln!(
        out,
        "customer {} {}: {status}",
        customer.id.0, customer.name
    );
    let _ = writeln!(
        out,
        "number   {} as received; {}",
        sim.received,
        match &sim.number {
            Some(n) => format!("{n} normalised ({} format)", customer.number_format),
            None => format!("cannot be read in the {} format", customer.number_format),
        }
    );
    match &sim.plan {
        Some(v) => {
            let _ = writeln!(
                out,
                "plan     {}: {}",
                if v.allowed { "allowed" } else { "denied" },
                v.why
            );
        }
        None => {
            let _ = writeln!(out, "plan     none (every destination)");
        }
    }
    let _ = writeln!(out, "routing  {}", customer.routing);
    if let Some(reject) = sim.refused {
        let (code, reason) = reject.reply();
        let _ = writeln!(out, "refused  {code} {reason}");
        return out;
    }
    let _ = writeln!(
        out,
        "{:<8} {:<24} {:>8} {:>10} {:<22} {:<28} VERDICT",
        "ATTEMPT", "CARRIER", "PRIORITY", "RATE", "LIMITS (checked live)", "SENT AS (NUMBER / CLI)"
    );
    let routes: Vec<domain::Carrier> = sim.steps.iter().map(|s| s.carrier.clone()).collect();
    for step in &sim.steps {
        let c = &step.carrier;
        let limit = |l: Option<u32>| l.map_or("-".to_string(), |n| n.to_string());
        let limits = format!(
            "channels {}, cps {}",
            limit(c.max_channels),
            limit(c.max_cps)
        );
        let attempt = step.attempt.map_or("-".to_string(), |n| n.to_string());
        let verdict = match &step.skipped {
            None if customer.routing == domain::RoutingMode::Lcr => "try".to_string(),
            None => match domain::routing::first_share(&routes, c) {
                // The order among equal priorities is drawn per call, by weight.
                Some(share) => format!(
                    "try (first at priority {} in {:.0}% of calls)",
                    c.priority,
                    share * 100.0
                ),
                None => "try".to_string(),
            },
            Some(why) => format!("skip: {why}"),
        };
        let rate = step.cost.map_or("-".to_string(), |m| m.to_string());
        let sent = format!("{} / {}", step.sent.0, step.sent.1);
        let _ = writeln!(
            out,
            "{attempt:<8} {:<24} {:>8} {rate:>10} {limits:<22} {sent:<28} {verdict}",
            format!("{} (#{})", c.name, c.id.0),
            c.priority
        );
    }
    if let Some(reject) = sim.unroutable {
        let (code, reason) = reject.reply();
        let _ = writeln!(out, "refused  {code} {reason}");
    }
    out
}
