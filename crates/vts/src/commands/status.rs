//! `vts status`: the running switch's state over its control socket (table or JSON).

use std::fmt::Write as _;

use super::open_store;
use crate::cli::StatusFormat;
use crate::config::Settings;
use crate::serve::control;

pub(super) async fn run(settings: &Settings, format: StatusFormat) -> crate::error::Result {
    if format == StatusFormat::Json {
        let body = control::request(settings.control_socket(), "status").await?;
        println!("{}", String::from_utf8_lossy(&body));
        return Ok(());
    }
    let report = control::query(settings.control_socket()).await?;
    let names = match open_store(settings).await {
        Ok(store) => {
            let customers = store.list_customers().await.unwrap_or_default();
            let carriers = store.list_carriers().await.unwrap_or_default();
            Some((customers, carriers))
        }
        Err(_) => None,
    };
    let mut out = format!(
        "calls in progress: {}{}\nconfiguration version: {}, block list version: {}\n",
        report.calls,
        if report.draining { " (draining)" } else { "" },
        report.config_version,
        report.blocklist_version
    );
    if report.cdr_log_failed {
        let _ = writeln!(
            out,
            "write-ahead log: FAILING, new calls refused (CDR_LOG_FAILED in the log)"
        );
    }
    if report.cdr_quarantined > 0 {
        let _ = writeln!(
            out,
            "CDRs quarantined: {} (vts cdr quarantine)",
            report.cdr_quarantined
        );
    }
    let _ = writeln!(out, "\nby customer:");
    for (id, n) in &report.by_customer {
        let name = names
            .as_ref()
            .and_then(|(c, _)| c.iter().find(|c| c.id.0 == *id))
            .map_or("?", |c| c.name.as_str());
        let _ = writeln!(out, "  {id:<6} {name:<20} {n}");
    }
    let _ = writeln!(out, "\nby carrier:");
    for (id, n) in &report.by_carrier {
        let name = names
            .as_ref()
            .and_then(|(_, k)| k.iter().find(|k| k.id.0 == *id))
            .map_or("?", |k| k.name.as_str());
        let _ = writeln!(out, "  {id:<6} {name:<20} {n}");
    }
    let _ = writeln!(out, "\ncarrier health (OPTIONS probes):");
    for (id, health) in &report.health {
        let name = names
            .as_ref()
            .and_then(|(_, k)| k.iter().find(|k| k.id.0 == *id))
            .map_or("?", |k| k.name.as_str());
        let _ = writeln!(out, "  {id:<6} {name:<20} {health}");
    }
    for (name, l) in [
        ("INVITE", &report.invite_latency),
        ("reply", &report.reply_latency),
    ] {
        let _ = writeln!(
            out,
            "\ntime inside the switch, {name}: {} samples, p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs",
            l.count, l.p50_us, l.p99_us, l.max_us
        );
    }
    print!("{out}");
    Ok(())
}
