//! `vts customer`: add, status (suspend, block, activate), list, limits; the routing and
//! billing subcommands are in `routing.rs`.

use std::fmt::Write as _;

use domain::{Customer, CustomerId, CustomerStatus};
use store::{NewCustomer, Store};

use super::routing;
use crate::cli::CustomerCmd;

pub(super) async fn run(store: &Store, cmd: CustomerCmd) -> crate::error::Result {
    match cmd {
        CustomerCmd::Add {
            name,
            ips,
            limits:
                crate::cli::NewLimits {
                    max_channels,
                    max_cps,
                },
        } => {
            let id = store
                .add_customer(&NewCustomer {
                    name,
                    ips: ips.into_iter().map(|i| i.0).collect(),
                    max_channels,
                    max_cps,
                })
                .await?;
            println!("{id}");
            Ok(())
        }
        CustomerCmd::Suspend { id, reason } => {
            set_status(store, id, CustomerStatus::Suspended, reason).await
        }
        CustomerCmd::Block { id, reason } => {
            set_status(store, id, CustomerStatus::Blocked, reason).await
        }
        CustomerCmd::Activate { id } => set_status(store, id, CustomerStatus::Active, None).await,
        CustomerCmd::List => {
            let customers = store.list_customers().await?;
            print!("{}", customer_table(&customers));
            Ok(())
        }
        CustomerCmd::Limits {
            id,
            limits:
                crate::cli::LimitsChange {
                    max_channels,
                    max_cps,
                },
            daily_minutes,
            monthly_minutes,
        } => {
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
            store.set_customer_limits(CustomerId(id), &change).await?;
            println!("customer {id}: limits changed");
            Ok(())
        }
        cmd => routing::customer(store, cmd).await,
    }
}

async fn set_status(
    store: &Store,
    id: i64,
    status: CustomerStatus,
    reason: Option<String>,
) -> crate::error::Result {
    store
        .set_customer_status(CustomerId(id), status, reason.as_deref())
        .await?;
    println!("customer {id}: {status}");
    Ok(())
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
