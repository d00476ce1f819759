//! Every subcommand: open the store (migrations applied, so any command works on a fresh
//! data directory), then do one thing.

use std::fmt::Write as _;

use domain::now_ms;
use domain::{CarrierId, Cdr, Customer, CustomerId, CustomerStatus, Setting};
use store::{NewCarrier, NewCustomer, Store};

use crate::cli::{
    BlockCmd, CarrierCmd, CdrCmd, Cli, Command, CustomerCmd, Format, SettingsCmd, StatusFormat,
    WhitelistCmd,
};
use crate::config::{Settings, redact};
use crate::output::{csv_field, term};
use crate::{control, routing, serve};

pub(crate) async fn run(cli: Cli) -> Result<(), String> {
    let listen = match &cli.command {
        Command::Serve(args) => args.sip.clone(),
        _ => Vec::new(),
    };
    let settings = Settings::load(&cli.global, &listen)?;
    if matches!(cli.command, Command::Serve(_)) {
        init_logging();
    }
    if let Command::Status {
        format,
        reset_latency,
    } = cli.command
    {
        if reset_latency {
            control::request(settings.control_socket(), "reset-latency").await?;
            return Ok(());
        }
        return status(&settings, format).await;
    }
    if let Command::Cdr(CdrCmd::Quarantine { format }) = cli.command {
        // Read from the data directory: no database needed (it may be what is failing).
        let dir = accounting::quarantine::dir_in(&settings.data_dir);
        let (entries, torn) =
            accounting::quarantine::read(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if torn > 0 {
            eprintln!("vts: {torn} unreadable line(s) in the quarantine skipped");
        }
        print!("{}", render_quarantine(&entries, format)?);
        return Ok(());
    }
    let store = open_store(&settings).await?;
    match cli.command {
        Command::Serve(_) => serve::serve(settings, store).await,
        Command::Migrate => {
            println!("migrations applied to {}", redact(&settings.db_url));
            Ok(())
        }
        Command::Status { .. } => Ok(()),
        Command::Customer(CustomerCmd::Add {
            name,
            ips,
            max_channels,
            max_cps,
        }) => {
            let id = store
                .add_customer(&NewCustomer {
                    name,
                    ips: ips.into_iter().map(|i| i.0).collect(),
                    max_channels,
                    max_cps,
                })
                .await
                .map_err(|e| e.to_string())?;
            println!("{id}");
            Ok(())
        }
        Command::Customer(CustomerCmd::Suspend { id, reason }) => {
            set_status(&store, id, CustomerStatus::Suspended, reason).await
        }
        Command::Customer(CustomerCmd::Block { id, reason }) => {
            set_status(&store, id, CustomerStatus::Blocked, reason).await
        }
        Command::Customer(CustomerCmd::Activate { id }) => {
            set_status(&store, id, CustomerStatus::Active, None).await
        }
        Command::Customer(CustomerCmd::List) => {
            let customers = store.list_customers().await.map_err(|e| e.to_string())?;
            print!("{}", customer_table(&customers));
            Ok(())
        }
        Command::Customer(CustomerCmd::Limits {
            id,
            max_channels,
            max_cps,
            daily_minutes,
            monthly_minutes,
        }) => {
            let change = store::LimitsChange {
                max_channels: max_channels.map(|l| l.0),
                max_cps: max_cps.map(|l| l.0),
                daily_minutes: daily_minutes.map(|l| l.0),
                monthly_minutes: monthly_minutes.map(|l| l.0),
            };
            if max_channels.is_none()
                && max_cps.is_none()
                && daily_minutes.is_none()
                && monthly_minutes.is_none()
            {
                return Err("nothing to change: give --max-channels, --max-cps, --daily-minutes and/or --monthly-minutes".into());
            }
            store
                .set_customer_limits(CustomerId(id), &change)
                .await
                .map_err(|e| e.to_string())?;
            println!("customer {id}: limits changed");
            Ok(())
        }
        Command::Carrier(CarrierCmd::Add {
            name,
            host,
            port,
            transport,
            priority,
            weight,
            max_channels,
            max_cps,
            first_response_ms,
            ring_timeout,
        }) => {
            if host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_err()
            {
                return Err(format!(
                    "--host {host:?}: an IP address is expected (DNS names come later)"
                ));
            }
            if port == 0 {
                return Err("--port must be between 1 and 65535".into());
            }
            if let Some(listen) = own_address(&settings.listen, &host, port) {
                return Err(format!(
                    "--host {host} --port {port}: that is the switch's own listen address \
                     ({listen}); every call to it would loop"
                ));
            }
            let id = store
                .add_carrier(&NewCarrier {
                    name,
                    host,
                    port,
                    transport,
                    priority,
                    weight,
                    max_channels,
                    max_cps,
                    first_response_ms,
                    ring_timeout_s: ring_timeout,
                })
                .await
                .map_err(|e| e.to_string())?;
            println!("{id}");
            Ok(())
        }
        Command::Carrier(CarrierCmd::Allow { id, prefixes }) => {
            store
                .add_carrier_prefixes(CarrierId(id), true, &prefixes)
                .await
                .map_err(|e| e.to_string())?;
            println!("carrier {id}: allowed {}", prefixes.join(" "));
            Ok(())
        }
        Command::Carrier(CarrierCmd::Deny { id, prefixes }) => {
            store
                .add_carrier_prefixes(CarrierId(id), false, &prefixes)
                .await
                .map_err(|e| e.to_string())?;
            println!("carrier {id}: denied {}", prefixes.join(" "));
            Ok(())
        }
        Command::Carrier(CarrierCmd::List) => {
            let carriers = store.list_carriers().await.map_err(|e| e.to_string())?;
            let health = store.carrier_health().await.map_err(|e| e.to_string())?;
            let mut out = format!(
                "{:<6} {:<20} {:<24} {:<5} {:>8} {:>6} {:<6} {:<8} {:>8} {:>5} {:<13}  PREFIXES\n",
                "ID",
                "NAME",
                "ADDRESS",
                "PROTO",
                "PRIORITY",
                "WEIGHT",
                "ACTIVE",
                "HEALTH",
                "CHANNELS",
                "CPS",
                "HEADERS"
            );
            let opt = |v: Option<u32>| v.map_or("-".to_string(), |n| n.to_string());
            for c in carriers {
                let mut prefixes = Vec::new();
                if !c.allow.is_empty() {
                    prefixes.push(format!("allow {}", c.allow.join(",")));
                }
                if !c.deny.is_empty() {
                    prefixes.push(format!("deny {}", c.deny.join(",")));
                }
                let state = health
                    .get(&c.id)
                    .map_or("up".to_string(), |(h, _)| h.to_string());
                let _ = writeln!(
                    out,
                    "{:<6} {:<20} {:<24} {:<5} {:>8} {:>6} {:<6} {:<8} {:>8} {:>5} {:<13}  {}",
                    c.id,
                    c.name,
                    format!("{}:{}", c.host, c.port),
                    c.transport,
                    c.priority,
                    c.weight,
                    c.active,
                    state,
                    opt(c.max_channels),
                    opt(c.max_cps),
                    if c.hide_topology {
                        "hide-topology"
                    } else {
                        "-"
                    },
                    prefixes.join("; ")
                );
            }
            print!("{out}");
            Ok(())
        }
        Command::Block(BlockCmd::Add {
            network,
            reason,
            for_secs,
        }) => {
            let expires_ms = for_secs
                .map(|s| now_ms() + i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX / 2));
            store
                .add_block(network.0, &reason, expires_ms)
                .await
                .map_err(|e| e.to_string())?;
            println!("blocked {}", network.0);
            Ok(())
        }
        Command::Block(BlockCmd::Remove { network }) => {
            if store
                .remove_block(network.0)
                .await
                .map_err(|e| e.to_string())?
            {
                println!("unblocked {}", network.0);
                Ok(())
            } else {
                Err(format!("{} is not on the block list", network.0))
            }
        }
        Command::Block(BlockCmd::List) => {
            let now = now_ms();
            println!(
                "{:<24} {:<10} {:<26} REASON",
                "NETWORK", "SOURCE", "EXPIRES"
            );
            for b in store.list_blocks().await.map_err(|e| e.to_string())? {
                let expires = match b.expires_ms {
                    None => "never".to_string(),
                    Some(e) if e <= now => "expired".to_string(),
                    Some(e) => format!("in {} s", (e - now + 999) / 1000),
                };
                println!(
                    "{:<24} {:<10} {:<26} {}",
                    b.network.to_string(),
                    b.source,
                    expires,
                    b.reason
                );
            }
            Ok(())
        }
        Command::Whitelist(WhitelistCmd::Add { network, reason }) => {
            store
                .add_whitelist(network.0, &reason)
                .await
                .map_err(|e| e.to_string())?;
            println!("whitelisted {}", network.0);
            Ok(())
        }
        Command::Whitelist(WhitelistCmd::Remove { network }) => {
            if store
                .remove_whitelist(network.0)
                .await
                .map_err(|e| e.to_string())?
            {
                println!("removed {} from the whitelist", network.0);
                Ok(())
            } else {
                Err(format!("{} is not on the whitelist", network.0))
            }
        }
        Command::Whitelist(WhitelistCmd::List) => {
            println!("{:<24} REASON", "NETWORK");
            for (net, reason) in store.list_whitelist().await.map_err(|e| e.to_string())? {
                println!("{:<24} {reason}", net.to_string());
            }
            Ok(())
        }
        Command::Settings(SettingsCmd::Set { key, value }) => {
            store
                .set_setting(&key, &value)
                .await
                .map_err(|e| e.to_string())?;
            println!("{key} = {}", value.trim());
            Ok(())
        }
        Command::Settings(SettingsCmd::List) => {
            let stored = store.list_settings().await.map_err(|e| e.to_string())?;
            for s in Setting::ALL {
                let value = stored.iter().find(|(k, _)| k == s.key()).map_or_else(
                    || format!("{} (default)", s.default_value()),
                    |(_, v)| v.clone(),
                );
                println!("{:<30} {:<12} {}", s.key(), value, s.help());
            }
            Ok(())
        }
        Command::Customer(
            cmd @ (CustomerCmd::Numbers { .. }
            | CustomerCmd::Routing { .. }
            | CustomerCmd::Plan { .. }
            | CustomerCmd::Rateplan { .. }
            | CustomerCmd::Billing { .. }
            | CustomerCmd::Timezone { .. }
            | CustomerCmd::Credit { .. }
            | CustomerCmd::Adjust { .. }
            | CustomerCmd::Refund { .. }
            | CustomerCmd::Ledger { .. }
            | CustomerCmd::Headers { .. }
            | CustomerCmd::ImportRates { .. }),
        ) => routing::customer(&store, cmd).await,
        Command::Carrier(
            cmd @ (CarrierCmd::Profile { .. }
            | CarrierCmd::Limits { .. }
            | CarrierCmd::Headers { .. }
            | CarrierCmd::Disable { .. }
            | CarrierCmd::Enable { .. }
            | CarrierCmd::RemoveAllow { .. }
            | CarrierCmd::RemoveDeny { .. }
            | CarrierCmd::ImportRates { .. }
            | CarrierCmd::Rates { .. }),
        ) => routing::carrier(&store, cmd).await,
        Command::Plan(cmd) => routing::plan(&store, cmd).await,
        Command::Rateplan(cmd) => routing::rate_plan(&store, cmd).await,
        Command::Route {
            customer,
            number,
            cli,
        } => {
            let directory = store.load_directory().await.map_err(|e| e.to_string())?;
            let c = directory
                .customer(CustomerId(customer))
                .ok_or_else(|| format!("no customer {customer}"))?;
            let now_ms = now_ms();
            let sim = proxy::simulate(
                &directory,
                c,
                &number,
                &cli,
                now_ms,
                settings.proxy.max_attempts,
            );
            print!("{}", render_route(c, &sim));
            Ok(())
        }
        Command::Usage(cmd) => crate::usage::run(&store, cmd).await,
        Command::Cdr(CdrCmd::Quarantine { .. }) => Ok(()),
        Command::Cdr(CdrCmd::Reconcile { day }) => {
            let r = accounting::reconcile::reconcile(&store, &settings.data_dir, day)
                .await
                .map_err(|e| e.to_string())?;
            print_reconciliation(&r)
        }
        Command::Cdr(CdrCmd::List {
            limit,
            customer,
            carrier,
            since,
            until,
            code,
            min_duration,
            format,
        }) => {
            let filter = store::CdrFilter {
                customer: customer.map(CustomerId),
                carrier: carrier.map(CarrierId),
                since_ms: since,
                until_ms: until,
                code,
                min_billable_ms: min_duration.map(|s| i64::from(s) * 1000),
            };
            let cdrs = store
                .find_cdrs(&filter, limit)
                .await
                .map_err(|e| e.to_string())?;
            print!("{}", render_cdrs(&cdrs, format)?);
            Ok(())
        }
    }
}

