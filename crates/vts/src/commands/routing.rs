//! Subcommands for numbers, dialing plans, carrier profiles and rates.

use std::path::Path;

use domain::{CarrierId, CustomerId, DialPlanId, NumberProfile, Pattern, Rate, RatePlanId};
use store::{EntryKind, NumbersChange, RateOwner, Store};

use crate::cli::{CarrierCmd, CustomerCmd, PlanCmd, RatePlanCmd};

/// An id as typed, or `none`.
fn id_or_none(text: &str, what: &str) -> Result<Option<i64>, String> {
    match text.trim() {
        "none" => Ok(None),
        t => t
            .parse()
            .map(Some)
            .map_err(|_| format!("{t:?}: {what} or `none`")),
    }
}

/// `none` clears an optional value.
fn optional(value: Option<String>) -> Option<Option<String>> {
    value.map(|v| {
        let v = v.trim().to_string();
        (v != "none" && !v.is_empty()).then_some(v)
    })
}

pub(crate) async fn customer(store: &Store, cmd: CustomerCmd) -> crate::error::Result {
    match cmd {
        CustomerCmd::Numbers {
            id,
            format,
            country,
            forced_cli,
        } => {
            if format.is_none() && country.is_none() && forced_cli.is_none() {
                return Err(
                    "nothing to change: give --format, --country and/or --forced-cli".into(),
                );
            }
            let change = NumbersChange {
                format,
                country_code: optional(country),
                forced_cli: optional(forced_cli),
            };
            store.set_customer_numbers(CustomerId(id), &change).await?;
            println!("customer {id}: numbers changed");
        }
        CustomerCmd::Routing { id, mode } => {
            store.set_customer_routing(CustomerId(id), mode).await?;
            println!("customer {id}: routing {mode}");
        }
        CustomerCmd::Plan { id, plan } => {
            let plan = id_or_none(&plan, "a dialing plan id (vts plan list)")?.map(DialPlanId);
            store.set_customer_dial_plan(CustomerId(id), plan).await?;
            match plan {
                Some(p) => println!("customer {id}: dialing plan {}", p.0),
                None => println!("customer {id}: no dialing plan"),
            }
        }
        CustomerCmd::Billing {
            id,
            mode,
            credit_limit,
            suspend_at_zero,
            low_balance,
        } => {
            store
                .set_customer_billing(
                    CustomerId(id),
                    mode,
                    credit_limit,
                    suspend_at_zero,
                    low_balance,
                )
                .await?;
            let suspend = if suspend_at_zero {
                ", suspended when nothing is left"
            } else {
                ""
            };
            println!("customer {id}: billing {mode}, credit limit {credit_limit}{suspend}");
        }
        CustomerCmd::Credit { id, amount, note } => {
            let e = store
                .post(CustomerId(id), EntryKind::Credit, amount, &note)
                .await?;
            println!(
                "customer {id}: balance {} -> {}",
                e.balance_before, e.balance_after
            );
        }
        CustomerCmd::Refund { id, amount, note } => {
            let e = store
                .post(CustomerId(id), EntryKind::Refund, amount, &note)
                .await?;
            println!(
                "customer {id}: balance {} -> {}",
                e.balance_before, e.balance_after
            );
        }
        CustomerCmd::Adjust { id, amount, note } => {
            let e = store
                .post(CustomerId(id), EntryKind::Adjustment, amount, &note)
                .await?;
            println!(
                "customer {id}: balance {} -> {}",
                e.balance_before, e.balance_after
            );
        }
        CustomerCmd::Timezone { id, zone } => {
            store.set_customer_timezone(CustomerId(id), &zone).await?;
            println!("customer {id}: days and months of {}", zone.trim());
        }
        CustomerCmd::Ledger { id, limit } => {
            let balance = store
                .balances()
                .await?
                .get(&CustomerId(id))
                .copied()
                .unwrap_or_default();
            println!("customer {id}: balance {balance}");
            println!(
                "{:>8} {:<10} {:>14} {:>14} {:>14} {:<36} NOTE",
                "ID", "KIND", "AMOUNT", "BEFORE", "AFTER", "CDR"
            );
            for e in store.ledger(CustomerId(id), limit).await? {
                println!(
                    "{:>8} {:<10} {:>14} {:>14} {:>14} {:<36} {}",
                    e.id,
                    e.kind,
                    e.amount.to_string(),
                    e.balance_before.to_string(),
                    e.balance_after.to_string(),
                    e.cdr_id.as_deref().unwrap_or("-"),
                    e.note
                );
            }
        }
        CustomerCmd::Headers {
            id,
            trusted,
            hide_topology,
        } => {
            let now = store
                .set_customer_headers(CustomerId(id), trusted, hide_topology)
                .await?;
            println!("customer {id}: {}", customer_headers_text(now));
        }
        CustomerCmd::Rateplan { id, plan } => {
            let plan = id_or_none(&plan, "a rate plan id (vts rateplan list)")?.map(RatePlanId);
            store.set_customer_rate_plan(CustomerId(id), plan).await?;
            match plan {
                Some(p) => println!("customer {id}: rate plan {}", p.0),
                None => println!("customer {id}: no rate plan"),
            }
        }
        CustomerCmd::ImportRates { id, file } => {
            let rates = read_rates(&file)?;
            let n = store
                .import_rates(RateOwner::Customer(CustomerId(id)), &rates)
                .await?;
            println!("customer {id}: {n} rates imported");
        }
        _ => unreachable!("other customer commands are handled in commands.rs"),
    }
    Ok(())
}

pub(crate) async fn rate_plan(store: &Store, cmd: RatePlanCmd) -> crate::error::Result {
    match cmd {
        RatePlanCmd::Add { name, markup } => {
            let id = store.add_rate_plan(&name, markup).await?;
            println!("{}", id.0);
        }
        RatePlanCmd::ImportRates { id, file } => {
            let rates = read_rates(&file)?;
            let n = store
                .import_rates(RateOwner::Plan(RatePlanId(id)), &rates)
                .await?;
            println!("rate plan {id}: {n} rates imported");
        }
        RatePlanCmd::List => {
            for p in store.list_rate_plans().await? {
                println!(
                    "rate plan {} {:?}: markup {}.{:04} %, {} prefixes",
                    p.id.0,
                    p.name,
                    p.markup_ppm / 10_000,
                    p.markup_ppm % 10_000,
                    p.rates.prefixes()
                );
            }
        }
    }
    Ok(())
}

pub(crate) async fn plan(store: &Store, cmd: PlanCmd) -> crate::error::Result {
    match cmd {
        PlanCmd::Add {
            name,
            default,
            block_premium,
        } => {
            let id = store
                .add_dial_plan(&name, default.allows(), block_premium)
                .await?;
            println!("{}", id.0);
        }
        PlanCmd::Rule {
            plan,
            pattern,
            action,
            priority,
        } => {
            let pattern = Pattern::parse(&pattern)?;
            let id = store
                .add_dial_rule(DialPlanId(plan), priority, &pattern, action.allows())
                .await?;
            println!("{id}");
        }
        PlanCmd::RemoveRule { rule } => {
            if !store.remove_dial_rule(rule).await? {
                return Err(format!("no dialing-plan rule with id {rule}").into());
            }
            println!("rule {rule} removed");
        }
        PlanCmd::List => {
            for p in store.list_dial_plans().await? {
                println!(
                    "plan {} {:?}: default {}{}",
                    p.id.0,
                    p.name,
                    if p.default_allow { "allow" } else { "deny" },
                    if p.block_premium {
                        ", premium destinations blocked"
                    } else {
                        ""
                    }
                );
                for r in &p.rules {
                    println!(
                        "  rule {:<6} priority {:<6} {:<6} {}",
                        r.id,
                        r.priority,
                        if r.allow { "allow" } else { "deny" },
                        r.pattern.as_str()
                    );
                }
            }
        }
    }
    Ok(())
}