fn render_route(customer: &Customer, sim: &proxy::Simulation) -> String {
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
            None => match proxy::first_share(&routes, c) {
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

async fn set_status(
    store: &Store,
    id: i64,
    status: CustomerStatus,
    reason: Option<String>,
) -> Result<(), String> {
    store
        .set_customer_status(CustomerId(id), status, reason.as_deref())
        .await
        .map_err(|e| e.to_string())?;
    println!("customer {id}: {status}");
    Ok(())
}

async fn open_store(settings: &Settings) -> Result<Store, String> {
    // The data directory is the switch's alone (docs/SECURITY.md, "Local security").
    accounting::files::private_dir(&settings.data_dir).map_err(|e| {
        format!(
            "cannot create the data directory {}: {e}",
            settings.data_dir.display()
        )
    })?;
    let store = Store::connect(&settings.db_url)
        .await
        .map_err(|e| format!("{}: {e}", redact(&settings.db_url)))?;
    store
        .migrate()
        .await
        .map_err(|e| format!("migrations: {e}"))?;
    if let Some(path) = sqlite_path(&settings.db_url) {
        for suffix in ["", "-wal", "-shm"] {
            let mut file = path.clone().into_os_string();
            file.push(suffix);
            accounting::files::make_private(std::path::Path::new(&file))
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    Ok(store)
}

/// The file of a `sqlite://PATH[?query]` URL (none for an in-memory database or another
/// scheme).
fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite://")?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !url.contains(":memory:") && !url.contains("mode=memory"))
        .then(|| path.into())
}

fn init_logging() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("VTS_LOG").unwrap_or_else(|_| "info".into());
    // Colours only on a terminal: log files and journald get plain lines that fail2ban
    // (deploy/fail2ban) can match.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}

fn customer_table(customers: &[Customer]) -> String {
    let mut out = format!(
        "{:<6} {:<20} {:<7} {:<10} {:>8} {:>6} {:>13} {:<12} {:>5} {:<8} {:<21}  IPS\n",
        "ID",
        "NAME",
        "ACTIVE",
        "STATUS",
        "CHANNELS",
        "CPS",
        "MIN DAY/MONTH",
        "NUMBERS",
        "PLAN",
        "ROUTING",
        "HEADERS"
    );
    let opt = |v: Option<u32>| v.map_or("-".to_string(), |n| n.to_string());
    for c in customers {
        let ips: Vec<String> = c.ips.iter().map(ToString::to_string).collect();
        let status = match &c.status_reason {
            Some(r) => format!("{} ({r})", c.status),
            None => c.status.to_string(),
        };
        // The header policy away from the defaults (untrusted, topology shown).
        let headers = match (c.trusted, c.hide_topology) {
            (false, false) => "-",
            (true, false) => "trusted",
            (false, true) => "hide-topology",
            (true, true) => "trusted,hide-topology",
        };
        let numbers = match &c.country_code {
            Some(cc) => format!("{} +{cc}", c.number_format),
            None => c.number_format.to_string(),
        };
        let _ = writeln!(
            out,
            "{:<6} {:<20} {:<7} {:<10} {:>8} {:>6} {:>13} {:<12} {:>5} {:<8} {:<21}  {}",
            c.id,
            c.name,
            c.active,
            status,
            opt(c.max_channels),
            opt(c.max_cps),
            format!("{}/{}", opt(c.daily_minutes), opt(c.monthly_minutes)),
            numbers,
            c.dial_plan.map_or("-".to_string(), |p| p.0.to_string()),
            c.routing,
            headers,
            ips.join(",")
        );
    }
    out
}

const CDR_COLUMNS: &[&str] = &[
    "id",
    "call_id",
    "customer_id",
    "carrier_id",
    "carrier_addr",
    "source_addr",
    "caller",
    "callee",
    "caller_out",
    "callee_out",
    "user_agent",
    "invite_ms",
    "progress_ms",
    "answer_ms",
    "end_ms",
    "pdd_ms",
    "billable_ms",
    "billable_secs",
    "ring_ms",
    "total_ms",
    "final_code",
    "final_reason",
    "hangup",
    "attempts",
    "caller_e164",
    "callee_e164",
    "cost",
    "price",
    "profit",
    "margin_pct",
    "q850_cause",
    "codecs_offered",
    "codecs_answered",
    "attempt_log",
];

fn cdr_fields(c: &Cdr) -> Vec<String> {
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    let n = |v: Option<i64>| v.map(|x| x.to_string()).unwrap_or_default();
    vec![
        c.id.clone(),
        c.call_id.clone(),
        c.customer_id.to_string(),
        c.carrier_id.map(|x| x.to_string()).unwrap_or_default(),
        o(&c.carrier_addr),
        c.source_addr.clone(),
        c.caller.clone(),
        c.callee.clone(),
        o(&c.caller_out),
        o(&c.callee_out),
        o(&c.user_agent),
        c.invite_ms.to_string(),
        n(c.progress_ms),
        n(c.answer_ms),
        c.end_ms.to_string(),
        n(c.pdd_ms),
        c.billable_ms.to_string(),
        c.billable_secs.to_string(),
        n(c.ring_ms()),
        c.total_ms().to_string(),
        c.final_code.to_string(),
        c.final_reason.clone(),
        c.hangup.to_string(),
        c.attempts.to_string(),
        o(&c.caller_e164),
        o(&c.callee_e164),
        c.cost.map(|m| m.to_string()).unwrap_or_default(),
        c.price.map(|m| m.to_string()).unwrap_or_default(),
        profit(c).map(|m| m.to_string()).unwrap_or_default(),
        margin_pct(c).map(|m| format!("{m:.2}")).unwrap_or_default(),
        c.q850_cause.map(|q| q.to_string()).unwrap_or_default(),
        o(&c.codecs_offered),
        o(&c.codecs_answered),
        attempt_log(c),
    ]
}

/// Attempts as `carrier@address code pdd_ms` joined by `; `.
fn attempt_log(c: &Cdr) -> String {
    c.attempt_log
        .iter()
        .map(|a| {
            let code = a.code.map_or("-".to_string(), |c| c.to_string());
            let pdd = a.pdd_ms.map_or("-".to_string(), |p| format!("{p}ms"));
            format!("{}@{} {code} {pdd}", a.carrier_id, a.carrier_addr)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Price minus cost, when both are known.
fn profit(c: &Cdr) -> Option<domain::Money> {
    Some(domain::Money(c.price?.0.saturating_sub(c.cost?.0)))
}

/// Profit as a share of the price, in percent (for display only: money stays integer).
fn margin_pct(c: &Cdr) -> Option<f64> {
    let price = c.price?.0;
    (price != 0).then(|| profit(c).map(|p| p.0 as f64 * 100.0 / price as f64))?
}

fn render_cdrs(cdrs: &[Cdr], format: Format) -> Result<String, String> {
    Ok(match format {
        Format::Json => {
            // Every stored field, and the derived ones the CSV has too.
            let mut list = Vec::with_capacity(cdrs.len());
            for c in cdrs {
                let mut v = serde_json::to_value(c).map_err(|e| e.to_string())?;
                if let Some(o) = v.as_object_mut() {
                    o.insert("ring_ms".into(), c.ring_ms().into());
                    o.insert("total_ms".into(), c.total_ms().into());
                    o.insert("profit".into(), profit(c).map(|m| m.0).into());
                }
                list.push(v);
            }
            let mut s = serde_json::to_string_pretty(&list).map_err(|e| e.to_string())?;
            s.push('\n');
            s
        }
        Format::Csv => {
            let mut out = CDR_COLUMNS.join(",");
            out.push('\n');
            for c in cdrs {
                let row: Vec<String> = cdr_fields(c).iter().map(|f| csv_field(f)).collect();
                out.push_str(&row.join(","));
                out.push('\n');
            }
            out
        }
        Format::Table => {
            let mut out = format!(
                "{:<36} {:<8} {:<8} {:<16} {:<16} {:>5} {:>7} {:>8} {:<7} {:>3}\n",
                "ID",
                "CUSTOMER",
                "CARRIER",
                "CALLER",
                "CALLEE",
                "CODE",
                "PDD_MS",
                "BILL_S",
                "HANGUP",
                "ATT"
            );
            for c in cdrs {
                let _ = writeln!(
                    out,
                    "{:<36} {:<8} {:<8} {:<16} {:<16} {:>5} {:>7} {:>8} {:<7} {:>3}",
                    term(&c.id),
                    c.customer_id,
                    c.carrier_id
                        .map(|x| x.to_string())
                        .unwrap_or_else(|| "-".into()),
                    term(&c.caller),
                    term(&c.callee),
                    c.final_code,
                    c.pdd_ms
                        .map(|x| x.to_string())
                        .unwrap_or_else(|| "-".into()),
                    c.billable_secs,
                    c.hangup,
                    c.attempts
                );
            }
            out
        }
    })
}

/// The CDRs the database refused: when, why, and the CDR (JSON: every field as kept; CSV:
/// the CDR's columns after `quarantined_ms` and `error`; table: the main ones, escaped).
fn render_quarantine(
    entries: &[accounting::quarantine::Entry],
    format: Format,
) -> Result<String, String> {
    Ok(match format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(entries).map_err(|e| e.to_string())?;
            s.push('\n');
            s
        }
        Format::Csv => {
            let mut out = format!("quarantined_ms,error,{}\n", CDR_COLUMNS.join(","));
            for e in entries {
                let mut row = vec![csv_field(&e.at_ms.to_string()), csv_field(&e.error)];
                row.extend(cdr_fields(&e.cdr).iter().map(|f| csv_field(f)));
                out.push_str(&row.join(","));
                out.push('\n');
            }
            out
        }
        Format::Table => {
            let mut out = format!(
                "{:<36} {:<8} {:<16} {:<16} {:<24} {}\n",
                "ID", "CUSTOMER", "CALLER", "CALLEE", "QUARANTINED", "ERROR"
            );
            for e in entries {
                let when = jiff::Timestamp::from_millisecond(e.at_ms)
                    .map_or_else(|_| e.at_ms.to_string(), |t| t.to_string());
                let _ = writeln!(
                    out,
                    "{:<36} {:<8} {:<16} {:<16} {:<24} {}",
                    term(&e.cdr.id),
                    e.cdr.customer_id,
                    term(&e.cdr.caller),
                    term(&e.cdr.callee),
                    when,
                    term(&e.error)
                );
            }
            let _ = writeln!(out, "{} CDR(s) in quarantine", entries.len());
            out
        }
    })
}

async fn status(settings: &Settings, format: StatusFormat) -> Result<(), String> {
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

/// The listen address a carrier at `host`:`port` would be, if it is the switch itself: the
/// same address and port, or a loopback or this host's outbound address on the port of a
/// listener bound to every interface.
fn own_address(
    listen: &[proxy::ListenerSpec],
    host: &str,
    port: u16,
) -> Option<proxy::ListenerSpec> {
    let ip: std::net::IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    let outbound = std::net::UdpSocket::bind(("0.0.0.0", 0))
        .and_then(|s| s.connect(("192.0.2.1", 9)).and_then(|()| s.local_addr()))
        .ok()
        .map(|a| a.ip());
    listen.iter().copied().find(|l| {
        l.addr.port() == port
            && (l.addr.ip() == ip
                || (l.addr.ip().is_unspecified()
                    && (ip.is_loopback() || ip.is_unspecified() || Some(ip) == outbound)))
    })
}

/// `vts cdr reconcile`'s report; an error when calls were seen without a CDR.
fn print_reconciliation(r: &accounting::reconcile::Reconciliation) -> Result<(), String> {
    println!(
        "day {} (UTC): calls seen {}, CDRs stored {}, in the write-ahead log {} ({} CDRs not yet written, {} calls in progress or left open)",
        r.day,
        r.seen,
        r.stored,
        r.waiting + r.open,
        r.waiting,
        r.open
    );
    println!("{:<6} {:>8} {:>8}", "HOUR", "SEEN", "STORED");
    for (h, (s, c)) in &r.hours {
        println!("{h:02}:00  {s:>8} {c:>8}");
    }
    if !r.differing_minutes.is_empty() {
        println!("minutes that differ (seen, stored):");
        for (at, s, c) in r.differing_minutes.iter().take(50) {
            println!("  {:02}:{:02}  {s} {c}", at / 60, at % 60);
        }
    }
    let missing = r.missing();
    if missing < 0 {
        println!(
            "{} CDRs stored with no call counted (stored before the counts began, or counts lost)",
            -missing
        );
    }
    if missing > 0 {
        return Err(format!(
            "{missing} calls seen without a CDR stored or waiting"
        ));
    }
    println!("reconciled: every call seen has its CDR (stored or waiting in the log)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_carrier_at_the_switchs_own_address_is_recognised() {
        let any: Vec<proxy::ListenerSpec> = vec!["udp:0.0.0.0:5060".parse().unwrap()];
        assert!(own_address(&any, "127.0.0.1", 5060).is_some());
        assert!(own_address(&any, "127.0.0.1", 5090).is_none());
        assert!(
            own_address(&any, "192.0.2.77", 5060).is_none(),
            "another host"
        );
        let one: Vec<proxy::ListenerSpec> = vec!["udp:127.0.0.1:5080".parse().unwrap()];
        assert!(own_address(&one, "127.0.0.1", 5080).is_some());
        assert!(own_address(&one, "127.0.0.2", 5080).is_none());
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }

    fn cdr(caller: &str, user_agent: &str) -> Cdr {
        let mut b = domain::CdrBuilder::new();
        b.apply(domain::CallEvent::Started {
            call: domain::CallRef(1),
            cdr_id: "cdr-1".into(),
            at_ms: 1_000,
            call_id: "c@h".into(),
            customer: CustomerId(1),
            source: "192.0.2.1:5060".into(),
            caller: "100".into(),
            callee: "200".into(),
            user_agent: None,
            codecs: Vec::new(),
        });
        let mut c = b
            .apply(domain::CallEvent::Ended {
                call: domain::CallRef(1),
                at_ms: 2_000,
                code: 486,
                reason: "Busy Here".into(),
                hangup: domain::HangupSide::Callee,
                q850: None,
            })
            .unwrap();
        // As an older version (or another tool) may have stored them: not cleaned.
        c.caller = caller.into();
        c.user_agent = Some(user_agent.into());
        c
    }

    /// A caller, user agent or reason a peer chose must not become a formula in the
    /// operator's spreadsheet; numbers (a negative profit, a +E.164 number) stay numbers.
    #[test]
    fn csv_cells_that_look_like_formulas_are_neutralised() {
        assert_eq!(
            csv_field("=HYPERLINK(\"http://x\")"),
            "\"'=HYPERLINK(\"\"http://x\"\")\""
        );
        assert_eq!(csv_field("+1+cmd|' /C calc'!A0"), "'+1+cmd|' /C calc'!A0");
        assert_eq!(csv_field("-2+3"), "'-2+3");
        assert_eq!(csv_field("@SUM(A1:A9)"), "'@SUM(A1:A9)");
        assert_eq!(csv_field("\t=1"), "'\t=1");
        assert_eq!(
            csv_field("-0.0150"),
            "-0.0150",
            "a negative amount stays a number"
        );
        assert_eq!(csv_field("+4930123456"), "+4930123456");
        assert_eq!(csv_field("-"), "'-");
        let mut c = cdr("=cmd|' /C calc'!A0", "@evil");
        c.price = Some(domain::Money(100));
        c.cost = Some(domain::Money(250));
        let loss = profit(&c).unwrap().to_string();
        assert!(loss.starts_with('-'), "{loss}");
        let csv = render_cdrs(&[c], Format::Csv).unwrap();
        let row = csv.lines().nth(1).unwrap();
        assert!(row.contains(",'=cmd|' /C calc'!A0,"), "{row}");
        assert!(row.contains(",'@evil,"), "{row}");
        assert!(
            row.contains(&format!(",{loss},")),
            "the negative profit as it is: {row}"
        );
    }

    /// ESC sequences and other controls in a CDR's text reach the terminal escaped.
    #[test]
    fn table_output_escapes_control_characters() {
        let c = cdr("\u{1b}]0;owned\u{7}\u{1b}[2J100", "\u{1b}[31mred");
        let table = render_cdrs(std::slice::from_ref(&c), Format::Table).unwrap();
        assert!(
            !table.contains('\u{1b}') && !table.contains('\u{7}'),
            "{table:?}"
        );
        assert!(table.contains("\\u{1b}]0;owned"), "{table}");
        let entry = accounting::quarantine::Entry {
            at_ms: 1_000,
            error: "bad\u{1b}[0m".into(),
            cdr: c,
        };
        let table = render_quarantine(&[entry], Format::Table).unwrap();
        assert!(!table.contains('\u{1b}'), "{table:?}");
        assert!(table.contains("bad\\u{1b}[0m"), "{table}");
        assert_eq!(term("ünïcode +49"), "ünïcode +49");
    }
}