pub(crate) async fn carrier(store: &Store, cmd: CarrierCmd) -> crate::error::Result {
    match cmd {
        CarrierCmd::Profile {
            id,
            strip,
            tech_prefix,
            format,
            cli_format,
            country,
            codecs,
        } => {
            let carriers = store.list_carriers().await?;
            let current = carriers
                .iter()
                .find(|c| c.id.0 == id)
                .ok_or_else(|| format!("no carrier with id {id}"))?;
            let mut profile: NumberProfile = current.numbers.clone();
            let mut codec_list = current.codecs.clone();
            if let Some(n) = strip {
                profile.strip = n;
            }
            if let Some(t) = optional(tech_prefix) {
                profile.tech_prefix = t.unwrap_or_default();
            }
            if let Some(f) = format {
                profile.format = f;
            }
            if let Some(f) = cli_format {
                profile.cli_format = f;
            }
            if let Some(cc) = optional(country) {
                profile.country_code = cc;
            }
            if let Some(list) = codecs {
                codec_list = if list.trim() == "any" {
                    Vec::new()
                } else {
                    list.split(',').map(|c| c.trim().to_string()).collect()
                };
            }
            store
                .set_carrier_profile(CarrierId(id), &profile, &codec_list)
                .await?;
            println!("carrier {id}: profile changed");
        }
        CarrierCmd::Limits {
            id,
            limits:
                crate::cli::LimitsChange {
                    max_channels,
                    max_cps,
                },
            first_response_ms,
            ring_timeout,
        } => {
            let change = store::CarrierLimitsChange {
                max_channels: max_channels.map(|l| l.0),
                max_cps: max_cps.map(|l| l.0),
                first_response_ms: first_response_ms.map(|l| l.0),
                ring_timeout_s: ring_timeout.map(|l| l.0),
            };
            if max_channels.is_none()
                && max_cps.is_none()
                && first_response_ms.is_none()
                && ring_timeout.is_none()
            {
                return Err("nothing to change: give --max-channels, --max-cps, --first-response-ms and/or --ring-timeout".into());
            }
            store.set_carrier_limits(CarrierId(id), &change).await?;
            println!("carrier {id}: limits changed");
        }
        CarrierCmd::Headers { id, hide_topology } => {
            store
                .set_carrier_headers(CarrierId(id), hide_topology)
                .await?;
            println!("carrier {id}: {}", carrier_headers_text(hide_topology));
        }
        CarrierCmd::Disable { id } => set_active(store, id, false).await?,
        CarrierCmd::Enable { id } => set_active(store, id, true).await?,
        CarrierCmd::RemoveAllow { id, prefixes } => {
            remove_prefixes(store, id, true, &prefixes).await?;
        }
        CarrierCmd::RemoveDeny { id, prefixes } => {
            remove_prefixes(store, id, false, &prefixes).await?;
        }
        CarrierCmd::ImportRates { id, file } => {
            let rates = read_rates(&file)?;
            let n = store
                .import_rates(RateOwner::Carrier(CarrierId(id)), &rates)
                .await?;
            println!("carrier {id}: {n} rates imported");
        }
        CarrierCmd::Rates { id } => {
            println!(
                "{:<16} {:>12} {:>12} {:>9} {:>8} EFFECTIVE",
                "PREFIX", "PER MINUTE", "CONNECTION", "INCREMENT", "MINIMUM"
            );
            for r in store.list_rates(RateOwner::Carrier(CarrierId(id))).await? {
                println!(
                    "{:<16} {:>12} {:>12} {:>9} {:>8} {}",
                    r.prefix,
                    r.per_minute.to_string(),
                    r.connection_fee.to_string(),
                    r.increment_s,
                    r.minimum_s,
                    effective_text(r.effective_ms)
                );
            }
        }
        _ => unreachable!("other carrier commands are handled in commands.rs"),
    }
    Ok(())
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// What `vts customer headers` prints: the policy and what it means.
fn customer_headers_text(h: store::CustomerHeaders) -> String {
    format!(
        "trusted {} ({}), hide-topology {} ({})",
        yes_no(h.trusted),
        if h.trusted {
            "its identity headers reach carriers"
        } else {
            "its identity headers are dropped"
        },
        yes_no(h.hide_topology),
        if h.hide_topology {
            "carriers do not see its Via headers or User-Agent"
        } else {
            "carriers see its Via headers and User-Agent"
        },
    )
}

/// What `vts carrier headers` prints.
fn carrier_headers_text(hide_topology: bool) -> String {
    format!(
        "hide-topology {} ({})",
        yes_no(hide_topology),
        if hide_topology {
            "customers do not see its Record-Route, Server, Warning or User-Agent"
        } else {
            "customers see its Record-Route, Server, Warning and User-Agent"
        }
    )
}

async fn set_active(store: &Store, id: i64, active: bool) -> crate::error::Result {
    store.set_carrier_active(CarrierId(id), active).await?;
    println!(
        "carrier {id}: {}",
        if active { "enabled" } else { "disabled" }
    );
    Ok(())
}

async fn remove_prefixes(
    store: &Store,
    id: i64,
    allow: bool,
    prefixes: &[String],
) -> crate::error::Result {
    let n = store
        .remove_carrier_prefixes(CarrierId(id), allow, prefixes)
        .await?;
    let list = if allow { "allow" } else { "deny" };
    println!(
        "carrier {id}: {n} of {} prefixes removed from its {list} list",
        prefixes.len()
    );
    Ok(())
}

fn effective_text(ms: i64) -> String {
    if ms == 0 {
        return "always".into();
    }
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}

/// Reads a rate sheet (`accounting::rate_sheet`); an error names the file, line and field.
pub(crate) fn read_rates(path: &Path) -> Result<Vec<Rate>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    accounting::rate_sheet::parse(file).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    use clap::Parser as _;

    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> Result<Command, String> {
        Cli::try_parse_from(std::iter::once("vts").chain(args.iter().copied()))
            .map(|cli| cli.command)
            .map_err(|e| e.to_string())
    }

    async fn sqlite() -> Store {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        store.migrate().await.unwrap();
        store
    }

    /// `vts customer headers` and `vts carrier headers` take yes or no, nothing else.
    #[test]
    fn header_flags_are_yes_or_no() {
        match parse(&["customer", "headers", "7", "--trusted", "yes"]).unwrap() {
            Command::Customer(CustomerCmd::Headers {
                id: 7,
                trusted: Some(true),
                hide_topology: None,
            }) => {}
            other => panic!("{other:?}"),
        }
        match parse(&["carrier", "headers", "3", "--hide-topology", "no"]).unwrap() {
            Command::Carrier(CarrierCmd::Headers {
                id: 3,
                hide_topology: false,
            }) => {}
            other => panic!("{other:?}"),
        }
        for args in [
            &["customer", "headers", "7", "--trusted", "maybe"][..],
            &["customer", "headers", "7", "--hide-topology", "true"],
            &["customer", "headers", "7", "--trusted", ""],
            &["carrier", "headers", "3", "--hide-topology", "1"],
        ] {
            let e = parse(args).unwrap_err();
            assert!(e.contains("yes or no"), "{args:?}: {e}");
        }
        let e = parse(&["carrier", "headers", "3"]).unwrap_err();
        assert!(e.contains("--hide-topology"), "{e}");
        let e = parse(&["customer", "headers", "x", "--trusted", "yes"]).unwrap_err();
        assert!(e.contains("invalid value 'x'"), "{e}");
    }

    /// Unknown ids are refused with the id named; a known one gets the policy asked for.
    #[tokio::test]
    async fn header_commands_refuse_unknown_ids() {
        let store = sqlite().await;
        let version = store.config_version().await.unwrap();
        let headers = |id, trusted, hide_topology| CustomerCmd::Headers {
            id,
            trusted,
            hide_topology,
        };
        let e = customer(&store, headers(999, Some(true), None))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("no customer with id 999"), "{e}");
        let e = customer(&store, headers(999, None, None))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("no customer with id 999"), "{e}");
        let e = carrier(
            &store,
            CarrierCmd::Headers {
                id: 999,
                hide_topology: true,
            },
        )
        .await
        .unwrap_err();
        assert!(e.to_string().contains("no carrier with id 999"), "{e}");
        assert_eq!(store.config_version().await.unwrap(), version);

        let id = store
            .add_customer(&store::NewCustomer {
                name: "acme".into(),
                ips: vec!["192.0.2.1/32".parse().unwrap()],
                max_channels: None,
                max_cps: None,
            })
            .await
            .unwrap();
        customer(&store, headers(id.0, None, Some(true)))
            .await
            .unwrap();
        let c = &store.list_customers().await.unwrap()[0];
        assert!(!c.trusted && c.hide_topology);
    }

    #[test]
    fn header_policy_is_printed_in_words() {
        let text = customer_headers_text(store::CustomerHeaders {
            trusted: false,
            hide_topology: true,
        });
        assert!(
            text.starts_with("trusted no (its identity headers are dropped), hide-topology yes"),
            "{text}"
        );
        assert!(carrier_headers_text(true).starts_with("hide-topology yes"));
    }
}
